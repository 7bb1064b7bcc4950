#!/bin/bash
# SPDX-License-Identifier: MIT
# Metrics (issue 14): while two bank nodes run on a --nvram CF, cfctl metrics
# with the monitor key and with the cluster key both return OpenMetrics text
# that parses (tests/lib/openmetrics_check.py), and the counters move between
# two scrapes: commits, heartbeats, persists. cfserver refuses a monitor key
# that is the cluster key, and a CF without --monitor-key refuses the role.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
CHECK=$(dirname "$0")/../lib/openmetrics_check.py
MKEY=$CF_WORK/monitor.key
DATA=$CF_WORK/data
"$CFCTL" keygen --out "$MKEY" || fail "keygen"

# the same key for both roles would make every monitor a member
out=$(bounded 10 "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" --monitor-key "$CF_KEYFILE" 2>&1)
rc=$?
[ "$rc" = 5 ] && [[ $out == *"is the cluster key"* ]] || fail "monitor key = cluster key: rc $rc: $out"

start_cfserver --hb-timeout 1000 --nvram "$CF_WORK/cf.img" --max-instances 4 --log-size 1M --monitor-key "$MKEY" ||
	fail "cfserver did not start"
"$CFCTL" mkdata --data "$DATA" --accounts 200 --balance 100 >/dev/null || fail "mkdata"
pids=()
for i in 1 2; do
	start_bg node$i "$CFNODE" --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --system SYS$i --instance NTS00$i \
		--data "$DATA" --cluster-key "$CF_KEYFILE" --workload bank --duration 3600 --inflight 2 --seed $i
	pids+=("$BG_PID")
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
val() { # FILE KEY: one sample's value, as an integer
	python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1])).get(sys.argv[2], -1)))' "$1" "$2"
}
sum() { # FILE PREFIX: the sum of the samples whose key starts with PREFIX
	python3 -c 'import json,sys; print(int(sum(v for k,v in json.load(open(sys.argv[1])).items() if k.startswith(sys.argv[2]))))' "$1" "$2"
}
t0=$(date +%s%N)
scrape "$CF_WORK/m1" --key "$MKEY" || fail "first scrape (monitor key): $(tail -3 "$CF_WORK/m1.txt")"
log "scrape: $(wc -c <"$CF_WORK/m1.txt") bytes in $((($(date +%s%N) - t0) / 1000000)) ms"
[ "$(val "$CF_WORK/m1.json" 'cfplex_systems{state="active"}')" = 2 ] || fail "systems active: $(grep systems "$CF_WORK/m1.txt")"
[ "$(val "$CF_WORK/m1.json" cfplex_joins_total)" -ge 2 ] || fail "joins"
[ "$(val "$CF_WORK/m1.json" 'cfplex_connections{role="monitor"}')" = 1 ] || fail "the scraper's own connection"
[ "$(val "$CF_WORK/m1.json" 'cfplex_connections{role="system"}')" -ge 6 ] || fail "system connections"
[ "$(val "$CF_WORK/m1.json" cfplex_durable)" = 1 ] || fail "durable"
grep -q '^cfplex_instance_lock_words_held{instance="NTS001"} ' "$CF_WORK/m1.txt" || fail "no lock words of NTS001"
grep -q '^cfplex_instance_log_bytes_used{instance="NTS002"} ' "$CF_WORK/m1.txt" || fail "no log bytes of NTS002"
grep -q '^cfplex_restart_recovery 0$' "$CF_WORK/m1.txt" || fail "restart recovery state"
c1=$(sum "$CF_WORK/m1.json" cfplex_node_commits_total)
h1=$(sum "$CF_WORK/m1.json" cfplex_node_heartbeats_total)
p1=$(val "$CF_WORK/m1.json" cfplex_persist_seconds_count)
moved() {
	scrape "$CF_WORK/m2" --cluster-key "$CF_KEYFILE" || return 1
	[ "$(sum "$CF_WORK/m2.json" cfplex_node_commits_total)" -gt "$c1" ] &&
		[ "$(sum "$CF_WORK/m2.json" cfplex_node_heartbeats_total)" -gt "$h1" ] &&
		[ "$(val "$CF_WORK/m2.json" cfplex_persist_seconds_count)" -gt "$p1" ]
}
wait_for 30 moved || fail "counters did not move: commits $c1 -> $(sum "$CF_WORK/m2.json" cfplex_node_commits_total), persists $p1 -> $(val "$CF_WORK/m2.json" cfplex_persist_seconds_count)"
log "commits $c1 -> $(sum "$CF_WORK/m2.json" cfplex_node_commits_total), persists $p1 -> $(val "$CF_WORK/m2.json" cfplex_persist_seconds_count) (cluster key)"
[ "$(val "$CF_WORK/m2.json" 'cfplex_connections{role="console"}')" = 1 ] || fail "a cluster-key scrape is a console"

# a node killed: a failure by cause and its fenced connections are counted
kill -KILL "${pids[1]}"
failed() {
	scrape "$CF_WORK/m3" --key "$MKEY" &&
		[ "$(val "$CF_WORK/m3.json" 'cfplex_failures_total{cause="conn_lost"}')" -ge 1 ] &&
		[ "$(val "$CF_WORK/m3.json" cfplex_fences_total)" -ge 1 ]
}
wait_for 20 failed || fail "failure not counted: $(grep -E 'failures|fences' "$CF_WORK/m3.txt")"

# a CF without --monitor-key refuses the role, with a reason
start_cfserver plain -- --hb-timeout 1000 || fail "second cfserver"
out=$(bounded 20 "$CFCTL" metrics --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --key "$MKEY" 2>&1) &&
	fail "monitor scrape of a CF without a monitor key: $out"
[[ $out == *"no monitor key"* ]] || fail "no reason given: $out"
pass "metrics parse, move under load, count failures; both keys read them"
