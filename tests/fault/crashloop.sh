#!/bin/bash
# SPDX-License-Identifier: MIT
# crashloop.sh - crash at every named fault point, and random crash schedules.
#
#   crashloop.sh points                  every point of points.txt in turn, each in a
#                                        fresh cluster (4 txn.* also as a freeze: :stop)
#   crashloop.sh point NAME [kill|stop|abort]   one point
#   crashloop.sh random [--rounds N] [--seed S] random victim, point, action and skip,
#                                        several crashes per cluster lifetime
#
# For each crash: fire the point (txn.* on the victim; rec.* on the would-be
# counterpart, the other peer frozen so that the armed one wins the
# registration, then let go so that it finishes the recovery; srv.* in cfserver
# running with --nvram, restarted on the same image), let recovery run, restart
# every system that exited (killed, fenced, or 75), and check every invariant
# (lib.sh check_invariants). Prints the crashes and the points that fired.
. "$(dirname "$0")/lib.sh"
ulimit -c 0
MODE=${1:-points}
shift || true

# ---- one point, fresh cluster ----
run_point() { # POINT ACTION SKIP
	local p=$1 act=$2 skip=$3
	case $p in
	txn.*)
		cluster_init
		node_start SYS2
		node_start SYS3
		wait_for 20 busy SYS2 5 || fail "SYS2 did not start"
		node_start SYS1 "CF_FAULT=$p:$act:$skip"
		node_wait_exit SYS1 $((T_MS / 1000 + 30)) || fail "$p:$act: SYS1 did not die (the point never fired?)"
		fired_point "$p" || fail "$p:$act: SYS1 exited ${NODE_RC[SYS1]} but the point did not fire"
		CRASHES=$((CRASHES + 1))
		if [ "$act" = stop ]; then
			# frozen past T: fenced at the CF and killed by the counterpart's local fence agent
			[ "${NODE_RC[SYS1]}" = 137 ] || fail "$p:stop: the frozen SYS1 ended with ${NODE_RC[SYS1]}, not SIGKILL by the fence agent"
			check_fenced_before_backout SYS1 "$p:stop"
		fi
		wait_recovered NTS001
		node_start SYS1
		wait_for 20 busy SYS1 3 || fail "$p: restarted SYS1 did not rejoin"
		;;
	rec.*)
		# SYS2 (policy auto, armed) is the only automatic counterpart; SYS3 runs
		# policy operator and finishes the recovery when told (cfctl recover --on SYS3)
		cluster_init
		node_start SYS1
		node_start SYS2 "CF_FAULT=$p:$act:$skip"
		node_start SYS3 -- --policy operator
		for s in SYS1 SYS2 SYS3; do wait_for 20 busy $s 5 || fail "$s did not start"; done
		# The victim is frozen, not killed: a frozen owner must be fenced by
		# whichever counterpart backs its log out. rec.after_register kills SYS2
		# after its registration and before its fence, so there it is SYS3 who
		# must fence SYS1 (the CF carries the failure record forward).
		local try victim_pid
		for try in 1 2 3 4 5 6 7 8; do
			victim_pid=${SYS_PID[SYS1]}
			kill -STOP "$victim_pid"
			node_wait_exit SYS2 $((T_MS / 1000 + 5)) && break
			# SYS2 recovered NTS001 without reaching the point (e.g. nothing in flight)
			log "$p: try $try: the counterpart did not reach the point; again"
			node_wait_exit SYS1 10 || fail "$p: the frozen SYS1 was not fenced by SYS2"
			wait_recovered NTS001
			node_start SYS1
			wait_for 20 busy SYS1 5 || fail "restarted SYS1 did not rejoin"
		done
		node_exited SYS2 || fail "$p: the counterpart never reached the point in 8 crashes"
		fired_point "$p" || fail "$p: SYS2 exited ${NODE_RC[SYS2]} without the point firing"
		CRASHES=$((CRASHES + 1))
		# another peer finishes: NTS001 (incident k+1) and the dead counterpart's NTS002
		for i in NTS001 NTS002; do
			wait_for 10 eval '[ "$(inst_state '$i')" = INACTIVE_FAILED ]' ||
				fail "$p: $i not INACTIVE_FAILED after its counterpart died: $(cf_inst_state $i)"
			out=$(bounded 20 "$CFCTL" recover $i --on SYS3 --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" 2>&1) ||
				fail "$p: cfctl recover $i --on SYS3: $out"
		done
		wait_recovered NTS001 30
		wait_recovered NTS002 30
		grep -q 'RECOVERY {"inst":"NTS001"' "$CF_WORK"/SYS3.log ||
			fail "$p: SYS3 did not finish the recovery of NTS001"
		node_wait_exit SYS1 10 || fail "$p: the frozen SYS1 (pid $victim_pid) still runs after NTS001 was recovered: nobody fenced it"
		[ "${NODE_RC[SYS1]}" = 137 ] || fail "$p: the frozen SYS1 ended with ${NODE_RC[SYS1]}, not SIGKILL by a fence agent"
		grep -qs "recovery NTS001: disk fence: SYS1 (pid $victim_pid) killed, exit confirmed" "$CF_WORK"/SYS2.log "$CF_WORK"/SYS3.log ||
			fail "$p: no counterpart logged the fence of SYS1 (pid $victim_pid)"
		restart_dead
		for s in SYS1 SYS2; do wait_for 20 busy $s 3 || fail "$p: restarted $s did not rejoin"; done
		;;
	srv.*)
		cluster_init --nvram "$CF_WORK/cf.img"
		# restart cfserver armed (same image)
		kill -KILL "$CFSERVER_PID"
		wait "$CFSERVER_PID" 2>/dev/null
		server_restart "CF_FAULT=$p:$act:$skip" CF_FAULT_LOG=1
		cluster_start
		if [ "$p" = srv.between_fence_and_mark ]; then
			crash SYS1
		else
			# the sweep's point is on its way to failing a silent system: freeze one
			kill -STOP "${SYS_PID[SYS1]}"
		fi
		wait_for $((T_MS / 1000 + 20)) eval '! kill -0 $CFSERVER_PID' ||
			fail "$p: cfserver did not die (the point never fired?)"
		wait "$CFSERVER_PID" 2>/dev/null
		fired_point "$p" || fail "$p: cfserver died without the point firing"
		CRASHES=$((CRASHES + 1))
		kill -CONT "${SYS_PID[SYS1]}" 2>/dev/null
		# every system loses its connection: exit 75, clearly
		for s in SYS1 SYS2 SYS3; do
			node_alive $s || continue
			node_wait_exit $s 20 || fail "$p: $s did not notice the CF crash"
			[ "${NODE_RC[$s]}" = 75 ] || fail "$p: $s exited ${NODE_RC[$s]} after the CF crash, not 75"
		done
		server_restart
		restart_dead
		for s in SYS1 SYS2 SYS3; do wait_recovered "$(inst_of $s)" 30; done
		for s in SYS1 SYS2 SYS3; do wait_for 20 busy $s 3 || fail "$p: $s did not resume after the CF restart"; done
		;;
	*) fail "unknown point $p" ;;
	esac
	check_invariants "$p:$act"
	log "ok: $p:$act:$skip fired; crashes $CRASHES; $JCHECK_LAST"
}

# The counterpart's disk fence of VICTIM came before its backout: the local fence
# agent confirmed the victim's exit (it is gone) before the first before-image.
check_fenced_before_backout() { # VICTIM LABEL
	local inst pid f
	inst=$(inst_of "$1")
	pid=${SYS_PID[$1]}
	kill -0 "$pid" 2>/dev/null && fail "$2: $1 (pid $pid) still runs after its recovery"
	# in the counterpart's log: the fence agent's confirmation of exactly that pid,
	# before the backout line
	# the victim dies at the fence, before the counterpart finishes and logs its RECOVERY line
	wait_for 20 grep -qs "RECOVERY {\"inst\":\"$inst\"" "$CF_WORK"/SYS*.log
	f=$(grep -l "RECOVERY {\"inst\":\"$inst\"" "$CF_WORK"/SYS*.log | head -n 1)
	[ -n "$f" ] || fail "$2: no counterpart logged the recovery of $inst"
	awk -v i="recovery $inst:" -v p="(pid $pid)" '
		index($0, i) && index($0, "disk fence") && index($0, p) && index($0, "exit confirmed") { fenced = NR }
		index($0, i) && index($0, "backed out") && !backout { backout = NR }
		END { exit !(fenced && backout && fenced < backout) }' "$f" ||
		fail "$2: $(basename "$f") does not show the fence agent killing $1 (pid $pid) before the backout of $inst: $(grep "recovery $inst:" "$f" | head -n 4 | tr '\n' ';')"
}

points_mode() {
	local p act n=0 skip
	local -a summary=() missing=()
	while read -r p; do
		case $p in '' | \#*) continue ;; esac
		if ! point_compiled "$p"; then
			missing+=("$p")
			continue
		fi
		local acts=(kill)
		# a freeze where it matters most: around the data write and the commit point
		case $p in txn.after_undo | txn.after_lease_check | txn.after_data_write | txn.after_commit) acts=(kill stop) ;; esac
		for act in "${acts[@]}"; do
			skip=$((RANDOM % 40 + 5))
			case $p in rec.* | srv.between*) skip=0 ;; srv.mid_sweep) skip=0 ;; esac
			n=$((n + 1))
			if out=$(bounded 120 "$0" point "$p" "$act" "$skip" 2>&1); then
				summary+=("$p:$act:$skip ok")
			else
				echo "$out" | tail -n 60 >&2
				fail "point $p:$act:$skip failed"
			fi
		done
	done <"$FAULT_DIR/points.txt"
	printf '%s\n' "${summary[@]}"
	[ ${#missing[@]} = 0 ] || fail "crash loop: $n crashes ok, but these points of points.txt are not compiled in (no CF_FAULT() call): ${missing[*]}"
	pass "crash loop: $n crashes, every point of points.txt fired and every invariant held"
}

# ---- random schedules ----
random_mode() {
	local rounds=60 seed=$((RANDOM * 32768 + RANDOM))
	while [ $# -gt 0 ]; do
		case $1 in
		--rounds) rounds=$2; shift 2 ;;
		--seed) seed=$2; shift 2 ;;
		*) fail "usage: crashloop.sh random [--rounds N] [--seed S]" ;;
		esac
	done
	RANDOM=$seed
	log "random crash schedule: seed $seed, $rounds rounds (reproduce: crashloop.sh random --rounds $rounds --seed $seed)"
	local txn_points=() rec_points=() p
	while read -r p; do
		point_compiled "$p" || continue
		case $p in txn.*) txn_points+=("$p") ;; rec.*) rec_points+=("$p") ;; esac
	done <"$FAULT_DIR/points.txt"
	declare -A ARM=()
	cluster_init --nvram "$CF_WORK/cf.img"
	cluster_start
	local round crashes=0 checks=0
	for round in $(seq 1 "$rounds"); do
		local v="SYS$((RANDOM % NSYS + 1))" how
		local r10=$((RANDOM % 10))
		[ ${#txn_points[@]} = 0 ] && [ $r10 -le 4 ] && r10=9
		[ ${#rec_points[@]} = 0 ] && [ $r10 -le 6 ] && [ $r10 -ge 5 ] && r10=8
		# now and then the CF itself: kill -9, restart on its --nvram image
		[ $((RANDOM % 15)) = 0 ] && r10=cf
		case $r10 in
		cf) how=cf ;;
		0 | 1 | 2 | 3 | 4) how=arm-txn ;;
		5 | 6) how=arm-rec ;;
		7) how=stop ;;
		*) how=kill ;;
		esac
		case $how in
		arm-txn)
			# restart the victim armed; it crashes at the point after `skip` passes
			local act=kill
			[ $((RANDOM % 4)) = 0 ] && act=abort
			[ $((RANDOM % 5)) = 0 ] && act=stop
			p=${txn_points[RANDOM % ${#txn_points[@]}]}
			node_stop "$v"
			node_start "$v" "CF_FAULT=$p:$act:$((RANDOM % 300))"
			ARM[$v]="$p:$act"
			node_wait_exit "$v" $((T_MS / 1000 + 5)) || {
				log "round $round: $v armed with ${ARM[$v]} did not fire in time; SIGKILL"
				kill -KILL "${SYS_PID[$v]}"
				node_reap "$v"
			}
			;;
		arm-rec)
			# arm a peer's recovery path, then crash another system
			local c w
			p=${rec_points[RANDOM % ${#rec_points[@]}]}
			c="SYS$((RANDOM % NSYS + 1))"
			[ "$c" = "$v" ] && c="SYS$(((${v#SYS} % NSYS) + 1))"
			node_stop "$c"
			node_start "$c" "CF_FAULT=$p:kill:0"
			ARM[$c]="$p:kill"
			wait_for 20 busy "$c" 2 || fail "round $round: armed $c did not start"
			wait_for 20 all_settled || fail "round $round: not settled before the crash"
			kill -KILL "${SYS_PID[$v]}"
			node_wait_exit "$v" 10
			;;
		stop)
			kill -STOP "${SYS_PID[$v]}"
			# detected after T, fenced; the local fence agent kills it
			node_wait_exit "$v" $((T_MS / 1000 + 20)) || {
				kill -CONT "${SYS_PID[$v]}"
				fail "round $round: frozen $v was not fenced (killed) by a peer"
			}
			;;
		kill)
			kill -KILL "${SYS_PID[$v]}"
			node_wait_exit "$v" 10
			;;
		cf)
			how=cf
			kill -KILL "$CFSERVER_PID"
			wait "$CFSERVER_PID" 2>/dev/null
			CF_CRASHES=$((CF_CRASHES + 1))
			local s
			for s in $(seq 1 "$NSYS"); do
				kill -CONT "${SYS_PID[SYS$s]}" 2>/dev/null
				node_wait_exit "SYS$s" 20 || fail "round $round: SYS$s did not notice the CF crash"
				case ${NODE_RC[SYS$s]} in 75 | 13[47]) ;; *) fail "round $round: SYS$s exited ${NODE_RC[SYS$s]} after the CF crash" ;; esac
			done
			server_restart
			;;
		esac
		stabilize "round $round ($how $v)"
		# several crashes per cluster lifetime; a full check every 5 rounds
		if [ $((round % 5)) = 0 ] || [ "$round" = "$rounds" ]; then
			check_invariants "round $round"
			checks=$((checks + 1))
			log "round $round: invariants hold; $(fired_total) points fired so far; $JCHECK_LAST"
			[ "$round" = "$rounds" ] || cluster_start
		fi
	done
	count_fired
	local k fired=""
	for k in "${!FIRED[@]}"; do fired+=" $k=${FIRED[$k]}"; done
	pass "random crash schedule (seed $seed): $rounds rounds, $((DEATHS)) system deaths, $CF_CRASHES CF crashes (kill -9, --nvram), $(fired_total) fault points fired:$fired; invariants checked $checks times"
}

DEATHS=0
CF_CRASHES=0
# stabilize LABEL: restart every system that died (killed, fenced, exit 75),
# unarmed, until every instance is settled and every system is up.
stabilize() {
	local end=$((SECONDS + 60)) s
	while :; do
		for s in $(seq 1 "$NSYS"); do
			if node_exited "SYS$s"; then
				node_reap "SYS$s"
				DEATHS=$((DEATHS + 1))
				node_start "SYS$s"
			fi
		done
		if all_settled; then
			local up=1
			for s in $(seq 1 "$NSYS"); do node_exited "SYS$s" && up=0; done
			[ $up = 1 ] && return 0
		fi
		[ $SECONDS -lt $end ] || fail "$1: the cluster did not settle within 60 s: $(insts_line)"
		sleep 0.05
	done
}

case $MODE in
points) points_mode ;;
point)
	run_point "$1" "${2:-kill}" "${3:-0}"
	pass "$1:${2:-kill}:${3:-0}"
	;;
random) random_mode "$@" ;;
*) fail "usage: crashloop.sh points | point NAME [ACTION [SKIP]] | random [--rounds N] [--seed S]" ;;
esac
