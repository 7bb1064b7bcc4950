#!/usr/bin/env bash
# Smoke test of the benchmark suite (suite bench-smoke): bench/failover.sh --quick runs
# end to end and writes its JSON and table.  No timing assertions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=$(mktemp -d /tmp/cfbench-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
timeout 840 "$ROOT/bench/failover.sh" --quick --build "$BUILD" --out "$OUT" --json "$OUT/result.json" --no-install
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
c = d["cfplex"]
assert c["runs"], "no cfplex runs"
for run in c["runs"]:
    assert run["reps_done"] > 0, run.get("error")
    assert run["verify_ok"], "cfctl verify failed after " + run["label"]
print("bench smoke: ok")' "$OUT/result.json"
