#!/bin/bash
# SPDX-License-Identifier: MIT
# lib.sh - a cluster for the peer-recovery tests: cfserver, systems running
# cfnode on one data directory, and the checks every scenario ends with.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL

ACCOUNTS=${ACCOUNTS:-200}
# Generous T: a loaded CI machine must not fail systems by accident; tests of
# heartbeat silence set their own.
HB_TIMEOUT=${HB_TIMEOUT:-${CF_TEST_T_MS:-1000}} # the rig sets CF_TEST_T_MS for emulation

# cluster [cfserver args...]: cfserver plus the data directory.
cluster() {
	cf_hosts_up 4 "$DATA" # CF_HOSTS=netns: SYS1..SYS4 on hostA..hostD
	start_cfserver --hb-interval 5 --hb-timeout "$HB_TIMEOUT" "$@" || fail "cfserver did not start"
	"$CFCTL" mkdata --data "$DATA" --accounts "$ACCOUNTS" --balance 1000 >"$CF_WORK/mkdata.log" 2>&1 ||
		fail "cfctl mkdata: $(cat "$CF_WORK/mkdata.log")"
	cp "$DATA/f0.cfd" "$CF_WORK/f0.initial" # for the journal check in finish
}


# node SYS INST [cfnode args...]: a system with the bank workload (harness.sh
# cf_node: on SYS's host, with its fence arguments); PID in PID_SYS.
# CF_TEST_NODE_ARGS (word-split) goes before the test's own args, e.g.
# CF_TEST_NODE_ARGS="--group-commit on" to run a scenario with group commit.
# Logs append to $CF_WORK/SYS.log across restarts; each incarnation writes its
# own journal (jcheck.py reads consecutive intent lines of one journal as one
# commit group: a killed incarnation's last intent must not join the next one's).
JOURNAL_SEQ=0
node() {
	local sys=$1 inst=$2
	shift 2
	JOURNAL_SEQ=$((JOURNAL_SEQ + 1))
	eval "JOURNAL_$sys=\$CF_WORK/$sys.$JOURNAL_SEQ.journal"
	# shellcheck disable=SC2086
	cf_node "$sys" "$sys" "$inst" --workload bank --accounts "$ACCOUNTS" --duration 600 --inflight 8 \
		--journal "$CF_WORK/$sys.$JOURNAL_SEQ.journal" --recovery-journal "$CF_WORK/$sys.recovery" ${CF_TEST_NODE_ARGS:-} "$@"
	eval "PID_$sys=$NODE_PID"
}
pid_of() { eval "echo \${PID_$1}"; }

wait_inst() { # INST STATE [TIMEOUT]
	wait_for "${3:-20}" cf_inst_is "$1" "$2" || fail "$1 is not $2 but: $(cf_inst_state "$1")"
}
inst_owner() { cf_status_field inst "$1" owner; }
owner_is() { [ "$(inst_owner "$1")" = "$2" ]; }
# held_of INST → lock words of the whole table that name INST as a holder, either
# mode (cfctl locks: the words themselves, not the record list's view of them)
held_of() { cf_lock_words "$1"; }
locks_of() { # INST → locks held (per the lock words), from cfctl status --json; -1 if unknown
	local n
	n=$(cf_status_field inst "$1" locks) || n=-
	[ "$n" = - ] && n=-1
	echo "$n"
}
commits_of() { # SYS → its commits while ACTIVE, 0 otherwise
	local st c
	read -r st c <<<"$(cf_status_field sys "$1" state commits)"
	[ "${st:-}" = ACTIVE ] && [ "${c:-}" != - ] && echo "$c" || echo 0
}
# SYS's commits since it was last started: its current incarnation's journal (harness.sh).
commits_since_start() { cf_journal_commits "$(eval "echo \${JOURNAL_$1:-}")"; }
# Is SYS committing? Read from its journal, not through cfctl status (harness.sh cf_journal_commits).
committing() { [ "$(commits_since_start "$1")" -gt "${2:-5}" ]; }
wait_committing() { # SYS... : every one committed some work since its last start
	local s
	for s in "$@"; do
		wait_for 30 committing "$s" ||
			fail "$s does not commit: $(commits_since_start "$s") commits in its journal since it started (see $s.log)"
	done
}
stopped() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]; }
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

recoveries() { # INST [INCIDENT] → RECOVERY json lines for it
	local pat="RECOVERY {\"inst\":\"$1\",\"incident\":"
	[ -n "${2:-}" ] && pat="$pat$2,"
	grep -h "$pat" "$CF_WORK"/SYS*.log 2>/dev/null | sed 's/.*RECOVERY //'
}
has_recovery() { [ -n "$(recoveries "$@")" ]; }
wait_recovery() { # INST [INCIDENT] [TIMEOUT]
	wait_for "${3:-20}" has_recovery "$1" "${2:-}" || fail "no recovery of $1 ${2:+incident $2}"
}
counterpart_of() { recoveries "$@" | tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["counterpart"])'; }

# Stop every node cleanly, then check the data directory: the bank invariant
# (cfctl verify: the total and every record's crc) and, account by account, the
# journals (the fault suite's jcheck.py: the data equals the initial balances
# plus every committed transfer, so a backout that was skipped, or applied to a
# committed transfer, fails here even when the total holds).
finish() {
	local pid out
	for pid in "${CF_PIDS[@]:1}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
	for pid in "${CF_PIDS[@]:1}"; do
		for _ in $(seq 1 100); do gone "$pid" && break; sleep 0.05; done
	done
	"$CFCTL" verify --data "$DATA" >"$CF_WORK/verify.log" 2>&1 || fail "cfctl verify: $(cat "$CF_WORK/verify.log")"
	out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/../fault/jcheck.py" --initial "$CF_WORK/f0.initial" --data "$DATA" \
		--max-unknown 0 "$CF_WORK"/SYS*.journal "$CF_WORK"/SYS*.recovery 2>&1) || fail "journal check: $out"
	log "$(echo "$out" | tail -n 1)"
}

# Cross-host systems without network namespaces: a system in its own UTS
# namespace has another host name, which is all the fence agents look at.
have_uts() { unshare --uts true 2>/dev/null; }
# node_host HOST SYS INST [cfnode args...]: like node, with hostname HOST.
node_host() {
	local host=$1
	shift
	CF_NODE_HOSTNAME=$host node "$@"
}
# rec_field INST KEY...: fields of INST's recovery record in cfctl status --json,
# one status read, space-separated ("-" if absent)
rec_field() {
	local inst=$1
	shift
	cf_status_field inst "$inst" "${@/#/recovery.}"
}
fence_waiting() { [ "$(rec_field "$1" waiting)" = true ]; }
