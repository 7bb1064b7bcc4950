#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Unauthenticated and wrong-key clients get nothing; refusals are logged with the peer.
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
bounded 40 "$TC" noauth || fail "auth checks"
if [ "$CF_TRANSPORT" = tcp ]; then # the raw bad-MAC client is tcp's
	grep -q "authentication failed" "$CF_WORK/cfserver.log" || fail "refusal not logged"
	grep -q "127.0.0.1:[0-9]*: authentication failed" "$CF_WORK/cfserver.log" || fail "peer address not logged"
fi
# a missing or malformed key file is refused at start (exit 5)
"$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_WORK/nonexistent" 2>"$CF_WORK/nokey.err"; rc=$?
[ "$rc" -eq 5 ] || fail "missing key: exit $rc, expected 5"
echo "not a key" >"$CF_WORK/bad.key"
"$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_WORK/bad.key" 2>"$CF_WORK/badkey.err"; rc=$?
[ "$rc" -eq 5 ] || fail "malformed key: exit $rc"
grep -q malformed "$CF_WORK/badkey.err" || fail "no clear message for a malformed key"
# --max-conns: a connection beyond the limit is refused with a message, others keep working
start_cfserver small -- --max-conns 1 --hb-timeout 600000 || fail "cfserver --max-conns 1 did not start"
start_bg hold "$TC" hold SYSM NTSM; hp=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
bounded 20 "$TC" inst NTSM >/dev/null 2>&1 && fail "a connection beyond --max-conns was served"
grep -q "max-conns 1" "$CF_WORK/small.log" || fail "refusal not logged"
kill -KILL "$hp"; wait "$hp" 2>/dev/null
wait_for 10 sh -c "\"$TC\" inst NTSM | grep -q INACTIVE_FAILED" || fail "server not serving after the holder left"
pass "authentication enforced"
