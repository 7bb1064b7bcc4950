#!/usr/bin/env bash
# cfplex duplexed-CF benchmark: the cost of duplexing (bank txn/s and commit latency, single DRAM CF
# vs a duplexed DRAM pair) and primary CF kill -9 -> the cluster committing again, p50/p99.
#   bench/duplex.sh [--seconds S] [--rounds R] [--reps N] [--skip cost|failover] [--json FILE] [--build DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "duplex.sh: python3 is required" >&2; exit 2; }
exec python3 "$HERE/duplex.py" "$@"
