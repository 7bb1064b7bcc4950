#!/bin/bash
# SPDX-License-Identifier: MIT
# Claims 16, 24, 26 and [0051]: while SYS2 recovers NTS001, the restarted SYS1
# waits and a third system (SYS3, asked by the operator) is rejected; NTS001's
# locks stay held until its backout is done, and are free after.
. "$(dirname "$0")/lib.sh"
require_bin CF_TCLIENT
HB_TIMEOUT=600000 cluster # the frozen counterpart must not be declared failed
# SYS1 stops itself at its 31st data write (it holds locks there: with group commit
# a random kill can fall between two groups, when it holds none) and is killed there
CF_FAULT=txn.after_data_write:stop:30 node SYS1 NTS001 --policy operator
CF_FAULT=rec.after_backout:stop node SYS2 NTS002 --policy auto
node SYS3 NTS003 --policy operator
wait_committing SYS2 SYS3
wait_for 20 stopped "$(pid_of SYS1)" || fail "SYS1 did not reach its 31st data write"
kill -KILL "$(pid_of SYS1)"
wait_for 20 stopped "$(pid_of SYS2)" || fail "SYS2 did not stop after its backout"
cf_inst_is NTS001 "ACTIVE" || fail "NTS001 not ACTIVE under SYS2: $(cf_inst_state NTS001)"
[ "$(inst_owner NTS001)" = SYS2 ] || fail "owner $(inst_owner NTS001)"
held=$(held_of NTS001)
[ "$held" -gt 0 ] || fail "NTS001 holds no lock word after its backout: released before the counterpart is done"
log "NTS001 backed out, $held lock words still held"
node SYS1 NTS001 --policy operator
wait_for 20 grep -q "waiting for peer recovery of NTS001 by SYS2" "$CF_WORK/SYS1.log" || fail "restarted SYS1 does not wait"
# The operator asks a third system: the console refuses (NTS001 is not failed).
cf_ctl recover NTS001 --on SYS3 >"$CF_WORK/recover.log" 2>&1 && fail "cfctl recover of an ACTIVE instance accepted"
grep -q "ACTIVE" "$CF_WORK/recover.log" || fail "refusal does not say why: $(cat "$CF_WORK/recover.log")"
# A system that learned of the incident tries the registration CAS itself: the word rejects it.
# (the CAS's answer names the owner by its system slot)
read -r _ _ _ incident <<<"$(cf_inst_state NTS001)"
owner=$(cf_status_field sys SYS2 index)
out=$(bounded 20 env CF_ADDR="$CF_ADDR" CF_KEYFILE="$CF_KEYFILE" "$CF_TCLIENT" claim SYSX NTS001 "$incident") ||
	fail "claim: $out"
[ "$out" = "REJECTED ACTIVE $owner $incident" ] || fail "a third system's CAS for incident $incident: $out"
cf_inst_is NTS001 ACTIVE || fail "NTS001 changed hands: $(cf_inst_state NTS001)"
[ "$(inst_owner NTS001)" = SYS2 ] || fail "owner now $(inst_owner NTS001)"
[ "$(held_of NTS001)" = "$held" ] || fail "lock words changed while the counterpart is stopped"
kill -CONT "$(pid_of SYS2)"
wait_recovery NTS001
wait_for 20 owner_is NTS001 SYS1 || fail "SYS1 did not take NTS001 back: $(cf_inst_state NTS001)"
wait_committing SYS1
finish
pass "restart blocked during recovery, third system rejected, locks held until backout done"
