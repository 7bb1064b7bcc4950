#!/bin/bash
# SPDX-License-Identifier: MIT
# cfctl status --watch: frames come every SECONDS until SIGINT,
# which ends it with 0; when the CF goes away it ends by itself with health's
# "cannot tell" code, 69. Both ways within a bounded time.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg a "$CF_TCLIENT" hold SYSA NTSA
wait_for 10 grep -q READY "$CF_WORK/a.log" || fail "SYSA not ready"
frames() { [ "$(grep -c '^Every 0.3 s: cfctl status' "$CF_WORK/$1.log")" -ge "$2" ]; }
exited() { ! kill -0 "$1" 2>/dev/null; }

# --watch SECONDS (with a space), stopped by SIGINT
start_bg w1 "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --watch 0.3
w1=$BG_PID
t0=$SECONDS
wait_for 10 frames w1 2 || fail "no two frames in 10 s: $(cat "$CF_WORK/w1.log")"
log "two frames in $((SECONDS - t0)) s"
grep -q "^0  *SYSA  *ACTIVE" "$CF_WORK/w1.log" || fail "a frame without SYSA: $(cat "$CF_WORK/w1.log")"
kill -INT "$w1"
wait_for 5 exited "$w1" || fail "--watch did not stop on SIGINT"
wait "$w1"
rc=$?
[ "$rc" = 0 ] || fail "--watch exited $rc on SIGINT"

# --watch=SECONDS: the CF goes away, the watch ends with 69
start_bg w2 "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --watch=0.3
w2=$BG_PID
wait_for 10 frames w2 1 || fail "no frame: $(cat "$CF_WORK/w2.log")"
kill_pid "$CFSERVER_PID" KILL
wait_for 15 exited "$w2" || fail "--watch still running after the CF went away"
wait "$w2"
rc=$?
[ "$rc" = 69 ] || fail "--watch exited $rc when the CF went away, not 69: $(tail -3 "$CF_WORK/w2.log")"
# usage: --watch is status's, and its SECONDS is checked
out=$("$CFCTL" locks --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --watch 2>&1)
[ $? = 2 ] || fail "locks --watch accepted: $out"
out=$("$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --watch=0 2>&1)
[ $? = 2 ] || fail "--watch=0 accepted: $out"
pass "status --watch redraws until SIGINT, and ends with 69 when the CF goes away"
