#!/bin/bash
# SPDX-License-Identifier: MIT
# Two systems fail at once: the survivor recovers both instances.
. "$(dirname "$0")/lib.sh"
cluster
node SYS1 NTS001; node SYS2 NTS002; node SYS3 NTS003
wait_committing SYS1 SYS2 SYS3
# At once: both stopped first, then both killed. A plain "kill -KILL p1 p2" is not at once:
# SYS1's sentinel declares it as it starts to die, the CF's and the agents' real-time threads
# run before this shell sends the second signal, and SYS2 recovered NTS001 in that gap.
kill -STOP "$(pid_of SYS1)" "$(pid_of SYS2)"
kill -KILL "$(pid_of SYS1)" "$(pid_of SYS2)"
wait_recovery NTS001
wait_recovery NTS002
[ "$(counterpart_of NTS001)" = SYS3 ] && [ "$(counterpart_of NTS002)" = SYS3 ] || fail "counterparts wrong"
wait_inst NTS001 INACTIVE_CLEAN
wait_inst NTS002 INACTIVE_CLEAN
finish
pass "double failure recovered"
