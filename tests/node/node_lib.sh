#!/bin/bash
# SPDX-License-Identifier: MIT
# node_lib.sh - helpers for the node integration tests, on top of
# tests/lib/harness.sh (work dir, key, start_cfserver, wait_for, cleanup by PID).
. "$(dirname "$0")/../lib/harness.sh"

require_bin CFSERVER CFNODE CFCTL
require_transport


# A CF tolerant of a loaded test machine: T = 1 s (the lease is T/2).
start_cf() { # [cfserver args...]
	start_cfserver --hb-timeout "${CF_TEST_T_MS:-1000}" "$@" || fail "cfserver did not start"
}

mkdata() { # ACCOUNTS BALANCE
	"$CFCTL" mkdata --data "$DATA" --accounts "$1" --balance "$2" >/dev/null || fail "cfctl mkdata"
}

# Systems start with harness.sh cf_node LOG SYS INST [cfnode args...] (background,
# sets NODE_PID) or, in the foreground, bounded, output on stdout+stderr:
run_node() { # SYSTEM INSTANCE [cfnode args...]
	cf_node_argv "$@"
	bounded "${NODE_TIMEOUT:-60}" "${CF_NODE_ARGV[@]}"
}

# wait_exit PID TIMEOUT_S: wait for a tracked background process; sets EXIT_RC.
wait_exit() {
	local pid=$1 t=$2 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$SECONDS" -ge "$deadline" ] && fail "pid $pid still running after ${t}s"
		sleep 0.05
	done
	wait "$pid"
	EXIT_RC=$?
}

log_has() { # NAME PATTERN
	grep -q -- "$2" "$CF_WORK/$1.log"
}

verify_data() {
	"$CFCTL" verify --data "$DATA" || fail "cfctl verify failed"
}
