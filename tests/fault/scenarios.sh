#!/bin/bash
# SPDX-License-Identifier: MIT
# scenarios.sh - multi-failure scenarios (tests/fault/README.md), each in a fresh cluster
# (a subprocess with its own work dir):
#   double_failure      SIGKILL two systems at once: the third recovers both
#   cf_crash_workload   kill -9 cfserver (--nvram) mid-workload, CF_KILLS times (default 1);
#                       restart on the image each time
#   cf_powerloss        cf_crash_workload with each kill a power failure: the image keeps
#                       only what was persisted (CF_FAULT_POWERLOSS=1; CF_KILLS times)
#   cf_crash_recovery   kill -9 cfserver (--nvram) while a counterpart is mid-backout
#   cf_restart_stale    kill -9 cfserver (--nvram), write stale holds and record-list
#                       entries into the image (a power loss: neither is persisted),
#                       restart: systems wait in restart recovery, it completes, the
#                       stale words are cleared, the invariants hold
#   cf_restart_barrier  as above with policy operator and one system left down: the
#                       others' attaches are refused, they wait (no exit, no commit)
#                       until `cfctl recover` recovers the last instance
#   cf_restart_volatile kill -9 cfserver without --nvram under the bank load, CF_KILLS
#                       times (default 3), restarted on the same address each time:
#                       every system backs out its open transactions from memory
#                       (self-backout), exits 75, is restarted and rejoins the new
#                       CF; at the end the journals must explain the data exactly
#   volatile_refuse     SIGKILL a system, then kill -9 the DRAM CF (the system could
#                       not back out): every restarted system refuses with exit 78
#                       naming the instance; cfctl data-release --force lets them run
#   commit_in_doubt     a system's commit group is executed by the CF and its answer lost
#                       (txn.commit_unanswered:fail; the session and the lease still hold):
#                       the system must not back the group out, its incarnation ends, the
#                       recovery keeps the group committed, and the data must show it (the
#                       recovery journals make the check exact)
#   zombie_none         freeze a system between its lease check and its data write,
#                       peers with --fence-agent none: its CF operations must all fail;
#                       report what the lease let through to the data
# (Counterpart death at each recovery point and zombies with the local fence agent
# at each transaction point are in crashloop.sh points.)
# usage: scenarios.sh all | NAME...
. "$(dirname "$0")/lib.sh"
require_bin CF_FAULT_TOOL # stale-locks: what a power loss leaves in an image
ulimit -c 0

all_75() { # LABEL: every live system notices the lost CF and ends its incarnation (75)
	local s
	for s in SYS1 SYS2 SYS3; do
		[ -n "${NODE_RC[$s]:-}" ] && continue
		kill -CONT "${SYS_PID[$s]}" 2>/dev/null
		node_wait_exit $s 20 || fail "$1: $s did not notice the CF crash within 20 s"
		[ "${NODE_RC[$s]}" = 75 ] || fail "$1: $s exited ${NODE_RC[$s]} after the CF crash, not 75"
		grep -q "connection to CF lost" "$CF_WORK/$s.log" || fail "$1: $s did not say it lost the CF"
	done
}

sc_double_failure() {
	cluster_init
	cluster_start
	kill -KILL "${SYS_PID[SYS1]}" "${SYS_PID[SYS2]}"
	node_wait_exit SYS1 10
	node_wait_exit SYS2 10
	CRASHES=$((CRASHES + 2))
	wait_recovered NTS001 30
	wait_recovered NTS002 30
	local n
	n=$(grep -c 'RECOVERY {"inst":"NTS00[12]"' "$CF_WORK/SYS3.log")
	[ "$n" = 2 ] || fail "double_failure: SYS3 logged $n recoveries, expected NTS001 and NTS002"
	released double_failure NTS001 NTS002
	restart_dead
	for s in SYS1 SYS2; do wait_for 20 busy $s 3 || fail "double_failure: $s did not rejoin"; done
	check_invariants double_failure
}

sc_cf_crash_workload() {
	# CF_KILLS rounds (default 1; 50 in the soak suite) of kill -9 under the bank
	# load, each restarted on the same image after 1-3 s of work
	local kills=${CF_KILLS:-1} k s gen0 gen1
	cluster_init --nvram "$CF_WORK/cf.img"
	cluster_start
	gen0=$(cf_status_field cf generation)
	for k in $(seq 1 "$kills"); do
		[ "$k" -gt 1 ] && sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
		kill -KILL "$CFSERVER_PID"
		wait "$CFSERVER_PID" 2>/dev/null
		CRASHES=$((CRASHES + 1))
		all_75 "cf_crash_workload round $k"
		server_restart
		restart_dead
		for s in SYS1 SYS2 SYS3; do wait_recovered "$(inst_of $s)" 30; done
		for s in SYS1 SYS2 SYS3; do
			wait_for 20 busy $s 3 || fail "cf_crash_workload: round $k: $s did not resume"
		done
	done
	gen1=$(cf_status_field cf generation)
	[ "$gen1" -eq "$((gen0 + kills))" ] || fail "cf_crash_workload: generation $gen0 -> $gen1 after $kills restarts"
	check_invariants cf_crash_workload
	log "cf_crash_workload: $kills CF kills, generation $gen0 -> $gen1; $JCHECK_LAST"
}

sc_cf_powerloss() {
	# cf_crash_workload where each kill -9 is a power failure of the CF host: the image
	# keeps only the ranges that were persisted (cfserver's power-loss emulation,
	# CF_FAULT_POWERLOSS=1, fault-injection builds: cf_image.c). What the nodes PERSIST
	# and cfserver's own control-path writes must be all a restart needs.
	grep -q "POWERLOSS" "$CFSERVER" || skip "cfserver has no power-loss emulation (a build without fault points)"
	export CF_FAULT_POWERLOSS=1
	sc_cf_crash_workload
	grep -q "POWER-LOSS EMULATION" "$CF_WORK/cfserver.log" || fail "cf_powerloss: cfserver did not emulate power loss"
	unset CF_FAULT_POWERLOSS
}

sc_cf_crash_recovery() {
	cluster_init --nvram "$CF_WORK/cf.img"
	# freeze the counterpart mid-backout (or, without that point, after its attach)
	local rp=rec.mid_backout
	point_compiled $rp || rp=rec.after_attach
	node_start SYS2 CF_FAULT=$rp:stop:0
	node_start SYS3 -- --policy operator
	for s in SYS2 SYS3; do wait_for 20 busy $s 5 || fail "$s did not start"; done
	# the victim last: it dies at its 51st data write, and SYS2 freezes in that
	# recovery, so SYS2 must be seen busy before
	node_start SYS1 CF_FAULT=txn.after_data_write:kill:50 # an update in flight when it dies
	local try
	for try in 1 2 3 4 5 6 7 8; do
		node_exited SYS1 || { wait_for 20 busy SYS1 5 && crash SYS1; }
		node_reap SYS1
		wait_for 3 eval '[ "$(node_state SYS2)" = T ]' && break
		log "cf_crash_recovery: try $try: nothing to back out; again"
		wait_recovered NTS001
		node_start SYS1
	done
	[ "$(node_state SYS2)" = T ] || fail "cf_crash_recovery: the counterpart never froze at $rp"
	# the counterpart is frozen mid-backout: crash the CF now
	kill -KILL "$CFSERVER_PID"
	wait "$CFSERVER_PID" 2>/dev/null
	CRASHES=$((CRASHES + 1))
	all_75 cf_crash_recovery # SYS2 is let go first: its next CF operation fails
	server_restart
	restart_dead
	for s in SYS1 SYS2 SYS3; do wait_recovered "$(inst_of $s)" 30; done
	for s in SYS1 SYS2 SYS3; do wait_for 20 busy $s 3 || fail "cf_crash_recovery: $s did not resume"; done
	check_invariants cf_crash_recovery
}

sc_commit_in_doubt() {
	cluster_init --nvram "$CF_WORK/cf.img"
	node_start SYS1 CF_FAULT=txn.commit_unanswered:fail:30
	node_start SYS2
	node_start SYS3
	for s in SYS1 SYS2 SYS3; do wait_for 20 busy $s 3 || fail "commit_in_doubt: $s did not start committing"; done
	node_wait_exit SYS1 30 || fail "commit_in_doubt: SYS1 did not end its incarnation after the lost answer"
	local rc1=${NODE_RC[SYS1]}
	grep -q "txn.commit_unanswered fires" "$CF_WORK/SYS1.log" || fail "commit_in_doubt: the fault point did not fire"
	CRASHES=$((CRASHES + 1))
	wait_recovered NTS001 30
	grep -qs '^R [0-9]* [0-9]* C NTS001' "$CF_WORK"/SYS*.recovery ||
		fail "commit_in_doubt: no recovery kept a transaction of NTS001 committed: SYS1 did not leave the group whose answer it lost to the log (backed out by itself?): $(cat "$CF_WORK"/SYS*.recovery 2>/dev/null | tail -n 3 | tr '\n' ' ')"
	restart_dead
	wait_for 20 busy SYS1 3 || fail "commit_in_doubt: SYS1 did not resume"
	check_invariants commit_in_doubt
	log "commit_in_doubt: SYS1 exited $rc1 after the lost answer; $JCHECK_LAST"
}

# the systems that ended their incarnation with 75 after a volatile CF loss say they backed out
self_backed_out() { # LABEL SYS: its latest incarnation ended with a completed self-backout
	tail -n 20 "$CF_WORK/$2.log" | grep -q "self-backout of $(inst_of "$2") done" ||
		fail "$1: $2 did not report a completed self-backout: $(tail -n 5 "$CF_WORK/$2.log")"
}

# cf_crash_then_stale LABEL: kill -9 cfserver, every system notices, then the
# image gets what a power loss may leave in the unpersisted lock table and record
# lists; cfserver restarts on it.
cf_crash_then_stale() {
	kill -KILL "$CFSERVER_PID"
	wait "$CFSERVER_PID" 2>/dev/null
	CRASHES=$((CRASHES + 1))
	all_75 "$1"
	"$CF_FAULT_TOOL" stale-locks "$CF_WORK/cf.img" 8 >>"$CF_WORK/cfserver.log" 2>&1 || fail "$1: stale-locks"
	server_restart
}

sc_cf_restart_stale() {
	cluster_init --nvram "$CF_WORK/cf.img"
	cluster_start
	cf_crash_then_stale cf_restart_stale
	local out
	out=$(cf_ctl status) || fail "cf_restart_stale: cfctl status: $out"
	echo "$out" | grep -q "restart recovery: 3 instances left" ||
		fail "cf_restart_stale: cfctl status does not show the restart recovery: $(echo "$out" | head -n 3)"
	out=$(cf_ctl status --json) || fail "cf_restart_stale: cfctl status --json: $out"
	echo "$out" | grep -q '"restart":{"state":"restart recovery","left":3}' ||
		fail "cf_restart_stale: cfctl status --json: no restart recovery: $(echo "$out" | cut -c1-200)"
	# SYS1 alone: it recovers its own instance, is refused for new work while
	# NTS002 and NTS003 are left, recovers them (policy auto) while it waits
	node_start SYS1
	wait_for 30 grep -q "restart recovery: done" "$CF_WORK/cfserver.log" ||
		fail "cf_restart_stale: restart recovery did not complete: $(grep 'restart' "$CF_WORK/cfserver.log" | tail -n 3)"
	grep -q "CF restart recovery in progress: .* waiting to attach" "$CF_WORK/SYS1.log" ||
		fail "cf_restart_stale: SYS1 did not wait for the restart recovery"
	grep -q "restart recovery: done .* cleared [1-9][0-9]* lock word" "$CF_WORK/cfserver.log" ||
		fail "cf_restart_stale: the stale lock words were not cleared: $(grep 'restart recovery: done' "$CF_WORK/cfserver.log")"
	out=$(cf_ctl status --json) || fail "cf_restart_stale: cfctl status --json: $out"
	echo "$out" | grep -q '"restart":{"state":"open","left":0}' || fail "cf_restart_stale: the CF did not open"
	wait_for 20 busy SYS1 3 || fail "cf_restart_stale: SYS1 did not resume"
	restart_dead
	for s in SYS2 SYS3; do wait_for 20 busy $s 3 || fail "cf_restart_stale: $s did not resume"; done
	check_invariants cf_restart_stale
	log "cf_restart_stale: $(grep -o 'restart recovery: done.*' "$CF_WORK/cfserver.log" | tail -n 1); $JCHECK_LAST"
}

sc_cf_restart_barrier() {
	cluster_init --nvram "$CF_WORK/cf.img"
	cluster_start
	local out
	out=$(cf_ctl policy operator) || fail "cf_restart_barrier: policy operator: $out"
	cf_crash_then_stale cf_restart_barrier
	# SYS1 and SYS2 only, policy operator: each recovers its own instance;
	# NTS003 stays failed until the operator asks
	node_start SYS1 -- --policy operator
	node_start SYS2 -- --policy operator
	for s in SYS1 SYS2; do
		# 2 left if it asks before the other system has recovered its own instance
		wait_for 30 grep -q "CF restart recovery in progress: [12] instances left: waiting to attach" "$CF_WORK/$s.log" ||
			fail "cf_restart_barrier: $s was not refused with the restart-recovery status: $(tail -n 3 "$CF_WORK/$s.log")"
	done
	out=$(cf_ctl status) || fail "cf_restart_barrier: cfctl status: $out"
	echo "$out" | grep -q "restart recovery: 1 instances left: NTS003" ||
		fail "cf_restart_barrier: cfctl status: $(echo "$out" | head -n 3)"
	sleep 2 # they must keep waiting: no exit, no commit, while NTS003 is not recovered
	for s in SYS1 SYS2; do
		node_alive $s || fail "cf_restart_barrier: $s exited while waiting (rc ${NODE_RC[$s]:-?})"
		[ "$(sys_commits $s)" = 0 ] || fail "cf_restart_barrier: $s committed during restart recovery"
	done
	grep -q "INST_ATTACH NTS00[12] by SYS[12] deferred: restart recovery" "$CF_WORK/cfserver.log" ||
		fail "cf_restart_barrier: cfserver did not log the deferred attaches"
	out=$(cf_ctl recover NTS003 --on SYS1) || fail "cf_restart_barrier: cfctl recover NTS003: $out"
	wait_for 30 grep -q "restart recovery: done" "$CF_WORK/cfserver.log" ||
		fail "cf_restart_barrier: restart recovery did not complete after cfctl recover"
	for s in SYS1 SYS2; do
		wait_for 20 busy $s 3 || fail "cf_restart_barrier: $s did not proceed after the restart recovery"
		grep -q "CF restart recovery over after" "$CF_WORK/$s.log" || fail "cf_restart_barrier: $s did not say it attached"
	done
	restart_dead
	wait_for 20 busy SYS3 3 || fail "cf_restart_barrier: SYS3 did not resume"
	check_invariants cf_restart_barrier
	log "cf_restart_barrier: $JCHECK_LAST"
}

sc_cf_restart_volatile() {
	local kills=${CF_KILLS:-3} k s gen sb=0
	cluster_init
	cluster_start
	for k in $(seq 1 "$kills"); do
		# 1-3 s of load between kills (the first round's start-up counts)
		[ "$k" -gt 1 ] && sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
		kill -KILL "$CFSERVER_PID"
		wait "$CFSERVER_PID" 2>/dev/null
		CRASHES=$((CRASHES + 1))
		# the new CF on the same address at once: a system that exits early rejoins
		# while the others may still be backing out (it must wait for their markers)
		server_restart
		for s in SYS1 SYS2 SYS3; do
			node_wait_exit $s 30 || fail "cf_restart_volatile: round $k: $s did not notice the CF loss within 30 s"
			[ "${NODE_RC[$s]}" = 75 ] || fail "cf_restart_volatile: round $k: $s exited ${NODE_RC[$s]}, not 75: $(tail -n 3 "$CF_WORK/$s.log")"
			self_backed_out "cf_restart_volatile round $k" $s
			node_start $s
		done
		for s in SYS1 SYS2 SYS3; do
			wait_for 30 busy $s 3 || fail "cf_restart_volatile: round $k: $s did not resume on the new CF: $(tail -n 3 "$CF_WORK/$s.log")"
		done
	done
	if grep -q "needs the operator" "$CF_WORK"/SYS*.log; then
		fail "cf_restart_volatile: a system refused although none died with the CF: $(grep -h 'needs the operator' "$CF_WORK"/SYS*.log | head -n 1)"
	fi
	sb=$(grep -ho 'self-backout of NTS00[0-9] done ([0-9]*' "$CF_WORK"/SYS*.log | awk -F'(' '{n += $2} END {print n + 0}')
	gen=$(grep -c "CF image .* (volatile" "$CF_WORK/SYS1.log")
	VOLATILE_CF=1 check_invariants cf_restart_volatile
	log "cf_restart_volatile: $kills CF kills, $sb open transactions backed out from memory, SYS1 saw $gen CF images; $JCHECK_LAST"
}

sc_volatile_refuse() {
	local s out rc dead=SYS1
	cluster_init
	# nobody recovers NTS001 by itself before the CF dies: operator policy on the peers
	node_start SYS1
	node_start SYS2 -- --policy operator
	node_start SYS3 -- --policy operator
	for s in SYS1 SYS2 SYS3; do wait_for 20 busy $s 5 || fail "volatile_refuse: $s did not start"; done
	crash $dead # it cannot back out: its open transactions stay in the data
	kill -KILL "$CFSERVER_PID"
	wait "$CFSERVER_PID" 2>/dev/null
	CRASHES=$((CRASHES + 1))
	for s in SYS2 SYS3; do
		node_wait_exit $s 30 || fail "volatile_refuse: $s did not notice the CF loss"
		[ "${NODE_RC[$s]}" = 75 ] || fail "volatile_refuse: $s exited ${NODE_RC[$s]}, not 75"
		self_backed_out volatile_refuse $s
	done
	server_restart
	restart_dead -- --marker-wait 2000
	for s in SYS1 SYS2 SYS3; do
		node_wait_exit $s 20 || fail "volatile_refuse: $s did not refuse within 20 s: $(tail -n 3 "$CF_WORK/$s.log")"
		[ "${NODE_RC[$s]}" = 78 ] || fail "volatile_refuse: $s exited ${NODE_RC[$s]}, not 78: $(tail -n 3 "$CF_WORK/$s.log")"
		tail -n 3 "$CF_WORK/$s.log" | grep "needs the operator" | grep "instance NTS001 of system SYS1" |
			grep -q "cfctl data-release --data $DATA NTS001 --force" ||
			fail "volatile_refuse: $s did not name NTS001 and the way out: $(tail -n 2 "$CF_WORK/$s.log")"
	done
	out=$("$CFCTL" verify --data "$DATA" 2>&1)
	echo "$out" | grep -E "^marker NTS001 +in-use" >/dev/null || fail "volatile_refuse: cfctl verify does not show NTS001 in use: $out"
	# bad input changes nothing
	local before
	before=$(cat "$DATA/.cfplex/NTS001")
	out=$("$CFCTL" data-release --data "$DATA" NTS001 2>&1)
	rc=$?
	[ $rc = 2 ] && echo "$out" | grep -q -- "--force" || fail "volatile_refuse: data-release without --force: rc $rc: $out"
	out=$("$CFCTL" data-release --data "$DATA" NTS009 --force 2>&1)
	rc=$?
	[ $rc = 1 ] && echo "$out" | grep -q "NTS009 has no marker" || fail "volatile_refuse: data-release of an unknown instance: rc $rc: $out"
	out=$("$CFCTL" data-release --data "$DATA" 'bad/name' --force 2>&1)
	rc=$?
	[ $rc = 2 ] || fail "volatile_refuse: data-release of a bad name: rc $rc: $out"
	[ "$(cat "$DATA/.cfplex/NTS001")" = "$before" ] || fail "volatile_refuse: bad data-release input changed the marker"
	# what the dead system left in the data: reported (the operator's to judge)
	local v
	v=$("$CFCTL" verify --data "$DATA" 2>&1 | grep '^verify')
	out=$("$CFCTL" data-release --data "$DATA" NTS001 --force 2>&1) || fail "volatile_refuse: data-release --force: $out"
	restart_dead
	for s in SYS1 SYS2 SYS3; do
		wait_for 30 busy $s 3 || fail "volatile_refuse: $s did not start after data-release: $(tail -n 3 "$CF_WORK/$s.log")"
	done
	for s in SYS1 SYS2 SYS3; do node_stop $s; done
	log "volatile_refuse: REPORT: every system refused with 78 naming NTS001; after data-release all ran; the data SYS1 left behind: $v"
}

rec_count() { cat "$CF_WORK"/SYS*.log | grep -c "RECOVERY {\"inst\":\"$1\""; }

sc_zombie_none() {
	cluster_init
	local p=${ZOMBIE_POINT:-txn.after_lease_check} round rounds=${ZOMBIE_ROUNDS:-3}
	node_start SYS2 -- --fence-agent none
	node_start SYS3 -- --fence-agent none
	wait_for 20 busy SYS2 5 || fail "SYS2 did not start"
	for round in $(seq 1 "$rounds"); do
		node_start SYS1 "CF_FAULT=$p:stop:$((RANDOM % 100 + 20))" -- --fence-agent none
		wait_for 30 eval '[ "$(node_state SYS1)" = T ]' || fail "zombie_none: SYS1 never froze at $p"
		CRASHES=$((CRASHES + 1))
		# past T: fenced at the CF, recovered by a peer relying on the lease alone
		local before
		before=$(rec_count NTS001)
		wait_for $((T_MS / 1000 + 30)) eval '[ "$(rec_count NTS001)" -gt '"$before"' ]' ||
			fail "zombie_none: NTS001 not recovered while SYS1 is frozen"
		kill -0 "${SYS_PID[SYS1]}" 2>/dev/null || fail "zombie_none: the frozen SYS1 was killed although no fence agent runs"
		# resume the zombie after its instance's backout
		kill -CONT "${SYS_PID[SYS1]}"
		node_wait_exit SYS1 20 || fail "zombie_none: the resumed zombie did not end"
		[ "${NODE_RC[SYS1]}" = 75 ] ||
			fail "zombie_none: the resumed zombie exited ${NODE_RC[SYS1]}, not 75: a CF operation of a fenced system may have succeeded"
		grep -q "connection to CF lost" "$CF_WORK/SYS1.log" || fail "zombie_none: the zombie did not report the lost CF"
		wait_recovered NTS001
	done
	node_start SYS1 -- --fence-agent none
	wait_for 20 busy SYS1 3 || fail "zombie_none: SYS1 did not rejoin as a new incarnation"
	local out rc
	for s in SYS1 SYS2 SYS3; do node_stop $s; done
	# a CF operation of the fenced zombie that succeeded would leave a lock or record entry
	locks_free "zombie_none: a lock of the fenced zombie landed at the CF"
	check_counterparts zombie_none
	check_epochs zombie_none
	# what the lease let through to the data: reported, not failed (the documented risk)
	out=$(python3 "$FAULT_DIR/jcheck.py" --initial "$INITIAL" --data "$DATA" "$CF_WORK"/SYS*.journal "$CF_WORK"/SYS*.recovery 2>&1)
	rc=$?
	local v
	v=$("$CFCTL" verify --data "$DATA" 2>&1 | grep '^verify')
	if [ $rc -eq 0 ]; then
		log "zombie_none ($p, $rounds zombies): REPORT: every CF operation of each resumed zombie failed (exit 75); no data write of theirs landed after the backout: $out"
	else
		log "zombie_none ($p, $rounds zombies): REPORT (the documented risk of --fence-agent none): every CF operation failed (exit 75), but data written by a resumed zombie landed after its instance's backout: $out; $v"
	fi
}

run_one() {
	case $1 in
	double_failure | cf_crash_workload | cf_powerloss | cf_crash_recovery | cf_restart_stale | cf_restart_barrier | \
		cf_restart_volatile | volatile_refuse | commit_in_doubt | zombie_none) "sc_$1" ;;
	*) fail "unknown scenario $1" ;;
	esac
	pass "$1 (crashes $CRASHES)"
}

if [ "${1:-all}" = all ]; then
	n=0
	for sc in double_failure cf_crash_workload cf_powerloss cf_crash_recovery cf_restart_stale cf_restart_barrier \
		cf_restart_volatile volatile_refuse commit_in_doubt zombie_none; do
		out=$(bounded 120 "$0" "$sc" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "$out" | grep -E 'PASS|REPORT' >&2
		elif [ $rc -eq 77 ]; then
			echo "$out" | grep -E 'SKIP' >&2
		else
			# the FAIL line first: the cleanup's log tails after it are longer than any tail kept
			echo "$out" | tail -n 60 >&2
			fail "scenario $sc: $(echo "$out" | grep -m 3 -E 'FAIL|timed out' | tr '\n' ' ')"
		fi
		n=$((n + 1))
	done
	pass "$n scenarios"
fi
run_one "$1"
