#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER
# cfserver's command line: help, version, usage errors and exit codes.
S=$CFSERVER
expect_rc() { # rc cmd...
	local want=$1; shift
	"$@" >"$CF_WORK/out" 2>&1; local rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc, expected $want: $(cat "$CF_WORK/out")"
}
expect_rc 0 "$S" --help
grep -q "Exit status" "$CF_WORK/out" || fail "--help does not document the exit status"
expect_rc 0 "$S" --version
grep -q "cfserver (cfplex)" "$CF_WORK/out" || fail "--version"
expect_rc 2 "$S" --no-such-option --cluster-key "$CF_KEYFILE"
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --hb-timeout 0
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --hb-interval 50 --hb-timeout 10
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --transport carrier-pigeon
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --log-size 12Q
expect_rc 5 "$S" --listen "$CF_HOST:0"
grep -q "cluster-key" "$CF_WORK/out" || fail "missing key not explained"
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --listen "$CF_HOST:0" --max-systems 1000
grep -q "max-systems" "$CF_WORK/out" || fail "bad geometry not named"
expect_rc 4 "$S" --cluster-key "$CF_KEYFILE" --listen "192.0.2.1:0" --transport "$CF_TRANSPORT"
expect_rc 4 "$S" --cluster-key "$CF_KEYFILE" --listen "nonsense" --transport "$CF_TRANSPORT"
start_cfserver --log-size 64K || fail "start"
kill -INT "$CFSERVER_PID"; wait "$CFSERVER_PID"; rc=$?
[ "$rc" -eq 0 ] || fail "SIGINT exit $rc"
grep -q "shutting down" "$CF_WORK/cfserver.log" || fail "shutdown not logged"
pass "command line and exit codes"
