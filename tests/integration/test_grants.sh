#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Out-of-grant / out-of-range / wrong-right / misaligned requests are refused
# with the documented errors, and the server keeps serving this and other clients.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 40 "$TC" grants GR1 || fail "grant checks"
bounded 20 "$TC" roundtrip RT2 || fail "server stopped serving"
grep -q "INST_ATTACH GRINST by GR1 (epoch [0-9]*) refused" "$CF_WORK/cfserver.log" || fail "refused attach not logged"
pass "grants enforced"
