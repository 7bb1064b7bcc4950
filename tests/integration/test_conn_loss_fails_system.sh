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
cf_inst_is NTSK "ACTIVE SYSK 1 0" || fail "instance not ACTIVE under SYSK, epoch 1, incident 0: $(cf_inst_state NTSK)"
kill -KILL "$hp"
wait_for 5 cf_sys_is SYSK "FAILED 1 connection lost" || fail "system not FAILED: $(cf_sys_state SYSK)"
cf_inst_is NTSK "INACTIVE_FAILED - 0 1" || fail "instance: $(cf_inst_state NTSK)"
grep -q "step 1: fenced" "$CF_WORK/cfserver.log" || fail "fence not logged"
# re-admission: a new incarnation gets epoch 2 and can recover its own instance
start_bg hold2 "$TC" hold SYSK NTSK; hp=$BG_PID
wait_for 10 grep -q "READY 0 2" "$CF_WORK/hold2.log" || fail "re-admission"
cf_inst_is NTSK "ACTIVE SYSK 2 1" || fail "instance after re-admission: $(cf_inst_state NTSK)"
pass "killed client failed and fenced"
