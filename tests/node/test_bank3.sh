#!/bin/bash
# Three cfnodes run the bank workload concurrently on one data directory for
# >= 10 s: every node commits work, and cfctl verify finds the total conserved
# and every record's crc valid. cfctl status shows the three systems meanwhile.
# The workloads run until the test stops them (SIGTERM: a clean leave), so the
# status checks happen while they run however slow the machine (the soft-RoCE
# rig under CPU emulation takes seconds per cfctl connection).
. "$(dirname "$0")/node_lib.sh"

DURATION=${CF_BANK_SECONDS:-10}
start_cf
mkdata 200 1000
pids=()
for i in 1 2 3; do
	cf_node node$i SYS$i NTS00$i --workload bank --duration 3600 --inflight 4 --json --seed $i \
		--journal "$CF_WORK/journal$i"
	pids+=("$NODE_PID")
done
for i in 1 2 3; do
	wait_for 60 log_has node$i "workload bank started" || fail "node$i did not start its workload"
done
started=$SECONDS
"$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" >"$CF_WORK/status.log" ||
	fail "cfctl status"
for i in 1 2 3; do
	grep -q "SYS$i .*ACTIVE" "$CF_WORK/status.log" || fail "status does not show SYS$i ACTIVE"
	grep -q "NTS00$i .*ACTIVE .*SYS$i" "$CF_WORK/status.log" || fail "status does not show NTS00$i owned by SYS$i"
done
[ "$(cf_status_field systems state | grep -c ' ACTIVE$')" = 3 ] && [ "$(cf_status_field instances state | grep -c ' ACTIVE$')" = 3 ] ||
	fail "cfctl status --json does not list 3 ACTIVE systems and instances: $(cf_status_field systems state -- instances state owner)"
# The status riding on the heartbeats: every instance shows commits and log use.
status_commits() { # every instance and system: commits > 0, log use shown, beating
	local out
	out=$(cf_status_field instances commits log_used -- systems commits heartbeat) || return 1
	! awk '$2 == "-" || $2 == 0 || $3 == "-" || ($1 ~ /^SYS/ && $3 != "beating") {bad = 1} END {exit !bad}' <<<"$out"
}
wait_for 60 status_commits || fail "cfctl status does not show the heartbeats' commit counters"
# the workloads run DURATION seconds in all, however long the checks above took
left=$((DURATION - (SECONDS - started)))
[ "$left" -le 0 ] || sleep "$left"
for i in 1 2 3; do
	kill -TERM "${pids[$((i - 1))]}"
done
for i in 1 2 3; do
	wait_exit "${pids[$((i - 1))]}" 60
	[ "$EXIT_RC" -eq 0 ] || fail "node$i exited $EXIT_RC"
	commits=$(grep -o '"commits":[0-9]*' "$CF_WORK/node$i.log" | head -1 | cut -d: -f2)
	[ -n "$commits" ] && [ "$commits" -gt 0 ] || fail "node$i committed nothing"
	# one line per commit, each after an intent line "P ..." (a clean run leaves none pending)
	lines=$(grep -c '^[0-9]' "$CF_WORK/journal$i") # committed lines: not the intents, not "I INDEX"
	intents=$(grep -c '^P ' "$CF_WORK/journal$i")
	[ "$lines" -eq "$commits" ] || fail "node$i journal has $lines commit lines for $commits commits"
	[ "$intents" -eq "$commits" ] || fail "node$i journal has $intents intent lines for $commits commits"
	[ "$(grep -cE '^I [0-9]+ [0-9a-f]{32}$' "$CF_WORK/journal$i")" = 1 ] ||
		fail "node$i journal does not name its instance and CF image once (I INDEX IMAGE): $(head -n 1 "$CF_WORK/journal$i")"
	log "node$i: $(grep '"who"' "$CF_WORK/node$i.log")"
done
verify_data
# Every instance is INACTIVE_CLEAN and holds no lock after the clean leaves.
out=$(cf_status_field instances state locks_held) || fail "cfctl status"
! awk '$2 != "INACTIVE_CLEAN" || $3 != 0 {bad = 1} END {exit !bad}' <<<"$out" || fail "instances not clean after the run: $out"
pass "3 nodes x ${DURATION}s bank: total conserved, every node committed"
