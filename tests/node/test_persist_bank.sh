#!/bin/bash
# SPDX-License-Identifier: MIT
# Durable commits (cf_transport.h "Persist"): cfserver --nvram on a file,
# three cfnodes run the bank workload. Over either transport every transaction sends
# PERSIST requests (its UPDATEs before the data writes, its COMMIT before
# commit returns), which cfserver's group commit makes durable once per loop
# iteration; it counts them at exit, and what they cost on the group commit line:
#   persist: R PERSIST requests in G groups (at most M requests in one group), X refused
#   group commit: C commits, P persist calls, ...
# Checked: R >= commit points (each is one at least: a group commit of K
# transactions waits for one PERSIST of their COMMITs), G < R and M >= 2 (some
# requests of different nodes shared a loop iteration), P <= R, X = 0.
# The same over tcp and verbs (a completion is never durability). Data conserved.
. "$(dirname "$0")/node_lib.sh"

DURATION=${CF_BANK_SECONDS:-8}
start_cf --nvram "$CF_WORK/cf.img" --log-size 1M
mkdata 200 1000
pids=()
for i in 1 2 3; do
	cf_node node$i SYS$i NTS00$i --workload bank --duration 3600 --inflight 4 --json --seed $i
	pids+=("$NODE_PID")
done
for i in 1 2 3; do
	wait_for 60 log_has node$i "workload bank started" || fail "node$i did not start its workload"
done
sleep "$DURATION"
total=0
points=0
for i in 1 2 3; do
	kill -TERM "${pids[$((i - 1))]}"
done
for i in 1 2 3; do
	wait_exit "${pids[$((i - 1))]}" 60
	[ "$EXIT_RC" -eq 0 ] || fail "node$i exited $EXIT_RC"
	commits=$(grep -o '"commits":[0-9]*' "$CF_WORK/node$i.log" | head -1 | cut -d: -f2)
	cpoints=$(grep -o '"commit_points":[0-9]*' "$CF_WORK/node$i.log" | head -1 | cut -d: -f2)
	[ -n "$commits" ] && [ -n "$cpoints" ] || fail "node$i printed no result"
	total=$((total + commits))
	points=$((points + cpoints))
done
# (a loaded host can starve one node for the whole run: the total must move)
[ "$total" -gt 0 ] || fail "no node committed anything in ${DURATION}s"
kill_pid "$CFSERVER_PID" TERM
verify_data
line=$(grep "persist: .* PERSIST requests" "$CF_WORK/cfserver.log")
[ -n "$line" ] || fail "no PERSIST requests reached the CF ($total commits over $CF_TRANSPORT, --nvram)"
log "$total commits; $line"
# (a here-string, not a process substitution: the rig's guest has no /dev/fd)
read -r R G M X <<<"$(echo "$line" |
	sed -n 's/.*persist: \([0-9]*\) PERSIST requests in \([0-9]*\) groups (at most \([0-9]*\) requests in one group), \([0-9]*\) refused.*/\1 \2 \3 \4/p')"
[ -n "$X" ] || fail "unparsable: $line"
gline=$(grep "group commit: .* commits" "$CF_WORK/cfserver.log")
log "$gline"
P=$(echo "$gline" | sed -n 's/.*group commit: [0-9]* commits, \([0-9]*\) persist calls.*/\1/p')
[ -n "$P" ] || fail "unparsable: $gline"
[ "$R" -ge "$points" ] || fail "$R PERSIST requests for $points commit points ($total commits): a commit returned without one"
[ "$P" -le "$R" ] || fail "persists $P exceed requests $R"
# three nodes committing at once: some requests must have shared a loop iteration
# (in the rig about one in five did); one group per request means no grouping
[ "$G" -lt "$R" ] && [ "$M" -ge 2 ] || fail "no grouping: $R requests in $G groups (at most $M in one)"
[ "$X" -eq 0 ] || fail "$X PERSIST requests refused"
pass "$CF_TRANSPORT: $total commits in $points commit points, $R PERSISTs in $G groups ($P persists; at most $M requests in one)"
