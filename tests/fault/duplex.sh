#!/bin/bash
# SPDX-License-Identifier: MIT
# duplex.sh - a duplexed CF under the bank load (docs/design.md, "A duplexed CF").
#
# Two cfservers, A and B, a pair (--duplex-listen own link, --duplex-pair the other's):
# one serves, the other follows it, DRAM images (the case where a lone CF's death loses
# the undo logs). Every start of A or B, first or after a death, is the same command
# line: the roles are decided at start (a CF restarted while the other serves follows it). Three systems run the bank with --cf A,B. ROUNDS rounds (default 3), each
# after 1-3 s of load, of one of:
#   kill      kill -9 of the primary
#   together  kill -9 of a system and of the primary at once
#   stop      SIGSTOP of the primary beyond the link timeout: the secondary must
#             fence it (SIGKILL) before it takes over
#   secondary kill -9 of the secondary: the primary fences it (already gone), runs
#             alone and says so; the secondary is restarted and copies the image
#             again while the cluster runs
# After a primary loss the secondary must take over and every system that was not
# killed must switch to it keeping its incarnation (docs/design.md, "Incarnations
# kept across a switch"): same process, same epoch, "switched to CF" in its log, and
# committing again; a system killed with the primary is failed by the new primary
# when its resume window closes, recovered by a peer, and restarted. The lost CF
# is restarted as the new secondary and must get in sync.
# At the end every journal must be explained exactly (jcheck.py), every instance
# clean, every lock free, and the total conserved.
# usage: duplex.sh [ROUNDS [MIN_TAKEOVERS]]   env: DUPLEX_SEED (random)
# MIN_TAKEOVERS (default 0): go on past ROUNDS until at least this many primaries were lost
# (a fifth of the rounds kill the secondary instead: the soak suite counts on a number of
# primary deaths, not only on a number of rounds)
. "$(dirname "$0")/lib.sh"
ulimit -c 0

ROUNDS=${1:-3}
MIN_TAKEOVERS=${2:-0}
SEED=${DUPLEX_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
log "duplex: $ROUNDS rounds, seed $SEED ($CF_TRANSPORT)"

declare -A DX_PORT=() DX_LINK=() DX_PID=()
# link silence that loses the other CF, and the secondary's delay before it fences a live
# primary: short on tcp (SIGSTOP rounds stay short), long under the rig's CPU emulation
if [ "$CF_TRANSPORT" = verbs ]; then
	LINK_MS=${DUPLEX_LINK_MS:-3000} FENCE_DELAY_MS=${DUPLEX_FENCE_DELAY_MS:-3000}
else
	LINK_MS=${DUPLEX_LINK_MS:-300} FENCE_DELAY_MS=${DUPLEX_FENCE_DELAY_MS:-300}
fi

# Over verbs a smaller image (8 instances, 1 MiB logs: about 20 MB, not 143): every start of a
# secondary copies the whole image over the link, 7 s for 143 MB under the rig's CPU emulation,
# once per round; the bank's three systems use 3 instances and little of their logs
DX_GEO=()
[ "$CF_TRANSPORT" = verbs ] && DX_GEO=(--max-instances 8 --log-size 1M)


# cf_start X [args]: pair member X on its fixed ports (its log cfX.log), always alike
cf_start() {
	local x=$1
	shift
	"$CFSERVER" --listen "$CF_HOST:${DX_PORT[$x]}" --duplex-listen "$CF_HOST:${DX_LINK[$x]}" \
		--transport "$CF_TRANSPORT" --cluster-key "$CF_KEYFILE" --hb-interval "$H_MS" --hb-timeout "$T_MS" \
		--duplex-pair "$CF_HOST:${DX_LINK[$(other "$x")]}" --duplex-timeout "$LINK_MS" \
		--duplex-fence-delay "$FENCE_DELAY_MS" "${DX_GEO[@]}" "$@" >>"$CF_WORK/cf$x.log" 2>&1 &
	DX_PID[$x]=$!
	track_pid "${DX_PID[$x]}"
}

count() { # X PATTERN: lines of cfX.log that match (0 before it exists)
	local n
	n=$(grep -c "$2" "$CF_WORK/cf$1.log" 2>/dev/null)
	echo "${n:-0}"
}
switched() { # SYS: how often it kept its incarnation across a switch of CF
	local n
	n=$(grep -c "switched to CF" "$CF_WORK/$1.log" 2>/dev/null)
	echo "${n:-0}"
}
other() { [ "$1" = A ] && echo B || echo A; }

# secondary_launch X: X follows the primary; secondary_wait X: it must get in sync
declare -A SYNC0=()
secondary_launch() {
	local x=$1
	SYNC0[$x]=$(count "$x" "in sync with the primary")
	cf_start "$x" # the same command line: it finds the other serving, and follows it
}
secondary_wait() {
	local x=$1
	wait_for 60 eval '[ "$(count '"$x"' "in sync with the primary")" -gt '"${SYNC0[$x]}"' ]' ||
		fail "duplex: $x did not get in sync with $(other "$x"): $(tail -n 3 "$CF_WORK/cf$x.log")"
	# only A's very first start, with B not yet running, may decide to serve its own image
	local first=0
	[ "$x" = A ] && first=1
	[ "$(count "$x" "serving as the primary")" -le "$first" ] ||
		fail "duplex: $x served its own image beside $(other "$x"): $(grep 'serving as the primary' "$CF_WORK/cf$x.log" | tail -n 1)"
}
secondary_start() {
	secondary_launch "$1"
	secondary_wait "$1"
}

mkdir -p "$DATA"
cf_hosts_up "$NSYS" "$DATA"
"$CFCTL" mkdata --data "$DATA" --accounts "$ACCOUNTS" --balance 1000 >/dev/null || fail "cfctl mkdata"
cp "$DATA/f0.cfd" "$INITIAL"
for x in A B; do
	DX_PORT[$x]=$(free_port)
	DX_LINK[$x]=$(free_port)
done
PRIMARY=A
cf_start A
wait_for 30 grep -q "listening on" "$CF_WORK/cfA.log" || fail "duplex: A did not start: $(tail -n 3 "$CF_WORK/cfA.log")"
secondary_start B
CF_ADDR="$CF_HOST:${DX_PORT[A]},$CF_HOST:${DX_PORT[B]}"
export CF_ADDR
cluster_start

takeovers=0 alone=0 together=0 stopped=0 held=0
# Round 0 (fault-injection builds): a peer's instance held across the switch. SYS2,
# the counterpart of a killed SYS1, is frozen in the middle of its backout when the
# primary dies; at the new primary it still holds NTS001, recovers it again from its
# log after fencing SYS1 again (RECOVERY-HELD), and a restarted SYS1 takes it back.
held_round() {
	local rp=rec.mid_backout p=$PRIMARY s try
	s=$(other "$p")
	point_compiled $rp || { log "duplex: no fault points: the held-instance round is skipped"; return 0; }
	# SYS2 the only counterpart (SYS3 under policy operator from now on), frozen mid-backout
	node_stop SYS1
	node_stop SYS2
	node_stop SYS3
	node_start SYS2 CF_FAULT=$rp:stop:0
	node_start SYS3 -- --policy operator
	for x in SYS2 SYS3; do wait_for 20 busy $x 3 || fail "duplex: held round: $x did not start again"; done
	# what the checks below compare with, taken now: the primary must die within T of the
	# counterpart's freeze (or the CF declares the frozen one failed first)
	local n0 sw2 sw3
	n0=$(count "$s" "taking over as the primary CF")
	sw2=$(switched SYS2) sw3=$(switched SYS3)
	# SYS1 kills itself after a data write, so that its log holds an update to back out. A
	# kill at a random moment is not enough: most of SYS1's eight transactions wait for
	# locks or for their COMMIT to persist, and in one CI run over verbs eight kills in a
	# row left nothing to back out.
	for try in 1 2 3; do
		node_start SYS1 CF_FAULT=txn.after_data_write:kill:$((20 + RANDOM % 20))
		node_wait_exit SYS1 60 || fail "duplex: held round: SYS1 did not reach its fault point"
		CRASHES=$((CRASHES + 1))
		wait_for 20 eval '[ "$(node_state SYS2)" = T ]' && break
		log "duplex: held round: try $try: SYS1 left nothing to back out; again"
		wait_recovered NTS001
	done
	[ "$(node_state SYS2)" = T ] || fail "duplex: held round: the counterpart never froze at $rp"
	kill -KILL "${DX_PID[$p]}"
	wait "${DX_PID[$p]}" 2>/dev/null
	CRASHES=$((CRASHES + 1))
	wait_for 30 eval '[ "$(count '"$s"' "taking over as the primary CF")" -gt '"$n0"' ]' ||
		fail "duplex: held round: $s did not take over"
	grep -q "takeover: NTS001 stays ACTIVE, held by SYS2" "$CF_WORK/cf$s.log" ||
		fail "duplex: held round: NTS001 was not held by SYS2 in the copy: $(grep 'takeover:' "$CF_WORK/cf$s.log" | tail -n 4)"
	kill -CONT "${SYS_PID[SYS2]}"
	for x in SYS2 SYS3; do
		local n=$sw2
		[ $x = SYS3 ] && n=$sw3
		wait_for 60 eval '[ "$(switched '"$x"')" -gt '"$n"' ] || ! node_alive '"$x" ||
			fail "duplex: held round: $x did not switch to $s: $(tail -n 3 "$CF_WORK/$x.log")"
		node_alive $x || fail "duplex: held round: $x exited instead of switching: $(tail -n 3 "$CF_WORK/$x.log")"
	done
	grep -q 'RECOVERY-HELD {"inst":"NTS001"' "$CF_WORK/SYS2.log" ||
		fail "duplex: held round: SYS2 did not recover NTS001 again at $s: $(grep NTS001 "$CF_WORK/SYS2.log" | tail -n 3)"
	grep -q "recovery NTS001: held across a switch of CF: fencing its failed owner again" "$CF_WORK/SYS2.log" ||
		fail "duplex: held round: SYS2 did not fence SYS1 again before its backout"
	# SYS1 died after a data write and SYS2 froze before it marked anything ABORTed: the copy
	# of NTS001's log holds that in-flight update, and the backout at the new primary finds it.
	# (A copy whose scan stopped at a hole the previous incarnation left, under a head never
	# made durable, found nothing in flight here and left SYS1's data writes in place.)
	local held_txns
	held_txns=$(grep -o 'RECOVERY-HELD {"inst":"NTS001"[^}]*' "$CF_WORK/SYS2.log" | tail -n 1 | grep -o '"txns":[0-9]*')
	[ "${held_txns#*:}" -ge 1 ] 2>/dev/null ||
		fail "duplex: held round: SYS2 backed out nothing of NTS001 at $s (${held_txns:-no RECOVERY-HELD}), though SYS1 died with an update written to the data: $(grep 'NTS001: log read' "$CF_WORK/SYS2.log" | tail -n 2)"
	PRIMARY=$s
	secondary_launch "$p"
	node_start SYS1
	for x in SYS1 SYS2 SYS3; do
		wait_progress 60 $x 3 || fail "duplex: held round: $x did not commit on $s: $(tail -n 3 "$CF_WORK/$x.log")"
	done
	secondary_wait "$p"
	takeovers=$((takeovers + 1)) held=1
	log "duplex: round 0: SYS2 frozen mid-backout of NTS001 when the primary $p died: it recovered NTS001 again at $s"
}
held_round
k=0
while [ "$k" -lt "$ROUNDS" ] || { [ "$takeovers" -lt "$MIN_TAKEOVERS" ] && [ "$k" -lt $((2 * ROUNDS + MIN_TAKEOVERS)) ]; }; do
	k=$((k + 1))
	# 0.3-1.3 s of bank load between rounds (random, so that a kill lands anywhere in a
	# transaction or a batch; a transaction takes milliseconds, and every system has
	# committed again since the last round): load, not a wait for a condition. It was
	# 1-3.9 s, two thirds of the soak's 50 rounds (184 s) spent waiting.
	load_for 300 1000
	p=$PRIMARY
	s=$(other "$p")
	r=$((RANDOM % 10))
	if [ "$r" -ge 8 ]; then
		# the secondary dies: the primary carries on alone, then a new copy
		n0=$(count "$p" "running ALONE")
		kill -KILL "${DX_PID[$s]}"
		wait "${DX_PID[$s]}" 2>/dev/null
		wait_for 20 eval '[ "$(count '"$p"' "running ALONE")" -gt '"$n0"' ]' ||
			fail "duplex: round $k: $p did not say it runs alone after its secondary died"
		for x in SYS1 SYS2 SYS3; do
			wait_progress 20 $x 3 || fail "duplex: round $k: $x stopped committing while the primary ran alone"
		done
		secondary_start "$s"
		alone=$((alone + 1))
		log "duplex: round $k: secondary $s killed, primary $p ran alone, $s in sync again"
		continue
	fi
	n0=$(count "$s" "taking over as the primary CF")
	declare -A SW0=() SEN0=()
	for x in SYS1 SYS2 SYS3; do
		SW0[$x]=$(switched $x)
		SEN0[$x]=$(count "$s" "SENTINEL: .* watches $x (")
	done
	victim=
	if [ "$r" -ge 6 ]; then
		victim=SYS$((RANDOM % 3 + 1))
		kill -KILL "${SYS_PID[$victim]}" "${DX_PID[$p]}"
		together=$((together + 1))
		how="kill -9 of $victim and of the primary $p"
	elif [ "$r" -ge 5 ]; then
		kill -STOP "${DX_PID[$p]}"
		stopped=$((stopped + 1))
		how="SIGSTOP of the primary $p"
	else
		kill -KILL "${DX_PID[$p]}"
		how="kill -9 of the primary $p"
	fi
	CRASHES=$((CRASHES + 1))
	wait_for 30 eval '[ "$(count '"$s"' "taking over as the primary CF")" -gt '"$n0"' ]' ||
		fail "duplex: round $k ($how): $s did not take over: $(tail -n 4 "$CF_WORK/cf$s.log")"
	# the stopped primary must have been fenced (killed) by the secondary
	wait_for 10 eval '! kill -0 '"${DX_PID[$p]}"' 2>/dev/null || [ "$(awk '"'"'{print $3}'"'"' /proc/'"${DX_PID[$p]}"'/stat)" = Z ]' ||
		fail "duplex: round $k ($how): the old primary $p still runs after $s took over"
	wait "${DX_PID[$p]}" 2>/dev/null
	takeovers=$((takeovers + 1))
	for x in SYS1 SYS2 SYS3; do
		if [ "$x" = "$victim" ]; then
			node_wait_exit $x 30 || fail "duplex: round $k ($how): killed $x did not exit"
			continue
		fi
		# the incarnation is kept: the same process switches, it never exits
		wait_for 60 eval '[ "$(switched '"$x"')" -gt '"${SW0[$x]}"' ] || ! node_alive '"$x" ||
			fail "duplex: round $k ($how): $x did not switch to $s within 60 s: $(tail -n 3 "$CF_WORK/$x.log")"
		node_alive $x || { node_reap $x; fail "duplex: round $k ($how): $x exited ${NODE_RC[$x]} instead of switching to $s: $(tail -n 3 "$CF_WORK/$x.log")"; }
	done
	PRIMARY=$s
	# the repaired CF copies the image while the systems commit; a killed system comes back
	secondary_launch "$p"
	[ -n "$victim" ] && node_start "$victim"
	for x in SYS1 SYS2 SYS3; do
		wait_progress 60 $x 3 || fail "duplex: round $k ($how): $x did not resume on $s: $(tail -n 3 "$CF_WORK/$x.log")"
		# its sentinel followed it: a death on the new primary is told as early as before
		wait_for 30 eval '[ "$(count '"$s"' "SENTINEL: .* watches '"$x"' (")" -gt '"${SEN0[$x]}"' ]' ||
			fail "duplex: round $k ($how): $x's sentinel did not attach to $s: $(grep -h "cf-sentinel" "$CF_WORK/$x.log" | tail -n 2)"
	done
	secondary_wait "$p"
	log "duplex: round $k: $how: $s took over, systems switched keeping their incarnations, $p is the secondary"
done
if grep -q "needs the operator" "$CF_WORK"/SYS*.log; then
	fail "duplex: a system refused to start: $(grep -h 'needs the operator' "$CF_WORK"/SYS*.log | head -n 1)"
fi
[ "$takeovers" -ge "$MIN_TAKEOVERS" ] || fail "duplex: only $takeovers primaries lost in $k rounds, $MIN_TAKEOVERS wanted"
check_invariants duplex
log "duplex: $k rounds: $takeovers takeovers ($together with a system, $stopped of a stopped primary, $held with a held peer instance), $alone secondary deaths; $JCHECK_LAST"
pass "duplex"
