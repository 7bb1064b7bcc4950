#!/usr/bin/env bash
# Smoke test of the benchmark suite (suite bench-smoke): bench/failover.sh --quick runs
# end to end and writes its JSON and table.  No timing assertions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=$(mktemp -d /tmp/cfbench-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
# --also-T 2/10: the main runs at T = 10 ms too (their rows, labels and floors)
timeout 840 "$ROOT/bench/failover.sh" --quick --build "$BUILD" --out "$OUT" --json "$OUT/result.json" --no-install \
	--also-T 2/10 --sweep-k ''
grep -q "T=10 ms" "$OUT/table.txt" || { echo "no T=10 ms rows in the table" >&2; exit 1; }
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
c = d["cfplex"]
assert c["runs"], "no cfplex runs"
assert any(r["T_ms"] == 10 and r["label"].startswith("main-") for r in c["runs"]), "no main run at T = 10 ms"
for run in c["runs"]:
    assert run["reps_done"] > 0, run.get("error")
    assert run["verify_ok"], "cfctl verify failed after " + run["label"]
print("bench smoke: ok")' "$OUT/result.json"
