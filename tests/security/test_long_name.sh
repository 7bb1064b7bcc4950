#!/bin/bash
# SPDX-License-Identifier: MIT
# A name that fills its 16-byte field with no terminating NUL (a buggy or hostile member,
# or a console) is refused with EINVAL: it used to be cut to its first 15 characters, which
# may name another instance (INST_OPEN, RECOVER) or system.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 30 "$TC" longname LONG1 || fail "an unterminated name was not refused"
grep -q "created AAAAAAAAAAAAAAA (index 0" "$CF_WORK/cfserver.log" ||
	fail "the 15-character name existed before it was opened: $(grep INST_OPEN "$CF_WORK/cfserver.log")"
pass "unterminated names refused (INST_OPEN, RECOVER)"
