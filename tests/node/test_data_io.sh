#!/bin/bash
# SPDX-License-Identifier: MIT
# cfnode --data-io direct: the data files are opened with O_DIRECT (seen in
# /proc/PID/fdinfo) and the bank workload of two systems keeps the invariant on
# a filesystem that takes O_DIRECT I/O of single records (tmpfs here; NFS is the
# real case, and this machine has no nfsd); a block-based filesystem that refuses
# it (ext4) is reported at start, exit 1, not run buffered behind the
# operator's back. A bad value is a usage error.
if [ -z "${CF_DATAIO_NS:-}" ]; then
	# a private mount namespace for the tmpfs: it disappears with the test
	[ "$(id -u)" = 0 ] && command -v unshare >/dev/null || { echo "SKIP: needs root and unshare" >&2; exit 77; }
	CF_DATAIO_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
O_DIRECT_FLAG=040000 # x86, arm64 and most: octal, as /proc/PID/fdinfo prints flags

ctl_mkdata() { "$CFCTL" mkdata --data "$1" --accounts 100 --balance 1000 >/dev/null 2>&1 || fail "mkdata $1"; }

# usage error
"$CFNODE" --data-io sideways --cf 127.0.0.1:1 --cluster-key "$CF_KEYFILE" --system S --instance I --data /tmp \
	>"$CF_WORK/usage.out" 2>&1
[ $? = 2 ] || fail "--data-io sideways: exit not 2: $(cat "$CF_WORK/usage.out")"

start_cfserver --hb-interval 5 --hb-timeout 1000 || fail "cfserver did not start"

# a filesystem that refuses record-sized O_DIRECT I/O (the work dir's)
mkdir -p "$CF_WORK/ext"
ctl_mkdata "$CF_WORK/ext"
if python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY|os.O_DIRECT); os.pread(fd,64,0)' "$CF_WORK/ext/f0.cfd" 2>/dev/null; then
	log "note: $CF_WORK takes unaligned O_DIRECT; the refusal is not exercised here"
else
	bounded 20 "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --system SYS9 \
		--instance NTS009 --data "$CF_WORK/ext" --data-io direct --workload bank --accounts 100 --duration 1 \
		>"$CF_WORK/refuse.log" 2>&1
	rc=$?
	[ $rc = 1 ] || fail "--data-io direct on a filesystem that refuses it: exit $rc, not 1: $(cat "$CF_WORK/refuse.log")"
	grep -q "refuses O_DIRECT" "$CF_WORK/refuse.log" || fail "refusal not explained: $(cat "$CF_WORK/refuse.log")"
fi

# tmpfs: takes it
mkdir -p "$CF_WORK/shm"
mount -t tmpfs -o size=64m cfplex-dataio "$CF_WORK/shm" || skip "cannot mount a tmpfs"
DATA=$CF_WORK/shm
ctl_mkdata "$DATA"
for s in 1 2; do
	cf_node SYS$s SYS$s NTS00$s --data-io direct --workload bank --accounts 100 --duration 4 --inflight 8
	eval "P$s=$NODE_PID"
done
# the workload's data file descriptor carries O_DIRECT
has_odirect() { # PID
	local fd flags
	for fd in /proc/$1/fd/*; do
		[ "$(readlink "$fd")" = "$DATA/f0.cfd" ] || continue
		flags=$(awk '$1 == "flags:" {print $2}' "/proc/$1/fdinfo/${fd##*/}")
		[ -n "$flags" ] && (((8#$flags & 8#$O_DIRECT_FLAG) != 0)) && return 0
	done
	return 1
}
wait_for 20 has_odirect "$P1" || fail "SYS1 has no O_DIRECT descriptor of $DATA/f0.cfd"
for s in 1 2; do
	pid=$(eval echo "\$P$s")
	wait "$pid"
	rc=$?
	[ $rc = 0 ] || fail "SYS$s exited $rc"
	grep -q "transactions committed" "$CF_WORK/SYS$s.log" || fail "SYS$s committed nothing"
done
out=$("$CFCTL" verify --data "$DATA" 2>&1) || fail "cfctl verify: $out"
umount "$CF_WORK/shm"
pass "--data-io direct: O_DIRECT descriptors, bank invariant holds; refused where the filesystem refuses it"
