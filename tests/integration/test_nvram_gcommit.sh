#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Group commit across connections under --nvram (tcp backend): three clients
# WRITE a recovery-info word concurrently (durable: the instance table's
# section); every WRITE is durable before its answer, and cfserver reports at
# exit how many commits (persists) that took. Requests of different connections
# executed in one loop iteration share one commit, so there are fewer commits
# than durable writes. A fourth client FAAs a lock word meanwhile: the lock
# table is not persisted (docs/design.md, "Durability": the restart barrier),
# so those add no durable range. (tests/unit/test_gcommit checks the exact
# counts and that no answer precedes its persist; a file image persists in
# cf_persist's thread, which batches what arrives while it flushes.)
[ "$CF_TRANSPORT" = tcp ] || skip "group commit of client writes is the tcp backend's"
N=5000
start_cfserver --nvram "$CF_WORK/cf.img" --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
grep -q "group commit: one persist at a time in a persister thread" "$CF_WORK/cfserver.log" || fail "no group commit (persister thread) announced"
pids=()
for i in 1 2 3; do
	start_bg rinfo$i bounded 150 "$TC" rinfo-write GC$i $N $i; pids+=("$BG_PID")
done
start_bg faa bounded 150 "$TC" faa GC4 $N 5; pids+=("$BG_PID")
for p in "${pids[@]}"; do wait "$p" || fail "client (pid $p)"; done
v=$(bounded 10 "$TC" read-word 5) || fail "read"
[ "$v" = $N ] || fail "lock word is $v, expected $N"
kill -TERM "$CFSERVER_PID"
wait_for 10 grep -q "group commit: [0-9]* commits" "$CF_WORK/cfserver.log" || fail "no group commit report at exit"
line=$(grep -o "group commit: [0-9]* commits, [0-9]* persist calls, [0-9]* ranges" "$CF_WORK/cfserver.log")
read -r commits calls ranges <<<"$(echo "$line" | sed 's/[^0-9 ]//g; s/  */ /g; s/^ //')"
log "$line"
[ "$ranges" -ge $((3 * N)) ] || fail "$ranges durable ranges, expected at least $((3 * N))"
[ "$ranges" -lt $((3 * N + N / 2)) ] || fail "$ranges durable ranges for $((3 * N)) durable writes: the lock FAAs were persisted"
[ "$calls" -le "$commits" ] || fail "$calls persist calls for $commits commits: page granularity is one call per commit"
[ "$commits" -lt "$ranges" ] || fail "$commits commits for $ranges durable writes: no commit was shared"
pass "$((3 * N)) concurrent durable WRITEs (+ $N lock FAAs, not durable): $ranges durable ranges in $commits commits"
