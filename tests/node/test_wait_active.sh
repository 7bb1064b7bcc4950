#!/bin/bash
# A second cfnode claiming an instance that is ACTIVE under another system
# waits and says so instead of starting; when the owner leaves (INACTIVE_CLEAN)
# it takes the instance.
. "$(dirname "$0")/node_lib.sh"

start_cf
mkdata 16 100
cf_node owner SYS1 NTS001
owner=$NODE_PID
wait_for 20 log_has owner "NTS001 (#[0-9]*) is ACTIVE here" || fail "SYS1 did not take NTS001"
cf_node second SYS2 NTS001 --workload hold --hold-ms 100
second=$NODE_PID
wait_for 20 log_has second "waiting for peer recovery of NTS001 by SYS1" || fail "SYS2 did not say it waits"
sleep 0.5 # it must still be waiting, not running
log_has second "is ACTIVE here" && fail "SYS2 started although NTS001 is ACTIVE under SYS1"
kill -0 "$second" || fail "SYS2 gave up instead of waiting"
[ "$(grep -c "waiting for peer recovery" "$CF_WORK/second.log")" -eq 1 ] || fail "the waiting message repeats"
kill_pid "$owner" TERM
wait_for 20 log_has second "NTS001 (#[0-9]*) is ACTIVE here" || fail "SYS2 did not take NTS001 after SYS1 left"
wait_exit "$second" 30
[ "$EXIT_RC" -eq 0 ] || fail "SYS2 exited $EXIT_RC"
pass "the second claimant waited, then took the instance"
