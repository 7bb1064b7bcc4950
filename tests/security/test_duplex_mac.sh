#!/bin/bash
# SPDX-License-Identifier: MIT
# The duplex link between two CFs carries frame MACs (docs/design.md, "Frame
# integrity"): a man in the middle that changes one byte after the key proof is
# caught, in either direction, and nothing it changed is used.
#   - down (primary -> secondary): one bit of the image copy flipped; the secondary
#     names the failed MAC, drops the link and never reports itself in sync (without
#     MACs it applies the byte and gets "in sync" on a corrupt copy);
#   - up (secondary -> primary): one bit of the ACK/PING stream flipped; the primary
#     names the failed MAC and drops (and fences) that secondary (without MACs a
#     changed ACK sequence number is taken, or the link ends as a "protocol error");
#   - afterwards a secondary connected directly gets in sync: the primary carried on.
. "$(dirname "$0")/../lib/harness.sh"
require_bin CFSERVER
PROXY=$(dirname "$0")/tamper_proxy.py
LT=400

link_port() { # LOG: the port a primary accepts secondaries on
	sed -n 's/.*duplex: accepting a secondary on .* (port \([0-9]*\)).*/\1/p' "$1" | tail -n 1
}
# proxy NAME DIR OFFSET: a tampering proxy in front of the primary's link port; sets PX_PORT
proxy() {
	start_bg "$1" python3 "$PROXY" "$CF_HOST" "$CF_HOST" "$LP" "$2" "$3"
	wait_for 10 test -s "$CF_WORK/$1.log" || fail "proxy $1 did not start"
	PX_PORT=$(head -n 1 "$CF_WORK/$1.log")
}
secondary() { # NAME PORT: a secondary of the primary through PORT, in the background
	start_bg "$1" "$CFSERVER" --listen "$CF_HOST:$(free_port)" --cluster-key "$CF_KEYFILE" \
		--duplex-with "$CF_HOST:$2" --transport tcp --hb-timeout 600000 --duplex-timeout "$LT" \
		--duplex-fence-delay 200
}

start_cfserver P -- --duplex-listen "$CF_HOST:0" --hb-timeout 600000 --duplex-timeout "$LT" ||
	fail "primary did not start"
LP=$(link_port "$CF_WORK/P.log")
[ -n "$LP" ] || fail "the primary did not say its link port: $(tail -n 3 "$CF_WORK/P.log")"

# down: 300 000 bytes into the primary's stream is inside the image copy's first chunks
proxy PXD down 300000
secondary S1 "$PX_PORT"
S1_PID=$BG_PID
wait_for 30 grep -q "flipped down" "$CF_WORK/PXD.log" || fail "the proxy did not flip a byte: $(tail -n 2 "$CF_WORK/S1.log")"
wait_for 30 grep -q "failed its MAC check" "$CF_WORK/S1.log" ||
	fail "down: the secondary did not catch the changed byte: $(tail -n 3 "$CF_WORK/S1.log")"
wait_for 30 eval '! kill -0 '"$S1_PID"' 2>/dev/null' || fail "down: the secondary still runs after the failed MAC"
grep -q "in sync with the primary" "$CF_WORK/S1.log" && fail "down: the secondary got in sync through a changed byte"
grep -q "taking over" "$CF_WORK/S1.log" && fail "down: the secondary took over"
wait_for 30 grep -q "running ALONE" "$CF_WORK/P.log" || fail "down: the primary did not go on alone"
log "down: a flipped bit of the image copy: the secondary dropped the link, never in sync"

# up: 3 000 bytes into the secondary's stream is in its PINGs and ACKs, after the key proof
n0=$(grep -c "running ALONE" "$CF_WORK/P.log")
proxy PXU up 3000
secondary S2 "$PX_PORT"
S2_PID=$BG_PID
wait_for 60 grep -q "flipped up" "$CF_WORK/PXU.log" || fail "the proxy did not flip a byte up"
wait_for 30 grep -q "lost the secondary .*failed its MAC check" "$CF_WORK/P.log" ||
	fail "up: the primary did not catch the changed byte: $(grep "secondary" "$CF_WORK/P.log" | tail -n 3)"
wait_for 30 eval '[ "$(grep -c "running ALONE" "$CF_WORK/P.log")" -gt '"$n0"' ]' ||
	fail "up: the primary did not fence the secondary and go on alone"
wait_for 30 eval '! kill -0 '"$S2_PID"' 2>/dev/null' || fail "up: the secondary still runs after it was dropped"
log "up: a flipped bit of an ACK or PING: the primary dropped and fenced that secondary"

# the primary carried on: a secondary connected directly gets in sync
secondary S3 "$LP"
wait_for 60 grep -q "in sync with the primary" "$CF_WORK/S3.log" || fail "a direct secondary did not get in sync"
pass "duplex link MACs: changed bytes caught both ways, nothing applied, the primary carried on"
