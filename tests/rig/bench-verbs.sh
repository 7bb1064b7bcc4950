#!/bin/bash
# tests/rig/bench-verbs.sh BUILD_DIR - in ONE rig boot: perftest's CAS/READ
# latency (the device's own round trip), then cfplex's over a cf_session on
# the verbs transport (cf_rtt against a cfserver on rxe0), so the ratio is
# measured on the same emulated hardware. Runs INSIDE the guest:
#   tests/rig/rig.sh --share "$PWD" -- tests/rig/bench-verbs.sh build
set -u
B=${1:?usage: bench-verbs.sh BUILD_DIR}
ip=${CF_HOST:?run through tests/rig/rig.sh}
iters=${CF_BENCH_ITERS:-5000}
work=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; rm -rf "$work"' EXIT

perf() { # perf NAME TOOL ARGS...: server in the background (killed by PID), client retries until it listens
	local name=$1; shift
	for _ in 1 2 3; do # a client that raced the server's startup can "succeed" with inf: run the pair again
		timeout 120 "$@" -R -d rxe0 -n "$iters" > "$work/ps.log" 2>&1 &
		local p=$!
		for _ in $(seq 1 50); do
			timeout 120 "$@" -R -d rxe0 -n "$iters" "$ip" > "$work/pc.log" 2>&1 && break
			kill -0 $p 2>/dev/null || break
		done
		kill $p 2>/dev/null; wait $p 2>/dev/null
		grep -q inf "$work/pc.log" || break
	done
	awk -v n="$name" '/^ *[0-9]+ +[0-9]+ / {printf "%-22s min %7.2f us  typical %7.2f us  p99 %8.2f us\n", n, $3, $5, $8}' "$work/pc.log"
}
echo "== perftest (rdma_cm, rxe0), $iters iterations"
perf "ib_atomic_lat CAS" ib_atomic_lat -A CMP_AND_SWAP
perf "ib_atomic_lat FAA" ib_atomic_lat -A FETCH_AND_ADD
perf "ib_read_lat" ib_read_lat

echo "== cfplex cf_rtt over verbs (session, one synchronous op at a time)"
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/key"; echo >> "$work/key") # 0600: keys open to others are refused
"$B/cfserver/cfserver" --listen "$ip:0" --port-file "$work/port" --transport verbs --cluster-key "$work/key" \
	--hb-interval ${CF_BENCH_HB_MS:-5} --hb-timeout 60000 --log-level warn --log-size 64K > "$work/cfserver.log" 2>&1 &
spid=$!
for _ in $(seq 1 500); do [ -s "$work/port" ] && break; kill -0 $spid 2>/dev/null || break; sleep 0.02; done
[ -s "$work/port" ] || { echo "cfserver did not start:"; cat "$work/cfserver.log"; exit 1; }
"$B/bench/cf_rtt" --transport verbs --cf "$ip:$(cat "$work/port")" --key "$work/key" --iters "$iters" --warmup 500
rc=$?
echo "== one cfnode, bank workload (uncontended lock acquire = record WRITE + CAS in one batch)"
"$B/node/cfctl" mkdata --data "$work/data" --accounts 1000 --balance 100 > /dev/null &&
timeout 120 "$B/node/cfnode" --cf "$ip:$(cat "$work/port")" --transport verbs --system BENCH --instance NTSB \
	--data "$work/data" --cluster-key "$work/key" --workload bank --duration "${CF_BENCH_BANK_S:-5}" --json \
	2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{") and "lock_acquire_us" in line:
        d = json.loads(line)
        la, cr = d["lock_acquire_us"], d["cas_rtt_us"]
        print("lock acquire  n %d  p50 %.1f us  p90 %.1f us  p99 %.1f us   (cas rtt p50 %.1f us; %.1f txn/s)"
              % (la["n"], la["p50"], la["p90"], la["p99"], cr["p50"], d["txn_per_s"]))' || rc=1
CF_VERBS_BUSYPOLL=1 "$B/bench/cf_rtt" --transport verbs --cf "$ip:$(cat "$work/port")" --key "$work/key" \
	--iters "$iters" --warmup 500 --ops cas | sed 's/^/[busypoll] /'
exit $rc
