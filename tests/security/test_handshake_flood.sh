#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
# Connections that connect and never speak must not lock out a console or a
# restarted system: they have a budget of their own (64 in the
# handshake at once, the oldest silent one dropped for a newcomer), not --max-conns.
# 300 of them are held well inside the 5-s handshake bound while a console and a
# system join must get in, each within 3 s (on 3f491ba both are refused: "too many
# connections", 300 > --max-conns 256).
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg silent "$TC" silent 300 20
sp=$BG_PID
wait_for 15 grep -q READY "$CF_WORK/silent.log" || fail "300 silent connections not opened: $(tail -n 3 "$CF_WORK/silent.log")"
t0=$(date +%s%N)
bounded 3 "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" >"$CF_WORK/status.out" 2>&1 ||
	fail "cfctl status locked out by 300 silent connections: $(tail -n 3 "$CF_WORK/status.out")"
bounded 3 "$TC" roundtrip FLOODJ >"$CF_WORK/join.out" 2>&1 ||
	fail "a system join locked out by 300 silent connections: $(tail -n 3 "$CF_WORK/join.out")"
ms=$((($(date +%s%N) - t0) / 1000000))
log "console and join served in $ms ms with 300 silent connections open"
L=$CF_WORK/cfserver.log
grep -q "dropped in state NEW: 64 connections in the handshake (at most 64)" "$L" ||
	fail "the handshake budget's drops not logged"
grep -q "refused: .*(max-conns" "$L" && fail "silent connections counted against --max-conns"
kill "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
# A flood that pushes: each connection the CF drops is reopened at once (thousands a
# second), for 10 s; the console and a join still get in, each within 3 s.
start_bg churn "$TC" silent 300 10 churn
cp=$BG_PID
wait_for 15 grep -q READY "$CF_WORK/churn.log" || fail "churn flood not started: $(tail -n 3 "$CF_WORK/churn.log")"
sleep 1 # let the churn run
t0=$(date +%s%N)
bounded 3 "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" >"$CF_WORK/status2.out" 2>&1 ||
	fail "cfctl status locked out by a reopening flood: $(tail -n 3 "$CF_WORK/status2.out")"
bounded 3 "$TC" roundtrip FLOODK >"$CF_WORK/join2.out" 2>&1 ||
	fail "a system join locked out by a reopening flood: $(tail -n 3 "$CF_WORK/join2.out")"
ms2=$((($(date +%s%N) - t0) / 1000000))
wait "$cp" 2>/dev/null
log "under a reopening flood ($(grep REOPENED "$CF_WORK/churn.log")): console and join served in $ms2 ms"
kill -0 "$CFSERVER_PID" || fail "cfserver died"
pass "300 silent connections: console and join served in $ms ms ($ms2 ms under a reopening flood)"
