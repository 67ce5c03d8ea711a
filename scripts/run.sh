#!/usr/bin/env bash
# Builds the shipped plugins and the runtime, then runs the default route of
# the embedded weft.toml on a sample ADT^A01 and prints the FHIR Bundle.
# Extra arguments go to `weft transform` (e.g. another message file).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_toolchain
build_plugins "${SHIPPED_PLUGINS[@]}"
echo "==> building the runtime"
cargo build --locked --release -p weft
input=("$@")
[ ${#input[@]} -eq 0 ] && input=(samples/adt-a01.hl7)
echo "==> weft transform --route adt ${input[*]}"
exec target/release/weft transform --route adt --pretty "${input[@]}"
