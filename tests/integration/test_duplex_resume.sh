#!/bin/bash
# SPDX-License-Identifier: MIT
# Incarnations kept across a takeover (docs/design.md, "Incarnations kept across a
# switch"), at the CF, with nothing but the protocol:
#   - the secondary that takes over keeps every system the primary had ACTIVE, with its
#     instance, for --duplex-resume;
#   - a CONN_ATTACH of a kept incarnation with a wrong token is refused and changes
#     nothing (the copy holds only a hash of the token: nobody else can resume it);
#   - with the token the old primary gave it at JOIN, the same incarnation is taken back
#     (same system, same epoch): the new primary never saw that JOIN;
#   - a kept system that does not come back in time is failed ("no resume after a CF
#     takeover") and its instance becomes INACTIVE_FAILED for its peers to recover.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
LT=400 RESUME=2500
[ "$CF_TRANSPORT" = verbs ] && LT=4000 RESUME=20000

link_port() { sed -n 's/.*duplex: accepting a secondary on .* (port \([0-9]*\)).*/\1/p' "$1" | tail -n 1; }

# bad value: refused before any image is built
cfserver_refuses "--duplex-resume 0|2|duplex-resume" "--duplex-resume 600001|2|duplex-resume"

# 256 KiB logs (an image of about 10 MB, not 143): the secondary copies it all, 7 s for 143 MB
# under the rig's CPU emulation
start_cfserver P -- --duplex-listen "$CF_HOST:0" --hb-timeout 600000 --duplex-timeout "$LT" \
	--duplex-fence-delay 200 --log-size 256K || fail "primary did not start"
P_ADDR=$CF_ADDR P_PID=$CFSERVER_PID
LP=$(link_port "$CF_WORK/P.log")
S_PORT=$(free_port)
start_bg S "$CFSERVER" --listen "$CF_HOST:$S_PORT" --cluster-key "$CF_KEYFILE" --duplex-with "$CF_HOST:$LP" \
	--transport "$CF_TRANSPORT" --hb-timeout 600000 --duplex-timeout "$LT" --duplex-fence-delay 200 \
	--duplex-resume "$RESUME"
S_PID=$BG_PID
wait_for 60 grep -q "in sync with the primary" "$CF_WORK/S.log" || fail "secondary not in sync: $(tail -n 3 "$CF_WORK/S.log")"

# two systems, each holding its instance (no heartbeat: T is 600 s here)
for x in KEEPA KEEPB; do
	start_bg "$x" env CF_ADDR="$P_ADDR" "$TC" hold "$x" "I$x"
	wait_for 20 grep -q READY "$CF_WORK/$x.log" || fail "$x not ready: $(cat "$CF_WORK/$x.log")"
done
read -r _ SA EA TOKA <<<"$(grep READY "$CF_WORK/KEEPA.log")"
read -r _ SB EB _ <<<"$(grep READY "$CF_WORK/KEEPB.log")"

kill -KILL "$P_PID"
wait "$P_PID" 2>/dev/null
wait_for 20 grep -q "listening on" "$CF_WORK/S.log" || fail "the secondary did not take over: $(tail -n 3 "$CF_WORK/S.log")"
export CF_ADDR=$CF_HOST:$S_PORT
for x in KEEPA KEEPB; do
	grep -q "takeover: $x (epoch [0-9]*) kept with 1 instance" "$CF_WORK/S.log" ||
		fail "the new primary did not keep $x: $(grep takeover "$CF_WORK/S.log")"
	cf_inst_is "I$x" ACTIVE || fail "I$x is not ACTIVE (kept) after the takeover: $(cf_inst_state "I$x")"
done

# a forged token: refused, nothing changed
out=$(bounded 20 "$TC" resume "$SA" "$EA" $((TOKA ^ 1))) && fail "a wrong token resumed KEEPA: $out"
echo "$out" | grep -q "REFUSED -1 " || fail "a wrong token: $out"
grep -q "kept at the takeover, token not proven" "$CF_WORK/S.log" || fail "the refused resume was not logged"
cf_sys_is KEEPA "ACTIVE $EA -" || fail "KEEPA after the forged resume: $(cf_sys_state KEEPA)"
log "a resume with a wrong token is refused; KEEPA still kept"

# the real token: the same incarnation is back (it beats from then on)
start_bg RES "$TC" resume "$SA" "$EA" "$TOKA" 5 # beats until the test ends (it is stopped by PID)
wait_for 20 grep -q RESUMED "$CF_WORK/RES.log" || fail "KEEPA's token did not resume it: $(cat "$CF_WORK/RES.log")"
wait_for 10 grep -q "RESUME: KEEPA (system $SA, epoch $EA) is back" "$CF_WORK/S.log" || fail "the resume was not logged"
log "KEEPA resumed at the new primary with the token of its JOIN at the old one (epoch $EA)"

# KEEPB never comes back: failed when its window closes, its instance for the peers
wait_for $((RESUME / 1000 + 20)) cf_sys_is KEEPB FAILED || fail "KEEPB not failed after the resume window: $(cf_sys_state KEEPB)"
cf_sys_is KEEPB "FAILED $EB no resume after a CF takeover" || fail "KEEPB's failure: $(cf_sys_state KEEPB), expected cause 6"
grep -q "sweep: KEEPB did not come back within $RESUME ms of the takeover" "$CF_WORK/S.log" ||
	fail "the expired window was not logged"
cf_inst_is IKEEPB INACTIVE_FAILED || fail "IKEEPB after KEEPB's failure: $(cf_inst_state IKEEPB)"
# the resumed one is still ACTIVE (it beats), and so is its instance
cf_sys_is KEEPA "ACTIVE $EA -" || fail "KEEPA after the window: $(cf_sys_state KEEPA)"
cf_inst_is IKEEPA ACTIVE || fail "IKEEPA: $(cf_inst_state IKEEPA)"
log "KEEPB, never back, failed after $RESUME ms (no resume after a CF takeover); KEEPA kept"
pass "duplex resume"
