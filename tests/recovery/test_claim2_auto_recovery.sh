#!/bin/bash
# SPDX-License-Identifier: MIT
# Claims 1, 2, 4, 20, 25: a peer detects the failure, registers as counterpart,
# backs out the in-flight updates from the private undo log, releases the
# locks and unregisters - automatically.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001; node SYS2 NTS002; node SYS3 NTS003
wait_committing SYS1 SYS2 SYS3
kill -KILL "$(pid_of SYS1)"
wait_recovery NTS001
[ "$(recoveries NTS001 | wc -l)" -eq 1 ] || fail "more than one counterpart: $(recoveries NTS001)"
cp=$(counterpart_of NTS001)
case $cp in SYS2 | SYS3) ;; *) fail "counterpart $cp";; esac
wait_inst NTS001 INACTIVE_CLEAN
[ "$(locks_of NTS001)" = 0 ] || fail "NTS001 still has locks after recovery"
recoveries NTS001 | grep -q '"txns":[1-9]' || log "note: nothing was in flight at the kill"
grep -q "registered as counterpart" "$CF_WORK/$cp.log" || fail "no registration logged"
grep -Eq "disk fence: (SYS1 |fence agent .* confirmed SYS1 off)" "$CF_WORK/$cp.log" || fail "no disk fence logged"
finish
pass "auto recovery of NTS001 by $cp"
