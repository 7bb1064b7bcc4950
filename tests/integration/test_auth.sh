#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFNODE CFCTL
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
[ "$rc" -eq 77 ] || fail "missing key: exit $rc, expected 77"
echo "not a key" >"$CF_WORK/bad.key"
chmod 600 "$CF_WORK/bad.key"
"$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_WORK/bad.key" 2>"$CF_WORK/badkey.err"; rc=$?
[ "$rc" -eq 77 ] || fail "malformed key: exit $rc"
grep -q malformed "$CF_WORK/badkey.err" || fail "no clear message for a malformed key"
# The key is a secret: every program refuses a key file that group or
# others may access (naming it and chmod 600), a symbolic link, a non-regular file.
cp "$CF_KEYFILE" "$CF_WORK/open.key"
chmod 644 "$CF_WORK/open.key"
ln -s "$CF_KEYFILE" "$CF_WORK/link.key"
mkfifo "$CF_WORK/fifo.key"
refused() { # RC PATTERN PROGRAM ARGS...: exit code and message
	local want=$1 pat=$2 out rc
	shift 2
	out=$(bounded 10 "$@" 2>&1)
	rc=$?
	[ "$rc" -eq "$want" ] || fail "$*: exit $rc, expected $want: $out"
	echo "$out" | grep -qF -- "$pat" || fail "$*: message lacks '$pat': $out"
}
for k in open link fifo; do
	case $k in
	open) pat="open.key is accessible by group or others (mode 0644): it is a secret; chmod 600 $CF_WORK/open.key" ;;
	link) pat="link.key is a symbolic link" ;;
	fifo) pat="fifo.key is not a regular file" ;;
	esac
	refused 77 "$pat" "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_WORK/$k.key"
	refused 77 "$pat" "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_WORK/$k.key" --system S --instance I --data "$CF_WORK"
	refused 77 "$pat" "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$CF_WORK/$k.key"
	CF_KEYFILE=$CF_WORK/$k.key refused 1 "$pat" "$TC" dump "$CF_WORK/image.bin" # libcfnode's key loading
done
# cfctl keygen --out: 0600 whatever the umask, never over an existing file
(umask 022; "$CFCTL" keygen --out "$CF_WORK/new.key") || fail "keygen --out"
[ "$(stat -c %a "$CF_WORK/new.key")" = 600 ] || fail "keygen --out made mode $(stat -c %a "$CF_WORK/new.key")"
grep -Eqx '[0-9a-f]{64}' "$CF_WORK/new.key" || fail "keygen --out wrote '$(cat "$CF_WORK/new.key")'"
cp "$CF_WORK/new.key" "$CF_WORK/new.copy"
refused 1 "exists" "$CFCTL" keygen --out "$CF_WORK/new.key"
cmp -s "$CF_WORK/new.key" "$CF_WORK/new.copy" || fail "keygen --out changed an existing key"
# keygen > file: a warning when the file is open to group or others, none to a pipe or a 0600 file
(umask 022; "$CFCTL" keygen >"$CF_WORK/redir.key" 2>"$CF_WORK/redir.err") || fail "keygen > file"
grep -q "warning: .*mode 0644.*keygen --out" "$CF_WORK/redir.err" || fail "no warning for a 0644 key: $(cat "$CF_WORK/redir.err")"
(umask 077; "$CFCTL" keygen >"$CF_WORK/redir600.key" 2>"$CF_WORK/redir600.err") || fail "keygen > 0600 file"
[ ! -s "$CF_WORK/redir600.err" ] || fail "a warning for a 0600 file: $(cat "$CF_WORK/redir600.err")"
"$CFCTL" keygen 2>"$CF_WORK/pipe.err" | grep -Eqx '[0-9a-f]{64}' || fail "keygen | ..."
[ ! -s "$CF_WORK/pipe.err" ] || fail "a warning for a pipe: $(cat "$CF_WORK/pipe.err")"
# --max-conns: a connection beyond the limit is refused with a message, others keep working
start_cfserver small -- --max-conns 1 --hb-timeout 600000 || fail "cfserver --max-conns 1 did not start"
start_bg hold "$TC" hold SYSM NTSM; hp=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/hold.log" || fail "holder not ready"
cf_ctl status >/dev/null 2>&1 && fail "a connection beyond --max-conns was served"
grep -q "max-conns 1" "$CF_WORK/small.log" || fail "refusal not logged"
kill -KILL "$hp"; wait "$hp" 2>/dev/null
wait_for 10 cf_inst_is NTSM INACTIVE_FAILED || fail "server not serving after the holder left"
pass "authentication enforced"
