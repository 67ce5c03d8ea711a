#!/usr/bin/env bash
# Builds the Debian package, target/debian/weft_VERSION_ARCH.deb, with
# dpkg-deb from the release binary and the shipped plugins (built and signed
# first if missing, as scripts/run.sh does). No debhelper: this script is
# the whole recipe, and tests/package/test.sh checks what it makes.
#
#   /usr/bin/weft                      the runtime
#   /usr/lib/weft/plugins/*.wasm       the shipped plugins, signed
#   /usr/share/weft/trust/*.pub        the trust list they are signed for
#   /usr/share/weft/samples/           each plugin's check samples
#   /etc/weft/weft.toml                the configuration (a conffile)
#   /etc/weft/lookups/*.csv            its lookup tables (conffiles)
#   /lib/systemd/system/weft.service   the hardened unit
#   /lib/systemd/system/weft-backup.*  a nightly backup (timer not enabled)
#   /usr/lib/sysusers.d/weft.conf      the weft system user
#   /usr/lib/tmpfiles.d/weft.conf      /var/lib/weft, 0700
#
# Usage: scripts/deb.sh [--no-build]   (--no-build: package what target/ holds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ "${1:-}" != --no-build ]; then
    ensure_toolchain
    build_plugins "${SHIPPED_PLUGINS[@]}"
    cargo build --locked --release -p weft
    sign_plugins target/release/weft "${SHIPPED_PLUGINS[@]}"
fi
command -v objdump >/dev/null 2>&1 || apt_install binutils

version=$(target/release/weft --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
out=target/debian
root=$out/root
rm -rf "$root" && mkdir -p "$root/DEBIAN"

install -D -m 0755 -s target/release/weft "$root/usr/bin/weft"
for p in "${SHIPPED_PLUGINS[@]}"; do
    install -D -m 0644 "target/signed/${p//-/_}.wasm" "$root/usr/lib/weft/plugins/${p//-/_}.wasm"
done
install -D -m 0644 target/plugin-key/weft-project.pub "$root/usr/share/weft/trust/weft-project.pub"
install -d "$root/usr/share/weft/samples"
install -m 0644 samples/* "$root/usr/share/weft/samples/"
install -d "$root/etc/weft/lookups"
install -m 0644 lookups/*.csv "$root/etc/weft/lookups/"
install -D -m 0644 packaging/debian/weft.service "$root/lib/systemd/system/weft.service"
install -m 0644 packaging/debian/weft-backup.service packaging/debian/weft-backup.timer "$root/lib/systemd/system/"
install -D -m 0644 packaging/debian/weft.sysusers "$root/usr/lib/sysusers.d/weft.conf"
install -D -m 0644 packaging/debian/weft.tmpfiles "$root/usr/lib/tmpfiles.d/weft.conf"
install -D -m 0644 README.md "$root/usr/share/doc/weft/README.md"
install -m 0644 packaging/debian/copyright "$root/usr/share/doc/weft/copyright"

# The default configuration with the installed paths: plugins, samples and
# the trust list from the package, state under /var/lib/weft, and only
# signed plugins loaded (the shipped ones are; a site's own must be signed
# by a key it adds to its trust list). Lookups stay relative: /etc/weft/lookups.
{
    echo "# Weft's configuration, installed by the weft package. An upgrade never"
    echo "# overwrites your edits (a conffile). Check it with \`weft check\`, apply it"
    echo "# with \`systemctl reload weft\` (plugins, lookups and routes swap in without"
    echo "# a restart). Relative paths are relative to this file's directory."
    sed -e '1,/^$/d' \
        -e 's|^data_dir = "data" *#.*|data_dir = "/var/lib/weft/journal"   # the journal: every message, output and delivery state|' \
        -e 's|^cache_dir = "\.weft/cache" *#.*|cache_dir = "/var/lib/weft/cache"    # compiled plugins|' \
        -e 's|^dir = "out/fhir"|dir = "/var/lib/weft/out/fhir"|' \
        -e 's|^path = "target/signed/|path = "/usr/lib/weft/plugins/|' \
        -e 's|^input = "samples/|input = "/usr/share/weft/samples/|' \
        -e 's|^keys = "target/plugin-key/weft-project.pub"|keys = "/usr/share/weft/trust/weft-project.pub"|' \
        -e 's|^require_signed = false|require_signed = true|' \
        -e 's|^# encryption_key = "journal.key".*|# encryption_key = "/etc/weft/journal.key"  # seal patient data in the journal: `weft key generate` it, chown weft|' \
        -e 's|data/admin|/var/lib/weft/journal/admin|g' \
        -e '/^# Whose plugins this site runs/,/^\[trust\]/c\
# Whose plugins this site runs: only plugins signed by a key of this trust\
# list load. The package'"'"'s plugins are signed by the key the package ships;\
# to run your own, sign them (`weft plugin sign`) and point `keys` at a\
# trust list of your own in /etc/weft that also lists that key.\
[trust]' \
        weft.toml
} >"$root/etc/weft/weft.toml"
chmod 0644 "$root/etc/weft/weft.toml"
if grep -n '^[^#]*\(target/\|"data"\|"out/\|"samples/\|require_signed = false\)' "$root/etc/weft/weft.toml"; then
    echo "deb.sh: the packaged weft.toml still names a path of the source tree (above)" >&2
    exit 1
fi

(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"

# Dependencies: the newest glibc symbol version the binary uses.
glibc=$(objdump -T "$root/usr/bin/weft" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/libc6 (>= $glibc), libgcc-s1/" \
    packaging/debian/control.in >"$root/DEBIAN/control"

deb="$out/weft_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb ($(du -h "$deb" | cut -f1), installed $((size / 1024)) MiB)"
