#!/bin/bash
# SPDX-License-Identifier: MIT
# No peer recovers NTS001 (policy operator); the failed system restarts, finds
# its instance INACTIVE_FAILED and recovers it itself with the peer code.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001 --policy operator; node SYS2 NTS002 --policy operator
wait_committing SYS1 SYS2
kill -KILL "$(pid_of SYS1)"
wait_inst NTS001 INACTIVE_FAILED
# Across hosts the systems fence with a power fence, which cannot fence the
# caller's own host; the failed incarnation ran on this host, so the local
# fence is the one that applies (docs/design.md, "Fencing across hosts").
self_fence=()
[ "$CF_HOSTS" = netns ] && self_fence=(--fence-agent local)
node SYS1 NTS001 --policy operator "${self_fence[@]}"
wait_recovery NTS001
[ "$(counterpart_of NTS001)" = SYS1 ] || fail "recovered by $(counterpart_of NTS001)"
grep -q "recovering it first" "$CF_WORK/SYS1.log" || fail "self-recovery not logged"
wait_for 20 inst_is NTS001 ACTIVE || fail "SYS1 did not start after self-recovery"
wait_committing SYS1
finish
pass "self-recovery on restart"
