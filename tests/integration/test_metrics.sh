#!/bin/bash
# SPDX-License-Identifier: MIT
# Metrics: while two bank nodes run on a --nvram CF, cfctl metrics
# with the monitor key and with the cluster key both return OpenMetrics text
# that parses (tests/lib/openmetrics_check.py), and the counters move between
# two scrapes: commits, heartbeats, persists. cfserver refuses a monitor key
# that is the cluster key, and a CF without --monitor-key refuses the role.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
CHECK=$(dirname "$0")/../lib/openmetrics_check.py
MKEY=$CF_WORK/monitor.key
"$CFCTL" keygen --out "$MKEY" || fail "keygen"

# the same key for both roles would make every monitor a member
out=$(bounded 10 "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --monitor-key "$CF_KEYFILE" 2>&1)
rc=$?
[ "$rc" = 77 ] && [[ $out == *"is the cluster key"* ]] || fail "monitor key = cluster key: rc $rc: $out"

start_cfserver --hb-timeout 1000 --nvram "$CF_WORK/cf.img" --max-instances 4 --log-size 1M --monitor-key "$MKEY" ||
	fail "cfserver did not start"
"$CFCTL" mkdata --data "$DATA" --accounts 200 --balance 100 >/dev/null || fail "mkdata"
pids=()
for i in 1 2; do
	cf_node node$i SYS$i NTS00$i --workload bank --duration 3600 --inflight 2 --seed $i
	pids+=("$NODE_PID")
done
for i in 1 2; do
	wait_for 60 grep -q "workload bank started" "$CF_WORK/node$i.log" || fail "node$i did not start its workload"
done

scrape() { # OUT [cfctl args...]: scrape, check the syntax, samples as JSON in OUT.json
	local out=$1
	shift
	bounded 20 "$CFCTL" metrics --cf "$CF_ADDR" --transport "$CF_TRANSPORT" "$@" >"$out.txt" || return 1
	python3 "$CHECK" "$out.txt" --json >"$out.json"
}
# check FILE EXPR [FILE2]: EXPR (python) holds over the samples m (and m2): one python per check,
# since python's start-up costs seconds on a loaded machine
check() {
	python3 - "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m2 = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}
def s(d, prefix): return sum(v for k, v in d.items() if k.startswith(prefix))
ok = eval("(" + sys.argv[2] + ")")
if not ok:
    print("check failed:", sys.argv[2], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
t0=$(date +%s%N)
scrape "$CF_WORK/m1" --key "$MKEY" || fail "first scrape (monitor key): $(tail -3 "$CF_WORK/m1.txt")"
log "scrape: $(wc -c <"$CF_WORK/m1.txt") bytes in $((($(date +%s%N) - t0) / 1000000)) ms"
check "$CF_WORK/m1.json" 'm["cfplex_systems{state=\"active\"}"] == 2 and m["cfplex_joins_total"] >= 2 and
	m["cfplex_connections{role=\"monitor\"}"] == 1 and m["cfplex_connections{role=\"system\"}"] >= 6 and
	m["cfplex_durable"] == 1 and m["cfplex_restart_recovery"] == 0 and
	"cfplex_instance_lock_words_held{instance=\"NTS001\"}" in m and
	"cfplex_instance_log_bytes_used{instance=\"NTS002\"}" in m' || fail "first scrape: $(cat "$CF_WORK/m1.txt")"
# the counters move: commits and heartbeats (the heartbeat slots), persists (the histogram)
moved() {
	scrape "$CF_WORK/m2" --cluster-key "$CF_KEYFILE" &&
		check "$CF_WORK/m1.json" 's(m2, "cfplex_node_commits_total") > s(m, "cfplex_node_commits_total") and
			s(m2, "cfplex_node_heartbeats_total") > s(m, "cfplex_node_heartbeats_total") and
			m2["cfplex_persist_seconds_count"] > m["cfplex_persist_seconds_count"] and
			m2["cfplex_connections{role=\"console\"}"] == 1' "$CF_WORK/m2.json"
}
t0=$SECONDS
wait_for 60 moved || fail "counters did not move: $(grep -E '^cfplex_(node_commits|persist_seconds_count|connections)' "$CF_WORK/m1.txt" "$CF_WORK/m2.txt")"
log "counters moved ($((SECONDS - t0)) s): $(grep -hE '^cfplex_node_commits' "$CF_WORK/m1.txt" | tr '\n' ' ') -> $(grep -hE '^cfplex_node_commits' "$CF_WORK/m2.txt" | tr '\n' ' ')"

# a node killed: a failure by cause and its fenced connections are counted
kill -KILL "${pids[1]}"
failed() {
	scrape "$CF_WORK/m3" --key "$MKEY" &&
		grep -qE '^cfplex_failures_total\{cause="(conn_lost|exiting)"\} [1-9]' "$CF_WORK/m3.txt" &&
		grep -qE '^cfplex_fences_total [1-9]' "$CF_WORK/m3.txt"
}
wait_for 30 failed || fail "failure not counted: $(grep -E 'failures|fences' "$CF_WORK/m3.txt")"

# a CF without --monitor-key refuses the role, with a reason
start_cfserver plain -- --hb-timeout 1000 || fail "second cfserver"
out=$(bounded 20 "$CFCTL" metrics --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --key "$MKEY" 2>&1) &&
	fail "monitor scrape of a CF without a monitor key: $out"
[[ $out == *"no monitor key"* ]] || fail "no reason given: $out"
pass "metrics parse, move under load, count failures; both keys read them"
