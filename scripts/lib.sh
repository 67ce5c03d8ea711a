# Shared by scripts/run.sh and scripts/test.sh: the toolchain pieces they need,
# installed when missing, and the plugin build.

# The plugins Weft ships. (The tests get these and the test-only plugins
# from cargo itself: tests/artifacts/build.rs builds them.)
SHIPPED_PLUGINS=(site-normalize adt-to-fhir oru-to-fhir order-to-fhir siu-to-fhir vxu-to-fhir pharmacy-to-fhir mdm-to-fhir billing-to-fhir fhir-to-v2)

ensure_toolchain() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
        exit 1
    fi
    if command -v rustup >/dev/null 2>&1; then
        if ! rustup target list --installed | grep -qx wasm32-wasip2; then
            echo "==> rustup target add wasm32-wasip2"
            rustup target add wasm32-wasip2
        fi
        for component in "$@"; do
            if ! rustup component list --installed | grep -q "^${component}"; then
                echo "==> rustup component add ${component}"
                rustup component add "${component}"
            fi
        done
    fi
    if ! command -v cc >/dev/null 2>&1; then
        echo "==> installing a C toolchain (build-essential) for the native build"
        apt_install build-essential
    fi
}

apt_install() {
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"
    else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
}

# A Python virtualenv under target/py with the `hl7` package, whose
# `mllp_send` client the end-to-end tests use as a third-party peer.
ensure_python_hl7() {
    if [ -x target/py/bin/mllp_send ]; then return; fi
    echo "==> installing the Python hl7 package (third-party MLLP client for tests)"
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    if ! python3 -m venv target/py 2>/dev/null; then
        rm -rf target/py
        apt_install python3-venv
        python3 -m venv target/py
    fi
    target/py/bin/pip install -q hl7==0.4.5
}

# Node.js and the two FHIR R4 validators (the R4 JSON schema with ajv, and
# FHIR.js) that the corpus test runs over every Bundle the mappings make,
# installed from the lock file into tests/fhir-validator/node_modules.
ensure_fhir_validator() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "==> installing Node.js and npm (FHIR validators for the corpus test)"
        apt_install nodejs npm
    fi
    local dir=tests/fhir-validator
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "==> installing the FHIR R4 validators (npm ci)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
}

# build_plugins CRATE... : builds each plugin crate into a component under
# target/wasm32-wasip2/plugin/.
build_plugins() {
    local args=()
    for p in "$@"; do args+=(-p "$p"); done
    echo "==> building plugins: $*"
    cargo build --locked --target wasm32-wasip2 --profile plugin "${args[@]}"
}

# sign_plugins WEFT CRATE... : signs each built plugin into target/signed/
# with the local build's project key (target/plugin-key/weft-project.key,
# made with `weft plugin keygen` on the first build). Its trust list entry,
# weft-project.pub beside it, is the embedded default's trust list. The
# tests' build (tests/artifacts/build.rs) makes the same files.
sign_plugins() {
    local weft=$1; shift
    local keys=target/plugin-key
    if [ ! -f "$keys/weft-project.key" ]; then
        rm -f "$keys/weft-project.pub"
        mkdir -p "$keys" && chmod 700 "$keys"
        "$weft" plugin keygen weft-project --dir "$keys" >/dev/null
    fi
    mkdir -p target/signed
    echo "==> signing plugins with $keys/weft-project.key: $*"
    for p in "$@"; do
        local file=${p//-/_}.wasm
        "$weft" plugin sign --key "$keys/weft-project.key" \
            "target/wasm32-wasip2/plugin/$file" --out "target/signed/$file" >/dev/null
    done
}

# Debian's Chromium and its WebDriver (chromedriver), for the console's
# browser tests.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return; fi
    echo "==> installing Debian's chromium and chromium-driver (the console's browser tests)"
    apt_install chromium chromium-driver
}

# PostgreSQL's server from Debian's packages: the tests start their own
# throwaway clusters with it (initdb into a temporary directory; as root,
# through runuser as the package's postgres user).
ensure_postgres() {
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then return; fi
    echo "==> installing Debian's postgresql (the PostgreSQL journal's tests)"
    apt_install postgresql
}

# What the package test needs (tests/package/test.sh): systemd-analyze,
# systemd-sysusers and systemd-tmpfiles (the systemd package; no running
# systemd needed), strace, and objdump for the package's glibc dependency.
ensure_package_tools() {
    local missing=()
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    command -v strace >/dev/null 2>&1 || missing+=(strace)
    command -v objdump >/dev/null 2>&1 || missing+=(binutils)
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]} (the Debian package's tests)"
        apt_install "${missing[@]}"
    fi
}
