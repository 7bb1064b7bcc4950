#!/bin/bash
# SPDX-License-Identifier: MIT
# A release build's programs ignore CF_FAULT, by behaviour: the recovery tests'
# cluster (tests/recovery/lib.sh) with CFSERVER, CFNODE and CFCTL of a release build, every
# process started with CF_FAULT naming a point on its path (kill, no skip) and CF_FAULT_LOG=1.
# In a build with fault points each of them would die at once; here SYS1 commits, is killed
# (by the test), one peer recovers it, and cfserver, SYS2 and SYS3 are alive and logged no
# cf-fault line. Run by test_release_build.sh.
CF_FAULT_ANYWAY=1 # arming points against binaries without them is this test's point
. "$(dirname "$0")/../recovery/lib.sh"
export CF_FAULT_LOG=1
CF_FAULT=srv.mid_sweep:kill cluster
CF_FAULT=txn.after_lock_record:kill node SYS1 NTS001
CF_FAULT=rec.after_register:kill node SYS2 NTS002
CF_FAULT=rec.mid_backout:kill node SYS3 NTS003
wait_committing SYS1 SYS2 SYS3
kill -KILL "$(pid_of SYS1)"
wait "$(pid_of SYS1)" 2>/dev/null
wait_recovery NTS001 "" 30
[ "$(recoveries NTS001 | wc -l)" -eq 1 ] || fail "recoveries of NTS001: $(recoveries NTS001)"
wait_committing SYS2 SYS3
for p in "${CF_PIDS[0]}" "$(pid_of SYS2)" "$(pid_of SYS3)"; do
	gone "$p" && fail "pid $p is gone with CF_FAULT set in a release build"
done
if grep -l 'cf-fault' "$CF_WORK"/*.log; then fail "a release build reacted to CF_FAULT"; fi
finish
pass "release build: cfserver and cfnode ignore CF_FAULT (txn, rec and srv points armed)"
