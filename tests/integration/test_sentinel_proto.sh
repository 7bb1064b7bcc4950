#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
# The sentinel's protocol at the CF (node/cf_sentinel.h, CF_CTRL_SENTINEL and
# CF_CTRL_DIED): only the incarnation's token opens a sentinel, DIED is a
# sentinel's only, a sentinel's close is no failure, its DIED fails its system
# at once ("process exiting"), anything else from it is a protocol violation.
# A long T: nothing but these messages may fail a system here.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
out=$(bounded 60 "$CF_TCLIENT" sentinel SYSA SYSB 2>&1) || fail "sentinel: $out"
grep -q "SENTINEL from .* refused: system .* is not a live incarnation" "$CF_WORK/cfserver.log" ||
	fail "a refused SENTINEL is not logged"
grep -q "DIED: the sentinel of SYSA says its process is exiting" "$CF_WORK/cfserver.log" || fail "DIED not logged"
grep -q "failure: SYSA (system [0-9]*, epoch [0-9]*): process exiting" "$CF_WORK/cfserver.log" ||
	fail "SYSA's failure not declared as process exiting"
grep -q "failure: SYSB (system [0-9]*, epoch [0-9]*): protocol violation" "$CF_WORK/cfserver.log" ||
	fail "SYSB's failure not declared as a protocol violation"
pass "$out"
