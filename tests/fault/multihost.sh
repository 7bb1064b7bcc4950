#!/bin/bash
# SPDX-License-Identifier: MIT
# multihost.sh - failures of whole systems with every system on its own
# namespace-host (tests/lib/hosts.sh): SYS1..SYS3 on hostA..hostC, the CF on
# their bridge, the data directory mounted on each host, fencing by the
# external agent tests/lib/fence_netns (it powers a host off: every process of
# its network namespace killed, confirmed gone), since the local agent cannot
# reach another host.
#
#   multihost.sh [ROUNDS]   each round: one SIGKILL, one SIGSTOP (heartbeat
#                           silence), one network cut (the host's veth down), each
#                           of a random system. After each: the victim's instance
#                           recovered by a peer by itself (policy auto), the victim
#                           fenced by the agent (stop, cut), nothing left waiting,
#                           the victim restarted on its host; every 5 rounds and at
#                           the end every invariant of lib.sh check_invariants
#                           (cfctl verify, jcheck.py, one counterpart per incident,
#                           epochs, every instance clean and every lock free).
export CF_HOSTS=netns
. "$(dirname "$0")/lib.sh"
ulimit -c 0
ROUNDS=${1:-3}
FENCE_LOG=$CF_WORK/fence_netns.log

fenced_count() { cat "$FENCE_LOG" 2>/dev/null | grep -c "nodename=$1: off"; }

# no recovery left waiting: no counterpart stuck in a phase, every instance settled
nothing_waiting() {
	all_settled || return 1
	! grep -qsE "stopped in phase|waits in phase" "$CF_WORK"/SYS*.log
}

incident() { # HOW VICTIM
	local how=$1 v=$2 h inst before
	h=$(host_of "$v")
	inst=$(inst_of "$v")
	before=$(fenced_count "$h")
	case $how in
	kill)
		kill -KILL "${NODE_PID[$v]}"
		node_wait_exit "$v" 10 || fail "$how $v: not dead after SIGKILL"
		;;
	stop)
		kill -STOP "${NODE_PID[$v]}"
		# silent past T: the CF fails it, a peer's fence agent powers hostX off
		node_wait_exit "$v" $((T_MS / 1000 + 20)) || {
			kill -CONT "${NODE_PID[$v]}"
			fail "$how $v: the frozen system was not fenced by a peer"
		}
		[ "${NODE_RC[$v]}" = 137 ] || fail "$how $v: ended with ${NODE_RC[$v]}, not SIGKILL by the fence agent"
		;;
	cut)
		net_cut "$h"
		node_wait_exit "$v" $((T_MS / 1000 + 20)) || {
			net_heal "$h"
			fail "$how $v: the cut-off system was not fenced by a peer"
		}
		net_heal "$h"
		[ "${NODE_RC[$v]}" = 137 ] || fail "$how $v: ended with ${NODE_RC[$v]}, not SIGKILL by the fence agent"
		;;
	esac
	CRASHES=$((CRASHES + 1))
	wait_for 30 nothing_waiting || fail "$how $v: recovery left waiting: $(cf_status 2>&1 | grep '^inst' | tr '\n' ';') $(grep -hE 'stopped in phase|waits in phase' "$CF_WORK"/SYS*.log | tail -n 2)"
	# every failure is fenced before the backout (a killed one too: the agent finds the host empty)
	[ "$(fenced_count "$h")" -gt "$before" ] || fail "$how $v: no confirmed power-off of $h in $FENCE_LOG"
	[ -z "$(host_pids "$h")" ] || fail "$how $v: $h still runs processes after its fence"
	node_start "$v"
	wait_for 40 busy "$v" 3 || fail "$how $v: did not rejoin from $h"
	[ -n "${FAULT_VERBOSE:-}" ] && log "$how $v ($h): recovered, fenced, rejoined"
	return 0
}

cluster_init
cluster_start
# each system really is on its own host: the CF saw it join from that host's
# address, with that host's hostname
for n in $(seq 1 "$NSYS"); do
	h=$(host_of "SYS$n")
	grep -q "JOIN SYS$n: .* from 10\.211\.$HOSTS_ID\.$((10 + n)):[0-9]* (host $h pid" "$CF_WORK/cfserver.log" ||
		fail "SYS$n did not join from $h (10.211.$HOSTS_ID.$((10 + n))): $(grep "JOIN SYS$n" "$CF_WORK/cfserver.log")"
done
declare -A DONE=([kill]=0 [stop]=0 [cut]=0)
CHECKS=0
for round in $(seq 1 "$ROUNDS"); do
	for how in kill stop cut; do
		incident "$how" "SYS$((RANDOM % NSYS + 1))"
		DONE[$how]=$((DONE[$how] + 1))
	done
	# the full check stops every system: every 5 rounds and at the end
	if [ $((round % 5)) = 0 ] || [ "$round" = "$ROUNDS" ]; then
		check_invariants "round $round"
		CHECKS=$((CHECKS + 1))
		log "round $round: invariants hold; $JCHECK_LAST"
		[ "$round" = "$ROUNDS" ] || cluster_start
	fi
done
pass "multihost: ${DONE[kill]} SIGKILL, ${DONE[stop]} SIGSTOP, ${DONE[cut]} network cuts on namespace-hosts, each recovered by a peer and fenced by fence_netns, nothing left waiting after each; every invariant held at $CHECKS full checks"
