#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
# The fence is a barrier (docs/design.md §4, proto/cf_transport.h): once the
# CF's fence of a system has completed, nothing that incarnation had posted
# executes any more, and nothing it posts afterwards does.
#
# Over both transports, end to end (cf_tclient fence-stream): a system keeps
# FAAs, CASes, WRITEs and READs in flight on two connections through the
# session API; the CF fences it, once when its heartbeat falls silent and once
# when its name joins again; a live system then puts sentinels into every word
# and block the stream touches. The stream must end by the fence without any
# answer showing a sentinel, ops posted afterwards (on the old connections, and
# with the old rkeys from fresh ones) must fail, and a console must read every
# sentinel unchanged.
T=${CF_TEST_T_MS:-2000} # the rig sets a longer T for emulation
start_cfserver --hb-interval 20 --hb-timeout "$T" || fail "cfserver did not start"
for mode in silence readmit; do
	log "fence-stream: fenced by $mode"
	bounded 240 "$CF_TCLIENT" fence-stream "FS${mode:0:3}" "FS${mode:0:3}C" "$mode" \
		>"$CF_WORK/stream-$mode.out" 2>"$CF_WORK/stream-$mode.log"
	rc=$?
	sed 's/^/  /' "$CF_WORK/stream-$mode.log" >&2
	cat "$CF_WORK/stream-$mode.out" >&2
	[ $rc -eq 0 ] || fail "fence-stream ($mode): exit $rc"
	grep -q "^OK fence-stream $mode" "$CF_WORK/stream-$mode.out" || fail "fence-stream ($mode): no OK line"
done
# the CF's own account: each fence took every connection of the flooder (main, second, heartbeat)
grep -q "failure: FSsil step 1: fenced 3 connection(s)" "$CF_WORK/cfserver.log" || fail "silence: not 3 connections fenced"
grep -q "failure: FSrea step 1: fenced 3 connection(s)" "$CF_WORK/cfserver.log" || fail "readmit: not 3 connections fenced"
grep -q "failure: FSsil (system [0-9]*, epoch [0-9]*): heartbeat" "$CF_WORK/cfserver.log" ||
	fail "silence: the failure was not the heartbeat's"

# tcp only: requests the fenced incarnation had queued at the server (unread in
# its socket, or read but not executed because it never reads its answers)
# never execute. verbs has no such queue at the CF: its requests are the HCA's.
if [ "$CF_TRANSPORT" = tcp ]; then
	start_cfserver flood -- --hb-timeout 600000 || fail "cfserver (raw flood) did not start"
	bounded 60 "$CF_TCLIENT" fence-barrier SYSF || fail "fence barrier (raw tcp frames)"
fi
pass "fence is a barrier"
