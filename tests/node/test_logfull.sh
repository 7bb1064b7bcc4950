#!/bin/bash
# A transaction that fills its instance's log gets -ENOSPC, backs out
# cleanly (every record restored byte for byte) and the log is usable again.
. "$(dirname "$0")/node_lib.sh"

start_cf --log-size 64K
mkdata 256 100
out=$(run_node SYS1 NTS001 --workload logfull 2>&1)
rc=$?
echo "$out" >&2
[ "$rc" -eq 0 ] || fail "cfnode --workload logfull exited $rc"
echo "$out" | grep -q "log full (-ENOSPC) after [0-9]* updates; transaction backed out" || fail "no clean log-full abort"
echo "$out" | grep -q "log usable again" || fail "log not usable after the abort"
verify_data
# The bank itself keeps running on the small log (its transactions are short).
run_node SYS1 NTS001 --workload bank --txns 500 --inflight 8 >/dev/null 2>&1 || fail "bank on a 64K log"
verify_data
pass "log full aborted the transaction cleanly"
