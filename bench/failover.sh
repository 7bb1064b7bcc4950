#!/usr/bin/env bash
# One command for the failover benchmark report (issue 7): cfplex vs PostgreSQL vs etcd,
# both crash modes, per-phase breakdown, floor ratio, JSON and gnuplot PNGs.
#   bench/failover.sh [--quick] [--json FILE] [--out DIR] [--transport tcp|verbs] [--build DIR] ...
# bench/failover.py --help lists every option.  Every process it starts is killed by PID
# on exit (the driver's cleanup handler); everything runs on loopback.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "failover.sh: python3 is required" >&2; exit 2; }
exec python3 "$HERE/failover.py" "$@"
