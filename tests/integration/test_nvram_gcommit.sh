#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Group commit across connections under --nvram (tcp backend): three clients
# FAA one lock word concurrently; every FAA is durable before its answer, and
# cfserver reports at exit how many commits (persists) that took. Requests of
# different connections executed in one loop iteration share one commit, so
# there are fewer commits than durable writes. (tests/unit/test_gcommit checks
# the exact counts and that no answer precedes its persist.)
[ "$CF_TRANSPORT" = tcp ] || skip "group commit of client writes is the tcp backend's"
N=5000
start_cfserver --nvram "$CF_WORK/cf.img" --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
grep -q "group commit: one persist per loop iteration" "$CF_WORK/cfserver.log" || fail "no group commit announced"
pids=()
for i in 1 2 3; do
	start_bg faa$i bounded 150 "$TC" faa GC$i $N 5; pids+=("$BG_PID")
done
for p in "${pids[@]}"; do wait "$p" || fail "FAA client (pid $p)"; done
v=$(bounded 10 "$TC" read-word 5) || fail "read"
[ "$v" = $((3 * N)) ] || fail "word is $v, expected $((3 * N))"
kill -TERM "$CFSERVER_PID"
wait_for 10 grep -q "group commit: [0-9]* commits" "$CF_WORK/cfserver.log" || fail "no group commit report at exit"
line=$(grep -o "group commit: [0-9]* commits, [0-9]* persist calls, [0-9]* ranges" "$CF_WORK/cfserver.log")
read -r commits calls ranges <<<"$(echo "$line" | sed 's/[^0-9 ]//g; s/  */ /g; s/^ //')"
log "$line"
[ "$ranges" -ge $((3 * N)) ] || fail "$ranges durable ranges, expected at least $((3 * N))"
[ "$calls" -le "$commits" ] || fail "$calls persist calls for $commits commits: page granularity is one call per commit"
[ "$commits" -lt "$ranges" ] || fail "$commits commits for $ranges durable writes: no commit was shared"
pass "$((3 * N)) concurrent FAAs: $ranges durable ranges in $commits commits"
