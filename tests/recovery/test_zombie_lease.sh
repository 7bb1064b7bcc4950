#!/bin/bash
# SPDX-License-Identifier: MIT
# --fence-agent none: a frozen system is recovered without being killed. When
# it resumes, the CF refuses it (its connection is gone) and its lease stops
# its data writes: it ends its incarnation (exit 75) and writes nothing.
. "$(dirname "$0")/lib.sh"
HB_TIMEOUT=${CF_TEST_T_MS:-200} cluster # short T over tcp; the rig sets a longer one for emulation
# SYS1 holds one record lock in an open transaction, idle: nothing in flight at the freeze.
cf_node SYS1 SYS1 NTS001 --workload hold --record 7 --hold-ms 60000
PID_SYS1=$NODE_PID
node SYS2 NTS002 --fence-agent none
wait_for 20 grep -q "holding" "$CF_WORK/SYS1.log" || fail "SYS1 does not hold its lock"
before=$(md5sum "$DATA"/f0.cfd | cut -d' ' -f1)
kill -STOP "$PID_SYS1"
wait_recovery NTS001
grep -q "NOT fenced" "$CF_WORK/SYS2.log" || fail "unsafe fence choice not logged"
kill -0 "$PID_SYS1" || fail "SYS1 was killed although the fence agent is none"
kill -CONT "$PID_SYS1"
wait_for 20 gone "$PID_SYS1" || fail "resumed zombie did not end its incarnation"
wait "$PID_SYS1"; rc=$?
[ "$rc" -eq 75 ] || fail "zombie exit code $rc, expected 75"
grep -qi "lease expired\|incarnation .* is over\|connection to CF lost" "$CF_WORK/SYS1.log" || fail "zombie did not say why it stopped"
finish
pass "zombie refused by the CF and stopped by its lease"
