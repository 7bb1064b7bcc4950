#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# READ/WRITE/CAS/FAA round trips, unsignaled writes, 64 KiB frames, attach/unregister.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 40 "$TC" roundtrip RT1 || fail "round trips"
kill -0 "$CFSERVER_PID" || fail "cfserver died"
pass "round trips"
