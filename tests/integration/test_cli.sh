#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
# The command lines: help, version, usage errors and exit codes (cfserver), and
# what all three programs say the same way (--version, an unknown option).
S=$CFSERVER
expect_rc() { # rc cmd...
	local want=$1; shift
	"$@" >"$CF_WORK/out" 2>&1; local rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc, expected $want: $(cat "$CF_WORK/out")"
}
expect_rc 0 "$S" --help
grep -q "Exit status" "$CF_WORK/out" || fail "--help does not document the exit status"
# --version: one line, the same format and the meson project version in every program
for p in "$S" "$CFNODE" "$CFCTL"; do
	n=$(basename "$p")
	expect_rc 0 "$p" --version
	[ "$(cat "$CF_WORK/out")" = "$n (cfplex) ${CFPLEX_VERSION:?}" ] || fail "$n --version: $(cat "$CF_WORK/out")"
done
# an unknown option: one line naming it (not the whole help), exit 2
for p in "$S" "$CFNODE" "$CFCTL"; do
	n=$(basename "$p")
	expect_rc 2 "$p" --no-such-option --cluster-key "$CF_KEYFILE"
	[ "$(cat "$CF_WORK/out")" = "$n: unknown option '--no-such-option' (try --help)" ] ||
		fail "$n, unknown option: $(cat "$CF_WORK/out")"
	expect_rc 2 "$p" -Z
	[ "$(cat "$CF_WORK/out")" = "$n: unknown option '-Z' (try --help)" ] || fail "$n -Z: $(cat "$CF_WORK/out")"
	expect_rc 2 "$p" --cluster-key
	[ "$(cat "$CF_WORK/out")" = "$n: option '--cluster-key' needs a value (try --help)" ] ||
		fail "$n, missing value: $(cat "$CF_WORK/out")"
done
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --hb-timeout 0
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --hb-interval 50 --hb-timeout 10
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --transport carrier-pigeon
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --log-size 12Q
expect_rc 2 "$S" --listen "$CF_HOST:0"
grep -q "cluster-key" "$CF_WORK/out" || fail "missing key not explained"
expect_rc 2 "$S" --cluster-key "$CF_KEYFILE" --listen "$CF_HOST:0" --max-systems 1000
grep -q "max-systems" "$CF_WORK/out" || fail "bad geometry not named"
expect_rc 4 "$S" --cluster-key "$CF_KEYFILE" --listen "192.0.2.1:0" --transport "$CF_TRANSPORT"
expect_rc 4 "$S" --cluster-key "$CF_KEYFILE" --listen "nonsense" --transport "$CF_TRANSPORT"
# a malformed --listen is refused before the image is built (it was formatted, 143 MB, first)
for a in "$CF_HOST:99999" "$CF_HOST:" "$CF_HOST:7x" "[::1:7"; do
	expect_rc 4 "$S" --cluster-key "$CF_KEYFILE" --listen "$a" --nvram "$CF_WORK/img" --transport "$CF_TRANSPORT"
	[ ! -e "$CF_WORK/img" ] || fail "--listen $a: the image was built before the address was checked"
	grep -qF "cannot listen on --listen $a: " "$CF_WORK/out" || fail "--listen $a: $(cat "$CF_WORK/out")"
done
out=$("$S" --cluster-key "$CF_KEYFILE" --listen "$CF_HOST:99999" --transport "$CF_TRANSPORT" 2>&1)
grep -q "port 99999 is out of range" <<<"$out" || fail "an out-of-range port is not named: $out"
start_cfserver --log-size 64K || fail "start"
kill -INT "$CFSERVER_PID"; wait "$CFSERVER_PID"; rc=$?
[ "$rc" -eq 0 ] || fail "SIGINT exit $rc"
grep -q "shutting down" "$CF_WORK/cfserver.log" || fail "shutdown not logged"
pass "command line and exit codes"
