#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
[ "$CF_TRANSPORT" = tcp ] || skip "malformed tcp frames: a tcp-only test"
TC=$CF_TCLIENT
# Malformed frames close that connection only.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 40 "$TC" malformed || fail "malformed frames"
grep -q "malformed frame" "$CF_WORK/cfserver.log" || fail "not logged"
kill -0 "$CFSERVER_PID" || fail "cfserver died"
bounded 20 "$TC" roundtrip RT3 || fail "server stopped serving"
pass "malformed frames close only their connection"
