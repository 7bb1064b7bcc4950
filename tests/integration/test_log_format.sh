#!/bin/bash
# SPDX-License-Identifier: MIT
# One log convention for cfserver, cfnode and cfctl (common/cf_slog.h):
# every line "[<P>]YYYY-MM-DDTHH:MM:SS.mmmZ IDENT LEVEL: message", the syslog
# priority <P> (3 error, 4 warning, 6 info, 7 debug) when stderr is the journal's
# stream (JOURNAL_STREAM = its device:inode, as systemd sets it) or when asked
# (--log-prefix, CF_LOG_PREFIX=1), so journalctl -p err filters; plain otherwise.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
# what systemd puts in the environment of a unit whose stderr is the journal
dev_ino() { stat -c '%d:%i' "$1"; }
# run_j FILE CMD...: CMD with stderr appended to FILE, announced as the journal's stream
run_j() {
	local f=$1
	shift
	: >>"$f"
	JOURNAL_STREAM=$(dev_ino "$f") bounded 20 "$@" 2>>"$f" >/dev/null
}
has() { # FILE ERE: a line of FILE matches
	grep -Eq -- "$2" "$1" || fail "no line /$2/ in $1: $(cat "$1")"
}
# every line of FILE is a log line of the one format ([<P>] optional)
all_lines() { # FILE IDENT-ERE
	local bad
	bad=$(grep -Ev "^(<[3467]>)?$TS $2 (error|warning|info|debug): " "$1")
	[ -z "$bad" ] || fail "$1: lines not in the log format: $bad"
}
D=$CF_WORK/data
"$CFCTL" mkdata --data "$D" --accounts 4 --balance 10 >/dev/null || fail "mkdata"

# cfserver: an error (a key file that is not there), then info lines from a running server
run_j "$CF_WORK/s-err.log" "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_WORK/nokey"
[ $? -eq 77 ] || fail "cfserver with a missing key file: not 77: $(cat "$CF_WORK/s-err.log")"
has "$CF_WORK/s-err.log" "^<3>$TS cfserver error: cannot read cluster key"
all_lines "$CF_WORK/s-err.log" cfserver
: >"$CF_WORK/cfserver.log"
# a long T: a loaded machine must not fail S1 before it has joined
JOURNAL_STREAM=$(dev_ino "$CF_WORK/cfserver.log") start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
has "$CF_WORK/cfserver.log" "^<6>$TS cfserver info: listening on "

# cfnode: info lines of a join, then an error (no CF there)
: >"$CF_WORK/n.log"
JOURNAL_STREAM=$(dev_ino "$CF_WORK/n.log") cf_node n S1 I1
wait_for 15 grep -q "is ACTIVE here" "$CF_WORK/n.log" || fail "cfnode did not join: $(cat "$CF_WORK/n.log")"
kill -TERM "$BG_PID"
wait "$BG_PID" || fail "cfnode did not leave cleanly: $(cat "$CF_WORK/n.log")"
has "$CF_WORK/n.log" "^<6>$TS cfnode\[S1\] info: joined $CF_ADDR as system #"
has "$CF_WORK/n.log" "^<6>$TS cfnode\[S1\] info: left the cluster cleanly"
all_lines "$CF_WORK/n.log" 'cfnode\[S1\]'
run_j "$CF_WORK/n-err.log" "$CFNODE" --cf "$CF_HOST:1" --transport "$CF_TRANSPORT" --connect-timeout 1000 \
	--cluster-key "$CF_KEYFILE" --system S2 --instance I2 --data "$D"
[ $? -eq 69 ] || fail "cfnode without a CF: not 69: $(cat "$CF_WORK/n-err.log")"
has "$CF_WORK/n-err.log" "^<3>$TS cfnode\[S2\] error: CF $CF_HOST:1 unavailable"
all_lines "$CF_WORK/n-err.log" 'cfnode\[S2\]'

# cfctl: an error (no CF there), an info line (keygen --out)
run_j "$CF_WORK/c-err.log" "$CFCTL" status --cf "$CF_HOST:1" --transport "$CF_TRANSPORT" --cluster-key "$CF_KEYFILE"
[ $? -eq 69 ] || fail "cfctl status without a CF: not 69: $(cat "$CF_WORK/c-err.log")"
has "$CF_WORK/c-err.log" "^<3>$TS cfctl error: CF $CF_HOST:1 unavailable"
run_j "$CF_WORK/c-info.log" "$CFCTL" keygen --out "$CF_WORK/new.key" || fail "keygen --out"
has "$CF_WORK/c-info.log" "^<6>$TS cfctl info: keygen: a new cluster key in "
all_lines "$CF_WORK/c-err.log" cfctl
all_lines "$CF_WORK/c-info.log" cfctl

# the same timestamp in the three: parsable, and within a minute of now
for f in s-err n-err c-err; do
	t=$(head -n 1 "$CF_WORK/$f.log" | cut -d' ' -f1 | sed 's/^<[0-9]>//')
	s=$(date -u -d "$t" +%s) || fail "$f: timestamp '$t' does not parse"
	[ $((s - $(date +%s))) -le 5 ] && [ $(($(date +%s) - s)) -le 60 ] || fail "$f: timestamp $t is not now"
done

# plain lines when stderr is not the journal: no JOURNAL_STREAM, or one naming another file
"$CFCTL" status --cf "$CF_HOST:1" --cluster-key "$CF_KEYFILE" 2>"$CF_WORK/plain.log"
has "$CF_WORK/plain.log" "^$TS cfctl error: CF "
: >"$CF_WORK/other"
JOURNAL_STREAM=$(dev_ino "$CF_WORK/other") "$CFCTL" status --cf "$CF_HOST:1" --cluster-key "$CF_KEYFILE" \
	2>"$CF_WORK/plain2.log"
has "$CF_WORK/plain2.log" "^$TS cfctl error: CF "
# asked for: --log-prefix, CF_LOG_PREFIX=1; and CF_LOG_PREFIX=0 wins over the journal
"$CFCTL" status --cf "$CF_HOST:1" --cluster-key "$CF_KEYFILE" --log-prefix 2>"$CF_WORK/p1.log"
has "$CF_WORK/p1.log" "^<3>$TS cfctl error: CF "
CF_LOG_PREFIX=1 "$CFCTL" status --cf "$CF_HOST:1" --cluster-key "$CF_KEYFILE" 2>"$CF_WORK/p2.log"
has "$CF_WORK/p2.log" "^<3>$TS cfctl error: CF "
CF_LOG_PREFIX=0 run_j "$CF_WORK/p3.log" "$CFCTL" status --cf "$CF_HOST:1" --cluster-key "$CF_KEYFILE"
has "$CF_WORK/p3.log" "^$TS cfctl error: CF "
# a command-line error is "PROG: ..." (test_cli.sh), with its priority in the journal
run_j "$CF_WORK/u.log" "$CFNODE" --no-such-option
has "$CF_WORK/u.log" "^<3>cfnode: unknown option '--no-such-option'"

# --log-level: the same words everywhere; -q is warn, and an info line goes
run_j "$CF_WORK/q.log" "$CFCTL" keygen --out "$CF_WORK/new2.key" --log-level warn || fail "keygen --log-level warn"
[ ! -s "$CF_WORK/q.log" ] || fail "--log-level warn let an info line through: $(cat "$CF_WORK/q.log")"
for p in "$CFSERVER" "$CFNODE" "$CFCTL"; do
	out=$("$p" --log-level loud 2>&1)
	[ $? -eq 2 ] || fail "$(basename "$p") --log-level loud: not a usage error: $out"
done
pass "one log format and priority prefix in cfserver, cfnode and cfctl"
