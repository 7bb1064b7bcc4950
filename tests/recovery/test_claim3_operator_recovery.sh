#!/bin/bash
# SPDX-License-Identifier: MIT
# Claims 3, 12, 22, 29: recovery on an operator command; refused while the
# instance has not failed.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001 --policy operator; node SYS2 NTS002 --policy operator; node SYS3 NTS003 --policy operator
wait_committing SYS1 SYS2 SYS3
out=$(cf_ctl recover NTS002 2>&1) && fail "recover of a live instance accepted: $out"
echo "$out" | grep -qi "not failed\|ACTIVE" || fail "refusal does not say why: $out"
kill -KILL "$(pid_of SYS1)"
wait_inst NTS001 INACTIVE_FAILED
wait_for 10 grep -q "cfctl recover NTS001" "$CF_WORK/SYS2.log" || fail "SYS2 did not announce the failure"
sleep 0.5 # policy operator: nobody may recover it on its own (a bound, not a wait)
cf_inst_is NTS001 INACTIVE_FAILED || fail "NTS001 recovered without an operator: $(cf_inst_state NTS001)"
cf_ctl recover NTS001 --on SYS3 >"$CF_WORK/recover.log" 2>&1 || fail "cfctl recover: $(cat "$CF_WORK/recover.log")"
wait_recovery NTS001
[ "$(counterpart_of NTS001)" = SYS3 ] || fail "recovered by $(counterpart_of NTS001), not SYS3"
wait_inst NTS001 INACTIVE_CLEAN
out=$(cf_ctl recover NTS001 2>&1) && fail "recover of a clean instance accepted: $out"
finish
pass "operator recovery, refusals"
