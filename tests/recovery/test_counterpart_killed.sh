#!/bin/bash
# SPDX-License-Identifier: MIT
# A counterpart killed in the middle of its backout: the CF fails it, NTS001
# becomes INACTIVE_FAILED(k+1) and another peer finishes; the data ends the same.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001 --inflight 32
CF_FAULT=rec.after_attach:kill node SYS2 NTS002
node SYS3 NTS003 --policy operator
wait_committing SYS1 SYS2 SYS3
kill -KILL "$(pid_of SYS1)"
wait_for 20 gone "$(pid_of SYS2)" || fail "SYS2 did not die at its fault point"
cf_ctl policy auto >/dev/null || fail "cfctl policy auto"
wait_recovery NTS001 2
[ "$(counterpart_of NTS001 2)" = SYS3 ] || fail "incident 2 recovered by $(counterpart_of NTS001 2)"
wait_recovery NTS002
wait_inst NTS001 INACTIVE_CLEAN
wait_inst NTS002 INACTIVE_CLEAN
finish
pass "dead counterpart's work finished by another peer"
