#!/usr/bin/env bash
# Smoke test of bench/duplex.sh (suite bench-smoke): a single and a duplexed DRAM CF, 2 s each,
# and 2 kills of the primary; every run reports, cfctl verify holds after the kills, the ratios
# and both failover series are there. No timing assertions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=$(mktemp -d /tmp/cfduplex-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
timeout 300 "$ROOT/bench/duplex.sh" --seconds 2 --rounds 1 --reps 2 --build "$BUILD" --json "$OUT/d.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [r["config"] for r in d["runs"]] == ["single", "duplex"], d["runs"]
for r in d["runs"]:
    assert r.get("nodes") and r["verify_ok"], (r["label"], r.get("error"))
assert "txn_per_s duplex/single" in d["ratios"], d.get("ratios")
f = d["failover"]
assert not f["error"] and f["verify_ok"] and len(f["reps"]) == 2, f
print("duplex smoke: ok")' "$OUT/d.json"
