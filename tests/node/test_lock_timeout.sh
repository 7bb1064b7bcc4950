#!/bin/bash
# A contended lock times out cleanly: SYS1 holds account 5; SYS2 asks for it
# with a 300 ms lock timeout, gets -ETIMEDOUT, backs out and leaves cleanly
# (exit 1, message) while SYS1 still holds the lock; SYS2's record list is
# left empty.
. "$(dirname "$0")/node_lib.sh"

start_cf
mkdata 16 100
cf_node holder SYS1 NTS001 --workload hold --record 5 --hold-ms 20000
holder=$NODE_PID
wait_for 20 log_has holder "holding f0.r5" || fail "SYS1 did not take the lock"
t0=$(date +%s%N)
out=$(run_node SYS2 NTS002 --workload lock --record 5 --lock-timeout 300 2>&1)
rc=$?
t1=$(date +%s%N)
echo "$out" >&2
ms=$(((t1 - t0) / 1000000))
[ "$rc" -eq 1 ] || fail "expected exit 1 on a lock timeout, got $rc"
echo "$out" | grep -q "timed out after" || fail "no timeout message"
echo "$out" | grep -q "ETIMEDOUT" || fail "the error is not -ETIMEDOUT"
[ "$ms" -ge 300 ] || fail "gave up after $ms ms, before the 300 ms timeout"
kill -0 "$holder" || fail "the holder died"
out=$(cf_status_field inst NTS001 locks_held lock_names -- inst NTS002 locks_held state)
{ read -r l1; read -r l2; } <<<"$out"
[[ $l1 == '1 [{"name":"f0.r5","mode":"X",'*'"held":true}]' ]] && [ "$l2" = "0 INACTIVE_CLEAN" ] ||
	fail "lock state after the timeout: $out"
# An uncontended record is still available to SYS2.
run_node SYS2 NTS002 --workload lock --record 6 --lock-timeout 300 2>&1 | grep -q "acquired" ||
	fail "SYS2 could not lock a free record"
kill_pid "$holder" TERM
verify_data
pass "contended lock timed out cleanly with -ETIMEDOUT after ${ms} ms"
