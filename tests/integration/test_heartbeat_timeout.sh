#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# A client whose heartbeat stops (SIGSTOP) is marked FAILED after T, and fenced.
start_cfserver --hb-interval 10 --hb-timeout 500 || fail "cfserver did not start"
start_bg hold "$TC" hold SYSH NTSH 10; hp=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
# alive while it beats: still ACTIVE after two T (a deliberate wait: proving no false detection)
sleep 1
cf_sys_is SYSH "ACTIVE 1 -" || fail "a beating system was failed: $(cf_sys_state SYSH)"
kill -STOP "$hp"
t0=$(date +%s%N)
wait_for 5 cf_sys_is SYSH "FAILED 1 heartbeat silence" || fail "system not FAILED by heartbeat: $(cf_sys_state SYSH)"
t1=$(date +%s%N)
cf_inst_is NTSH "INACTIVE_FAILED - 0 1" || fail "instance: $(cf_inst_state NTSH)"
grep -q "heartbeat unchanged" "$CF_WORK/cfserver.log" || fail "sweep not logged"
kill -CONT "$hp"
# the resumed zombie finds its connections gone
wait_for 10 grep -q DEAD "$CF_WORK/hold.log" || fail "resumed holder still connected"
log "detected in about $(( (t1 - t0) / 1000000 )) ms after SIGSTOP (T = 500 ms)"
pass "heartbeat silence detected"
