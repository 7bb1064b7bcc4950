#!/bin/bash
# SPDX-License-Identifier: MIT
# Claims 1, 2, 4, 20, 25: a peer detects the failure, registers as counterpart,
# backs out the in-flight updates from the private undo log, releases the
# locks and unregisters - automatically.
. "$(dirname "$0")/lib.sh"
cluster
# SYS1 stops itself right after its 31st data write (an update logged and
# applied, not committed) and is killed there: the counterpart has work to undo.
# (Frozen longer than T, it is declared and a peer's fence agent kills it first.)
CF_FAULT=txn.after_data_write:stop:30 CF_FAULT_LOG=1 node SYS1 NTS001
node SYS2 NTS002; node SYS3 NTS003
stopped_or_gone() { stopped "$1" || gone "$1"; }
wait_for 20 stopped_or_gone "$(pid_of SYS1)" || fail "SYS1 did not reach its 31st data write"
kill -KILL "$(pid_of SYS1)"
grep -q "cf-fault: txn.after_data_write fires" "$CF_WORK/SYS1.log" || fail "SYS1 died, but not at its point"
wait_committing SYS2 SYS3
wait_recovery NTS001
[ "$(recoveries NTS001 | wc -l)" -eq 1 ] || fail "more than one counterpart: $(recoveries NTS001)"
cp=$(counterpart_of NTS001)
case $cp in SYS2 | SYS3) ;; *) fail "counterpart $cp";; esac
wait_inst NTS001 INACTIVE_CLEAN
recoveries NTS001 | grep -q '"txns":[1-9][0-9]*,"updates":[1-9]' ||
	fail "the counterpart backed out nothing: $(recoveries NTS001)"
[ "$(held_of NTS001)" = 0 ] || fail "NTS001 still holds $(held_of NTS001) lock words after recovery"
[ "$(locks_of NTS001)" = 0 ] || fail "cfctl status shows locks of NTS001 after recovery"
grep -q "registered as counterpart" "$CF_WORK/$cp.log" || fail "no registration logged"
grep -Eq "disk fence: (SYS1 |fence agent .* confirmed SYS1 off)" "$CF_WORK/$cp.log" || fail "no disk fence logged"
finish
pass "auto recovery of NTS001 by $cp"
