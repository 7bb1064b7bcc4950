#!/usr/bin/env bash
# Smoke test of bench/durability.sh (suite bench-smoke): DRAM, --nvram on a disk file and on
# tmpfs, 2 s each, no PostgreSQL; every run reports, cfctl verify holds, the ratios are there.
# No timing assertions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=$(mktemp -d /tmp/cfdurab-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
timeout 300 "$ROOT/bench/durability.sh" --seconds 2 --build "$BUILD" --json "$OUT/d.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["runs"]) == 3, d["runs"]
for r in d["runs"]:
    assert r.get("nodes") and r["verify_ok"], (r["label"], r.get("error"))
assert "nvram-disk/dram" in d["ratios"] and "nvram-shm/dram" in d["ratios"], d["ratios"]
print("durability smoke: ok")' "$OUT/d.json"
