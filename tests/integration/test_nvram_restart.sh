#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# An --nvram image survives kill -9 of cfserver and a restart with the same
# file: contents identical, generation bumped.
IMG=$CF_WORK/cf.img
start_cfserver --nvram "$IMG" --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
bounded 20 "$TC" fill 7 || fail "fill"
g1=$(bounded 20 "$TC" dump "$CF_WORK/before.bin" durable) || fail "dump before"
[ "$(bounded 10 "$TC" read-word 5)" = 7005 ] || fail "fill did not set lock word 5"
kill -KILL "$CFSERVER_PID"; wait "$CFSERVER_PID" 2>/dev/null
start_cfserver cfserver2 -- --nvram "$IMG" --hb-timeout 600000 || fail "restart on the same image"
grep -q "loaded" "$CF_WORK/cfserver2.log" || fail "image was not loaded"
g2=$(bounded 20 "$TC" dump "$CF_WORK/after.bin" durable) || fail "dump after"
cmp "$CF_WORK/before.bin" "$CF_WORK/after.bin" || fail "image contents differ after kill -9 and restart"
# the lock table is not truth across a restart: with nothing to recover it is cleared at once
[ "$(bounded 10 "$TC" read-word 5)" = 0 ] || fail "lock word 5 not cleared at the restart"
grep -q "restart: no instance to recover; cleared 256 stale lock word" "$CF_WORK/cfserver2.log" ||
	fail "restart did not log the clear"
[ "$g2" -eq $((g1 + 1)) ] || fail "generation $g1 -> $g2, expected +1"
# explicit geometry that differs from the image is refused (exit 3)
"$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --nvram "$IMG" --max-systems 8 2>"$CF_WORK/geo.err"; rc=$?
[ "$rc" -eq 3 ] || fail "geometry mismatch: exit $rc"
grep -q "max-systems" "$CF_WORK/geo.err" || fail "geometry mismatch not named"
# a system ACTIVE when the CF died: the restarted CF fails it (its connections died with the old run)
start_bg hold "$TC" hold SYSN NTSN; hp=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
kill -KILL "$CFSERVER_PID"; wait "$CFSERVER_PID" 2>/dev/null
wait_for 10 grep -q DEAD "$CF_WORK/hold.log" || fail "holder did not see the CF die"
start_cfserver cfserver3 -- --nvram "$IMG" --hb-timeout 600000 || fail "second restart"
# cause 5: CF_FAIL_CF_RESTART (the restart rule, docs/design.md §7)
cf_sys_is SYSN "FAILED 1 CF restart" || fail "SYSN after CF restart: $(cf_sys_state SYSN)"
cf_inst_is NTSN "INACTIVE_FAILED - 0 1" || fail "NTSN after CF restart: $(cf_inst_state NTSN)"
grep -q "restart: SYSN (epoch 1) was ACTIVE" "$CF_WORK/cfserver3.log" || fail "restart processing not logged"
pass "image identical after kill -9 up to the lock table, which was cleared (generation $g1 -> $g2); ACTIVE systems failed at restart"
