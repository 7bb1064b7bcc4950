#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Group commit across connections under --nvram, over either transport: three
# clients each WRITE a word of their own log and make it durable with PERSIST,
# N times, concurrently; cfserver reports at exit how many PERSIST requests it
# answered in how many groups, and how many commits (persists) that took.
# Requests of different connections that arrive in one loop iteration (or
# while the persister thread flushes) share one commit, so there are fewer
# groups and commits than requests. A fourth client FAAs a lock word meanwhile:
# nothing persists it (the lock table is not durable: docs/design.md,
# "Durability"), and it is never held up by the others' persists.
# (tests/unit/test_gcommit checks cf_persist's batching and thread call by
# call; tests/unit/test_persist_answer that no answer precedes its persist.)
N=${CF_TEST_GCOMMIT_N:-3000}
[ -n "${CF_RIG:-}" ] && N=300 # each PERSIST is a round trip of seconds' worth under emulation
start_cfserver --nvram "$CF_WORK/cf.img" --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
grep -q "group commit: " "$CF_WORK/cfserver.log" || fail "no group commit announced"
pids=()
for i in 1 2 3; do
	start_bg persist$i bounded 150 "$TC" persist-loop GC$i GCINST$i $N; pids+=("$BG_PID")
done
start_bg faa bounded 150 "$TC" faa GC4 $N 5; pids+=("$BG_PID")
for p in "${pids[@]}"; do wait "$p" || fail "client (pid $p)"; done
for i in 1 2 3; do
	grep -q "^OK persist-loop $N$" "$CF_WORK/persist$i.log" ||
		fail "client $i did not send $N PERSISTs: $(tail -3 "$CF_WORK/persist$i.log")"
done
v=$(bounded 20 "$TC" read-word 5) || fail "read"
[ "$v" = $N ] || fail "lock word is $v, expected $N"
kill -TERM "$CFSERVER_PID"
wait_for 20 grep -q "group commit: [0-9]* commits" "$CF_WORK/cfserver.log" || fail "no group commit report at exit"
line=$(grep -o "group commit: [0-9]* commits, [0-9]* persist calls, [0-9]* ranges" "$CF_WORK/cfserver.log")
read -r commits calls ranges <<<"$(echo "$line" | sed 's/[^0-9 ]//g; s/  */ /g; s/^ //')"
pline=$(grep -o "persist: [0-9]* PERSIST requests in [0-9]* groups" "$CF_WORK/cfserver.log") || fail "no PERSIST counters at exit"
read -r reqs groups <<<"$(echo "$pline" | sed 's/[^0-9 ]//g; s/  */ /g; s/^ //')"
log "$line"
log "$pline"
[ "$reqs" -eq $((3 * N)) ] || fail "$reqs PERSIST requests answered, expected $((3 * N))"
# every request's range, and cfserver's own control-path writes (joins, registrations,
# unregisters: a few dozen), and nothing for the lock FAAs
[ "$ranges" -ge $((3 * N)) ] || fail "$ranges durable ranges for $((3 * N)) PERSISTs"
[ "$ranges" -lt $((3 * N + N / 2)) ] || fail "$ranges durable ranges for $((3 * N)) PERSISTs: the lock FAAs were persisted"
[ "$calls" -le "$commits" ] || fail "$calls persist calls for $commits commits: page granularity is one call per commit"
[ "$groups" -lt "$reqs" ] || fail "$groups groups for $reqs PERSISTs: no group was shared"
[ "$commits" -lt "$ranges" ] || fail "$commits commits for $ranges durable ranges: no commit was shared"
pass "$((3 * N)) concurrent PERSISTs (+ $N lock FAAs, not durable): $groups groups, $commits commits"
