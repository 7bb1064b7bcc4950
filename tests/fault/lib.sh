#!/bin/bash
# SPDX-License-Identifier: MIT
# lib.sh - the fault suite's cluster on top of tests/lib/harness.sh: cfserver +
# systems SYS1..SYSn (home instances NTS001..) running the bank workload on one
# data directory, each with a journal; victim restart; waiting for recovery;
# the full invariant check (I1, I3, I4: docs/design.md §0):
#   - cfctl verify (total conserved, every record crc);
#   - the journal check (jcheck.py): the data equals the initial balances plus
#     every committed transfer, account by account;
#   - at most one counterpart per incident (one RECOVERY line per (inst, incident));
#   - a restarted system rejoined with a higher epoch;
#   - every instance INACTIVE_CLEAN, every lock free, every record list empty
#     after the clean stop.
# Source it after setting nothing; knobs (env):
#   FAULT_ACCOUNTS (200) FAULT_INFLIGHT (8) FAULT_H_MS (20) FAULT_T_MS (1000)
#   FAULT_SEED (random)  FAULT_VERBOSE
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
FAULT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ACCOUNTS=${FAULT_ACCOUNTS:-200}
INFLIGHT=${FAULT_INFLIGHT:-8}
H_MS=${FAULT_H_MS:-20}
T_MS=${FAULT_T_MS:-1000}
INITIAL=$CF_WORK/f0.initial
NSYS=3
declare -A SYS_PID=() NODE_RC=() NODE_ARGS=() NODE_JOURNAL=()
KILLED=0      # workload processes that died by a signal (their journal tail may be lost)
OVER=0        # incarnations ended by a lost connection (75): one commit each may be indeterminate
CRASHES=0     # crashes we caused or armed that fired
declare -A FIRED=() # point -> times it fired
SRV_ARGS=()

require_transport
require_bin CFSERVER CFNODE CFCTL

inst_of() { printf 'NTS%03d' "${1#SYS}"; }

# cluster_init [cfserver args...]: data directory, initial copy, cfserver.
cluster_init() {
	mkdir -p "$DATA"
	cf_hosts_up "$NSYS" "$DATA" # CF_HOSTS=netns: SYS1..SYSn on hostA.., the CF on their bridge
	"$CFCTL" mkdata --data "$DATA" --accounts "$ACCOUNTS" --balance 1000 >/dev/null || fail "cfctl mkdata"
	cp "$DATA/f0.cfd" "$INITIAL"
	SRV_ARGS=(--hb-interval "$H_MS" --hb-timeout "$T_MS" "$@")
	start_cfserver "${SRV_ARGS[@]}" || fail "cfserver did not start"
	SRV_PORT=$CF_PORT
}

# server_restart [env...]: start cfserver again on the same port (and --nvram image, if any).
server_restart() {
	local pf=$CF_WORK/cfserver.port
	rm -f "$pf"
	env "$@" "$CFSERVER" --listen "$CF_HOST:$SRV_PORT" --port-file "$pf" --transport "$CF_TRANSPORT" \
		--cluster-key "$CF_KEYFILE" "${SRV_ARGS[@]}" >>"$CF_WORK/cfserver.log" 2>&1 &
	CFSERVER_PID=$!
	track_pid "$CFSERVER_PID"
	wait_for "${CF_START_TIMEOUT_S:-10}" test -s "$pf" || fail "cfserver did not restart on port $SRV_PORT (see cfserver.log)"
	log "cfserver restarted, pid $CFSERVER_PID"
}

# node_start SYS [VAR=VALUE...] [-- cfnode args...]: start a system with the bank
# workload (harness.sh cf_node: on SYS's host, with its fence arguments).
node_start() {
	local sys=$1
	shift
	local envs=() extra=()
	while [ $# -gt 0 ]; do
		if [ "$1" = "--" ]; then
			shift
			extra=("$@")
			break
		fi
		envs+=("$1")
		shift
	done
	# one journal per incarnation, named after its bank seed (jcheck.py regenerates
	# a killed writer's unwritten tail from it)
	local seed=$((RANDOM * 1073741824 + RANDOM * 32768 + RANDOM + 1))
	NODE_JOURNAL[$sys]=$CF_WORK/$sys.seed$seed.journal
	# cf_node's command line, with the VAR=VALUEs for cfnode alone
	cf_node_argv "$sys" "$(inst_of "$sys")" --policy auto --workload bank --accounts "$ACCOUNTS" --duration 3600 \
		--inflight "$INFLIGHT" --seed "$seed" --journal "${NODE_JOURNAL[$sys]}" \
		--recovery-journal "$CF_WORK/$sys.recovery" "${extra[@]}"
	start_bg "$sys" env CF_FAULT_LOG=1 "${envs[@]}" "${CF_NODE_ARGV[@]}"
	SYS_PID[$sys]=$BG_PID
	NODE_RC[$sys]=
	[ -n "${FAULT_VERBOSE:-}" ] && log "$sys started pid ${SYS_PID[$sys]} ${envs[*]} ${extra[*]}"
	return 0
}

node_alive() { [ -n "${SYS_PID[$1]:-}" ] && [ -z "${NODE_RC[$1]:-}" ] && kill -0 "${SYS_PID[$1]}" 2>/dev/null; }
node_state() { awk '{print $3}' "/proc/${SYS_PID[$1]}/stat" 2>/dev/null; } # R S T Z ...
node_exited() { # SYS: true once the process is gone (a zombie child counts)
	local s
	s=$(node_state "$1")
	[ -z "$s" ] || [ "$s" = Z ]
}

# node_reap SYS: wait for an exited system, record its exit code (128+sig when killed).
node_reap() {
	local sys=$1 rc
	[ -n "${NODE_RC[$sys]:-}" ] && return 0
	wait "${SYS_PID[$sys]}" 2>/dev/null
	rc=$?
	NODE_RC[$sys]=$rc
	[ "$rc" -ge 128 ] && KILLED=$((KILLED + 1))
	[ "$rc" = 75 ] && OVER=$((OVER + 1))
	# how much of its journal may be missing: nothing. cf_bank.c writes every
	# line with write(2) and an intent line "P ..." before each commit, so a
	# transfer whose commit a kill cut off is pending (indeterminate), not lost.
	local tail=0
	[ -n "${NODE_JOURNAL[$sys]:-}" ] && echo "$tail" >"${NODE_JOURNAL[$sys]}.tail"
	[ -n "${FAULT_VERBOSE:-}" ] && log "$sys (pid ${SYS_PID[$sys]}) exited $rc"
	return 0
}

# node_wait_exit SYS TIMEOUT_S: bounded wait for the process to end; reaps it.
node_wait_exit() {
	wait_for "$2" node_exited "$1" || return 1
	node_reap "$1"
}

# node_stop SYS: clean stop (SIGTERM: commit what is open, leave); expects exit 0.
node_stop() {
	local sys=$1
	node_alive "$sys" || {
		node_reap "$sys"
		return 0
	}
	kill -CONT "${SYS_PID[$sys]}" 2>/dev/null
	kill -TERM "${SYS_PID[$sys]}" 2>/dev/null
	node_wait_exit "$sys" 30 || {
		kill -KILL "${SYS_PID[$sys]}"
		node_reap "$sys"
		fail "$sys did not stop on SIGTERM within 30 s"
	}
}

# The fired fault points, from the systems' and the server's logs.
count_fired() {
	FIRED=()
	local p
	while read -r p; do # (a here-string, not < <(...): the rig's guest has no /dev/fd)
		[ -n "$p" ] && FIRED[$p]=$((${FIRED[$p]:-0} + 1))
	done <<<"$(grep -ho 'cf-fault: [a-z_.]* fires' "$CF_WORK"/*.log 2>/dev/null | awk '{print $2}')"
}
fired_total() { grep -ho 'cf-fault: [a-z_.]* fires' "$CF_WORK"/*.log 2>/dev/null | wc -l; }
fired_point() { grep -hq "cf-fault: $1 fires" "$CF_WORK"/*.log 2>/dev/null; }

# Is the point compiled into the binaries? (the name is a string literal at its CF_FAULT())
point_compiled() {
	grep -qaF -- "$1" "$CFSERVER" "$CFNODE" "$(dirname "$CFNODE")"/libcfnode.so* 2>/dev/null
}

# The CF's state, read as an operator does (harness.sh cf_status_field: cfctl status --json).
# unsettled [INST...]: of INST... (default: every home instance NTS001..), those not
# settled, a line each with what was seen. Settled: INACTIVE_CLEAN, or ACTIVE under its
# home system's current incarnation (not stale) with no recovery running. One status read.
unsettled() {
	local out want="$*"
	local s
	[ -n "$want" ] || for s in $(seq 1 "$NSYS"); do want="$want $(inst_of "SYS$s")"; done
	out=$(cf_status_field instances state owner home owner_epoch recovery.phase -- systems state epoch) || {
		echo "cfctl status failed"
		return
	}
	awk -v want="$want" '
		$1 ~ /^SYS/ && NF == 3 { sst[$1] = $2; sep[$1] = $3; next }
		{ st[$1] = $2; ow[$1] = $3; ho[$1] = $4; ep[$1] = $5; ph[$1] = $6 }
		END {
			n = split(want, w, " ")
			for (i = 1; i <= n; i++) {
				x = w[i]
				if (st[x] == "INACTIVE_CLEAN") continue
				if (st[x] == "ACTIVE" && ow[x] == ho[x] && sst[ho[x]] == "ACTIVE" && sep[ho[x]] == ep[x] &&
				    (ph[x] == "none" || ph[x] == "done")) continue
				printf "%s %s owner %s home %s epoch %s phase %s\n", x, st[x] == "" ? "absent" : st[x], ow[x], ho[x], ep[x], ph[x]
			}
		}' <<<"$out"
}
inst_settled() { [ -z "$(unsettled "$1")" ]; } # INST
inst_state() { cf_status_field inst "$1" state; }
sys_commits() { # SYS → its commits while ACTIVE, nothing otherwise
	local st c
	read -r st c <<<"$(cf_status_field sys "$1" state commits)"
	[ "$st" = ACTIVE ] && [ "$c" != - ] && echo "$c"
}
insts_line() { unsettled | tr '\n' ';'; } # for failure messages: the instances not settled
# busy SYS [N]: its current incarnation committed more than N transfers (its journal: harness.sh
# cf_journal_commits); wait_progress TIMEOUT SYS N: it commits N more from now on.
busy() { [ "$(cf_journal_commits "${NODE_JOURNAL[$1]:-}")" -gt "${2:-10}" ]; }
wait_progress() { local base; base=$(cf_journal_commits "${NODE_JOURNAL[$2]:-}"); wait_for "$1" busy "$2" $((base + $3)); }
all_settled() { [ -z "$(unsettled)" ]; }

# wait_recovered INST [TIMEOUT_S]
wait_recovered() { wait_for "${2:-30}" inst_settled "$1" || fail "$1 not recovered: $(unsettled "$1")"; }

# cluster_start [SYS VAR=VALUE...]: start SYS1..SYSn, wait until each commits.
cluster_start() {
	local s
	for s in $(seq 1 "$NSYS"); do node_start "SYS$s"; done
	for s in $(seq 1 "$NSYS"); do
		wait_for 20 busy "SYS$s" 5 || fail "SYS$s did not start committing"
	done
}

# restart_dead: restart every system that has exited (killed, fenced, or 75).
restart_dead() {
	local s
	for s in $(seq 1 "$NSYS"); do
		if ! node_alive "SYS$s" || node_exited "SYS$s"; then
			node_reap "SYS$s"
			node_start "SYS$s" "$@"
		fi
	done
}

# journal allowance: a system killed by a signal may have lost its journal's
# unwritten tail (cf_bank.c buffers lines); an incarnation that ended with 75
# may have had its last COMMIT land at the CF without the reply (indeterminate,
# never journaled). With intent lines ("P ...") the check is exact and needs none.
journal_allowance() {
	if grep -qs '^P ' "$CF_WORK"/SYS*.journal || ls "$CF_WORK"/SYS*.seed*.journal >/dev/null 2>&1; then
		echo 0
	else
		echo $((KILLED * ${FAULT_LOST_PER_KILL:-64} + OVER))
	fi
}

# check_invariants LABEL: stop every system cleanly, then check everything.
check_invariants() {
	local label=${1:-} s out rc
	for s in $(seq 1 "$NSYS"); do
		if node_alive "SYS$s"; then
			node_stop "SYS$s"
			[ "${NODE_RC[SYS$s]}" = 0 ] || log "$label: SYS$s exited ${NODE_RC[SYS$s]} on SIGTERM"
		else
			node_reap "SYS$s"
		fi
	done
	# every instance clean: nothing left to recover
	out=$(cf_status_field instances state) || fail "$label: cfctl status failed"
	if echo "$out" | awk '$2 != "INACTIVE_CLEAN" {bad = 1} END {exit !bad}'; then
		fail "$label: an instance is not INACTIVE_CLEAN after every system left: $(echo "$out" | tr '\n' ';')"
	fi
	locks_free "$label"
	if ! out=$("$CFCTL" verify --data "$DATA" 2>&1); then
		# which accounts and transfers: the journal check explains the difference
		local why
		why=$(python3 "$FAULT_DIR/jcheck.py" --initial "$INITIAL" --data "$DATA" --max-unknown 1000 \
			--fix-tails "$CF_WORK"/SYS*.journal "$CF_WORK"/SYS*.recovery 2>&1 | tail -n 15)
		fail "$label: cfctl verify: $out; journal check: $why"
	fi
	# journal check
	local allow
	allow=$(journal_allowance)
	out=$(python3 "$FAULT_DIR/jcheck.py" --initial "$INITIAL" --data "$DATA" --max-unknown "$allow" --fix-tails \
		"$CF_WORK"/SYS*.journal "$CF_WORK"/SYS*.recovery 2>&1)
	rc=$?
	[ $rc -eq 0 ] || fail "$label: journal check: $out"
	echo "$out" | grep -q warning && log "$label: $out"
	JCHECK_LAST=$(echo "$out" | tail -n 1)
	# a COMMIT and an ABORT for one transaction: its owner backed out what it had committed
	out=$(grep -h "have both a COMMIT and an ABORT" "$CF_WORK"/SYS*.log 2>/dev/null | head -n 2)
	[ -z "$out" ] || fail "$label: $out"
	check_counterparts "$label"
	# a volatile CF restarts with a fresh image: epochs (and incidents) begin again
	[ -n "${VOLATILE_CF:-}" ] || check_epochs "$label"
	[ -n "${FAULT_VERBOSE:-}" ] && log "$label: invariants hold ($JCHECK_LAST)"
	return 0
}

# locks_left: true, and says what, when a record list has an entry or a word of
# the lock table is not 0 (or either cannot be read); I4 wants neither once
# every system has left.
locks_left() {
	local out n
	out=$(cf_status_field instances lock_names_total) || { echo "cfctl status failed"; return 0; }
	if echo "$out" | awk '$2 != 0 {bad = 1} END {exit !bad}'; then
		echo "record-list entries left (instance, entries): $(echo "$out" | tr '\n' ';')"
		return 0
	fi
	n=$(cf_lock_words) || { echo "cfctl locks failed"; return 0; }
	[ "$n" = 0 ] && return 1
	echo "$n lock words still held: $(cf_ctl locks | head -n 6 | tr '\n' ';')"
}
locks_free() { local why; ! why=$(locks_left) || fail "$1: $why"; } # LABEL
# released LABEL INST...: no lock word and no record-list entry names these (recovered)
# instances. Check it before their homes rejoin: a home that takes its instance back
# clears what a counterpart left, and locks_free at the end would no longer see it.
released() {
	local label=$1 i n e
	shift
	for i in "$@"; do
		n=$(cf_lock_words "$i") || fail "$label: cfctl locks failed"
		e=$(cf_status_field inst "$i" lock_names_total) || fail "$label: cfctl status failed"
		[ "$n" = 0 ] && [ "$e" = 0 ] ||
			fail "$label: $i recovered, but $n lock word(s) and $e record-list entries still name it"
	done
}

# At most one counterpart per incident: one RECOVERY line per (inst, incident).
check_counterparts() {
	local dup
	dup=$(grep -ho 'RECOVERY {"inst":"[^"]*","incident":[0-9]*' "$CF_WORK"/SYS*.log 2>/dev/null | sort | uniq -d)
	[ -z "$dup" ] || fail "$1: more than one counterpart for: $dup"
}

# A restarted system rejoined as a new incarnation: its epochs strictly increase.
check_epochs() {
	local f
	for f in "$CF_WORK"/SYS*.log; do
		[ -f "$f" ] || continue
		grep -o 'as system #[0-9]* epoch [0-9]*' "$f" | awk -v f="$f" -v l="$1" '
			{ if (NR > 1 && $5 + 0 <= last) { printf "%s: %s rejoined with epoch %d after %d\n", l, f, $5, last; bad = 1 } last = $5 + 0 }
			END { exit bad }' >&2 || fail "$1: a restarted system did not rejoin with a higher epoch"
	done
}

# reset_cluster_logs: keep logs but start counting RECOVERY lines afresh is not
# needed: incidents only grow within one cfserver image.

# Kill a system the hard way (SIGKILL), counted as a crash.
crash() {
	kill -KILL "${SYS_PID[$1]}" 2>/dev/null
	node_wait_exit "$1" 10 || fail "$1 did not die on SIGKILL"
	CRASHES=$((CRASHES + 1))
}

# load_for MIN_MS SPAN_MS: let the bank run MIN_MS plus a random 0..SPAN_MS-1 ms (random, so
# that the next fault lands anywhere in a transaction or a batch). Load, not a wait for a
# condition: the systems are known to be committing when it starts.
load_for() {
	local ms=$(($1 + RANDOM % $2))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}
