#!/bin/bash
# A contended lock times out cleanly: SYS1 holds account 5; SYS2 asks for it
# with a 300 ms lock timeout, gets -ETIMEDOUT, backs out and leaves cleanly
# (exit 1, message) while SYS1 still holds the lock; SYS2's record list is
# left empty.
. "$(dirname "$0")/node_lib.sh"

start_cf
mkdata 16 100
start_node holder SYS1 NTS001 --workload hold --record 5 --hold-ms 20000
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
"$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --json |
	python3 -c '
import json,sys
d={i["name"]:i for i in json.load(sys.stdin)["instances"]}
assert d["NTS001"]["locks_held"]==1 and d["NTS001"]["lock_names"][0]["name"]=="f0.r5", d["NTS001"]
assert d["NTS002"]["locks_held"]==0 and d["NTS002"]["state"]=="INACTIVE_CLEAN", d["NTS002"]
' || fail "lock state after the timeout"
# An uncontended record is still available to SYS2.
run_node SYS2 NTS002 --workload lock --record 6 --lock-timeout 300 2>&1 | grep -q "acquired" ||
	fail "SYS2 could not lock a free record"
kill_pid "$holder" TERM
verify_data
pass "contended lock timed out cleanly with -ETIMEDOUT after ${ms} ms"
