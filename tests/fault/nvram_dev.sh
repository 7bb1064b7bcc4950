#!/bin/bash
# SPDX-License-Identifier: MIT
# nvram_dev.sh - cfserver --nvram on a device (docs/design.md §3, "Durability"), with the bank
# workload of three systems, kill -9 of cfserver mid-workload, a restart on the
# same device, and the full invariant check (cfctl verify, journals, one
# counterpart per incident, every lock free).
#   nvram_dev.sh loop   a loop device over a file in the work dir (needs root,
#                       losetup and /dev/loop-control; exit 77 without). Also:
#                       a device too small for the geometry and a FIFO are
#                       refused with exit 3 and left as they were.
#   nvram_dev.sh pmem   the rig's emulated NVDIMM /dev/pmem0 (tests/rig/rig.sh
#                       --nvdimm sets CF_RIG_NVDIMM), or $CF_TEST_NVRAM_DEV.
#                       Overwrites that device, so it runs only when one of the
#                       two names it; else 77.
# Loop devices are detached by name in the cleanup.
MODE=${1:-loop}
# the rig's emulation needs a longer T (CF_TEST_T_MS), as the other verbs tests
: "${FAULT_T_MS:=${CF_TEST_T_MS:-1000}}"
# every write is persisted before the answer (msync on a device): a calmer
# heartbeat leaves the device to the workload on a busy host
: "${FAULT_H_MS:=50}"
export FAULT_T_MS FAULT_H_MS
. "$(dirname "$0")/lib.sh"
ulimit -c 0
# waits scale in the rig (TCG is 20-50x slower than the host)
W=1
[ -n "${CF_RIG:-}" ] && W=4
# two systems under emulation (each one's rdma_cm set-up and heartbeats load the vCPUs)
[ -n "${CF_RIG:-}" ] && NSYS=2
# formatting an image on the device and registering it takes seconds under emulation
: "${CF_START_TIMEOUT_S:=$((15 * W))}"
export CF_START_TIMEOUT_S

LOOPS=()
nv_cleanup() {
	local rc=$? d
	# the servers first: a loop device a process holds is only detached lazily
	for d in "${CF_PIDS[@]}"; do kill -KILL "$d" 2>/dev/null; wait "$d" 2>/dev/null; done
	for d in "${LOOPS[@]}"; do
		losetup -d "$d" 2>/dev/null || log "cleanup: losetup -d $d failed"
	done
	[ ${#LOOPS[@]} = 0 ] || log "detached ${LOOPS[*]}"
	(exit $rc)
	cf_cleanup
}
trap nv_cleanup EXIT

# Is DEV free for an exclusive open (what cfserver asks)? udev probes a block
# device for a moment after it is attached or closed after a write.
dev_free() { python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))' "$1"; }

loop_attach() { # FILE: attach, record for the cleanup (not in a subshell), name in $LOOPDEV
	LOOPDEV=$(losetup --find --show "$1") || return 1
	LOOPS+=("$LOOPDEV")
}

# cfserver on PATH must exit 3 at once, say WHAT, and leave PATH unchanged
expect_refused() { # LABEL PATH PATTERN [cfserver args...]
	local label=$1 path=$2 pat=$3 rc out
	shift 3
	out=$(bounded 20 "$CFSERVER" --listen "$CF_HOST:0" --transport "$CF_TRANSPORT" --cluster-key "$CF_KEYFILE" \
		--nvram "$path" "$@" 2>&1)
	rc=$?
	[ $rc = 3 ] || fail "$label: cfserver --nvram $path exited $rc, expected 3: $(echo "$out" | tail -n 3)"
	echo "$out" | grep -qE "$pat" || fail "$label: no clear message (want /$pat/): $(echo "$out" | tail -n 3)"
	log "ok: $label refused (exit 3): $(echo "$out" | grep -m1 'refused' | sed 's/.*refused: //')"
}

case $MODE in
loop)
	[ "$(id -u)" = 0 ] || skip "loop devices need root (losetup); running as uid $(id -u)"
	command -v losetup >/dev/null || skip "losetup is not installed (util-linux / mount)"
	[ -e /dev/loop-control ] || skip "no /dev/loop-control: this kernel or container has no loop devices"
	truncate -s 64K "$CF_WORK/small.dev"
	loop_attach "$CF_WORK/small.dev" || skip "losetup cannot attach a loop device here"
	small=$LOOPDEV
	wait_for $((10 * W)) dev_free "$small" || fail "$small stays busy after losetup"
	# too small for the geometry: refused, and not one byte written
	expect_refused "too-small device" "$small" "has 65536 bytes, geometry needs"
	cmp -s -n 65536 "$small" /dev/zero || fail "too-small device: cfserver wrote to a device it refused"
	mkfifo "$CF_WORK/fifo"
	expect_refused FIFO "$CF_WORK/fifo" "is a FIFO"
	[ -p "$CF_WORK/fifo" ] || fail "FIFO: no longer a FIFO"
	ln -s "$CF_WORK/small.dev" "$CF_WORK/link"
	expect_refused symlink "$CF_WORK/link" "symbolic link"
	truncate -s 48M "$CF_WORK/cf.dev"
	loop_attach "$CF_WORK/cf.dev" || fail "losetup cf.dev"
	DEV=$LOOPDEV
	wait_for $((10 * W)) dev_free "$DEV" || fail "$DEV stays busy after losetup"
	;;
pmem)
	require_transport
	# the rig's emulated NVDIMM (rig.sh --nvdimm sets CF_RIG_NVDIMM), or a device named on purpose
	DEV=${CF_TEST_NVRAM_DEV:-${CF_RIG_NVDIMM:-}}
	[ -n "$DEV" ] || skip "no scratch NVDIMM: run in the rig with --nvdimm (tests/rig/rig.sh --nvdimm ...) or set CF_TEST_NVRAM_DEV=/dev/... (it is overwritten)"
	[ -b "$DEV" ] || [ -c "$DEV" ] || fail "$DEV is not a device"
	# a fresh image: the test owns the device (the rig's NVDIMM is scratch). A
	# device-DAX device takes no write(2): the rig's is new at every boot
	if [ -b "$DEV" ]; then
		dd if=/dev/zero of="$DEV" bs=4096 count=1 conv=fsync 2>/dev/null || fail "cannot clear $DEV's header page"
	fi
	;;
*) fail "usage: nvram_dev.sh loop|pmem" ;;
esac

# ---- the CF on the device: bank workload, kill -9, restart on the same device ----
cluster_init --nvram "$DEV" --max-instances 8 --log-size 1M
grep -q "CF image: $DEV (\(block device\|device-DAX\), .*freshly formatted" "$CF_WORK/cfserver.log" ||
	fail "the start-up line does not say the device kind: $(grep 'CF image' "$CF_WORK/cfserver.log")"
log "$(grep -m1 -o 'CF image: .*' "$CF_WORK/cfserver.log")"
# one system at a time, each committing before the next joins: under emulation
# on a busy host three rdma_cm handshakes at once can miss the server's bound,
# and a system that died before the CF crash is not what this test is about
# (restarted, at most twice)
for s in $(seq 1 "$NSYS"); do
	node_start "SYS$s"
	for try in 1 2 3; do
		wait_for $((60 * W)) busy "SYS$s" 2 && break
		[ $try = 3 ] && fail "SYS$s did not start committing"
		node_exited "SYS$s" || fail "SYS$s is alive but does not commit"
		node_reap "SYS$s"
		log "SYS$s exited ${NODE_RC[SYS$s]} before committing: starting it again"
		node_start "SYS$s"
	done
done
gen0=$(cf_status_field cf generation)
[ -n "$gen0" ] || fail "no generation in the status"
kill -KILL "$CFSERVER_PID"
wait "$CFSERVER_PID" 2>/dev/null
CRASHES=$((CRASHES + 1))
for s in $(seq -f SYS%g 1 "$NSYS"); do # every system notices and ends its incarnation (75)
	node_wait_exit $s $((20 * W)) || fail "$s did not notice the CF crash"
	[ "${NODE_RC[$s]}" = 75 ] || fail "$s exited ${NODE_RC[$s]} after the CF crash, not 75"
done
[ "$MODE" = loop ] && { wait_for $((10 * W)) dev_free "$DEV" || fail "$DEV stays busy after cfserver died"; }
server_restart
grep -q "CF image: $DEV (.*, loaded" "$CF_WORK/cfserver.log" || fail "the restarted cfserver did not load the image on $DEV"
gen1=$(cf_status_field cf generation)
[ "$gen1" = $((gen0 + 1)) ] || fail "generation $gen0 -> $gen1 after the restart on $DEV, expected +1"
# a second cfserver on the same device while one runs: refused (O_EXCL)
if [ -b "$DEV" ]; then
	expect_refused "device in use" "$DEV" "in use"
fi
restart_dead
for s in $(seq -f SYS%g 1 "$NSYS"); do wait_recovered "$(inst_of $s)" $((30 * W)); done
for s in $(seq -f SYS%g 1 "$NSYS"); do wait_for $((60 * W)) busy $s 1 || fail "$s did not resume after the CF restart"; done
check_invariants nvram_dev
pass "cfserver --nvram $DEV ($CF_TRANSPORT): kill -9 mid-workload, restart took the image over (generation $gen0 -> $gen1), systems recovered; $JCHECK_LAST"
