#!/bin/bash
# SPDX-License-Identifier: MIT
# A new incarnation's first heartbeat gets a grace of T, but at least 1 s
# (cfserver/cf_member.c CF_FIRST_BEAT_GRACE_NS), and no more than that:
#   - SYS1 frozen between its JOIN and its first beat for 4 T (at most 600 ms) is
#     not declared failed (with a grace of one T, as before, it was: JOIN + 2 T);
#     resumed, it attaches and commits;
#   - SYS2 frozen there for good is declared failed by heartbeat silence, no
#     earlier than the grace and within grace + T + a bound for a hang; resumed, it
#     finds its incarnation over (exit 75).
# A system holds nothing before its first beat (cfnode beats once, synchronously,
# before it attaches an instance): the grace delays no recovery.
. "$(dirname "$0")/lib.sh"
T=${CF_TEST_T_MS:-150} # short, but not so short that a sanitizer build misses beats
HB_TIMEOUT=$T cluster
GRACE=$((T > 1000 ? T : 1000))
FREEZE=$((4 * T < 600 ? 4 * T : 600))
declared() { grep -q "sweep: $1 heartbeat unchanged" "$CF_WORK/cfserver.log"; }

CF_FAULT=hb.before_first_beat:stop CF_FAULT_LOG=1 node SYS1 NTS001
p1=$(pid_of SYS1)
wait_for 20 stopped "$p1" || fail "SYS1 did not stop before its first beat: $(tail -n 3 "$CF_WORK/SYS1.log")"
grep -q "joined" "$CF_WORK/SYS1.log" || fail "SYS1 stopped before its JOIN"
# Held frozen for FREEZE ms: the length of the freeze is the scenario (longer than the old
# grace of 2 T, shorter than the new one), so this is a duration, not a wait for a condition;
# the CF offers nothing to wait for that would mark "JOIN + 2 T has passed" (FREEZE <= 600).
sleep "0.$(printf '%03d' "$FREEZE")"
declared SYS1 && fail "SYS1 declared failed after a ${FREEZE} ms freeze before its first beat (T = $T ms, grace $GRACE ms)"
kill -CONT "$p1"
wait_committing SYS1
declared SYS1 && fail "SYS1 declared failed after it resumed"
log "frozen ${FREEZE} ms before its first beat (T = $T ms): not declared, resumed and committing"

CF_FAULT=hb.before_first_beat:stop CF_FAULT_LOG=1 node SYS2 NTS002
p2=$(pid_of SYS2)
wait_for 20 stopped "$p2" || fail "SYS2 did not stop before its first beat"
t0=$(date +%s%N)
wait_for $((GRACE / 1000 + T / 1000 + 20)) declared SYS2 || fail "SYS2, frozen before its first beat, never declared failed"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge $((GRACE - 50)) ] || fail "SYS2 declared ${ms} ms after it froze, before its grace of $GRACE ms"
kill -CONT "$p2"
wait_for 20 gone "$p2" || fail "SYS2 still runs after it was declared failed"
wait "$p2" 2>/dev/null
rc=$?
[ "$rc" = 75 ] || fail "SYS2 exited $rc after it was declared failed before its first beat, not 75"
log "frozen for good before its first beat: declared after ${ms} ms (grace $GRACE ms, T $T ms), exit 75"
# Until a new incarnation's first beat its heartbeat slot still holds the previous
# incarnation's figures: cfctl status must not show them as the new one's (a benchmark
# took a restarted system's commits from before its restart as its base, and waited 30 s).
[ "$(cf_status_field sys SYS1 commits)" -gt 0 ] || fail "SYS1's commits not shown while it commits"
kill -TERM "$p1"
wait_for 20 gone "$p1" || fail "SYS1 did not leave on SIGTERM"
wait "$p1" 2>/dev/null
CF_FAULT=hb.before_first_beat:stop CF_FAULT_LOG=1 node SYS1 NTS001
p1=$(pid_of SYS1)
wait_for 20 stopped "$p1" || fail "SYS1 did not stop before its first beat, restarted"
read -r st ep cm <<<"$(cf_status_field sys SYS1 state epoch commits)"
[ "$st" = ACTIVE ] && [ "$cm" = - ] ||
	fail "SYS1 before its first beat (state $st epoch $ep): commits '$cm' shown, the previous incarnation's"
kill -CONT "$p1"
wait_committing SYS1
[ "$(cf_status_field sys SYS1 commits)" -gt 0 ] || fail "SYS1's commits not shown after its first beat"
log "before a new incarnation's first beat, its system shows no commits (epoch $ep); after it, its own"
finish
pass "first beat: a grace of max(T, 1 s), no less and not unbounded"
