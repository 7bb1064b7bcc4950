#!/bin/bash
# SPDX-License-Identifier: MIT
# The application API keeps its incarnation across the switch of a duplexed CF, as cfnode
# does (docs/design.md, "Incarnations kept across a switch"; man 3 cfnode):
#  - two kvstore processes (libcfnode) serve on a DRAM pair, A serving and B in sync;
#  - SYS2 stops inside an open put (KV_PAUSE), after its data write, outside any call;
#  - A is killed (kill -9) and B takes over: both kvstores switch to B inside the library
#    (the same processes, the same epochs, "switched to CF" in their logs). SYS2's open
#    transaction is settled by the switch (backed out from memory: its value is gone from
#    the data file while it still waits), its commit then says -ECONNRESET, and kvstore
#    does the put again: OK, and both stores read the new value;
#  - both go on putting and reading at B, and leave cleanly there (exit 0).
# Without the switch in the library each kvstore exits 75 when A dies.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFCTL KVSTORE
mkdir -p "$DATA"
T_MS=${CF_TEST_T_MS:-1000}
LINK_MS=300 FENCE_MS=300 PAUSE_MS=3000
# under the rig's CPU emulation the link timeouts of the duplex tests, and a pause that outlasts
# the takeover and the switch there
[ "$CF_TRANSPORT" = verbs ] && LINK_MS=3000 FENCE_MS=3000 PAUSE_MS=20000
declare -A PORT LINK PID
for x in A B; do
	PORT[$x]=$(free_port)
	LINK[$x]=$(free_port)
done
other() { [ "$1" = A ] && echo B || echo A; }
member() { # X: pair member X (small image: 8 instances, 1 MiB logs)
	local x=$1
	start_bg "cf$x" "$CFSERVER" --listen "$CF_HOST:${PORT[$x]}" --cluster-key "$CF_KEYFILE" \
		--transport "$CF_TRANSPORT" --hb-interval 5 --hb-timeout "$T_MS" \
		--duplex-listen "$CF_HOST:${LINK[$x]}" --duplex-pair "$CF_HOST:${LINK[$(other "$x")]}" \
		--duplex-timeout "$LINK_MS" --duplex-fence-delay "$FENCE_MS" --max-instances 8 --log-size 1M
	PID[$x]=$BG_PID
}
member A
wait_for 30 grep -q "listening on" "$CF_WORK/cfA.log" || fail "A did not start: $(tail -n 3 "$CF_WORK/cfA.log")"
member B
wait_for 60 grep -q "in sync with the primary" "$CF_WORK/cfB.log" || fail "B is not in sync: $(tail -n 3 "$CF_WORK/cfB.log")"
CF_ADDR="$CF_HOST:${PORT[A]},$CF_HOST:${PORT[B]}"
export CF_ADDR
"$KVSTORE" --data "$DATA" init 64 || fail "kvstore init"
F=$DATA/f1.cfd
. "$(dirname "$0")/kv_lib.sh"

serve SYS1 NTS001 "$KVSTORE"
serve SYS2 NTS002 env "KV_PAUSE=after-update:$PAUSE_MS" "$KVSTORE"
for i in 1 2 3; do expect SYS1 put "k$i" "v$i" = OK; done
expect SYS2 get k2 = "VALUE v2"
read -r e1 <<<"$(cf_status_field sys SYS1 epoch)"
read -r e2 <<<"$(cf_status_field sys SYS2 epoch)"

# SYS2 inside an open put of k2, after its data write, between two calls
n=$(wc -l <"$CF_WORK/SYS2.out")
echo "put k2 PAUSED-VALUE" >&"$FD_SYS2"
wait_for 30 grep -q '^paused put k2' "$CF_WORK/SYS2.out" || fail "SYS2 did not reach its pause point"
grep -q PAUSED-VALUE "$F" || fail "SYS2's update is not in the data file"

kill -KILL "${PID[A]}"
wait "${PID[A]}" 2>/dev/null
wait_for 60 grep -q "taking over as the primary" "$CF_WORK/cfB.log" || fail "B did not take over: $(tail -n 3 "$CF_WORK/cfB.log")"
for sys in SYS1 SYS2; do
	wait_for 60 grep -q "switched to CF" "$CF_WORK/$sys.log" ||
		fail "$sys did not switch to B: $(tail -n 5 "$CF_WORK/$sys.log")"
	pidv="PID_$sys"
	kill -0 "${!pidv}" 2>/dev/null || fail "$sys ended at the switch: $(tail -n 5 "$CF_WORK/$sys.log")"
done
grep -q "switch of CF: the application waits; 1 open transaction(s) settled" "$CF_WORK/SYS2.log" ||
	fail "SYS2's open put was not settled by the switch: $(grep 'switch of CF' "$CF_WORK/SYS2.log")"
# settled while SYS2 still waits in its pause: backed out from memory (a DRAM pair)
grep -q '^paused put k2' "$CF_WORK/SYS2.out" && [ "$(wc -l <"$CF_WORK/SYS2.out")" -eq $((n + 1)) ] ||
	fail "SYS2's put ended before the switch settled it (raise PAUSE_MS): $(tail -n 2 "$CF_WORK/SYS2.out")"
! grep -q PAUSED-VALUE "$F" || fail "the settled put's update is still in the data file"
log "both kvstores switched to B; SYS2's open put backed out while it waited"
# its commit finds the transaction lost (-ECONNRESET), and kvstore puts again (KV_PAUSE
# pauses the first put only): OK
wait_for $((PAUSE_MS / 1000 + 60)) answered "$CF_WORK/SYS2.out" $((n + 1)) ||
	fail "SYS2's put did not answer after the switch: $(tail -n 3 "$CF_WORK/SYS2.out")"
[ "$(sed -n "$((n + 2))p" "$CF_WORK/SYS2.out")" = OK ] ||
	fail "SYS2's put across the switch: $(sed -n "$((n + 1)),\$p" "$CF_WORK/SYS2.out")"
expect SYS1 get k2 = "VALUE PAUSED-VALUE"
# the same incarnations, going on at B
[ "$(cf_status_field sys SYS1 epoch)" = "$e1" ] && [ "$(cf_status_field sys SYS2 epoch)" = "$e2" ] ||
	fail "epochs changed: SYS1 $e1 -> $(cf_status_field sys SYS1 epoch), SYS2 $e2 -> $(cf_status_field sys SYS2 epoch)"
expect SYS1 put k4 v4 = OK
expect SYS2 get k4 = "VALUE v4"
expect SYS2 get k1 = "VALUE v1"
expect SYS1 del k3 = OK
expect SYS2 get k3 = NOTFOUND
quit_kv SYS1
quit_kv SYS2
pass "kvstores keep their incarnations across the switch of CF; an open put settled and done again"
