#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
[ "$CF_TRANSPORT" = tcp ] || skip "frame MACs are tcp's (verbs has no frames of its own)"
TC=$CF_TCLIENT
# Frame integrity after the handshake (proto/cf_auth.h, "Frame integrity";
# docs/design.md §7): a bad MAC, no MAC, a replayed, reordered, reflected frame or one
# sealed for another connection closes that connection with nothing executed and
# nothing answered; the CF keeps serving the others; a version-1 client is refused;
# a client refuses an answer changed on the way (-EBADMSG).
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 60 "$TC" frame-mac FM || fail "frame MAC checks"
# the client's side: an answer changed on the way (the old value of an FAA) is refused
bounded 30 "$TC" frame-mac-client FMC || fail "the client accepted a changed answer"
L=$CF_WORK/cfserver.log
n=$(grep -c "frame MAC refused .*: closing" "$L")
# replayed, bad tag, changed body, reordered, reflected, another connection's
[ "$n" -ge 6 ] || fail "expected 6 'frame MAC refused' lines in the CF's log, found $n"
grep -q "frame without a MAC after the handshake: closing" "$L" || fail "a frame without a MAC not logged"
# a refused frame is the peer's protocol error: its system fails with that cause
grep -q "failure: FM1 (system [0-9]*, epoch [0-9]*): protocol violation" "$L" ||
	fail "the system of a refused frame not failed as a protocol violation"
grep -q "protocol version mismatch: client speaks 1..1" "$L" || fail "version-1 client not logged"
kill -0 "$CFSERVER_PID" || fail "cfserver died"
bounded 20 "$TC" roundtrip FMRT || fail "server stopped serving"
pass "frames with bad, missing, replayed, reordered, reflected or foreign MACs refused; others served"
