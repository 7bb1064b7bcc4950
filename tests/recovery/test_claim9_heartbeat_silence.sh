#!/bin/bash
# SPDX-License-Identifier: MIT
# Claim 9: a frozen system (SIGSTOP) is detected by heartbeat silence, fenced
# at the CF and by the local fence agent (killed, exit confirmed), recovered,
# and restarts as a new incarnation.
. "$(dirname "$0")/lib.sh"
HB_TIMEOUT=${CF_TEST_T_MS:-200} cluster # short T over tcp; the rig sets a longer one for emulation
node SYS1 NTS001; node SYS2 NTS002
wait_committing SYS1 SYS2
p1=$(pid_of SYS1)
read -r _ _ e1 _ <<<"$(cf_inst_state NTS001)"
kill -STOP "$p1"
wait_recovery NTS001
grep -q "heartbeat silence" "$CF_WORK/SYS2.log" || fail "not detected by heartbeat silence"
wait_for 10 gone "$p1" || fail "frozen SYS1 not killed by the fence agent"
if [ "$CF_HOSTS" = netns ]; then
	# SYS1 is on hostA: the external agent powered that host off, from hostB
	grep -q "disk fence: fence agent .*/fence_netns confirmed SYS1 off" "$CF_WORK/SYS2.log" || fail "fence not confirmed in log"
	grep -q "on hostB: action=off plug=SYS1 nodename=hostA: off" "$CF_WORK/fence_netns.log" || fail "hostA not powered off by hostB"
else
	grep -q "disk fence: SYS1 (pid $p1) killed, exit confirmed" "$CF_WORK/SYS2.log" || fail "fence not confirmed in log"
fi
node SYS1 NTS001
wait_for 20 cf_inst_is NTS001 ACTIVE || fail "SYS1 did not rejoin"
read -r _ _ e2 _ <<<"$(cf_inst_state NTS001)"
[ "$e2" -gt "$e1" ] || fail "not a new incarnation: epoch $e1 -> $e2"
finish
pass "SIGSTOP detected by heartbeat silence, fenced, recovered, rejoined (epoch $e1 -> $e2)"
