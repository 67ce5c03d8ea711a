#!/usr/bin/env bash
# Makes a journal fixture with the weft of an older commit, for the upgrade
# test (runtime/tests/all/upgrade.rs):
#
#   tests/upgrade/make-fixture.sh COMMIT NAME    # writes tests/upgrade/NAME.db
#
# Builds that commit's `weft` in a git worktree (its own target directory:
# a full build, several minutes), runs it on tests/upgrade/fixture.toml: six
# ADT^A01 messages (UPG-1..UPG-6, synthetic) go to two destinations, `lis`
# (MLLP, where nothing listens: every delivery stays pending) and `fhir`
# (HTTP, a server answering 400: every delivery dies); where that weft has
# an audit trail, one body is viewed (an audit entry). It is stopped with
# SIGTERM (the journal closes into one file), and the journal is kept.
# OLD_WEFT=PATH uses that commit's weft already built instead.
# Then the current weft migrates a copy, and the old one is started on it:
# it must refuse the newer journal (a downgrade), which is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=$1 name=$2
repo=$PWD
work=$(mktemp -d /tmp/weft-fixture.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; git -C "$repo" worktree remove --force "$work/src" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ -n "${OLD_WEFT:-}" ]; then
    old=$OLD_WEFT   # that commit's weft, already built
else
    git worktree add --detach "$work/src" "$commit" >/dev/null
    echo "==> building weft at $commit (target: $work/target)"
    (cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo build --release -p weft --bin weft)
    old=$work/target/release/weft
fi
new=$repo/target/release/weft
[ -x "$new" ] || { echo "build the current weft first (cargo build --release -p weft)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
in_port=$(free_port) down_port=$(free_port) fhir_port=$(free_port)
python3 - "$fhir_port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
mkdir -p "$work/site"
sed -e "s/@IN@/$in_port/" -e "s/@DOWN@/$down_port/" -e "s/@FHIR@/$fhir_port/" \
    tests/upgrade/fixture.toml >"$work/site/weft.toml"
(cd "$work/site" && exec "$old" run --config weft.toml) >"$work/run.log" 2>&1 &
run=$!
for _ in $(seq 100); do grep -q "listening" "$work/run.log" 2>/dev/null && break; sleep 0.2; done
for i in 1 2 3 4 5 6; do
    printf 'MSH|^~\\&|EPIC|EDGE|WEFT|EDGE|20240102030405||ADT^A01^ADT_A01|UPG-%s|P|2.5.1\rPID|1||%s^^^EDGE^MR||Upgrade^Test||19800101|F\rPV1|1|I|W1^1^1\r' "$i" "$i" >"$work/m$i.hl7"
done
"$new" send --to "127.0.0.1:$in_port" "$work"/m*.hl7
sleep 3
# An audit entry, where this weft has a trail (schema v5 on).
id=$(cd "$work/site" && "$old" messages list --config weft.toml 2>/dev/null | awk 'NR==2 {print $1}') || true
[ -n "${id:-}" ] && (cd "$work/site" && "$old" messages show "$id" --body --config weft.toml >/dev/null 2>&1) || true
kill -TERM "$run"; wait "$run" || true
cp "$work/site/data/journal.db" "tests/upgrade/$name.db"
echo "==> tests/upgrade/$name.db: $(du -h "tests/upgrade/$name.db" | cut -f1), schema $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='schema_version'\").fetchone()[0])" "tests/upgrade/$name.db")"

# The downgrade: the current weft migrates a copy, the old one must refuse it.
mkdir -p "$work/down/data" && cp "tests/upgrade/$name.db" "$work/down/data/journal.db"
cp "$work/site/weft.toml" "$work/down/"
(cd "$work/down" && "$new" messages list --config weft.toml >/dev/null)
if (cd "$work/down" && timeout 20 "$old" run --config weft.toml) >"$work/down.log" 2>&1; then
    echo "the old weft ran on the migrated journal: a downgrade was not refused" >&2; exit 1
fi
echo "==> the weft of $commit on the migrated journal: $(grep -io 'schema version.*' "$work/down.log" | head -1)"
