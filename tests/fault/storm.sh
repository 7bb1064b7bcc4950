#!/bin/bash
# SPDX-License-Identifier: MIT
# Registration storm (I1): N systems race the CAS
# INACTIVE_FAILED(k) -> ACTIVE(me, k) on one failed instance, ROUNDS times;
# exactly one counterpart each time. usage: storm.sh [ROUNDS] [SYSTEMS]
. "$(dirname "$0")/../lib/harness.sh"
ROUNDS=${1:-500}
SYSTEMS=${2:-8}
require_transport
require_bin CFSERVER CF_FAULT_TOOL
# A long T: the racers do not heartbeat; only the victim's dropped connection fails it.
start_cfserver --hb-interval 100 --hb-timeout 600000 || fail "cfserver did not start"
out=$(bounded $((60 + ROUNDS / 10)) "$CF_FAULT_TOOL" storm --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" \
	--transport "$CF_TRANSPORT" --systems "$SYSTEMS" --rounds "$ROUNDS" 2>"$CF_WORK/storm.log")
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "registration storm (rc $rc): $(tail -n 3 "$CF_WORK/storm.log")"
pass "$out"
