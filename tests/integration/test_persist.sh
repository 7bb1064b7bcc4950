#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# PERSIST (ctrl 14): JOINED says whether the CF is durable; ranges outside the
# connection's write grants, empty or wrapping get -EINVAL with a reason and
# change nothing (the CF queues none of them: its exit line counts only the
# accepted ones); the connection keeps serving. Volatile CF, then --nvram.
start_cfserver --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
bounded 40 "$TC" persist PS1 volatile >"$CF_WORK/vol.out" || fail "PERSIST checks on a volatile CF"
grep -q "not inside a write grant" "$CF_WORK/vol.out" || fail "refusal reason: $(cat "$CF_WORK/vol.out")"
log "volatile CF: $(grep 'round trip' "$CF_WORK/vol.out")"
kill_pid "$CFSERVER_PID" TERM
line=$(grep "persist: .* PERSIST requests" "$CF_WORK/cfserver.log") || fail "no persist counters at exit (volatile)"
# a volatile CF answers a good range at once: nothing queued, nothing persisted
echo "$line" | grep -q "persist: 0 PERSIST requests in 0 groups .*, 13 refused" || fail "volatile CF: $line"

start_cfserver cfserver2 -- --nvram "$CF_WORK/cf.img" --log-size 64K --hb-timeout 600000 || fail "cfserver --nvram"
bounded 40 "$TC" persist PS2 durable >"$CF_WORK/dur.out" || fail "PERSIST checks on a durable CF"
n=$(sed -n 's/^OK persist \([0-9]*\)$/\1/p' "$CF_WORK/dur.out")
[ -n "$n" ] || fail "no count: $(cat "$CF_WORK/dur.out")"
log "durable CF: $(grep 'round trip' "$CF_WORK/dur.out")"
kill_pid "$CFSERVER_PID" TERM
line=$(grep "persist: .* PERSIST requests" "$CF_WORK/cfserver2.log") || fail "no persist counters at exit"
log "$line"
# every accepted request, and only those, was queued and persisted; 13 refused
echo "$line" | grep -q "persist: $n PERSIST requests in [1-9][0-9]* groups" || fail "accepted $n, CF says: $line"
echo "$line" | grep -q ", 13 refused" || fail "refusals miscounted: $line"
pass "PERSIST: $n accepted and persisted, 13 bad ranges refused with -EINVAL"
