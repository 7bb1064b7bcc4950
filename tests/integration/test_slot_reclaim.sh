#!/bin/bash
# SPDX-License-Identifier: MIT
# Slots are reclaimed (docs/design.md §8): with --max-systems 2 and --max-instances 2, names
# that come and go do not fill the tables for good. A system slot goes to a new name only when
# its system left cleanly and no instance still names it; an instance slot only when it is
# INACTIVE_CLEAN and its home is not a member. A live system and its ACTIVE instance are never
# taken. The same after a restart on the --nvram image.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
IMG=$CF_WORK/cf.img

start_cfserver cfserver -- --nvram "$IMG" --max-systems 2 --max-instances 2 --hb-timeout 600000 --log-size 256K || fail "cfserver"
# SYSA stays: joined, its instance NTA ACTIVE
start_bg hold "$TC" hold SYSA NTA
HOLD_PID=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
# names that join, open an instance and leave cleanly, one after the other
for n in B C D E; do
	out=$(bounded 20 "$TC" claim "SYS$n" "NT$n" 9 2>&1) || fail "SYS$n (join, open NT$n, leave) refused: $out"
	echo "$out" | grep -q "^REJECTED INACTIVE_CLEAN" || fail "SYS$n: unexpected claim result: $out"
done
grep -q "slot 1 reclaimed from SYSB, which left cleanly" "$CF_WORK/cfserver.log" || fail "no system slot reclaimed"
grep -q "INST_OPEN NTC: instance table full: slot 1 reclaimed from NTB" "$CF_WORK/cfserver.log" ||
	fail "no instance slot reclaimed"
cf_sys_is SYSA ACTIVE || fail "the live SYSA lost its slot: $(cf_sys_state SYSA)"
cf_inst_is NTA ACTIVE || fail "the live NTA lost its slot: $(cf_inst_state NTA)"
cf_sys_is SYSB "- - -" || fail "SYSB still has a slot: $(cf_sys_state SYSB)"
cf_inst_is NTE INACTIVE_CLEAN || fail "NTE: $(cf_inst_state NTE)"
grep -q "reclaimed from SYSA\|reclaimed from NTA" "$CF_WORK/cfserver.log" && fail "a live slot was reclaimed"
log "4 names came and went through 1 free slot; the live SYSA and NTA kept theirs"

# after a restart on the image (SYSA failed by it, NTA to be recovered): SYSA's slot and
# NTA's are not free (NTA is INACTIVE_FAILED naming SYSA), the other one is
kill -KILL "$CFSERVER_PID" "$HOLD_PID"
wait "$CFSERVER_PID" 2>/dev/null
start_cfserver cfserver2 -- --nvram "$IMG" --max-systems 2 --max-instances 2 --hb-timeout 600000 --log-size 256K ||
	fail "restart on the image"
out=$(bounded 20 "$TC" claim SYSF NTF 9 2>&1) || fail "SYSF after the restart refused: $out"
out=$(bounded 20 "$TC" claim SYSG NTG 9 2>&1) || fail "SYSG after the restart refused: $out"
cf_inst_is NTA INACTIVE_FAILED || fail "NTA after the restart: $(cf_inst_state NTA)"
cf_sys_is SYSA FAILED || fail "SYSA after the restart: $(cf_sys_state SYSA)"
pass "system and instance slots reclaimed, never a live or failed one, also after a restart on --nvram"
