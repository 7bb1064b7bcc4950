#!/bin/bash
# SPDX-License-Identifier: MIT
# Node-side detection (docs/design.md, "Who detects"): with cfserver's own
# sweep set to once a minute, a frozen system (SIGSTOP) is still detected
# within seconds, because its peer reads the heartbeat slots one-sided, sees
# the counter stand still for T and reports it (SUSPECT); the CF sweeps at
# once and declares by its own clock. A lying member's SUSPECT of a healthy
# system declares nothing; one naming itself or a stale epoch is refused.
. "$(dirname "$0")/lib.sh"
require_bin CF_TCLIENT
HB_TIMEOUT=${CF_TEST_T_MS:-500} cluster --sweep-interval 60000
node SYS1 NTS001; node SYS2 NTS002
wait_committing SYS1 SYS2
e2=$(cf_status_field sys SYS2 epoch)

# a lying member: SYS2 is healthy
out=$(CF_ADDR=$CF_ADDR CF_KEYFILE=$CF_KEYFILE bounded 20 "$CF_TCLIENT" suspect LIAR SYS2) || fail "suspect: $out"
case $out in 0\ *) ;; *) fail "a SUSPECT of a live system was not swept: $out" ;; esac
out=$(CF_ADDR=$CF_ADDR CF_KEYFILE=$CF_KEYFILE bounded 20 "$CF_TCLIENT" suspect LIAR2 SYS2 self) || fail "suspect self: $out"
case $out in -22\ *) ;; *) fail "a SUSPECT of oneself was not refused with EINVAL: $out" ;; esac
out=$(CF_ADDR=$CF_ADDR CF_KEYFILE=$CF_KEYFILE bounded 20 "$CF_TCLIENT" suspect LIAR3 SYS2 stale) || fail "suspect stale: $out"
case $out in -116\ *) ;; *) fail "a SUSPECT of a stale epoch was not refused with ESTALE: $out" ;; esac
# (no wait needed: the sweep a SUSPECT feeds runs before cfserver's loop reads its next request)
read -r st e2b <<<"$(cf_status_field sys SYS2 state epoch)"
[ "$st" = ACTIVE ] && [ "$e2b" = "$e2" ] || fail "a lie declared SYS2: now $st epoch $e2b (was ACTIVE $e2)"
wait_committing SYS2

# a real silence: only the peers' watch can see it in time (the sweep is a minute away)
p1=$(pid_of SYS1)
kill -STOP "$p1"
wait_recovery NTS001 "" 30
grep -q "SUSPECT from SYS2: SYS1 heartbeat" "$CF_WORK/cfserver.log" || fail "SYS2 did not report SYS1 (cfserver.log)"
grep -q "sweep: SYS1 heartbeat unchanged .*run at once on a SUSPECT from SYS2" "$CF_WORK/cfserver.log" ||
	fail "SYS1 not declared by the sweep the SUSPECT ran"
grep -q "watch: SYS1 (epoch [0-9]*) heartbeat [0-9]* unmoved for [0-9]* ms: reported to the CF" "$CF_WORK/SYS2.log" ||
	fail "SYS2 did not log its report"
wait_for 10 gone "$p1" || fail "frozen SYS1 not fenced"
finish
pass "a frozen system detected by its peer's one-sided watch (CF sweep once a minute), declared by the CF's clock; lies declared nothing"
