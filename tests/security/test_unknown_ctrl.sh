#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# A control message of a type the CF does not know, from an authenticated system or
# console: a STATUS -ENOSYS, and the connection keeps being served (it used to be
# closed, which failed the system). Before the handshake ends it still closes
# (tests/integration/test_malformed.sh).
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 30 "$TC" unknown-ctrl UNK1 || fail "unknown control message"
grep -q "UNK1 .*FAILED\|failure: UNK1" "$CF_WORK/cfserver.log" && fail "the system was failed"
kill -0 "$CFSERVER_PID" || fail "cfserver died"
pass "unknown control types answered with ENOSYS; connections kept"
