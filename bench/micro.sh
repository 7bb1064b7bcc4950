#!/usr/bin/env bash
# cfplex microbenchmarks: transport round trips, lock acquire uncontended/contended, bank
# txn/s with 1-3 systems, each against the CAS round trip of the same run.
#   bench/micro.sh [--quick] [--json FILE] [--transport tcp|verbs] [--build DIR] [--seconds S]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "micro.sh: python3 is required" >&2; exit 2; }
exec python3 "$HERE/micro.py" "$@"
