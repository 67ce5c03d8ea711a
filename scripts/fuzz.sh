#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, on the stable toolchain) of the parsers
# of untrusted bytes: the HL7 v2 parser, paths, escapes and ACK builder
# (weft-hl7), the MLLP decoder (weft-mllp) and the plugin signature reader
# and manifest reader (weft-signature), the lookup table reader
# (weft-tables), the HTTP source's body parsers, and the config loader
# (weft-config). See fuzz/fuzz_targets/ for what each one checks.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 600)
#
# Targets run side by side, one per core. The test command runs every target
# for 10 s; run this for longer by hand.
# The corpus grows under target/fuzz/corpus/; a crash stops the run (exit 1)
# and its input is in target/fuzz/crashes/TARGET/: fix it, then copy the input
# into fuzz/regressions/TARGET/, which every run replays first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_toolchain
if ! command -v c++ >/dev/null 2>&1; then
    echo "==> installing a C++ compiler (libFuzzer is built from source)"
    apt_install g++
fi

secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(hl7_message hl7_path hl7_escape hl7_ack mllp_decode http_body signature manifest lookup_table config)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
echo "==> building the fuzz targets (sanitizer coverage, $host)"
# --target keeps these flags off build scripts (they would not link).
(cd fuzz && RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
    CARGO_TARGET_DIR=../target/fuzz/build \
    cargo build --locked --release --target "$host" --bins)
bin=target/fuzz/build/$host/release

# Seeds: the public corpus (as is and framed for MLLP), and the regressions.
seeds=target/fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds/hl7" "$seeds/mllp" "$seeds/signature" "$seeds/config"
i=0
for f in tests/corpus/*/*.hl7 samples/*.hl7; do
    [ -f "$f" ] || continue
    i=$((i + 1))
    cp "$f" "$seeds/hl7/$i"
    { printf '\x10\x07\x0b'; cat "$f"; printf '\x1c\x0d'; } > "$seeds/mllp/$i"
done
printf '\0asm\x0d\x00\x01\x00\x00\x05\x04name' > "$seeds/signature/component"
# The shipped weft.toml, and each TOML example of the README (between them,
# every key the loader knows: a test holds the README to that).
cp weft.toml "$seeds/config/weft.toml"
awk -v dir="$seeds/config" '/^```toml/ { n++; f = dir "/readme-" n; next }
    /^```/ { f = ""; next } f { print > f }' README.md
seed_dir() {
    case "$1" in
        mllp_decode) echo "$seeds/mllp" ;;
        signature) echo "$seeds/signature" ;;
        # A component holding a manifest, and the manifest's JSON alone
        # (made by hand; see fuzz/seeds/README.md).
        manifest) echo fuzz/seeds/manifest ;;
        lookup_table) echo lookups ;;
        config) echo "$seeds/config" ;;
        *) echo "$seeds/hl7" ;;
    esac
}

# One target per core at a time (libFuzzer runs on one thread): the same
# seconds per target, in a fraction of the wall time.
jobs=$(nproc 2>/dev/null || echo 1)
fuzz_one() {
    local t=$1 corpus=target/fuzz/corpus/$1 crashes=target/fuzz/crashes/$1
    mkdir -p "$corpus" "$crashes" "fuzz/regressions/$t"
    "$bin/$t" "$corpus" "$(seed_dir "$t")" "fuzz/regressions/$t" \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$crashes/" >"target/fuzz/$t.log" 2>&1
}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        sleep 0.2
    done
    echo "==> fuzzing $t for ${secs}s"
    rm -f "target/fuzz/$t.rc"
    (
        rc=0
        fuzz_one "$t" || rc=$?
        echo "$rc" >"target/fuzz/$t.rc"
    ) &
done
wait
summary=()
failed=0
for t in "${targets[@]}"; do
    log=target/fuzz/$t.log
    if [ "$(cat "target/fuzz/$t.rc" 2>/dev/null)" != 0 ]; then
        tail -40 "$log"
        echo "fuzz target $t failed: the input is in target/fuzz/crashes/$t/" >&2
        failed=1
        continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    summary+=("$t: ${runs:-?} executions in ${secs}s, $cov, 0 crashes")
done
[ "$failed" -eq 0 ] || exit 1
echo "==> fuzzing done"
printf '  %s\n' "${summary[@]}"
