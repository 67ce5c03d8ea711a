#!/usr/bin/env bash
# Tests the Debian package scripts/deb.sh made (target/debian/weft_*.deb):
#
#  1. the unit's hardening: systemd-analyze security (offline) under a
#     threshold, no setting systemd does not know, the settings the
#     service relies on present;
#  2. its contents (dpkg-deb -c) and conffiles;
#  3. a real `dpkg -i` into a scratch root (dpkg's own chrootless mode, the
#     maintainer scripts run with DPKG_ROOT): the weft user, /var/lib/weft
#     0700 and owned by it;
#  4. the installed files used as installed: in a mount namespace the
#     scratch root becomes `/` (the host's libraries bound in), `weft check`
#     checks /etc/weft/weft.toml, `weft run` runs as the weft user with the
#     unit's environment under strace, takes a message over MLLP and writes
#     its Bundle under /var/lib/weft, `weft messages` (no --config) finds the
#     installed config, SIGHUP reloads, SIGTERM stops it cleanly; every
#     system call it made is one the unit's SystemCallFilter allows;
#  5. an upgrade to a newer package keeps a site's edit of weft.toml;
#  6. a purge removes the package and /etc/weft but keeps the journal.
#
# Needs root (dpkg, chroot, mounts) and strace, dpkg-deb, systemd-analyze.
# Prints the package's size and the install time.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(ls target/debian/weft_*.deb | head -1)
unit=packaging/debian/weft.service
fail() { echo "package test: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }
trap 'echo "package test: failed at line $LINENO" >&2' ERR

# 1. The unit.
security=$(systemd-analyze security --offline=yes --threshold=15 "$unit" 2>&1) \
    || { echo "$security"; fail "systemd-analyze security: exposure above 1.5"; }
if grep -i "unknown\|ignoring" <<<"$security"; then fail "the unit has settings systemd ignores"; fi
ok "$(grep -o 'Overall exposure level.*' <<<"$security")"
backup_security=$(systemd-analyze security --offline=yes --threshold=15 packaging/debian/weft-backup.service 2>&1) \
    || { echo "$backup_security"; fail "systemd-analyze security: the backup unit's exposure is above 1.5"; }
if grep -i "unknown\|ignoring" <<<"$backup_security"; then fail "the backup unit has settings systemd ignores"; fi
ok "backup unit: $(grep -o 'Overall exposure level.*' <<<"$backup_security")"
for setting in 'User=weft' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
    'NoNewPrivileges=yes' 'ReadWritePaths=/var/lib/weft' 'CapabilityBoundingSet=$' \
    'MemoryMax=' 'Restart=on-failure' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'StateDirectory=weft' 'StateDirectoryMode=0700' 'SystemCallFilter=@system-service'; do
    grep -q "^${setting//$/\\$}" "$unit" || grep -q "^$setting" "$unit" || fail "the unit lacks $setting"
done
ok "the unit has every setting the service relies on"

# 2. Contents.
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/weft ./etc/weft/weft.toml ./etc/weft/lookups/gender.csv \
    ./lib/systemd/system/weft.service ./lib/systemd/system/weft-backup.service \
    ./lib/systemd/system/weft-backup.timer ./usr/lib/sysusers.d/weft.conf \
    ./usr/lib/tmpfiles.d/weft.conf ./usr/share/weft/trust/weft-project.pub \
    ./usr/share/weft/samples/adt-a01.hl7 ./usr/lib/weft/plugins/adt_to_fhir.wasm; do
    grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done
plugins=$(grep -c '/usr/lib/weft/plugins/.*\.wasm$' <<<"$contents")
[ "$plugins" -ge 10 ] || fail "only $plugins plugins in the package"
if grep -v ' root/root ' <<<"$contents"; then fail "files not owned by root in the package"; fi
conffiles=$(dpkg-deb -f "$deb" Package >/dev/null && dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/weft/weft.toml <<<"$conffiles" || fail "/etc/weft/weft.toml is not a conffile"
ok "contents: the binary, $plugins plugins, config and lookups as conffiles, unit, sysusers, tmpfiles"

# 3. Install into a scratch root.
work=$(mktemp -d /tmp/weft-package.XXXXXX)
root=$work/root
# The `weft run` whose root is the scratch root (not a developer's own).
service_pid() {
    local p
    for p in $(pgrep -x weft); do
        [ "$(readlink "/proc/$p/root")" = "$root" ] && echo "$p"
    done | head -1
}
cleanup() {
    local p
    p=$(service_pid || true)
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/info" "$root/etc"
touch "$root/var/lib/dpkg/status"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
: >"$root/etc/shadow"; : >"$root/etc/gshadow"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@"; }
start=$(date +%s%N)
dpkg_root -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
install_ms=$(( ($(date +%s%N) - start) / 1000000 ))
uid=$(awk -F: '$1 == "weft" {print $3}' "$root/etc/passwd")
gid=$(awk -F: '$1 == "weft" {print $4}' "$root/etc/passwd")
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "postinst made no weft system user"
[ "$(stat -c '%a %u' "$root/var/lib/weft")" = "700 $uid" ] \
    || fail "/var/lib/weft is $(stat -c '%a %u' "$root/var/lib/weft"), not 700 owned by weft ($uid)"
ok "dpkg -i: $(du -h "$deb" | cut -f1) package, installed in ${install_ms} ms; user weft ($uid), /var/lib/weft 0700"

# 4. The installed files used as installed: the scratch root as `/`.
mkdir -p "$root/usr/lib/x86_64-linux-gnu" "$root/lib/x86_64-linux-gnu" "$root/usr/lib64" "$root/lib64" "$root/dev" "$root/proc" "$root/tmp" "$root/bin"
chmod 1777 "$root/tmp"
# Runs "$@" with the scratch root as `/`, in a mount namespace of its own.
in_root() {
    unshare --mount --propagation private -- sh -c '
        root=$1; shift
        for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /dev; do
            [ -e "$d" ] && mount --bind "$d" "$root$d"
        done
        mount -t proc proc "$root/proc"
        exec chroot "$@"' sh "$root" "$@"
}
in_root "$root" /usr/bin/weft check >"$work/check.log" 2>&1 \
    || { cat "$work/check.log"; fail "weft check of the installed /etc/weft/weft.toml failed"; }
grep -q 'plugin adt-to-fhir: ok' "$work/check.log" || { cat "$work/check.log"; fail "weft check named no plugin"; }
grep -q 'unsigned' "$work/check.log" && fail "a packaged plugin is unsigned"
[ ! -e "$root/var/lib/weft/cache" ] || fail "root's weft check wrote into the service's cache (/var/lib/weft/cache)"
ok "weft check /etc/weft/weft.toml: $(grep -c '^plugin .*: ok' "$work/check.log") plugins load and map their samples"

for port in 2575 8080 8081; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port is taken on this machine; the installed config listens there"
    fi
done
# The unit's user, umask and environment; strace (bound in from the host)
# records every system call of the service and its compiler processes.
touch "$root/usr/bin/strace"
in_root_traced() {
    (umask 0077; exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        WEFT_CONFIG=/etc/weft/weft.toml STATE_DIRECTORY=/var/lib/weft \
        unshare --mount --propagation private -- sh -c '
        root=$1; shift
        for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /dev /usr/bin/strace; do
            [ -e "$d" ] && mount --bind "$d" "$root$d"
        done
        mount -t proc proc "$root/proc"
        exec chroot "$root" /usr/bin/strace -f -qq -o /tmp/syscalls -u weft "$@"' sh "$root" "$@")
}
as_weft() { in_root --userspec="$uid:$gid" "$root" "$@"; }
# Patient data encrypted at rest, as the README says to turn it on: a key
# made by root with the installed weft, given to the weft user, named in
# the installed config.
in_root "$root" /usr/bin/weft key generate /etc/weft/journal.key >"$work/key.log" 2>&1 \
    || { cat "$work/key.log"; fail "weft key generate failed"; }
[ "$(stat -c '%a' "$root/etc/weft/journal.key")" = 600 ] || fail "the key file is not 0600"
chown "$uid:$gid" "$root/etc/weft/journal.key"
sed -i 's|^# encryption_key = "/etc/weft/journal.key".*|encryption_key = "/etc/weft/journal.key"|' "$root/etc/weft/weft.toml"
grep -q '^encryption_key = ' "$root/etc/weft/weft.toml" || fail "the installed weft.toml has no encryption_key line to turn on"
in_root_traced /usr/bin/weft run >"$work/run.log" 2>&1 &
weft_pid=$!
for _ in $(seq 600); do
    grep -q 'weft running' "$work/run.log" && break
    kill -0 "$weft_pid" 2>/dev/null || { cat "$work/run.log"; fail "weft run as installed exited"; }
    sleep 0.2
done
grep -q 'weft running' "$work/run.log" || { cat "$work/run.log"; fail "weft run as installed did not start in 120 s"; }
if grep -q 'StateDirectory' "$work/run.log"; then cat "$work/run.log"; fail "data_dir outside StateDirectory"; fi
ack=$(target/release/weft send --to 127.0.0.1:2575 samples/adt-a01.hl7 2>&1) || { echo "$ack"; fail "weft send failed"; }
grep -qP '\tAA\t' <<<"$ack" || { echo "$ack"; cat "$work/run.log"; fail "the installed service did not accept ADT^A01"; }
for _ in $(seq 100); do
    bundle=$(find "$root/var/lib/weft/out/fhir" -name '*.json' 2>/dev/null | head -1 || true)
    [ -n "$bundle" ] && break
    sleep 0.1
done
[ -n "$bundle" ] || fail "no Bundle under /var/lib/weft/out/fhir"
grep -q '"resourceType":"Bundle"' "$bundle" || fail "$bundle is not a Bundle"
[ "$(stat -c '%u %a' "$root/var/lib/weft/journal/journal.db")" = "$uid 600" ] \
    || fail "the journal is $(stat -c '%u %a' "$root/var/lib/weft/journal/journal.db"), not 0600 owned by weft"
ok "weft run as the weft user: ADT^A01 acknowledged AA, its Bundle in /var/lib/weft/out/fhir, journal 0600"
# The patient is in the Bundle the destination wrote, not in the journal.
grep -q 'Sample' "$bundle" || fail "the Bundle does not name the sample's patient"
for f in journal.db journal.db-wal; do
    [ -e "$root/var/lib/weft/journal/$f" ] || continue
    if grep -c -a -e 'Sample^Pat' -e '987-65-4321' -e '123456^^^EDGE' "$root/var/lib/weft/journal/$f" >/dev/null; then
        fail "the sample's patient is in the clear in /var/lib/weft/journal/$f with a key set"
    fi
done
ok "encryption_key set: the sample patient's name and identifiers are in neither journal.db nor its WAL"

# An administrator's `weft messages`, with no --config: the installed one.
listing=$(as_weft /usr/bin/weft messages list 2>&1) || { echo "$listing"; fail "weft messages failed"; }
grep -q 'CTRL0001' <<<"$listing" || { echo "$listing"; fail "weft messages did not list the message"; }
ok "weft messages (no --config) reads /etc/weft/weft.toml and lists the message"
refused=$(in_root "$root" /usr/bin/weft messages list 2>&1) && fail "root's weft messages opened the weft user's journal"
grep -q 'sudo -u weft' <<<"$refused" || { echo "$refused"; fail "root's weft messages was refused without naming the user to run as"; }
ok "as root, weft messages is refused, naming the user to run as (sudo -u weft)"

# weft doctor as the weft user, on the running service: nothing broken (the
# default config's LIS on 127.0.0.1:2576 is not there: a warning).
code=0; report=$(as_weft /usr/bin/weft doctor --json 2>&1) || code=$?
[ "$code" -le 1 ] || { echo "$report"; fail "weft doctor on the installed service says broken (exit $code)"; }
for check in '"check":"journal integrity","verdict":"ok"' '"check":"port 127.0.0.1:2575","verdict":"ok"' \
    '"check":"permissions","verdict":"ok"' '"check":"plugin adt-to-fhir","verdict":"ok"' \
    '"check":"encryption","verdict":"ok"'; do
    grep -qF "$check" <<<"$report" || { echo "$report"; fail "weft doctor: expected $check"; }
done
ok "weft doctor on the installed service: exit $code, journal, ports, permissions, plugins and encryption ok"

# The nightly backup's command as the weft user, beside the running
# service; then a restore of it, as an operator would.
as_weft /usr/bin/weft backup /var/lib/weft/backups/test.tar >"$work/backup.log" 2>&1 \
    || { cat "$work/backup.log"; fail "weft backup as the weft user failed"; }
[ "$(stat -c '%u %a' "$root/var/lib/weft/backups/test.tar")" = "$uid 600" ] || fail "the archive is not 0600 owned by weft"
as_weft /usr/bin/weft restore /var/lib/weft/backups/test.tar --to /var/lib/weft/restored >"$work/restore.log" 2>&1 \
    || { cat "$work/restore.log"; fail "weft restore as the weft user failed"; }
grep -q 'intact' "$work/restore.log" || { cat "$work/restore.log"; fail "the restored audit trail was not verified"; }
ok "weft backup beside the running service and weft restore, as the weft user: $(head -1 "$work/backup.log")"

kill -HUP "$(service_pid)"
for _ in $(seq 100); do grep -q 'reload' "$work/run.log" && break; sleep 0.1; done
grep -qi 'reload' "$work/run.log" || fail "SIGHUP did not reload"
kill -TERM "$(service_pid)"
wait "$weft_pid" || { cat "$work/run.log"; fail "weft run did not stop cleanly on SIGTERM"; }
weft_pid=
ok "SIGHUP reloads, SIGTERM stops it with exit 0"

# Every system call the service made is one the unit allows.
expand() {
    systemd-analyze syscall-filter "$1" | sed -n 's/^    //p' | grep -v '^#' | while read -r item; do
        case $item in @*) expand "$item" ;; *) echo "$item" ;; esac
    done
}
allowed=$(expand @system-service | sort -u)
denied=$(for g in $(sed -n 's/^SystemCallFilter=~//p' "$unit"); do expand "$g"; done | sort -u)
used=$(sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/^([a-z0-9_]+)\(.*/\1/' "$root/tmp/syscalls" \
    | grep -E '^[a-z0-9_]+$' | sort -u)
[ "$(wc -l <<<"$used")" -gt 20 ] || fail "strace saw too few system calls: $used"
outside=$(comm -23 <(echo "$used") <(comm -23 <(echo "$allowed") <(echo "$denied")))
[ -z "$outside" ] || fail "system calls the unit's SystemCallFilter refuses: $outside"
ok "all $(wc -l <<<"$used") system calls it made are in the unit's SystemCallFilter"

# 5. An upgrade keeps a site's edit of weft.toml (a conffile), and the
# journal: the message is still listed by the new package's binary.
echo '# site edit: kept across upgrades' >>"$root/etc/weft/weft.toml"
next=$work/next
dpkg-deb -R "$deb" "$next"
sed -i 's/^Version: .*/&+next1/' "$next/DEBIAN/control"
echo '# a change in the next package' >>"$next/etc/weft/weft.toml"
dpkg-deb --root-owner-group -Zxz --build "$next" "$work/next.deb" >/dev/null
dpkg_root --force-confold -i "$work/next.deb" >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "upgrade failed"; }
grep -q '^# site edit: kept across upgrades' "$root/etc/weft/weft.toml" || fail "the upgrade overwrote the site's weft.toml"
[ -f "$root/etc/weft/weft.toml.dpkg-dist" ] || fail "the upgrade left no weft.toml.dpkg-dist"
listing=$(as_weft /usr/bin/weft messages list 2>&1) || { echo "$listing"; fail "weft messages after the upgrade failed"; }
grep -q 'CTRL0001' <<<"$listing" || fail "the message is gone after the upgrade"
ok "upgrade: the site's weft.toml kept (the package's as weft.toml.dpkg-dist), the journal kept"

# 6. A purge removes the package's files and /etc/weft, never the journal.
dpkg_root --purge weft >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge failed"; }
[ ! -e "$root/usr/bin/weft" ] && [ ! -e "$root/etc/weft/weft.toml" ] || fail "purge left the package's files"
[ -f "$root/var/lib/weft/journal/journal.db" ] || fail "purge deleted the journal"
[ -f "$root/etc/weft/journal.key" ] || fail "purge deleted the journal's key (the kept journal could not be read)"
ok "purge: the package's files and config gone; /var/lib/weft/journal and its key /etc/weft/journal.key kept"
echo "package test passed"
