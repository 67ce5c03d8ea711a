#!/usr/bin/env bash
# Runs every test: formatting, lints (native and wasm), unit, property,
# corpus, plugin, sandbox and CLI tests, FHIR R4 validation of every
# corpus mapping, the shipped routes' golden cases, and a few seconds of
# each fuzz target. Builds everything once, in
# release; the plugins' components are built by cargo (tests/artifacts/build.rs)
# as part of the native build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_toolchain rustfmt clippy
ensure_python_hl7
ensure_fhir_validator
ensure_chromium
ensure_postgres
ensure_package_tools
# Each phase says how long the run has taken so far, for the CI budget.
phase() { echo "==> $* (at $((SECONDS / 60)) min $((SECONDS % 60)) s)"; }
phase "cargo fmt --check"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
phase "clippy (wasm32-wasip2: SDK and plugins)"
cargo clippy --locked --target wasm32-wasip2 --profile plugin \
    -p weft-sdk -p weft-v2fhir -p adt-to-fhir -p oru-to-fhir -p order-to-fhir -p siu-to-fhir \
    -p vxu-to-fhir -p pharmacy-to-fhir -p mdm-to-fhir -p billing-to-fhir -p fhir-to-v2 -p site-normalize -p weft-test-hostile -p weft-test-raw -p weft-test-site-normalize-b -- -D warnings
# Native code is linted as it is built: clippy-driver compiles the
# workspace's own crates (every test, bench, binary and example, and the
# libraries under them), `-D warnings` making any rustc or clippy warning an
# error, and `cargo test` then reuses that build. A separate `cargo clippy`
# pass would check the whole tree, wasmtime included, a second time (about
# six minutes here). Dependencies are built by plain rustc, as always; the
# wasm-only plugins' own libraries are linted by the wasm pass above.
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS=-Dwarnings
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver)
phase "build and lint (native)"
cargo build --locked --release --workspace --tests --benches --bins --examples
phase "cargo test"
cargo test --locked --workspace --release
# The shipped routes' golden cases (tests/golden/README.md), through the
# binary as a site's CI would run them.
phase "golden cases (weft test)"
for route in adt results orders scheduling immunizations pharmacy documents billing fhir-to-lis; do
    # Every case on failure, the count line otherwise.
    if ! out=$(target/release/weft test --route "$route" "tests/golden/$route" \
        --junit "target/golden-$route.xml" 2>&1); then
        echo "$out"
        echo "golden cases of route $route failed" >&2
        exit 1
    fi
    echo "  $route: ${out##*$'\n'}"
done
# The Debian package: built from this build, then installed into a scratch
# root and run as installed (tests/package/test.sh; dpkg and chroot need root).
phase "Debian package"
./scripts/deb.sh --no-build
if [ "$(id -u)" = 0 ]; then tests/package/test.sh; else sudo tests/package/test.sh; fi
# Every fuzz target briefly, so a parser change that crashes fails here;
# scripts/fuzz.sh SECONDS runs them for longer.
phase "fuzzing"
./scripts/fuzz.sh 10
phase "all tests passed"
