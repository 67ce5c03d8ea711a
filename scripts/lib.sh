# Shared by scripts/run.sh and scripts/test.sh: the toolchain pieces they need,
# installed when missing, and the plugin build.

# The plugins Weft ships, and the test plugins the sandbox tests use.
SHIPPED_PLUGINS=(adt-to-fhir site-normalize)
TEST_PLUGINS=(weft-test-hostile weft-test-future-contract)

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
        if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq build-essential
        else sudo apt-get update -qq && sudo apt-get install -y -qq build-essential; fi
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
