#!/bin/bash
# SPDX-License-Identifier: MIT
# Claims 16, 24, 26 and [0051]: while SYS2 recovers NTS001, the restarted SYS1
# waits and a third system (SYS3, asked by the operator) is rejected; NTS001's
# locks stay held until its backout is done, and are free after.
. "$(dirname "$0")/lib.sh"
HB_TIMEOUT=600000 cluster # the frozen counterpart must not be declared failed
node SYS1 NTS001 --policy operator
CF_FAULT=rec.after_backout:stop node SYS2 NTS002 --policy auto
node SYS3 NTS003 --policy operator
wait_committing SYS1 SYS2 SYS3
kill -KILL "$(pid_of SYS1)"
wait_for 20 stopped "$(pid_of SYS2)" || fail "SYS2 did not stop after its backout"
inst_is NTS001 "ACTIVE" || fail "NTS001 not ACTIVE under SYS2: $(inst_state NTS001)"
[ "$(inst_owner NTS001)" = SYS2 ] || fail "owner $(inst_owner NTS001)"
held=$(locks_of NTS001)
log "NTS001 backed out, $held lock entries still held"
node SYS1 NTS001 --policy operator
wait_for 20 grep -q "waiting for peer recovery of NTS001 by SYS2" "$CF_WORK/SYS1.log" || fail "restarted SYS1 does not wait"
ctl recover NTS001 --on SYS3 >"$CF_WORK/recover.log" 2>&1
wait_for 10 grep -q "registration for NTS001 rejected: ACTIVE(owner SYS2" "$CF_WORK/SYS3.log" ||
	grep -qi "not failed\|ACTIVE" "$CF_WORK/recover.log" || fail "third system not rejected: $(cat "$CF_WORK/recover.log")"
inst_is NTS001 ACTIVE || fail "NTS001 changed hands: $(inst_state NTS001)"
[ "$(inst_owner NTS001)" = SYS2 ] || fail "owner now $(inst_owner NTS001)"
[ "$(locks_of NTS001)" = "$held" ] || fail "locks changed while the counterpart is stopped"
kill -CONT "$(pid_of SYS2)"
wait_recovery NTS001
wait_for 20 owner_is NTS001 SYS1 || fail "SYS1 did not take NTS001 back: $(inst_state NTS001)"
wait_committing SYS1
finish
pass "restart blocked during recovery, third system rejected, locks held until backout done"
