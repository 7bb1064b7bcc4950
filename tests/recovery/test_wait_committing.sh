#!/bin/bash
# SPDX-License-Identifier: MIT
# Issue 10: wait_committing must see a system commit even when the console
# probe cannot reach the CF. On a loaded 2-CPU machine (ASan build, CPU hogs)
# `cfctl status` took 10-14 s or failed outright, and claim3/claim24 failed
# with "SYS1 does not commit" while SYS1's journal held 1411 commits; the
# teardown that followed ("8 open transaction(s) backed out") read as a stalled
# ring. Here every `cfctl status` fails, as a starved probe does; the wait reads
# the system's journal and must pass, and must not pass for a stopped system.
. "$(dirname "$0")/lib.sh"
HB_TIMEOUT=600000 cluster # not a failure test: a loaded machine must not fail SYS1
real_cfctl=$CFCTL
CFCTL=$CF_WORK/cfctl-no-status
printf '%s\n' '#!/bin/sh' \
	'case " $* " in' \
	'*" status "*) echo "cfctl: connect: Connection timed out (a starved probe)" >&2; exit 69 ;;' \
	'esac' \
	"exec \"$real_cfctl\" \"\$@\"" >"$CFCTL"
chmod +x "$CFCTL"
cf_ctl status >/dev/null 2>&1 && fail "the stand-in probe answered"
node SYS1 NTS001 --group-commit on
wait_committing SYS1
kill -STOP "$(pid_of SYS1)"
n=$(commits_since_start SYS1) # from here on: nothing new
sleep 1 # a bound on what must not happen, not a wait for a condition
committing SYS1 "$n" && fail "a stopped system counts as committing"
kill -CONT "$(pid_of SYS1)"
wait_committing SYS1
finish
pass "wait_committing sees commits without the console probe, and none from a stopped system"
