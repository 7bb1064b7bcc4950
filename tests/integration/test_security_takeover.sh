#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Registrations are the CF's record, not the word (docs/design.md
# §7, "Registrations: what the CF checks"): a member that CASes another's
# registration word gets no grant, cannot unregister it, cannot take an instance
# from the system holding it (an INACTIVE_CLEAN one may move: then the new holder
# is protected the same way), and cannot hide it from failure processing, whether
# its holder dies or says GOODBYE (cf_tclient takeover). No orphan scan during the test (T = 600 s): the words
# the attacker changes are put back by the CF's refusals, or failed by failure
# processing, nothing else.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 60 "$TC" takeover TK || fail "takeover checks"
L=$CF_WORK/cfserver.log
grep -q "INST_ATTACH TKI by TKA (epoch [0-9]*) refused: takeover attempt: the CF granted TKI to TKV" "$L" ||
	fail "refused attach not logged as a takeover attempt naming both systems"
grep -q "INST_UNREG TKI by TKA (epoch [0-9]*) refused: takeover attempt: the CF granted TKI to TKV" "$L" ||
	fail "refused unregister not logged as a takeover attempt naming both systems"
grep -q "INST_ATTACH TKC by TKV (epoch [0-9]*) refused: takeover attempt: the CF granted TKC to TKA" "$L" ||
	fail "the home's attach of an instance another system took over not logged as refused"
grep -q "failure: TKV step 3: TKI, granted to TKV .* INACTIVE_FAILED" "$L" ||
	fail "failure of a changed word not logged"
grep -q "GOODBYE from TKW while it still owns ACTIVE instances: failure processing instead" "$L" ||
	fail "GOODBYE of a holder not turned into failure processing"
bounded 20 "$TC" roundtrip TKRT || fail "server stopped serving"
pass "takeover attempts refused; the victim keeps its registration; its failure is processed"
