#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
[ "$CF_TRANSPORT" = tcp ] || skip "floods raw tcp frames: a tcp-only test"
# The fence is a barrier: requests a fenced incarnation had queued at the
# server (unread in its socket, or read but not executed) never execute.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 60 "$CF_TCLIENT" fence-barrier SYSF || fail "fence barrier"
pass "fence is a barrier"
