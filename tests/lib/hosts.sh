#!/bin/bash
# SPDX-License-Identifier: MIT
# hosts.sh - several "hosts" on one machine for the multi-host tests. Source it
# (tests/lib/harness.sh does when CF_HOSTS=netns).
#
# Topology of one test (ID: a number free on this machine, chosen by hosts_up):
#
#   root namespace                          host namespaces (net + UTS + mount)
#   bridge cfmhID  10.211.ID.1/24  ──veth cfmhID-hA ── eth0 10.211.ID.11  hostA
#     cfserver listens here        ──veth cfmhID-hB ── eth0 10.211.ID.12  hostB
#                                  ──veth cfmhID-hC ── eth0 10.211.ID.13  hostC ...
#
# Each host is a network namespace cfmhID-hostX (ip netns), plus a UTS namespace
# with hostname hostX and a mount namespace, both pinned by a small holder
# process that lives in the root network namespace (so that `ip netns pids`
# lists only the host's own processes: "every process of the host"). In the
# host's mount namespace the shared data directory ($HOSTS_STORE, the
# "storage server's" copy) is bind-mounted at $HOSTS_MNT, the same path on
# every host; the root namespace sees an empty directory there. NFS would be
# the real shared configuration, but it needs the kernel nfsd, which this
# machine's kernel does not have (no /proc/fs/nfsd, nfs absent from
# /proc/filesystems): see docs/design.md, "Storage across hosts".
#
#   hosts_up N [STORE]   N hosts hostA.. (N <= 8); STORE is the directory to
#                        share (default $CF_WORK/data). Sets HOSTS_ID, HOSTS_CF_IP
#                        (the CF's address), HOSTS_MNT (the data path on hosts).
#   host_of SYSn         hostA for SYS1, hostB for SYS2, ...
#   host_exec HOST CMD.. run CMD on HOST (its net, UTS and mount namespaces)
#   host_argv HOST       HOST_ARGV=(prefix); "${HOST_ARGV[@]}" CMD & keeps CMD's PID
#   host_pids HOST       every process of HOST
#   host_kill HOST       SIGKILL every process of HOST, bounded wait until gone
#   net_cut HOST / net_heal HOST   the host's link to the bridge down / up
#   hosts_down           kill every host process, remove namespaces, veths,
#                        bridge, by name; idempotent; installed in the EXIT trap
#   HOSTS_FENCE          how a failed system's host is fenced (env, default agent):
#                        agent: the external agent below, a power fence;
#                        watchdog: each host runs a watchdog (host_watchdog), the
#                        cfnodes pet it (--watchdog FIFO) and keep the default
#                        --fence-agent auto, so a counterpart on another host
#                        waits the target's watchdog out (phase watchdog-wait)
#   HOSTS_WD_MS          the watchdog timeout in watchdog mode (default 1000 ms)
#   HOSTS_FENCE_AGENT    path of the external fence agent (tests/lib/fence_netns)
#   HOSTS_FENCE_ARGS     (array) the cfnode arguments that select the fence of
#                        HOSTS_FENCE for this topology: the agent, which maps
#                        nodename=hostX to the netns cfmhID-hostX; or nothing
#                        (auto) in watchdog mode, host_fence_args adds --watchdog
#   host_watchdog HOST   start HOST's watchdog unless it runs: the stand-in
#                        tests/recovery/wd_standin.py on HOST, FIFO $CF_WORK/wd-HOST.fifo,
#                        log $CF_WORK/wd-HOST.log; on a missed pet it resets the
#                        host: every process of its network namespace killed
#   host_fence_args HOST HOST_FENCE=(the cfnode fence arguments for a system on HOST);
#                        in watchdog mode it starts the host's watchdog first
HOSTS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOSTS_FENCE_AGENT=$HOSTS_LIB/fence_netns
HOSTS_WD_STANDIN=$HOSTS_LIB/../recovery/wd_standin.py
HOSTS_FENCE=${HOSTS_FENCE:-agent}
HOSTS_WD_MS=${HOSTS_WD_MS:-1000}
HOSTS_ID=
HOSTS_N=0
declare -A HOSTS_HOLDER=() HOSTS_WD_PID=()

_hosts_letter() { printf "\\$(printf %03o $((65 + $1)))"; } # 0 -> A
host_of() { echo "host$(_hosts_letter $((${1#SYS} - 1)))"; }
_hosts_ns() { echo "cfmh$HOSTS_ID-$1"; } # hostA -> cfmh17-hostA
_hosts_veth() { echo "cfmh$HOSTS_ID-h${1#host}"; }

hosts_require() {
	[ "$(id -u)" = 0 ] || skip "multi-host topology needs root (network namespaces)"
	local c
	for c in ip unshare nsenter setpriv; do command -v $c >/dev/null || skip "multi-host topology needs $c"; done
}

# A free ID: no bridge of that name and no address in its subnet on this machine.
_hosts_pick_id() {
	local i try
	for try in $(seq 1 50); do
		i=$((RANDOM % 200 + 20))
		ip link show "cfmh$i" >/dev/null 2>&1 && continue
		# a veth of an earlier run's host may outlive its namespace's deletion (a TCP
		# socket still retransmitting to a cut host pins the namespace): not that ID
		ip -br link 2>/dev/null | grep -q "^cfmh$i-" && continue
		ip -4 addr show | grep -q "inet 10\.211\.$i\." && continue
		ls /run/netns 2>/dev/null | grep -q "^cfmh$i-" && continue
		echo "$i"
		return 0
	done
	return 1
}

hosts_up() { # N [STORE]
	local n=$1 store=${2:-$CF_WORK/data} i h ns veth
	hosts_require
	[ "$n" -ge 1 ] && [ "$n" -le 8 ] || fail "hosts_up: 1..8 hosts"
	# the bridge's creation is the claim on the ID: parallel tests that drew the
	# same one find it taken and draw again
	local try
	for try in $(seq 1 20); do
		HOSTS_ID=$(_hosts_pick_id) || fail "hosts_up: no free 10.211.x.0/24 subnet"
		ip link add "cfmh$HOSTS_ID" type bridge 2>/dev/null && break
		HOSTS_ID=
	done
	[ -n "$HOSTS_ID" ] || fail "hosts_up: could not create a bridge cfmhN"
	HOSTS_N=$n
	HOSTS_STORE=$store
	HOSTS_MNT=$CF_WORK/mnt/data
	HOSTS_CF_IP=10.211.$HOSTS_ID.1
	export HOSTS_ID HOSTS_N HOSTS_STORE HOSTS_MNT HOSTS_CF_IP
	case $HOSTS_FENCE in
	agent) HOSTS_FENCE_ARGS=(--fence-agent "$HOSTS_FENCE_AGENT" --fence-arg "netns_prefix=cfmh$HOSTS_ID-"
		--fence-arg "log=$CF_WORK/fence_netns.log") ;;
	watchdog) HOSTS_FENCE_ARGS=() ;; # the default, --fence-agent auto
	*) fail "hosts_up: HOSTS_FENCE=$HOSTS_FENCE (agent or watchdog)" ;;
	esac
	mkdir -p "$store" "$HOSTS_MNT"
	ip addr add "$HOSTS_CF_IP/24" dev "cfmh$HOSTS_ID"
	ip link set "cfmh$HOSTS_ID" up
	for i in $(seq 0 $((n - 1))); do
		h=host$(_hosts_letter "$i")
		ns=$(_hosts_ns "$h")
		veth=$(_hosts_veth "$h")
		ip netns add "$ns" || fail "hosts_up: netns $ns"
		ip link add "$veth" type veth peer name eth0 netns "$ns" || fail "hosts_up: veth $veth"
		ip link set "$veth" master "cfmh$HOSTS_ID" up
		ip -n "$ns" addr add "10.211.$HOSTS_ID.$((11 + i))/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
	done
	# UTS + mount namespaces after every netns exists: the holders' mount
	# namespaces are copies that must already see /run/netns/* (the fence agent
	# running on one host names the others by their netns).
	for i in $(seq 0 $((n - 1))); do
		h=host$(_hosts_letter "$i")
		# the holder: hostname, the data directory's mount, then it sleeps until
		# hosts_down kills it by PID, or until the test's shell dies (pdeathsig:
		# a test killed with SIGKILL leaves no holder behind)
		unshare --uts --mount --propagation slave -- setpriv --pdeathsig KILL -- /bin/sh -c '
			hostname "$1" && mount --bind "$2" "$3" && echo ready && exec sleep 1000000' sh "$h" "$store" "$HOSTS_MNT" \
			>"$CF_WORK/holder-$h.out" 2>&1 &
		HOSTS_HOLDER[$h]=$!
		echo "${HOSTS_HOLDER[$h]}" >"$CF_WORK/holder-$h.pid"
	done
	for h in "${!HOSTS_HOLDER[@]}"; do
		wait_for 10 grep -q ready "$CF_WORK/holder-$h.out" || fail "hosts_up: $h: $(cat "$CF_WORK/holder-$h.out")"
	done
	# reachability: every host reaches the CF address (a TCP connect to a closed
	# port is refused: the path works; no ping on this machine)
	for i in $(seq 0 $((n - 1))); do
		h=host$(_hosts_letter "$i")
		wait_for 10 _hosts_reaches "$h" || fail "hosts_up: $h cannot reach $HOSTS_CF_IP"
	done
	log "hosts up: $n hosts (cfmh$HOSTS_ID-host*), CF at $HOSTS_CF_IP, data at $HOSTS_MNT on each"
}

# host_argv HOST: HOST_ARGV=(the command prefix that runs a program on HOST).
# `"${HOST_ARGV[@]}" prog args &` keeps prog's PID in $! (nsenter execs it).
host_argv() {
	local holder=${HOSTS_HOLDER[$1]:-}
	[ -n "$holder" ] || {
		echo "host_argv: no host $1" >&2
		return 1
	}
	HOST_ARGV=(nsenter --net="/run/netns/$(_hosts_ns "$1")" --uts="/proc/$holder/ns/uts"
		--mount="/proc/$holder/ns/mnt" --wd="$PWD" --)
}
host_exec() { # HOST CMD...
	host_argv "$1" || return 127
	shift
	"${HOST_ARGV[@]}" "$@"
}

_hosts_reaches() { # HOST
	host_exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$HOSTS_CF_IP/9" 2>&1 | grep -q refused
}

host_pids() { ip netns pids "$(_hosts_ns "$1")" 2>/dev/null; }

host_kill() { # HOST: power off: SIGKILL everything, bounded wait until nothing is left
	local h=$1 p
	for _ in $(seq 1 100); do
		p=$(host_pids "$h")
		[ -z "$p" ] && return 0
		# shellcheck disable=SC2086
		kill -KILL $p 2>/dev/null
		sleep 0.02
	done
	log "host_kill $h: still running: $(host_pids "$h" | tr '\n' ' ')"
	return 1
}

_hosts_running() { # PID: alive and not a zombie
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

host_watchdog() { # HOST
	local h=$1 pid=${HOSTS_WD_PID[$1]:-} n
	if [ -n "$pid" ] && _hosts_running "$pid"; then return 0; fi
	[ -n "$pid" ] && wait "$pid" 2>/dev/null # reap the one that fired
	host_argv "$h" || return 1
	echo "net:self" >"$CF_WORK/wd-$h.targets"
	n=$(grep -c "listening on" "$CF_WORK/wd-$h.log" 2>/dev/null)
	"${HOST_ARGV[@]}" python3 "$HOSTS_WD_STANDIN" "$CF_WORK/wd-$h.fifo" "$HOSTS_WD_MS" "$CF_WORK/wd-$h.targets" \
		"${HOSTS_WD_MAX_S:-7200}" >>"$CF_WORK/wd-$h.log" 2>&1 &
	HOSTS_WD_PID[$h]=$!
	# it reads the FIFO once it logged that it listens (cfnode refuses a FIFO nobody reads).
	# A hang bound: under a load of 12 on 2 cores python3 (a pyenv shim here) took 13 s
	# to get there
	wait_for 60 _hosts_wd_listening "$h" "${n:-0}" ||
		fail "host_watchdog $h: the stand-in did not start: $(tail -n 3 "$CF_WORK/wd-$h.log")"
}
_hosts_wd_listening() { [ "$(grep -c "listening on" "$CF_WORK/wd-$1.log" 2>/dev/null)" -gt "$2" ]; }
host_fence_args() { # HOST
	HOST_FENCE=("${HOSTS_FENCE_ARGS[@]}")
	[ "$HOSTS_FENCE" = watchdog ] || return 0
	host_watchdog "$1" || return 1
	HOST_FENCE+=(--watchdog "$CF_WORK/wd-$1.fifo" --watchdog-timeout "$HOSTS_WD_MS")
}
# host_wd_fired HOST: how many times HOST's watchdog reset it (confirmed empty)
host_wd_fired() { grep -c "host reset: .* none left" "$CF_WORK/wd-$1.log" 2>/dev/null; }

net_cut() { ip link set "$(_hosts_veth "$1")" down; }
net_heal() { ip link set "$(_hosts_veth "$1")" up; }


hosts_down() {
	[ -n "$HOSTS_ID" ] || return 0
	local ns h pid
	for ns in $(ls /run/netns 2>/dev/null | grep "^cfmh$HOSTS_ID-"); do
		# shellcheck disable=SC2046
		kill -CONT $(ip netns pids "$ns") 2>/dev/null
		# shellcheck disable=SC2046
		kill -KILL $(ip netns pids "$ns") 2>/dev/null
	done
	for h in "${!HOSTS_HOLDER[@]}"; do
		pid=${HOSTS_HOLDER[$h]}
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in $(ls /run/netns 2>/dev/null | grep "^cfmh$HOSTS_ID-"); do
		for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.05; done
		ip netns del "$ns" 2>/dev/null # takes its veth pair with it
	done
	ip link del "cfmh$HOSTS_ID" 2>/dev/null
	HOSTS_ID=
}
