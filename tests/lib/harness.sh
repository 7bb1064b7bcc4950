#!/bin/bash
# SPDX-License-Identifier: MIT
# harness.sh - helpers for cfplex integration tests. Source it:
#   . "$(dirname "$0")/../lib/harness.sh"
# It gives every test: a private work dir ($CF_WORK), a cluster key
# ($CF_KEYFILE), start_cfserver (ephemeral loopback port), wait_for, and a
# cleanup trap that kills every process it started (by PID and process group)
# and removes the work dir. It is the suites' one cluster library: every suite
# starts its systems with cf_node (on their hosts, with their fence
# arguments) and reads the CF's state only through cfctl's JSON, as an
# operator does (cf_status_field, cf_sys_state, cf_inst_state, cf_lock_words);
# the suites' own libs (tests/recovery, tests/fault, tests/node) add their
# workloads and checks on top.
#
# Environment:
#   CF_TRANSPORT  tcp (default) or verbs
#   CF_HOST       host the servers listen on / clients connect to (default 127.0.0.1)
#   CFSERVER, CFNODE, CFCTL, CF_TCLIENT ...  binaries (meson passes them with env:)
#   CF_KEEP_WORK  set to keep the work dir for debugging
#   CF_HOSTS      unset/"local": every system on this host (default);
#                 "netns": each system on its own namespace-host (tests/lib/hosts.sh:
#                 own network, UTS and mount namespaces, hostname hostA.., the
#                 data directory bind-mounted, the external fence agent fence_netns)
#   CF_TEST_BANK_RATE  every bank a test starts (cf_node_argv) begins at most this many
#                 transactions a second (cfnode --rate); the rig sets it: a closed
#                 loop at full speed takes every emulated CPU the rest of the test needs
#   CF_START_TIMEOUT_S  how long start_cfserver waits for the port (default 10 s, 60 s over verbs;
#                 a server formatting an image on a device under emulation needs more)
set -u

CF_TRANSPORT=${CF_TRANSPORT:-tcp}
CF_HOST=${CF_HOST:-127.0.0.1}
export CF_TRANSPORT CF_HOST

# A test that arms a fault point (CF_FAULT=... anywhere in its script) needs a build with them
# (-Dfault-injection=true, as the Makefile configures): meson says which (CF_FAULT_POINTS).
# CF_FAULT_ANYWAY=1: a test that arms them on purpose against binaries without them.
if [ "${CF_FAULT_POINTS:-1}" = 0 ] && [ -z "${CF_FAULT_ANYWAY:-}" ] && grep -q 'CF_FAULT=' "$0" 2>/dev/null; then
	echo "SKIP: $(basename "$0") arms fault points, and this build has none (configure with -Dfault-injection=true)"
	exit 77
fi

CF_HOSTS=${CF_HOSTS:-local}
case $CF_HOSTS in
local) ;;
netns) . "$(dirname "${BASH_SOURCE[0]}")/hosts.sh" ;;
*) echo "unknown CF_HOSTS=$CF_HOSTS (local or netns)" >&2; exit 1 ;;
esac
export CF_HOSTS

CF_PIDS=()
CF_WORK=$(mktemp -d "${TMPDIR:-/tmp}/cfplex-test.XXXXXX")
export CF_WORK
CF_KEYFILE=$CF_WORK/cluster.key
export CF_KEYFILE
DATA=$CF_WORK/data # the cluster's shared data directory (cf_node); a test may point it elsewhere
# python3 for the checks a shell cannot do (a free port, arithmetic on times): the system's
# when there is one. A version manager's shim first in PATH (pyenv's) costs 0.3 s a start, ten
# times python's own. The state the tests poll is read by cfctl alone (cf_status_field).
CF_PYTHON=${CF_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}
pass() {
	log "PASS: $*"
	exit 0
}
skip() {
	log "SKIP: $*"
	exit 77
}

# A random cluster key: 64 hex digits.
make_key() { # [file]
	local f=${1:-$CF_KEYFILE}
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$f"
	echo >>"$f"
	chmod 600 "$f"
}
make_key

# Record a PID for the cleanup trap.
track_pid() { CF_PIDS+=("$1"); }

# Kill a PID and its process group, wait for it (bounded).
kill_pid() { # pid [signal]
	local pid=$1 sig=${2:-TERM}
	kill -"$sig" "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cf_cleanup() {
	local rc=$?
	local pid
	for pid in "${CF_PIDS[@]}"; do
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${CF_PIDS[@]}"; do
		for _ in $(seq 1 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		# its own process group, if it made one (setsid)
		kill -KILL -- "-$pid" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$CF_WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- $f (last 40 lines) ----" >&2
			tail -n 40 "$f" >&2
		done
	fi
	# the namespace-hosts, by name (after their processes, killed above)
	[ "$CF_HOSTS" = netns ] && hosts_down
	if [ -z "${CF_KEEP_WORK:-}" ]; then
		rm -rf "$CF_WORK"
	else
		log "work dir kept: $CF_WORK"
	fi
	exit "$rc"
}
trap cf_cleanup EXIT
trap 'exit 130' INT TERM

# wait_for TIMEOUT_S CMD...: run CMD until it succeeds, at most TIMEOUT_S seconds.
wait_for() {
	local timeout=$1
	shift
	local deadline=$((SECONDS + timeout))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "timeout after ${timeout}s waiting for: $*"
			return 1
		fi
		sleep 0.05
	done
	return 0
}

# Exit 77 (skipped) when CF_TRANSPORT=verbs and this host has no RDMA device.
have_rdma_device() {
	if [ -d /sys/class/infiniband ] && [ -n "$(ls -A /sys/class/infiniband 2>/dev/null)" ]; then
		return 0
	fi
	if command -v ibv_devices >/dev/null 2>&1 &&
		ibv_devices 2>/dev/null | awk 'NR>2 && NF>0 {found=1} END {exit !found}'; then
		return 0
	fi
	return 1
}
require_transport() {
	case "$CF_TRANSPORT" in
	tcp) return 0 ;;
	verbs) have_rdma_device || skip "CF_TRANSPORT=verbs but no RDMA device (ibv_devices lists none)" ;;
	*) fail "unknown CF_TRANSPORT=$CF_TRANSPORT" ;;
	esac
}

require_bin() { # VAR...
	local v
	for v in "$@"; do
		[ -n "${!v:-}" ] && [ -x "${!v}" ] || skip "\$$v is not set to an executable (run under meson test)"
	done
}

# start_cfserver [NAME] -- [cfserver args...]
# or start_cfserver [cfserver args...] (name "cfserver").
# Starts cfserver on an ephemeral port of $CF_HOST, waits until it listens.
# Exports CF_PORT, CF_ADDR, CFSERVER_PID; its log is $CF_WORK/NAME.log.
start_cfserver() {
	local name=cfserver
	if [ "${2:-}" = "--" ]; then
		name=$1
		shift 2
	fi
	require_bin CFSERVER
	local pf=$CF_WORK/$name.port
	rm -f "$pf"
	"$CFSERVER" --listen "$CF_HOST:0" --port-file "$pf" --transport "$CF_TRANSPORT" \
		--cluster-key "$CF_KEYFILE" "$@" >>"$CF_WORK/$name.log" 2>&1 &
	CFSERVER_PID=$!
	track_pid "$CFSERVER_PID"
	# verbs: registering the image takes seconds under emulation, more on a loaded host
	local start_s=${CF_START_TIMEOUT_S:-10}
	[ "$CF_TRANSPORT" = verbs ] && start_s=${CF_START_TIMEOUT_S:-60}
	if ! wait_for "$start_s" test -s "$pf"; then
		kill -0 "$CFSERVER_PID" 2>/dev/null || log "cfserver exited early"
		tail -n 20 "$CF_WORK/$name.log" >&2
		return 1
	fi
	CF_PORT=$(cat "$pf")
	CF_ADDR=$CF_HOST:$CF_PORT
	export CF_PORT CF_ADDR CFSERVER_PID
	log "$name pid $CFSERVER_PID listening on $CF_ADDR ($CF_TRANSPORT)"
}

# Run a command in the background with its output in $CF_WORK/NAME.log; sets BG_PID.
start_bg() { # NAME CMD...
	local name=$1
	shift
	"$@" >>"$CF_WORK/$name.log" 2>&1 &
	BG_PID=$!
	track_pid "$BG_PID"
}

# cfserver_refuses "ARGS|EXIT|WORD"...: cfserver started with each ARGS must exit EXIT with an
# error that names WORD, before it builds any image (bad options change nothing).
cfserver_refuses() {
	local bad args rest want word out rc
	for bad in "$@"; do
		args=${bad%%|*}
		rest=${bad#*|}
		want=${rest%%|*}
		word=${rest#*|}
		# shellcheck disable=SC2086
		out=$(bounded 10 "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" $args 2>&1)
		rc=$?
		[ "$rc" = "$want" ] || fail "cfserver $args: exit $rc, not $want: $out"
		echo "$out" | grep -q -- "$word" || fail "cfserver $args: the error does not name $word: $out"
		echo "$out" | grep -q "CF image" && fail "cfserver $args: built an image before refusing: $out"
	done
}

# free_port [HOST]: a TCP port of HOST ($CF_HOST) that nobody listens on now.
free_port() {
	"$CF_PYTHON" -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "${1:-$CF_HOST}"
}

# Run a command with a hard time limit (seconds).
bounded() { # TIMEOUT_S CMD...
	local t=$1
	shift
	timeout --kill-after=5 "$t" "$@"
}

# cfctl against this test's CF with the cluster key, bounded (20 s).
cf_ctl() { # CFCTL-ARGS...
	bounded 20 "$CFCTL" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" "$@"
}

# The tests read the CF's state only through cfctl, as an operator does:
# cf_status_field QUERY [-- QUERY...]: fields from one read of `cfctl status`, each
# QUERY one `--field` (cfctl --help): space-separated ("-" if absent; KEY a.b is field b of
# object a), one line per QUERY:
#   sys NAME KEY...   a system          inst NAME KEY...   an instance
#   cf KEY...         the document's own fields (generation, restart.state)
#   systems KEY...    every system listed, a line each: NAME and its fields
#   instances KEY...  every instance listed, the same way
# Fails when the status cannot be read.
cf_status_field() {
	local q=() w=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			q+=(--field "${w[*]}")
			w=()
		else
			w+=("$1")
		fi
		shift
	done
	q+=(--field "${w[*]}")
	cf_ctl status "${q[@]}" 2>/dev/null
}

# cf_sys_state NAME → "STATE EPOCH CAUSE" (cause "-" when none, else in words:
# "FAILED 3 heartbeat silence"); "- - -" when the CF lists no system NAME.
cf_sys_state() { cf_status_field sys "$1" state epoch fail_cause; }
# cf_inst_state NAME → "STATE OWNER EPOCH INCIDENT" (owner "-" when none: "INACTIVE_FAILED - 0 1").
cf_inst_state() { cf_status_field inst "$1" state owner owner_epoch incident; }
# cf_sys_is / cf_inst_is NAME WORDS: the state line is WORDS or begins with them
# (cf_inst_is NTS001 ACTIVE; cf_sys_is SYS1 "FAILED 2 heartbeat silence").
cf_sys_is() { _cf_line_is "$(cf_sys_state "$1")" "$2"; }
cf_inst_is() { _cf_line_is "$(cf_inst_state "$1")" "$2"; }
_cf_line_is() { [ "$1" = "$2" ] || [[ $1 == "$2 "* ]]; }

# cf_journal_commits FILE: the transfers a bank journal (--journal) lists as
# committed: the lines that begin with a txid, not the "P" intents nor the "I"
# line; 0 before the file exists. The bank writes a line after each commit, so
# this tells "it commits" at no cost, where a status read is a console session
# and python: on a loaded 2-CPU machine with an ASan build such a read took
# 10-14 s, and a system armed to crash after 30 commits died between two reads.
cf_journal_commits() { local n; n=$(grep -c '^[0-9]' "$1" 2>/dev/null); echo "${n:-0}"; }

# cf_lock_words [INST]: how many words of the whole lock table are not 0 (with INST:
# name INST as a holder, either mode), from `cfctl locks`. Fails when it cannot be
# read, and when the CF lists no instance INST (a 0 must not hide a wrong name).
cf_lock_words() {
	local n
	if [ -n "${1:-}" ] && [ "$(cf_status_field inst "$1" state)" = - ]; then
		log "cf_lock_words: the CF lists no instance $1"
		return 1
	fi
	n=$(cf_ctl locks --field "cf ${1:+held_by.}${1:-words}" 2>/dev/null) || return 1
	[ "$n" = - ] && n=0
	echo "$n"
}

# cf_node_argv SYS INST [cfnode args...]: the command line of system SYS with
# home instance INST against this test's CF, in CF_NODE_ARGV: on SYS's host
# (cf_place: the command prefix, $DATA as that host sees it, its fence arguments;
# a --fence-agent among the args overrides them). With CF_NODE_HOSTNAME set the
# system runs in a UTS namespace of that host name (cross-host fencing on one
# machine) with cfnode's own fence default. The one place a test's cfnode
# command line is built.
cf_node_argv() {
	local sys=$1 inst=$2
	shift 2
	cf_place "$sys" "$DATA"
	if [ -n "${CF_NODE_HOSTNAME:-}" ]; then
		NODE_PREFIX=(unshare --uts sh -c 'hostname "$0" && exec "$@"' "$CF_NODE_HOSTNAME")
		NODE_FENCE=()
	fi
	CF_NODE_ARGV=("${NODE_PREFIX[@]}" "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE"
		--transport "$CF_TRANSPORT" --system "$sys" --instance "$inst" --data "$NODE_DATA" "${NODE_FENCE[@]}" "$@")
	# a bank without a rate of its own gets the test run's (CF_TEST_BANK_RATE)
	if [ -n "${CF_TEST_BANK_RATE:-}" ] && [[ " $* " == *" --workload bank "* ]] && [[ " $* " != *" --rate "* ]]; then
		CF_NODE_ARGV+=(--rate "$CF_TEST_BANK_RATE")
	fi
}

# cf_node LOG SYS INST [cfnode args...]: start system SYS (cf_node_argv) in the
# background, output appended to $CF_WORK/LOG.log; sets NODE_PID (tracked for
# cleanup; the prefixes exec, so it is cfnode's own pid). The environment of the
# call reaches cfnode (CF_FAULT=... cf_node ...).
cf_node() {
	local name=$1
	shift
	cf_node_argv "$@"
	start_bg "$name" "${CF_NODE_ARGV[@]}"
	NODE_PID=$BG_PID
}

# cf_hosts_up N DATA: with CF_HOSTS=netns, N namespace-hosts sharing DATA, and
# the CF's address on their bridge (CF_HOST); nothing otherwise. Call it before
# start_cfserver.
cf_hosts_up() {
	[ "$CF_HOSTS" = netns ] || return 0
	hosts_up "$1" "$2"
	CF_HOST=$HOSTS_CF_IP
	export CF_HOST
}

# cf_place SYS DATA: where system SYS runs. Sets NODE_PREFIX (the command
# prefix: nothing, or nsenter into SYS's host), NODE_DATA (the data directory
# as that host sees it) and NODE_FENCE (its fence arguments: the local agent on
# one host; across namespace-hosts those of HOSTS_FENCE (hosts.sh): the
# external fence_netns, since the local agent refuses other hosts by design, or
# the host's watchdog with the default fence, auto).
cf_place() {
	if [ "$CF_HOSTS" = netns ]; then
		host_argv "$(host_of "$1")" || fail "no host for $1"
		NODE_PREFIX=("${HOST_ARGV[@]}")
		NODE_DATA=$HOSTS_MNT
		host_fence_args "$(host_of "$1")" || fail "no fence for $1's host"
		NODE_FENCE=("${HOST_FENCE[@]}")
	else
		NODE_PREFIX=()
		NODE_DATA=$2
		NODE_FENCE=(--fence-agent local)
	fi
}
