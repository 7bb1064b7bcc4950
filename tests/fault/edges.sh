#!/bin/bash
# SPDX-License-Identifier: MIT
# edges.sh - bad input at the edges (I7, docs/design.md §0): each case must
# give a clear error (exit code and message) and lose nothing.
#   options      bad options of cfnode, cfserver, cfctl: exit 2 and a message
#   unreachable  no CF at the address: exit 69, "unavailable"
#   version      the real cfserver as a CF of the next protocol version (fault points of its
#                HELLO): one that chooses it whatever the client offers, one that speaks only it:
#                refused clearly
#   hung         the real cfserver never answering the HELLO: a bounded wait, exit 69
#   key          wrong cluster key: exit 77, "refused the cluster key"
#   corrupt      a flipped byte in a record: cfctl verify names it; a transaction touching it
#                fails clearly; a corrupt header is refused at start
#   diskfull     data directory and journals on a full tmpfs (2M): commits, journal writes and
#                backouts on a full disk; clear errors, nothing lost
#   nvramfull    cfserver --nvram on a full tmpfs: a clear error, not a crash later
# usage: edges.sh [CASE...]   (default: all). Every case runs; the failures are listed at the end.
. "$(dirname "$0")/lib.sh"
require_bin CFCTL
FAILS=()
efail() {
	log "EDGE FAILED: $*"
	FAILS+=("$*")
}

# expect RC PATTERN LABEL CMD...: CMD exits RC (a regex: "69|1") and its output matches PATTERN (grep -Ei)
expect() {
	local want=$1 pat=$2 label=$3 out rc
	shift 3
	out=$(bounded 20 "$@" 2>&1)
	rc=$?
	if ! echo "$rc" | grep -Eqx -- "$want"; then
		efail "$label: exit $rc, expected $want: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
	elif ! echo "$out" | grep -Eqi -- "$pat"; then
		efail "$label: exit $rc but no clear message (/$pat/): $(echo "$out" | tail -n 2 | tr '\n' ' ')"
	else
		log "ok: $label: exit $rc: $(echo "$out" | grep -Ei -- "$pat" | head -n 1)"
	fi
}

NODE_BASE=(--cluster-key "$CF_KEYFILE" --system SYSX --instance NTSX --data "$DATA")

edge_options() {
	expect 2 "unrecognized|unknown|usage" "cfnode --bogus" "$CFNODE" --bogus
	expect 2 "required" "cfnode without --cf" "$CFNODE" --system S --instance I --data /tmp --cluster-key "$CF_KEYFILE"
	expect 2 "system name" "cfnode bad --system" "$CFNODE" --cf 127.0.0.1:1 "${NODE_BASE[@]}" --system 'bad name!'
	expect 2 "inflight|range|invalid|bad" "cfnode --inflight 0" "$CFNODE" --cf 127.0.0.1:1 "${NODE_BASE[@]}" --inflight 0
	expect 2 "policy|invalid|bad" "cfnode --policy maybe" "$CFNODE" --cf 127.0.0.1:1 "${NODE_BASE[@]}" --policy maybe
	expect 2 "hb-timeout|exceed" "cfserver T < h" "$CFSERVER" --cluster-key "$CF_KEYFILE" --hb-interval 50 --hb-timeout 10
	expect 2 "unrecognized|unknown|usage" "cfserver --bogus" "$CFSERVER" --bogus
	expect "2|4" "listen|address|port|invalid|bad" "cfserver --listen nonsense" "$CFSERVER" --cluster-key "$CF_KEYFILE" --listen nonsense
	expect 2 "usage|unknown" "cfctl frobnicate" "$CFCTL" frobnicate
	expect 2 "policy|usage|auto" "cfctl policy maybe" "$CFCTL" policy maybe --cf 127.0.0.1:1 --cluster-key "$CF_KEYFILE"
	expect 2 "accounts|usage|invalid" "cfctl mkdata --accounts x" "$CFCTL" mkdata --data "$CF_WORK/x" --accounts x --balance 1
}

edge_unreachable() {
	local port
	port=$(free_port 127.0.0.1)
	expect 69 "unavailable|refused" "cfnode, no CF listening" "$CFNODE" --cf "127.0.0.1:$port" "${NODE_BASE[@]}"
	expect 69 "unavailable|refused" "cfctl status, no CF listening" "$CFCTL" status --cf "127.0.0.1:$port" --cluster-key "$CF_KEYFILE"
}

# The protocol versions this build speaks (proto/cf_wire.h).
VMIN=$(awk '$1 == "#define" && $2 == "CF_PROTO_VERSION_MIN" { print $3 + 0 }' "$FAULT_DIR/../../proto/cf_wire.h")
VMAX=$(awk '$1 == "#define" && $2 == "CF_PROTO_VERSION_MAX" { print $3 + 0 }' "$FAULT_DIR/../../proto/cf_wire.h")
if [ -z "$VMIN" ] || [ -z "$VMAX" ]; then fail "no CF_PROTO_VERSION_MIN/MAX in proto/cf_wire.h"; fi

# hello_edge POINT RC PATTERN SERVER-PATTERN LABEL CMD...: expect (above) of CMD --cf ADDR, ADDR a
# cfserver of its own armed at POINT of its HELLO handling (CF_FAULT=POINT:fail, cfserver/cf_member.c):
# a point fires at most once per process, so every client checked gets one. The point must fire, the
# cfserver's log must show its side of the story (SERVER-PATTERN, grep -E), and it must serve the next
# client (the point took that one HELLO) before it is stopped. The suite's CF ($CF_ADDR) is untouched.
HELLO_N=0
hello_edge() {
	local point=$1 want=$2 pat=$3 spat=$4 label=$5 log
	# shellcheck disable=SC2034 # start_cfserver sets all three: here, not the suite's
	local CF_PORT CF_ADDR CFSERVER_PID
	shift 5
	HELLO_N=$((HELLO_N + 1))
	log=$CF_WORK/hello$HELLO_N.log
	CF_FAULT=$point:fail CF_FAULT_LOG=1 start_cfserver "hello$HELLO_N" -- --log-level debug || {
		efail "$label: cfserver armed at $point did not start"
		return
	}
	expect "$want" "$pat" "$label" "$@" --cf "$CF_ADDR"
	grep -q "cf-fault: $point fires" "$log" || efail "$label: $point did not fire"
	wait_for 5 grep -Eq -- "$spat" "$log" ||
		efail "$label: the cfserver's log does not show /$spat/: $(grep -v 'cf-fault' "$log" | tail -n 2 | tr '\n' ' ')"
	cf_ctl status >/dev/null || efail "$label: the cfserver stopped serving after $point"
	kill_pid "$CFSERVER_PID"
}

edge_version() {
	# srv.hello_choose_newer: an authenticated CHALLENGE that chooses version VMAX+1 whatever the
	# client offers; the client must refuse it, closing before its AUTH. srv.hello_newer_only: a CF
	# of version VMAX+1 only; the CF's own refusal, with its real message.
	local n=$((VMAX + 1)) ours="$VMIN\.\.$VMAX"
	local chose="the CF chose protocol version $n, outside this client's $ours"
	local refused="protocol version mismatch: client speaks $ours, server $n\.\.$n"
	hello_edge srv.hello_choose_newer "69|1" "$chose" "closed in state CHALLENGED" \
		"cfnode against a CF that chooses version $n" "$CFNODE" "${NODE_BASE[@]}"
	hello_edge srv.hello_choose_newer "69|1" "$chose" "closed in state CHALLENGED" \
		"cfctl status against a CF that chooses version $n" "$CFCTL" status --cluster-key "$CF_KEYFILE"
	hello_edge srv.hello_newer_only "69|1" "$refused" "$refused" \
		"cfnode against a CF of version $n only" "$CFNODE" "${NODE_BASE[@]}"
	hello_edge srv.hello_newer_only "69|1" "$refused" "$refused" \
		"cfctl status against a CF of version $n only" "$CFCTL" status --cluster-key "$CF_KEYFILE"
}

edge_hung() {
	# srv.hello_unanswered: the CF accepts and never answers the HELLO (the connection stays in
	# state NEW until the client gives up): a bounded wait and a clear error
	hello_edge srv.hello_unanswered 69 "unavailable|timed out|timeout" "closed in state NEW" \
		"cfnode against a CF that never answers" "$CFNODE" "${NODE_BASE[@]}" --connect-timeout 1000
	hello_edge srv.hello_unanswered 69 "unavailable|timed out|timeout" "closed in state NEW" \
		"cfctl status against a CF that never answers" "$CFCTL" status --cluster-key "$CF_KEYFILE"
}

edge_key() {
	local other=$CF_WORK/other.key
	make_key "$other"
	expect 77 "key" "cfnode with a wrong cluster key" "$CFNODE" --cf "$CF_ADDR" --cluster-key "$other" \
		--system SYSX --instance NTSX --data "$DATA"
	expect 77 "key" "cfctl status with a wrong cluster key" "$CFCTL" status --cf "$CF_ADDR" --cluster-key "$other"
	printf 'not a key\n' >"$CF_WORK/bad.key"
	chmod 600 "$CF_WORK/bad.key" # malformed, not merely open to others
	expect 77 "key" "cfnode with a malformed key file" "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_WORK/bad.key" \
		--system SYSX --instance NTSX --data "$DATA"
	# the server is unharmed: a good client still works
	cf_ctl status >/dev/null || efail "key: the CF stopped serving after bad keys"
}

edge_corrupt() {
	local d=$CF_WORK/corrupt rec=3 why
	mkdir -p "$d"
	"$CFCTL" mkdata --data "$d" --accounts 8 --balance 1000 >/dev/null || {
		efail "corrupt: mkdata"
		return
	}
	# flip one payload byte of record 3: slot at 64 + 3*16, payload at +8
	python3 -c "
import sys
f = open(sys.argv[1], 'r+b'); off = 64 + $rec * 16 + 9
f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5a]))" "$d/f0.cfd"
	expect 1 "record $rec|account $rec" "cfctl verify names the corrupt record" "$CFCTL" verify --data "$d"
	cp "$d/f0.cfd" "$CF_WORK/corrupt.before"
	# a transaction touching it (--accounts 4: accounts 0..3, record 3 is hit at once)
	expect 1 "record $rec|account $rec" "bank transaction on a corrupt record names it" \
		"$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --system SYSC --instance NTSC --data "$d" \
		--workload bank --accounts 4 --txns 200 --inflight 1
	# nothing changed but what committed: the corrupt record is untouched, the total of
	# the valid records is conserved
	python3 - "$CF_WORK/corrupt.before" "$d/f0.cfd" "$rec" <<'EOF' || efail "corrupt: the corrupt record was changed, or the valid total is not conserved"
import struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read(); r = int(sys.argv[3])
slot = lambda x, i: x[64 + i * 16: 64 + i * 16 + 16]
assert slot(a, r) == slot(b, r), "corrupt slot changed"
tot = lambda x: sum(struct.unpack_from("<q", x, 64 + i * 16 + 8)[0] for i in range(8) if i != r)
assert tot(a) == tot(b), (tot(a), tot(b))
EOF
	! why=$(locks_left) || efail "corrupt: the failed transaction left locks behind: $why"
	# a corrupt header: refused at start
	printf 'XXXX' | dd of="$d/f0.cfd" bs=1 seek=0 conv=notrunc 2>/dev/null
	expect 1 "header|corrupt|bad" "cfnode refuses a corrupt data file header" \
		"$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --system SYSC --instance NTSC --data "$d" \
		--workload bank --txns 1
	expect 1 "header|corrupt|bad" "cfctl verify on a corrupt header" "$CFCTL" verify --data "$d"
}

TMPFS=
umount_tmpfs() { [ -n "$TMPFS" ] && mountpoint -q "$TMPFS" && umount -l "$TMPFS"; TMPFS=; }
mount_tmpfs() { # DIR SIZE
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || return 1
	TMPFS=$1
}
fill() { dd if=/dev/zero of="$1/fill.$RANDOM" bs=4k 2>/dev/null; sync; }

edge_diskfull() {
	[ "$(id -u)" = 0 ] || {
		log "diskfull: not root, skipped"
		return
	}
	local m=$CF_WORK/full
	mount_tmpfs "$m" 2M || {
		log "diskfull: cannot mount a tmpfs here, skipped"
		return
	}
	mkdir -p "$m/data"
	"$CFCTL" mkdata --data "$m/data" --accounts 200 --balance 1000 >/dev/null || efail "diskfull: mkdata"
	cp "$m/data/f0.cfd" "$CF_WORK/full.initial"
	# the data directory on the small tmpfs; SYSC's journal there too (its commits
	# hit the full disk), SYSA's and SYSB's journals elsewhere
	local s pids=() j seed
	for s in SYSA SYSB SYSC; do
		# seeded journals; every line is written with write(2), so nothing is lost
		seed=$((RANDOM * 32768 + RANDOM + 1))
		j=$CF_WORK/$s.seed$seed.fjournal
		[ $s = SYSC ] && j=$m/SYSC.seed$seed.fjournal
		eval "J_$s=\$j"
		echo 0 >"$j.tail" # every line is a write(2): nothing lost, cut-off commits are "P" lines
		DATA=$m/data cf_node "full-$s" $s "N$s" --policy auto --workload bank --accounts 200 --duration 3600 \
			--inflight 4 --seed "$seed" --journal "$j"
		pids+=("$NODE_PID")
	done
	wait_for 20 test -s "$J_SYSC" || efail "diskfull: SYSC does not commit"
	fill "$m"
	# SYSC: its journal cannot grow; the workload must stop with a clear error
	local rc
	if wait_for 30 eval '! kill -0 '"${pids[2]}"; then
		wait "${pids[2]}" 2>/dev/null
		rc=$?
		grep -Eqi "no space" "$CF_WORK/full-SYSC.log" ||
			efail "diskfull: SYSC (journal on the full disk) exited $rc without naming the full disk: $(grep -i error "$CF_WORK/full-SYSC.log" | tail -n 1)"
		log "diskfull: SYSC exited $rc: $(grep -i error "$CF_WORK/full-SYSC.log" | tail -n 1)"
	else
		log "diskfull: SYSC still runs on the full disk (journal writes buffered?)"
	fi
	# a crash: the counterpart's backout writes before-images onto the full disk
	kill -KILL "${pids[0]}"
	wait "${pids[0]}" 2>/dev/null
	wait_for 30 grep -qs 'RECOVERY {"inst":"NSYSA"' "$CF_WORK/full-SYSB.log" ||
		efail "diskfull: NSYSA not recovered on the full disk: $(grep -h 'error' "$CF_WORK/full-SYSB.log" | tail -n 2 | tr '\n' ' ')"
	kill -TERM "${pids[1]}" "${pids[2]}" 2>/dev/null
	wait "${pids[1]}" 2>/dev/null
	rc=$?
	[ $rc = 0 ] || efail "diskfull: SYSB exited $rc: $(grep -i error "$CF_WORK/full-SYSB.log" | tail -n 1)"
	wait "${pids[2]}" 2>/dev/null
	# nothing lost: every instance clean, every lock free, verify and the journal check
	local st out why
	st=$(cf_status_field instances state | grep "^NSYS")
	echo "$st" | grep -v INACTIVE_CLEAN | grep -q . &&
		efail "diskfull: instance not clean after the workloads ended: $(echo "$st" | grep -v INACTIVE_CLEAN | tr '\n' ';')"
	! why=$(locks_left) || efail "diskfull: locks still held after every system left (SYSC ended on ENOSPC and left cleanly): $why"
	out=$("$CFCTL" verify --data "$m/data" 2>&1) || efail "diskfull: cfctl verify: $out"
	out=$(python3 "$FAULT_DIR/jcheck.py" --initial "$CF_WORK/full.initial" --data "$m/data" \
		"$J_SYSA" "$J_SYSB" "$J_SYSC" 2>&1) || efail "diskfull: journal check: $out"
	log "diskfull: $out"
	umount_tmpfs
}

edge_nvramfull() {
	[ "$(id -u)" = 0 ] || return 0
	local m=$CF_WORK/nvfull
	# 1 MiB: the default image (32 instances x 4 MiB of log) cannot fit
	mount_tmpfs "$m" 1M || return 0
	local pf=$CF_WORK/nvfull.port out rc spid
	"$CFSERVER" --listen 127.0.0.1:0 --port-file "$pf" --cluster-key "$CF_KEYFILE" --nvram "$m/cf.img" \
		>"$CF_WORK/nvfull.log" 2>&1 &
	spid=$!
	track_pid $spid
	wait_for 10 eval '[ -s "$pf" ] || ! kill -0 '$spid || true
	if kill -0 $spid 2>/dev/null; then
		# it listens on an image the disk cannot hold: write into it (a join) and see
		"$CFNODE" --cf "127.0.0.1:$(cat "$pf")" --cluster-key "$CF_KEYFILE" --system SYSN --instance NTSN \
			--data "$DATA" --workload bank --txns 100 >>"$CF_WORK/nvfull.log" 2>&1
		sleep 0.2
		if kill -0 $spid 2>/dev/null; then
			efail "nvramfull: cfserver started and serves an --nvram image the 1 MiB disk cannot hold (no preallocation: a later write may SIGBUS)"
			kill -TERM $spid
		fi
		wait $spid 2>/dev/null
		rc=$?
		[ $rc -ge 128 ] && efail "nvramfull: cfserver died of signal $((rc - 128)) when the image on the full disk was written"
	else
		wait $spid 2>/dev/null
		rc=$?
		out=$(cat "$CF_WORK/nvfull.log")
		if [ $rc -ge 128 ]; then
			efail "nvramfull: cfserver died of signal $((rc - 128)) on a full disk"
		elif ! echo "$out" | grep -Eqi "space|nvram|image"; then
			efail "nvramfull: no clear message (rc $rc): $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		else
			log "ok: nvramfull: exit $rc: $(echo "$out" | grep -Ei 'space|nvram|image' | head -n 1)"
		fi
	fi
	umount_tmpfs
}

trap 'rc=$?; umount_tmpfs; (exit $rc); cf_cleanup' EXIT
cluster_init
cases=("$@")
[ ${#cases[@]} = 0 ] && cases=(options unreachable version hung key corrupt diskfull nvramfull)
for c in "${cases[@]}"; do
	"edge_$c"
done
if [ ${#FAILS[@]} -gt 0 ]; then
	printf '  %s\n' "${FAILS[@]}" >&2
	fail "${#FAILS[@]} edge case(s) without a clear error"
fi
pass "edges: ${cases[*]}"
