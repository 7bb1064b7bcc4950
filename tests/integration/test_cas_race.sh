#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# N clients CAS one word 0 -> id; exactly one wins, 1000 rounds (a barrier between rounds).
N=${CF_RACE_CLIENTS:-4}
ROUNDS=${CF_RACE_ROUNDS:-1000}
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
pids=()
for i in $(seq 1 "$N"); do
	start_bg race$i bounded 150 "$TC" cas-race RACE$i "$i" "$N" "$ROUNDS"
	pids+=("$BG_PID")
done
for p in "${pids[@]}"; do wait "$p" || fail "a racer failed"; done
total=0
for i in $(seq 1 "$N"); do
	w=$(awk '/^wins/ {print $2}' "$CF_WORK/race$i.log")
	[ -n "$w" ] || fail "racer $i printed no result"
	total=$((total + w))
done
[ "$total" -eq "$ROUNDS" ] || fail "total wins $total, expected exactly $ROUNDS"
bounded 20 "$TC" verify-race "$N" "$ROUNDS" || fail "verify"
pass "$N clients, $ROUNDS rounds, one winner each"
