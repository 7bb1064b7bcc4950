#!/bin/bash
# Bad options and an unreachable CF give clear errors and the documented exit
# codes: 2 usage, 69 CF unavailable, 77 key refused, 1 other.
. "$(dirname "$0")/node_lib.sh"

expect() { # RC PATTERN CMD... : exit code and a message on stderr/stdout
	local want=$1 pat=$2
	shift 2
	local out rc
	out=$(bounded 30 "$@" 2>&1)
	rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc, expected $want: $out"
	echo "$out" | grep -qi -- "$pat" || fail "$*: message lacks '$pat': $out"
}
mkdata 8 10
N=("$CFNODE" --data "$DATA" --cluster-key "$CF_KEYFILE" --system SYS1 --instance NTS001)
# Over verbs only what goes through the transport runs: an unreachable CF, a refused key, a
# bad data file met by a connected cfnode. Option parsing and cfctl's offline commands are
# the same code whatever the transport, and the tcp run (make test) checks them; under the
# rig's CPU emulation each of those 30 process starts cost about a second (42 s in all).
offline() { [ "$CF_TRANSPORT" != verbs ]; }
if offline; then
expect 2 "required" "$CFNODE"
expect 0 "usage" "$CFNODE" --help
expect 2 "bad system name" "${N[@]}" --cf 127.0.0.1:1 --system 'bad name!'
expect 2 "bad instance name" "${N[@]}" --cf 127.0.0.1:1 --instance 0123456789abcdefXYZ
expect 2 "workload must be" "${N[@]}" --cf 127.0.0.1:1 --workload nosuch
expect 2 "inflight" "${N[@]}" --cf 127.0.0.1:1 --inflight 0
expect 2 "transport" "${N[@]}" --cf 127.0.0.1:1 --transport carrier-pigeon
# numbers: decimal only, bounded (an hour of ms would overflow nowhere; 2^64/1e6 ms did)
expect 2 "out of range" "$CFSERVER" --listen 127.0.0.1:0 --cluster-key "$CF_KEYFILE" --hb-timeout 18446744073710
expect 2 "not a decimal" "$CFSERVER" --listen 127.0.0.1:0 --cluster-key "$CF_KEYFILE" --hb-interval 0x10
expect 2 "out of range" "$CFSERVER" --listen 127.0.0.1:0 --cluster-key "$CF_KEYFILE" --max-conns 100000
expect 2 "hb-timeout" "${N[@]}" --cf 127.0.0.1:1 --hb-timeout 18446744073710
# (stopped once it has said what it listens with: that line, not a fixed 3 s, is the wait)
start_bg octal "$CFSERVER" --listen 127.0.0.1:0 --cluster-key "$CF_KEYFILE" --hb-timeout 010 --hb-interval 002
wait_for 20 grep -q "listening on" "$CF_WORK/octal.log" || fail "cfserver with --hb-timeout 010 did not start: $(cat "$CF_WORK/octal.log")"
kill_pid "$BG_PID"
grep -q "h = 2 ms, T = 10 ms" "$CF_WORK/octal.log" || fail "cfserver read 010 as something else than ten: $(cat "$CF_WORK/octal.log")"
expect 2 "unexpected argument" "${N[@]}" --cf 127.0.0.1:1 extra
expect 77 "cluster key" "$CFNODE" --cf 127.0.0.1:1 --data "$DATA" --cluster-key "$CF_WORK/nokey" --system S --instance I
expect 1 "data directory" "$CFNODE" --cf 127.0.0.1:1 --data "$CF_WORK/nodata" --cluster-key "$CF_KEYFILE" --system S --instance I --workload bank
fi
# A CF that is not there: a port nothing listens on.
port=$(free_port 127.0.0.1)
expect 69 "unavailable" "${N[@]}" --cf "127.0.0.1:$port" --transport "$CF_TRANSPORT" --connect-timeout 1000
expect 69 "unavailable" "$CFCTL" status --cf "127.0.0.1:$port" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT"
# A CF with another key.
start_cf
make_key "$CF_WORK/other.key"
expect 77 "refused the cluster key" "$CFNODE" --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --data "$DATA" \
	--cluster-key "$CF_WORK/other.key" --system SYS1 --instance NTS001
expect 77 "refused the cluster key" "$CFCTL" status --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --cluster-key "$CF_WORK/other.key"
if offline; then
# cfctl
expect 2 "usage" "$CFCTL"
expect 2 "unknown command" "$CFCTL" frobnicate
expect 2 "needs --data" "$CFCTL" verify
expect 2 "mkdata needs" "$CFCTL" mkdata --data "$DATA"
# mkdata on a data directory that has a bank file: refused, the file untouched (it used to be truncated)
expect 1 "f0.cfd exists already (8 accounts, total 80 at mkdata).*--force" "$CFCTL" mkdata --data "$DATA" --accounts 2 --balance 5
expect 0 "verify: ok: 8 accounts, total 80" "$CFCTL" verify --data "$DATA"
# --force replaces it, on a copy
cp -r "$DATA" "$CF_WORK/data2"
expect 0 "2 accounts of balance 5 .*replacing" "$CFCTL" mkdata --data "$CF_WORK/data2" --accounts 2 --balance 5 --force
expect 0 "verify: ok: 2 accounts, total 10" "$CFCTL" verify --data "$CF_WORK/data2"
expect 2 "policy must be" "$CFCTL" policy sometimes --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE"
# --field: a bad query is refused before the CF is asked, with nothing on stdout
C=("$CFCTL" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE")
expect 2 "must begin with cf, sys, inst" "${C[@]}" status --field 'bogus state'
expect 2 "need a NAME and a KEY" "${C[@]}" status --field 'sys SYS1'
expect 2 "cf needs a KEY" "${C[@]}" status --field 'cf'
expect 2 "empty" "${C[@]}" status --field ' '
expect 2 "locks has only 'cf KEY" "${C[@]}" locks --field 'sys SYS1 state'
expect 2 "not with --json or --watch" "${C[@]}" status --json --field 'cf generation'
expect 2 "not with --json or --watch" "${C[@]}" status --watch --field 'cf generation'
expect 2 "status and locks only" "${C[@]}" health --field 'cf generation'
[ -z "$("${C[@]}" status --field 'bogus state' 2>/dev/null)" ] || fail "a refused --field printed something"
expect 0 "^1 auto" "${C[@]}" status --field 'cf generation policy'
key=$("$CFCTL" keygen) || fail "cfctl keygen"
[[ "$key" =~ ^[0-9a-f]{64}$ ]] || fail "keygen printed '$key'"
expect 0 "verify: ok" "$CFCTL" verify --data "$DATA"
expect 1 "total 80 != expected 81" "$CFCTL" verify --data "$DATA" --total 81
# A corrupt record is named.
printf '\x01' | dd of="$DATA/f0.cfd" bs=1 seek=$((64 + 3 * 16 + 9)) conv=notrunc status=none
expect 1 "account 3: file f0.cfd record 3" "$CFCTL" verify --data "$DATA"
fi
# A corrupt header is refused by cfnode too.
printf 'X' | dd of="$DATA/f0.cfd" bs=1 seek=0 conv=notrunc status=none
expect 1 "bad header" "${N[@]}" --cf "$CF_ADDR" --workload bank
pass "options and errors give the documented exit codes"
