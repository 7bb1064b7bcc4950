#!/bin/bash
# SPDX-License-Identifier: MIT
# A duplexed pair whose roles are decided at start (cfserver --duplex-pair; docs/design.md,
# "A duplexed CF", "Roles at start"), and the guard against a second primary:
#   1. bad combinations of the pair options are refused before anything is built;
#   2. two members started at the same moment: exactly one serves, the other follows it
#      and gets in sync (several times, so that the two claims race);
#   3. the primary is killed, the partner takes over; the killed one restarted with its
#      own, unchanged command line follows the new primary instead of serving beside it;
#   4. --nvram: the member holding the newer image (a higher term) serves, even when the
#      stale one starts first and the newer one later; the stale one waits meanwhile and
#      then follows; the served state is the newer image's, byte for byte;
#   5. an --nvram image that was in sync with a secondary is refused when restarted as a
#      lone primary (exit 6, nothing changed), and served with --duplex-alone;
#   6. an --nvram copy that was never completed is never served (exit 3 alone; a pair
#      member waits for its partner and copies again).
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
LT=400
[ "$CF_TRANSPORT" = verbs ] && LT=4000

declare -A PORT LINK
for x in A B C D; do
	PORT[$x]=$(free_port)
	LINK[$x]=$(free_port)
done
other() { [ "$1" = A ] && echo B || echo A; }

# a cfserver that starts when the file $gate exists (rounds of case 2)
printf '#!/bin/bash\nwhile [ ! -e "$gate" ]; do sleep 0.01; done\nexec "%s" "$@"\n' "$CFSERVER" >"$CF_WORK/gated"
chmod +x "$CF_WORK/gated"

# member X [LOGNAME] [extra args]: start pair member X (A or B) in the background; sets PID_X
member() {
	local x=$1 name=${2:-$1}
	shift 2
	start_bg "$name" "$CFSERVER" --listen "$CF_HOST:${PORT[$x]}" --cluster-key "$CF_KEYFILE" \
		--transport "$CF_TRANSPORT" --duplex-listen "$CF_HOST:${LINK[$x]}" \
		--duplex-pair "$CF_HOST:${LINK[$(other "$x")]}" --hb-timeout 600000 --duplex-timeout "$LT" \
		--duplex-fence-delay 200 --log-size 256K "$@"
	eval "PID_$x=$BG_PID"
}
stop() { # PID: SIGTERM, wait for the exit
	kill -TERM "$1" 2>/dev/null
	wait_for 20 eval '! kill -0 '"$1"' 2>/dev/null' || fail "pid $1 did not stop on SIGTERM"
	wait "$1" 2>/dev/null
}
serving() { grep -q "serving as the primary\|taking over as the primary" "$CF_WORK/$1.log"; }
following() { grep -q "in sync with the primary" "$CF_WORK/$1.log"; }

# images of 256 KiB logs (about 10 MB, not 143): several live at once, in the rig's small /tmp too
# 1. bad combinations (parsed before any transport is opened: the tcp run checks them; under
# the rig's CPU emulation each refused start costs seconds)
[ "$CF_TRANSPORT" = verbs ] || cfserver_refuses "--duplex-pair $CF_HOST:1|2|needs --duplex-listen" \
	"--duplex-listen $CF_HOST:0 --duplex-pair $CF_HOST:1 --duplex-with $CF_HOST:2|2|excludes --duplex-with" \
	"--duplex-alone --duplex-with $CF_HOST:2|2|duplex-alone" \
	"--duplex-listen $CF_HOST:0 --duplex-pair nonsense|2|duplex-pair"
log "bad pair options refused before any image was built"

# 2. simultaneous starts: one serves, one follows. Both wait at a gate, released together;
# in rounds 1-3 each also pauses 300 ms between its claim and its probe (fault-injection
# builds), so both claims are up when they probe: both step back, and one must win later.
# Over verbs rounds 1 and 4 only, one of each kind: the claims race over the link between
# the two cfservers, which is tcp on both transports, and the tcp run races them 5 times;
# over verbs each round costs 10-15 s of CPU emulation, and what is the transport's there
# (the winner serves over verbs, the loser copies its image and follows) is the same each round.
delayed=0
grep -qaF CF_DUPLEX_CLAIM_DELAY_MS "$CFSERVER" && delayed=1
ROUNDS_START="1 2 3 4 5"
[ "$CF_TRANSPORT" = verbs ] && ROUNDS_START="1 4"
for round in $ROUNDS_START; do
	a=A_r$round b=B_r$round gate=$CF_WORK/gate$round
	export gate
	d=0
	[ "$round" -le 3 ] && [ "$delayed" = 1 ] && d=300
	CF_DUPLEX_CLAIM_DELAY_MS=$d CFSERVER="$CF_WORK/gated" member A "$a" &&
		CF_DUPLEX_CLAIM_DELAY_MS=$d CFSERVER="$CF_WORK/gated" member B "$b"
	touch "$gate"
	wait_for 60 eval "{ serving $a && following $b; } || { serving $b && following $a; }" ||
		fail "round $round: no primary with a secondary in sync: A: $(tail -n 3 "$CF_WORK/$a.log") B: $(tail -n 3 "$CF_WORK/$b.log")"
	serving "$a" && serving "$b" && fail "round $round: both members serve"
	if [ "$d" != 0 ]; then
		grep -q "is claiming the primary role" "$CF_WORK/$a.log" "$CF_WORK/$b.log" ||
			fail "round $round: the claims did not meet (no member saw the other claiming)"
	fi
	# the secondary first: a primary stopped first would hand over to it
	if serving "$a"; then stop "$PID_B"; stop "$PID_A"; else stop "$PID_A"; stop "$PID_B"; fi
done
log "simultaneous starts in rounds $ROUNDS_START (1-3 with both claims up at once): one primary and one secondary in sync each time"

# 3. DRAM pair: kill -9 of the primary; restarted alike, it follows the new primary
member A A3
wait_for 30 serving A3 || fail "A did not serve with its partner down: $(tail -n 3 "$CF_WORK/A3.log")"
member B B3
wait_for 60 following B3 || fail "B did not follow A: $(tail -n 3 "$CF_WORK/B3.log")"
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
wait_for 20 grep -q "taking over as the primary CF (term 1)" "$CF_WORK/B3.log" ||
	fail "B did not take over at term 1: $(tail -n 3 "$CF_WORK/B3.log")"
wait_for 20 grep -q "listening on" "$CF_WORK/B3.log" || fail "B does not serve after the takeover"
member A A3b
wait_for 60 following A3b || fail "the restarted A does not follow B: $(tail -n 5 "$CF_WORK/A3b.log")"
serving A3b && fail "the restarted A served beside B: $(grep -m1 'serving as the primary' "$CF_WORK/A3b.log")"
grep -q "the partner .* serves: following it" "$CF_WORK/A3b.log" || fail "A did not say it follows the serving partner"
wait_for 10 grep -q "is in sync" "$CF_WORK/B3.log" || fail "B does not say its secondary is in sync"
w=$(CF_ADDR=$CF_HOST:${PORT[B]} bounded 20 "$TC" dxwords) || fail "dxwords at B"
[ "$w" = "insync 1" ] || fail "B's duplex words after A rejoined: '$w', expected 'insync 1'"
stop "$PID_A" # the secondary first
stop "$PID_B"
log "the killed primary, restarted with its own command line, follows the new primary (term 1)"

# 4. --nvram: the newer image serves whatever the start order
NA=$CF_WORK/a.img NB=$CF_WORK/b.img
member A A4 --nvram "$NA"
wait_for 30 serving A4 || fail "A (nvram) did not serve"
member B B4 --nvram "$NB"
wait_for 60 following B4 || fail "B (nvram) did not follow A"
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
wait_for 20 grep -q "listening on" "$CF_WORK/B4.log" || fail "B (nvram) did not take over"
CF_ADDR=$CF_HOST:${PORT[B]} bounded 20 "$TC" fill 5 >/dev/null || fail "fill at B after the takeover"
CF_ADDR=$CF_HOST:${PORT[B]} bounded 20 "$TC" dump "$CF_WORK/b-before.bin" durable >/dev/null || fail "dump at B"
stop "$PID_B"
# the stale image first, alone: it was in sync with B, B may be newer: it must wait
member A A4b --nvram "$NA"
wait_for 20 grep -q "may have taken over since" "$CF_WORK/A4b.log" ||
	fail "A (stale, partner down) did not wait: $(tail -n 3 "$CF_WORK/A4b.log")"
sleep 0.5 # a window in which nothing may happen: A must still not serve
serving A4b && fail "A served its stale image with the partner down"
member B B4b --nvram "$NB"
wait_for 30 serving B4b || fail "B (term 1) did not serve: $(tail -n 3 "$CF_WORK/B4b.log")"
wait_for 60 following A4b || fail "A did not follow B: $(tail -n 3 "$CF_WORK/A4b.log")"
serving A4b && fail "A (term 0) served beside B (term 1)"
wait_for 20 grep -q "listening on" "$CF_WORK/B4b.log" || fail "B does not listen"
CF_ADDR=$CF_HOST:${PORT[B]} bounded 20 "$TC" dump "$CF_WORK/b-after.bin" durable >/dev/null || fail "dump at B again"
cmp -s "$CF_WORK/b-before.bin" "$CF_WORK/b-after.bin" || fail "the served state is not the newer image's"
stop "$PID_A"
stop "$PID_B"
log "--nvram: the newer image (term 1) served although the stale one started first; the stale one waited, then followed"

# 5. a lone primary's restart on an image that was in sync: refused; --duplex-alone serves it
NC=$CF_WORK/c.img
start_bg C "$CFSERVER" --listen "$CF_HOST:${PORT[C]}" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" \
	--nvram "$NC" --duplex-listen "$CF_HOST:${LINK[C]}" --hb-timeout 600000 --duplex-timeout "$LT" --log-size 256K
PID_C=$BG_PID
wait_for 30 grep -q "listening on" "$CF_WORK/C.log" || fail "C did not start"
start_bg D "$CFSERVER" --listen "$CF_HOST:${PORT[D]}" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" \
	--duplex-with "$CF_HOST:${LINK[C]}" --hb-timeout 600000 --duplex-timeout "$LT" --duplex-fence-delay 60000
PID_D=$BG_PID
wait_for 60 following D || fail "D did not get in sync with C"
w=$(CF_ADDR=$CF_HOST:${PORT[C]} bounded 20 "$TC" dxwords) || fail "dxwords at C"
[ "$w" = "insync 0" ] || fail "C's duplex words with D in sync: '$w', expected 'insync 0'"
kill -KILL "$PID_C" "$PID_D"
wait "$PID_C" "$PID_D" 2>/dev/null
cp "$NC" "$CF_WORK/c-before.img"
out=$(bounded 30 "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" \
	--nvram "$NC" --duplex-listen "$CF_HOST:0" --hb-timeout 600000 --log-size 256K 2>&1)
rc=$?
[ "$rc" = 6 ] || fail "a lone primary on an image that was in sync: exit $rc, not 6: $out"
echo "$out" | grep -q "may have taken over since" || fail "the refusal does not say why: $out"
echo "$out" | grep -q "listening on" && fail "it listened before refusing: $out"
cmp -s "$NC" "$CF_WORK/c-before.img" || fail "the refused start changed the image"
start_bg C2 "$CFSERVER" --listen "$CF_HOST:${PORT[C]}" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" \
	--nvram "$NC" --duplex-listen "$CF_HOST:${LINK[C]}" --hb-timeout 600000 --duplex-alone --log-size 256K
PID_C=$BG_PID
wait_for 30 grep -q "listening on" "$CF_WORK/C2.log" || fail "--duplex-alone did not serve: $(tail -n 3 "$CF_WORK/C2.log")"
w=$(CF_ADDR=$CF_HOST:${PORT[C]} bounded 20 "$TC" dxwords) || fail "dxwords at C2"
[ "$w" = "alone 0" ] || fail "C served with --duplex-alone: duplex words '$w', expected 'alone 0'"
stop "$PID_C"
log "an image that was in sync is refused as a lone primary (exit 6, unchanged) and served with --duplex-alone"

# 6. --nvram: a secondary's copy that was never completed is never served: not as a lone
# primary (exit 3, unchanged), not as a pair member with its partner down (it waits); once
# the partner serves it copies again
NA2=$CF_WORK/a2.img NB2=$CF_WORK/b2.img
member A A6 --nvram "$NA2"
wait_for 30 serving A6 || fail "A (nvram, case 6) did not serve"
member B B6 --nvram "$NB2"
wait_for 30 grep -q "copying its image" "$CF_WORK/B6.log" || fail "B did not start copying"
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
# B exits 6 (copy incomplete), or, if its copy was complete before A died, takes over
wait_for 60 eval '! kill -0 '"$PID_B"' 2>/dev/null || grep -q "taking over as the primary" "$CF_WORK/B6.log"' ||
	fail "B neither stopped nor took over after losing its primary"
if following B6; then
	stop "$PID_B"
	log "B finished its copy before A died (fast machine): the incomplete-copy case was not exercised"
else
	wait "$PID_B" 2>/dev/null
	grep -q "before the copy was complete" "$CF_WORK/B6.log" || fail "B did not say why it stopped: $(tail -n 2 "$CF_WORK/B6.log")"
	cp "$NB2" "$CF_WORK/b2-before.img"
	out=$(bounded 30 "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" \
		--nvram "$NB2" --duplex-listen "$CF_HOST:0" --hb-timeout 600000 --log-size 256K 2>&1)
	rc=$?
	[ "$rc" = 3 ] || fail "a lone primary on an incomplete copy: exit $rc, not 3: $out"
	echo "$out" | grep -q "never completed" || fail "the refusal does not say why: $out"
	cmp -s "$NB2" "$CF_WORK/b2-before.img" || fail "the refused start changed the incomplete copy"
	member B B6b --nvram "$NB2"
	wait_for 20 grep -q "incomplete copy" "$CF_WORK/B6b.log" || fail "B (incomplete copy, partner down) did not wait: $(tail -n 3 "$CF_WORK/B6b.log")"
	sleep 0.5 # a window in which nothing may happen: B must still not serve
	serving B6b && fail "B served an incomplete copy"
	member A A6b --nvram "$NA2"
	wait_for 30 serving A6b || fail "A did not serve its own image: $(tail -n 3 "$CF_WORK/A6b.log")"
	wait_for 60 following B6b || fail "B did not copy again from A: $(tail -n 3 "$CF_WORK/B6b.log")"
	stop "$PID_B"
	stop "$PID_A"
	log "an incomplete --nvram copy is refused as a lone primary (exit 3), waits as a pair member, then copies again"
fi
pass "duplexed pair: options, simultaneous starts, restart after a takeover, the newer image, the lone-primary guard, the incomplete copy"
