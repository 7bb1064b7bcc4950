#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# A corrupted image makes cfserver refuse to start (exit 3), naming the problem,
# and the file is left untouched.
IMG=$CF_WORK/cf.img
start_cfserver --nvram "$IMG" --log-size 64K --hb-timeout 600000 || fail "cfserver did not start"
kill -TERM "$CFSERVER_PID"; wait "$CFSERVER_PID"; rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM exit $rc"
try() { # what expect
	cp "$IMG" "$CF_WORK/bad.img"
	"$@"
	sum=$(md5sum <"$CF_WORK/bad.img")
	"$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --nvram "$CF_WORK/bad.img" 2>"$CF_WORK/bad.err"; rc=$?
	[ "$rc" -eq 3 ] || fail "corrupt image ($1 ...) accepted: exit $rc"
	[ "$(md5sum <"$CF_WORK/bad.img")" = "$sum" ] || fail "refused image was modified"
}
poke() { printf "$2" | dd of="$CF_WORK/bad.img" bs=1 seek="$1" conv=notrunc status=none; }
try poke 0 'X'; grep -q "bad magic" "$CF_WORK/bad.err" || fail "magic not named: $(cat "$CF_WORK/bad.err")"
try poke 8 '\x07'; grep -q "version" "$CF_WORK/bad.err" || fail "version not named"
try poke 20 '\x01'; grep -q "CRC" "$CF_WORK/bad.err" || fail "crc not named: $(cat "$CF_WORK/bad.err")"
try truncate -s 100000 "$CF_WORK/bad.img"; grep -qi "truncated\|smaller" "$CF_WORK/bad.err" || fail "truncation not named"
pass "corrupt images refused"
