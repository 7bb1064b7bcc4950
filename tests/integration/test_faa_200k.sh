#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# 2 clients x 100 000 FAA on one word give exactly 200 000.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg faa1 bounded 150 "$TC" faa FAA1 100000 11; p1=$BG_PID
start_bg faa2 bounded 150 "$TC" faa FAA2 100000 11; p2=$BG_PID
wait "$p1" || fail "client 1"
wait "$p2" || fail "client 2"
v=$(bounded 10 "$TC" read-word 11) || fail "read"
[ "$v" = 200000 ] || fail "word is $v, expected 200000"
pass "2 x 100000 FAA = $v"
