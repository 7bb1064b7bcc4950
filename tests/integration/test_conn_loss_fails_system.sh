#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# A SIGKILLed client: its connection closes without goodbye, cfserver fences it,
# marks its system FAILED and its ACTIVE instance INACTIVE_FAILED(k+1).
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg hold "$TC" hold SYSK NTSK; hp=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
[ "$("$TC" inst NTSK)" = "ACTIVE 0 1 0" ] || fail "instance not ACTIVE(0,1,0): $("$TC" inst NTSK)"
kill -KILL "$hp"
wait_for 5 sh -c "\"$TC\" sys SYSK | grep -q '^FAILED 1 1'" || fail "system not FAILED: $("$TC" sys SYSK)"
[ "$("$TC" inst NTSK)" = "INACTIVE_FAILED 255 0 1" ] || fail "instance: $("$TC" inst NTSK)"
grep -q "step 1: fenced" "$CF_WORK/cfserver.log" || fail "fence not logged"
# re-admission: a new incarnation gets epoch 2 and can recover its own instance
start_bg hold2 "$TC" hold SYSK NTSK; hp=$BG_PID
wait_for 10 grep -q "READY 0 2" "$CF_WORK/hold2.log" || fail "re-admission"
[ "$("$TC" inst NTSK)" = "ACTIVE 0 2 1" ] || fail "instance after re-admission: $("$TC" inst NTSK)"
pass "killed client failed and fenced"
