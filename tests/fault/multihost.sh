#!/bin/bash
# SPDX-License-Identifier: MIT
# multihost.sh - failures of whole systems with every system on its own
# namespace-host (tests/lib/hosts.sh): SYS1..SYS3 on hostA..hostC, the CF on
# their bridge, the data directory mounted on each host. Two fence modes
# (CF_MH_FENCE):
#   watchdog (default): the default configuration: every cfnode keeps
#     --fence-agent auto and pets its host's watchdog (--watchdog FIFO
#     --watchdog-timeout CF_MH_WD_MS, default 1000), a stand-in for a hardware
#     one running on that host (tests/recovery/wd_standin.py, hosts.sh
#     host_watchdog) that resets the whole host (every process of its network
#     namespace killed) when pets stop. The counterpart, on another host, waits
#     the victim's watchdog out (phase watchdog-wait) and then backs out.
#   agent: the external power-fence agent tests/lib/fence_netns (it powers a
#     host off: every process of its network namespace killed, confirmed gone).
#
#   multihost.sh [ROUNDS]   each round: one SIGKILL, one SIGSTOP (heartbeat
#                           silence), one network cut (the host's veth down), each
#                           of a random system. After each: the victim's instance
#                           recovered by a peer by itself (policy auto), the victim
#                           fenced (the agent powered its host off; or its watchdog
#                           reset its host, the recovery went through phase
#                           watchdog-wait and its backout began after the reset),
#                           the victim's host empty, nothing left waiting,
#                           the victim restarted on its host; every 5 rounds and at
#                           the end every invariant of lib.sh check_invariants
#                           (cfctl verify, jcheck.py, one counterpart per incident,
#                           epochs, every instance clean and every lock free).
export CF_HOSTS=netns
MH_FENCE=${CF_MH_FENCE:-watchdog}
case $MH_FENCE in agent | watchdog) ;; *) echo "CF_MH_FENCE=$MH_FENCE: agent or watchdog" >&2; exit 2 ;; esac
export HOSTS_FENCE=$MH_FENCE HOSTS_WD_MS=${CF_MH_WD_MS:-1000}
. "$(dirname "$0")/lib.sh"
ulimit -c 0
ROUNDS=${1:-3}
FENCE_LOG=$CF_WORK/fence_netns.log

# confirmed fences of host $1 so far: power-offs by the agent, or resets by its watchdog
fenced_count() {
	if [ "$MH_FENCE" = agent ]; then
		cat "$FENCE_LOG" 2>/dev/null | grep -c "nodename=$1: off"
	else
		host_wd_fired "$1"
	fi
}

fenced_since() { [ "$(fenced_count "$1")" -gt "$2" ]; } # HOST COUNT_BEFORE

# the newest RECOVERY json of INST (highest incident)
last_recovery() {
	grep -h "RECOVERY {\"inst\":\"$1\"" "$CF_WORK"/SYS*.log 2>/dev/null | sed 's/.*RECOVERY //' |
		python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin if l.strip()]; print(json.dumps(max(r, key=lambda x: x["incident"])) if r else "")'
}
rec_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

# watchdog mode, after each incident: the counterpart waited the victim's watchdog
# out (phase watchdog-wait at least as long as the watchdog), and began its
# backout only after the watchdog had reset the victim's host (both logs carry
# wall-clock HH:MM:SS.mmm of this machine).
check_wd_incident() { # HOW VICTIM HOST INST INCIDENT_BEFORE
	local how=$1 v=$2 h=$3 inst=$4 before=$5 rec inc cp wd_us reset over
	rec=$(last_recovery "$inst")
	[ -n "$rec" ] || fail "$how $v: no RECOVERY line of $inst"
	inc=$(rec_get "$rec" incident)
	[ "$inc" -gt "$before" ] || fail "$how $v: no new RECOVERY line of $inst (incident $inc)"
	cp=$(rec_get "$rec" counterpart)
	reset=$(grep -o '^[0-9TZ:.-]* wd-standin: host reset: .* none left' "$CF_WORK/wd-$h.log" | tail -n 1 | cut -d' ' -f1)
	over=$(grep -ho "^[0-9TZ:.-]* cfnode\[$cp\] warning: recovery $inst: watchdog wait over" "$CF_WORK/$cp.log" | tail -n 1 | cut -d' ' -f1)
	[ -n "$reset" ] || fail "$how $v: $h's watchdog never reset it: $(tail -n 3 "$CF_WORK/wd-$h.log")"
	[ -n "$over" ] || fail "$how $v: $cp logged no end of its watchdog wait for $inst"
	[[ "$reset" < "$over" ]] || fail "$how $v: $cp began backing out $inst at $over, before $h's watchdog reset it at $reset"
	wd_us=$(rec_get "$rec" watchdog-wait_us)
	[ -n "$wd_us" ] && [ "${wd_us%.*}" -ge $((HOSTS_WD_MS * 1000)) ] ||
		fail "$how $v: the recovery by $cp did not wait the watchdog out: watchdog-wait ${wd_us:-none} us < $((HOSTS_WD_MS * 1000)) ($rec)"
	WD_WAITS+=("${wd_us%.*}")
}
WD_WAITS=()

# no recovery left waiting: no counterpart stuck in a phase, every instance settled
nothing_waiting() {
	all_settled || return 1
	! grep -qsE "stopped in phase|waits in phase" "$CF_WORK"/SYS*.log
}

incident() { # HOW VICTIM
	local how=$1 v=$2 h inst before rec inc_before=0 by=fence_netns
	h=$(host_of "$v")
	inst=$(inst_of "$v")
	before=$(fenced_count "$h")
	rec=$(last_recovery "$inst")
	[ -n "$rec" ] && inc_before=$(rec_get "$rec" incident)
	[ "$MH_FENCE" = watchdog ] && by="its watchdog"
	case $how in
	kill)
		kill -KILL "${SYS_PID[$v]}"
		node_wait_exit "$v" 10 || fail "$how $v: not dead after SIGKILL"
		;;
	stop)
		kill -STOP "${SYS_PID[$v]}"
		# silent past T: the CF fails it, a peer's fence agent powers hostX off; or
		# it stopped petting and its watchdog resets hostX
		node_wait_exit "$v" $((T_MS / 1000 + 20)) || {
			kill -CONT "${SYS_PID[$v]}"
			fail "$how $v: the frozen system survived: not fenced by $by"
		}
		[ "${NODE_RC[$v]}" = 137 ] || fail "$how $v: ended with ${NODE_RC[$v]}, not SIGKILL by $by"
		;;
	cut)
		net_cut "$h"
		node_wait_exit "$v" $((T_MS / 1000 + 20)) || {
			net_heal "$h"
			fail "$how $v: the cut-off system survived: not fenced by $by"
		}
		net_heal "$h"
		[ "${NODE_RC[$v]}" = 137 ] || fail "$how $v: ended with ${NODE_RC[$v]}, not SIGKILL by $by"
		;;
	esac
	CRASHES=$((CRASHES + 1))
	wait_for 30 nothing_waiting || fail "$how $v: recovery left waiting: $(insts_line) $(grep -hE 'stopped in phase|waits in phase' "$CF_WORK"/SYS*.log | tail -n 2)"
	# every failure is fenced before the backout (a killed one too: the agent finds
	# the host empty; its watchdog, no longer petted, resets it)
	if [ "$MH_FENCE" = agent ]; then
		[ "$(fenced_count "$h")" -gt "$before" ] || fail "$how $v: no confirmed power-off of $h in $FENCE_LOG"
	else
		# (bounded: a counterpart that did not wait may be done before the reset)
		wait_for $((HOSTS_WD_MS / 1000 + 5)) fenced_since "$h" "$before" ||
			fail "$how $v: $h's watchdog did not reset it: $(tail -n 3 "$CF_WORK/wd-$h.log" | tr '\n' ';')"
		check_wd_incident "$how" "$v" "$h" "$inst" "$inc_before"
	fi
	[ -z "$(host_pids "$h")" ] || fail "$how $v: $h still runs processes after its fence: $(host_pids "$h" | tr '\n' ' ')"
	node_start "$v" # after a reset: its watchdog starts again, then the system
	wait_for 40 busy "$v" 3 || fail "$how $v: did not rejoin from $h"
	[ -n "${FAULT_VERBOSE:-}" ] && log "$how $v ($h): recovered, fenced by $by, rejoined"
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
if [ "$MH_FENCE" = watchdog ]; then
	how_fenced="its host reset by its watchdog before a peer's backout (watchdog-wait $(printf '%s\n' "${WD_WAITS[@]}" | sort -n | head -n 1)..$(printf '%s\n' "${WD_WAITS[@]}" | sort -n | tail -n 1) us, watchdog $HOSTS_WD_MS ms, default fence auto)"
else
	how_fenced="fenced by fence_netns"
fi
pass "multihost ($MH_FENCE): ${DONE[kill]} SIGKILL, ${DONE[stop]} SIGSTOP, ${DONE[cut]} network cuts on namespace-hosts, each recovered by a peer and $how_fenced, nothing left waiting after each; every invariant held at $CHECKS full checks"
