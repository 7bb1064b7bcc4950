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
# The body behind a good header. cfserver's own words (system slots): refused.
u64_at() { od -An -tu8 -j "$1" -N8 "$IMG" | tr -d ' '; }
off_systems=$(u64_at 48)
off_locks=$(u64_at 80)
try poke "$off_systems" '\x07'
grep -q "system slot 0: state word" "$CF_WORK/bad.err" || fail "bad system word not named: $(cat "$CF_WORK/bad.err")"
# Words nodes write (a lock word): a running CF accepts them from a buggy node
# too, so a restart starts and says so. The lock table is not durable (it is
# rebuilt empty once no instance needs recovery from its log: the restart
# barrier of docs/design.md "Durability"), so the restart clears the word.
cp "$IMG" "$CF_WORK/odd.img"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' |
	dd of="$CF_WORK/odd.img" bs=1 seek=$((off_locks + 8 * 5)) conv=notrunc status=none
start_cfserver odd -- --nvram "$CF_WORK/odd.img" --log-size 64K --hb-timeout 600000 ||
	fail "cfserver refused an image with an odd lock word"
grep -q "1 word(s) that nodes write do not decode (first: lock class 5: word 0xffffffffffffffff" \
	"$CF_WORK/odd.log" || fail "odd lock word not reported: $(cat "$CF_WORK/odd.log")"
kill -TERM "$CFSERVER_PID"; wait "$CFSERVER_PID"
grep -q "restart: no instance to recover; cleared 1 stale lock word" "$CF_WORK/odd.log" ||
	fail "the restart did not clear the odd lock word: $(grep restart "$CF_WORK/odd.log")"
[ "$(od -An -tx8 -j $((off_locks + 8 * 5)) -N8 "$CF_WORK/odd.img" | tr -d ' ')" = 0000000000000000 ] ||
	fail "the odd lock word is still in the image after the restart"
pass "corrupt images refused"
