#!/bin/bash
# cfctl health: the exit-code contract. 0 when every system is
# ACTIVE and nothing is failed or recovering; 1 when degraded, one line per
# problem; 69/77 when the state cannot be read. cfctl status keeps exiting 0.
# Policy operator, so that a failed instance stays failed until asked; SYS2
# stops itself (fault point rec.after_attach) in the middle of the recovery.
# T is long, so that the stopped SYS2 is not failed. (A recovery waiting on its
# disk fence needs another host: test_fence_cross_host shows it in status.)
. "$(dirname "$0")/node_lib.sh"

start_cf --hb-timeout 60000
mkdata 16 100
health() { # RC PATTERN: exit code and output of cfctl health
	local out rc
	out=$(bounded 30 "$CFCTL" health --cf "$CF_ADDR" --cluster-key "${KEY:-$CF_KEYFILE}" --transport "$CF_TRANSPORT" 2>&1)
	rc=$?
	echo "$out" >"$CF_WORK/health.out"
	[ "$rc" -eq "$1" ] || { log "health exited $rc, expected $1: $out"; return 1; }
	log "health: $out"
	grep -q -- "$2" "$CF_WORK/health.out" || { log "health output lacks '$2': $out"; return 1; }
}
health 0 "^ok: 0 system(s) ACTIVE, 0 instance(s)" || fail "empty CF"
cf_node s1 SYS1 NTS001 --policy operator --workload hold --record 5 --hold-ms 600000
p1=$NODE_PID
CF_FAULT=rec.after_attach:stop CF_FAULT_LOG=1 cf_node s2 SYS2 NTS002 --policy operator --workload hold \
	--record 6 --hold-ms 600000
p2=$NODE_PID
wait_for 20 log_has s1 "holding f0.r5" || fail "SYS1 not up"
wait_for 20 log_has s2 "holding f0.r6" || fail "SYS2 not up"
health 0 "^ok: 2 system(s) ACTIVE, 2 instance(s), no recovery" || fail "healthy cluster"

kill -KILL "$p1"
wait_for 20 health 1 "instance NTS001 INACTIVE_FAILED" || fail "a failed instance is not reported"
grep -qE "^system SYS1 FAILED \(epoch 1, (process exiting|connection lost)" "$CF_WORK/health.out" || fail "failed system not reported"
grep -q "not recovered yet (cfctl recover NTS001" "$CF_WORK/health.out" || fail "no hint how to recover"
[ "$(wc -l <"$CF_WORK/health.out")" = 2 ] || fail "one line per problem: $(cat "$CF_WORK/health.out")"
cf_ctl status >/dev/null || fail "cfctl status does not exit 0 any more with a system failed"

cf_ctl recover NTS001 --on SYS2 >/dev/null || fail "recover"
wait_for 20 log_has s2 "cf-fault: rec.after_attach fires" || fail "SYS2 did not stop in its recovery"
health 1 "^instance NTS001 ACTIVE in recovery by SYS2 (phase [a-z-]*, incident 1, " ||
	fail "a recovery in progress is not reported"
kill -CONT "$p2"
# recovered: only the system itself is down now
only_sys1() { health 1 "^system SYS1 FAILED" && [ "$(wc -l <"$CF_WORK/health.out")" = 1 ]; }
wait_for 30 only_sys1 || fail "after the recovery: $(cat "$CF_WORK/health.out")"
# SYS1 back: healthy again
cf_node s1b SYS1 NTS001 --policy operator --workload hold --record 5 --hold-ms 600000
wait_for 20 log_has s1b "holding f0.r5" || fail "SYS1 did not come back"
wait_for 10 health 0 "^ok: 2 system(s) ACTIVE" || fail "healthy again"

# the state cannot be read: neither 0 nor 1
make_key "$CF_WORK/other.key"
KEY=$CF_WORK/other.key health 77 "refused the cluster key" || fail "key refused"
kill_pid "$CFSERVER_PID" TERM
health 69 "unavailable" || fail "CF gone"
pass "cfctl health: 0 healthy, 1 degraded with one line per problem, 69/77 cannot tell"
