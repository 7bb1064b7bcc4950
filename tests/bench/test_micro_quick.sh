#!/usr/bin/env bash
# Smoke test of bench/micro.sh --quick (suite bench-smoke): every run reports and
# cfctl verify holds after each.  No timing assertions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=$(mktemp -d /tmp/cfmicro-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
timeout 400 "$ROOT/bench/micro.sh" --quick --build "$BUILD" --json "$OUT/micro.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert "results" in d["rtt"], d["rtt"]
for r in d["runs"]:
    assert r.get("nodes") and r["verify_ok"], (r["label"], r.get("error"))
print("micro smoke: ok")' "$OUT/micro.json"
