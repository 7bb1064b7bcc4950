#!/bin/bash
# A voluntary backout restores the exact before-images (byte for byte,
# including records updated twice in the transaction).
. "$(dirname "$0")/node_lib.sh"

start_cf
mkdata 64 500
out=$(run_node SYS1 NTS001 --workload backout --updates 40 --seed 7 2>&1)
rc=$?
echo "$out" >&2
[ "$rc" -eq 0 ] || fail "cfnode --workload backout exited $rc"
echo "$out" | grep -q "restored byte for byte" || fail "backout did not report an exact restore"
verify_data
pass "voluntary backout restored the before-images exactly"
