#!/usr/bin/env bash
# Builds the shipped plugins and the runtime, signs the plugins with the
# local build's project key (see weft.toml's [trust]), then starts `weft run` on the
# default weft.toml: MLLP on 127.0.0.1:2575, ADT messages through
# site-normalize and adt-to-fhir (ORU, ORM/OML, SIU and VXU through their own
# mappings), FHIR Bundles written under out/fhir/.
# From another terminal: target/release/weft send samples/adt-a01.hl7
# Extra arguments go to `weft run`. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_toolchain
build_plugins "${SHIPPED_PLUGINS[@]}"
echo "==> building the runtime"
cargo build --locked --release -p weft
sign_plugins target/release/weft "${SHIPPED_PLUGINS[@]}"
echo "==> weft run (send a message with: target/release/weft send samples/adt-a01.hl7)"
exec target/release/weft run "$@"
