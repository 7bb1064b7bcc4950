#!/bin/bash
# SPDX-License-Identifier: MIT
# multihost_duplex.sh - a duplexed CF across hosts (tests/lib/hosts.sh): CF A on hostD,
# CF B on hostE, SYS1..SYS3 on hostA..hostC, the data directory mounted on each system
# host. Every fence is a power fence, the external agent tests/lib/fence_netns: the CFs
# fence each other's host with it (--cf-fence, through a wrapper that names the
# namespaces), the systems each other's. ROUNDS rounds (default 2) of a network cut of
# the primary's host (its link to the bridge down): no system reaches it, nor does the
# other CF. Each round must see:
#   - the cut-off primary, hearing no system, not fence the secondary (the tie-breaker,
#     docs/design.md "A network cut between the CFs"): without it its immediate fence
#     would win and leave the cluster with a primary nobody reaches;
#   - the secondary fence the primary's host (powered off: no process left) after its
#     --duplex-fence-delay, and take over;
#   - every system keep its incarnation and switch to the new primary;
#   - after the cut heals, the old primary restarted on its host with its own command
#     line follow the new one and get in sync.
# At the end every invariant of lib.sh check_invariants (cfctl verify, jcheck.py, one
# counterpart per incident, every instance clean, every lock free).
export CF_HOSTS=netns HOSTS_FENCE=agent
. "$(dirname "$0")/lib.sh"
ulimit -c 0
ROUNDS=${1:-2}
LINK_MS=2000 FENCE_DELAY_MS=500 # T (FAULT_T_MS) is 1000: a cut primary fails its systems for silence first

mkdir -p "$DATA"
hosts_up 5 "$DATA" # hostA..C: systems; hostD, hostE: the CFs
"$CFCTL" mkdata --data "$DATA" --accounts "$ACCOUNTS" --balance 1000 >/dev/null || fail "cfctl mkdata"
cp "$DATA/f0.cfd" "$INITIAL"
declare -A CF_IP=([A]=10.211.$HOSTS_ID.14 [B]=10.211.$HOSTS_ID.15) CF_HOSTOF=([A]=hostD [B]=hostE) DX_PID=()
other() { [ "$1" = A ] && echo B || echo A; }
count() { # X PATTERN: lines of cfX.log that match
	local n
	n=$(grep -c "$2" "$CF_WORK/cf$1.log" 2>/dev/null)
	echo "${n:-0}"
}
switched() {
	local n
	n=$(grep -c "switched to CF" "$CF_WORK/$1.log" 2>/dev/null)
	echo "${n:-0}"
}

# the CFs' fence agent: fence_netns, told which namespaces are hosts (the agent reads
# its options on stdin; cfserver gives nodename= the other CF's host name)
FENCE_WRAP=$CF_WORK/cf_fence
cat >"$FENCE_WRAP" <<EOF
#!/bin/sh
{ cat; echo "netns_prefix=cfmh$HOSTS_ID-"; echo "log=$CF_WORK/fence_netns.log"; } | exec "$HOSTS_FENCE_AGENT"
EOF
chmod 755 "$FENCE_WRAP"

cf_start() { # X: pair member X on its host, always the same command line
	local x=$1 o
	o=$(other "$x")
	host_argv "${CF_HOSTOF[$x]}" || fail "no host for CF $x"
	"${HOST_ARGV[@]}" "$CFSERVER" --listen "${CF_IP[$x]}:7410" --duplex-listen "${CF_IP[$x]}:7411" \
		--duplex-pair "${CF_IP[$o]}:7411" --transport tcp --cluster-key "$CF_KEYFILE" \
		--hb-interval "$H_MS" --hb-timeout "$T_MS" --duplex-timeout "$LINK_MS" \
		--duplex-fence-delay "$FENCE_DELAY_MS" --cf-fence "$FENCE_WRAP" >>"$CF_WORK/cf$x.log" 2>&1 &
	DX_PID[$x]=$!
	track_pid "${DX_PID[$x]}"
}

cf_start A
wait_for 30 grep -q "listening on" "$CF_WORK/cfA.log" || fail "A did not start: $(tail -n 3 "$CF_WORK/cfA.log")"
cf_start B
wait_for 60 grep -q "in sync with the primary" "$CF_WORK/cfB.log" || fail "B not in sync: $(tail -n 3 "$CF_WORK/cfB.log")"
export CF_ADDR="${CF_IP[A]}:7410,${CF_IP[B]}:7410"
cluster_start
PRIMARY=A

for k in $(seq 1 "$ROUNDS"); do
	# 0.5-1.5 s of load (was 1-2.9 s; the systems committed again at the end of the last round)
	load_for 500 1000
	p=$PRIMARY
	s=$(other "$p")
	hp=${CF_HOSTOF[$p]}
	n0=$(count "$s" "taking over as the primary CF")
	nh=$(count "$p" "no system heard for")
	declare -A SW0=()
	for x in SYS1 SYS2 SYS3; do SW0[$x]=$(switched $x); done
	net_cut "$hp"
	CRASHES=$((CRASHES + 1))
	wait_for 60 eval '[ "$(count '"$s"' "taking over as the primary CF")" -gt '"$n0"' ]' ||
		fail "round $k: $s did not take over from the cut-off $p: $(tail -n 4 "$CF_WORK/cf$s.log")"
	[ "$(count "$p" "no system heard for")" -gt "$nh" ] ||
		fail "round $k: the cut-off primary $p did not hold back its fence: $(grep duplex "$CF_WORK/cf$p.log" | tail -n 3)"
	grep -q "nodename=$hp: off" "$CF_WORK/fence_netns.log" ||
		fail "round $k: $s did not power off $hp: $(tail -n 3 "$CF_WORK/fence_netns.log")"
	wait_for 20 eval '[ -z "$(host_pids '"$hp"')" ]' || fail "round $k: $hp still runs: $(host_pids "$hp")"
	wait "${DX_PID[$p]}" 2>/dev/null
	for x in SYS1 SYS2 SYS3; do
		wait_for 60 eval '[ "$(switched '"$x"')" -gt '"${SW0[$x]}"' ] || ! node_alive '"$x" ||
			fail "round $k: $x did not switch to $s: $(tail -n 3 "$CF_WORK/$x.log")"
		node_alive $x || { node_reap $x; fail "round $k: $x exited ${NODE_RC[$x]} instead of switching to $s: $(tail -n 3 "$CF_WORK/$x.log")"; }
	done
	net_heal "$hp"
	PRIMARY=$s
	n1=$(count "$p" "in sync with the primary")
	cf_start "$p"
	for x in SYS1 SYS2 SYS3; do
		wait_progress 60 $x 3 || fail "round $k: $x did not commit on $s: $(tail -n 3 "$CF_WORK/$x.log")"
	done
	wait_for 60 eval '[ "$(count '"$p"' "in sync with the primary")" -gt '"$n1"' ]' ||
		fail "round $k: $p did not follow $s after the cut healed: $(tail -n 3 "$CF_WORK/cf$p.log")"
	log "multihost_duplex: round $k: $hp cut off: $p held its fence, $s powered $hp off and took over, every system switched; $p back as the secondary"
done
check_invariants multihost_duplex
log "multihost_duplex: $ROUNDS network cuts of the primary's host; $JCHECK_LAST"
pass "multihost_duplex"
