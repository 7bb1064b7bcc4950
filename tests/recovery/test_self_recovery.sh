#!/bin/bash
# SPDX-License-Identifier: MIT
# A failed system restarts and finds its home instance INACTIVE_FAILED, no peer
# recovering it (the peers run policy operator). The restart rule (docs/design.md §7,
# "A restarted system and its own instance"):
#   1. under policy operator the restarted system waits, like every peer, for
#      `cfctl recover`; named by the operator (--on), it recovers it itself;
#   2. under policy auto it recovers it itself at once, with the peer code.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001 --policy operator; node SYS2 NTS002 --policy operator
wait_committing SYS1 SYS2
# Across hosts the systems fence with a power fence, which cannot fence the
# caller's own host; the failed incarnation ran on this host, so the local
# fence is the one that applies (docs/design.md, "Fencing across hosts").
self_fence=()
[ "$CF_HOSTS" = netns ] && self_fence=(--fence-agent local)

# 1. policy operator: the restarted home waits for the operator
kill -KILL "$(pid_of SYS1)"
wait_inst NTS001 INACTIVE_FAILED
node SYS1 NTS001 --policy operator "${self_fence[@]}"
wait_for 20 grep -q "INACTIVE_FAILED (incident 1): policy operator, waiting for \`cfctl recover NTS001\`" \
	"$CF_WORK/SYS1.log" || fail "the restarted SYS1 did not say it waits for the operator: $(tail -n 3 "$CF_WORK/SYS1.log")"
sleep 0.5 # nothing may happen over this window: a bound, not a wait
cf_inst_is NTS001 INACTIVE_FAILED || fail "the restarted SYS1 recovered NTS001 without the operator: $(cf_inst_state NTS001)"
has_recovery NTS001 1 && fail "a recovery of NTS001 ran without the operator"
cf_ctl recover NTS001 --on SYS1 >"$CF_WORK/recover.log" 2>&1 || fail "cfctl recover --on SYS1: $(cat "$CF_WORK/recover.log")"
wait_recovery NTS001 1
[ "$(counterpart_of NTS001 1)" = SYS1 ] || fail "recovered by $(counterpart_of NTS001 1), not SYS1"
wait_for 20 cf_inst_is NTS001 ACTIVE || fail "SYS1 did not start after recovering its own instance"
wait_committing SYS1
log "policy operator: the restarted system waited, then recovered its own instance on the operator's command"

# 2. policy auto: the restarted home recovers it at once
kill -KILL "$(pid_of SYS1)"
wait_inst NTS001 INACTIVE_FAILED
node SYS1 NTS001 --policy auto "${self_fence[@]}"
wait_recovery NTS001 2
[ "$(counterpart_of NTS001 2)" = SYS1 ] || fail "recovered by $(counterpart_of NTS001 2)"
grep -q "recovering it first" "$CF_WORK/SYS1.log" || fail "self-recovery not logged"
wait_for 20 cf_inst_is NTS001 ACTIVE || fail "SYS1 did not start after self-recovery"
wait_committing SYS1
finish
pass "the restart rule: a restarted system waits for the operator under policy operator, recovers itself under auto"
