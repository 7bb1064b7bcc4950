#!/usr/bin/env bash
# cfplex durability benchmark: bank txn/s with the CF image in DRAM, --nvram on a disk file,
# --nvram on a tmpfs file, and (--peers postgres) PostgreSQL pgbench TPC-B, with ratios.
#   bench/durability.sh [--seconds S] [--rounds R] [--peers postgres] [--json FILE] [--build DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "durability.sh: python3 is required" >&2; exit 2; }
exec python3 "$HERE/durability.py" "$@"
