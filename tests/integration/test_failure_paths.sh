#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Re-admission fences the old incarnation; a GOODBYE while owning an ACTIVE
# instance is a failure; the orphan scan fails an ACTIVE word with a stale owner;
# a counterpart that dies before its attach leaves the record naming the owner it
# was to fence (cf_tclient fail-chain).
start_cfserver --hb-timeout 2000 --hb-interval 10 || fail "cfserver did not start"
bounded 20 "$TC" readmit SYSR || fail "re-admission"
grep -q "re-admission of a new incarnation" "$CF_WORK/cfserver.log" || fail "READMIT not logged"
bounded 20 "$TC" goodbye-active SYSG NTSG || fail "goodbye with an ACTIVE instance"
wait_for 5 cf_inst_is NTSG "INACTIVE_FAILED - 0 1" || fail "NTSG: $(cf_inst_state NTSG)"
bounded 20 "$TC" orphan SYSO NTSO || fail "orphan setup"
wait_for 5 cf_inst_is NTSO "INACTIVE_FAILED - 0 1" || fail "NTSO: $(cf_inst_state NTSO)"
grep -q "orphan scan: NTSO" "$CF_WORK/cfserver.log" || fail "orphan scan not logged"
bounded 20 "$TC" fail-chain SYSC NTSC || fail "the failure record of a chain of counterparts"
pass "re-admission, goodbye with ACTIVE instance, orphan scan, the failure record of a chain of counterparts"
