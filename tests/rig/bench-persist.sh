#!/bin/bash
# tests/rig/bench-persist.sh BUILD_DIR - what durable commits cost over verbs,
# in ONE rig boot (emulation: read the ratios, not the figures). Runs INSIDE
# the guest:
#   tests/rig/rig.sh --share "$PWD" -- tests/rig/bench-persist.sh build
# cfserver --transport verbs --nvram FILE, then the bank workload:
#   1. one node, one transaction in flight: txn/s = 1 / (commit cycle), with
#      PERSIST (the default on a durable CF) and with CF_BENCH_NO_PERSIST=1;
#   2. the same against a DRAM CF (no PERSIST by design), for reference;
#   3. three nodes x 4 in flight with PERSIST: how well cfserver groups them
#      (its exit line: requests, groups, persists).
# The --nvram file is on the guest's tmpfs: msync costs nothing there, so
# this measures the protocol's cost (the PERSIST round trip and the server's
# work), not a medium's.
set -u
B=${1:?usage: bench-persist.sh BUILD_DIR}
ip=${CF_HOST:?run through tests/rig/rig.sh}
secs=${CF_BENCH_BANK_S:-8}
work=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; rm -rf "$work"' EXIT
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/key"; echo >> "$work/key") # 0600: keys open to others are refused

start_cf() { # NAME [cfserver args...]
	local name=$1; shift
	rm -f "$work/port"
	"$B/cfserver/cfserver" --listen "$ip:0" --port-file "$work/port" --transport verbs --cluster-key "$work/key" \
		--hb-interval 20 --hb-timeout 60000 --log-size 1M "$@" > "$work/$name.log" 2>&1 &
	spid=$!
	for _ in $(seq 1 1500); do [ -s "$work/port" ] && break; kill -0 $spid 2>/dev/null || break; sleep 0.02; done
	[ -s "$work/port" ] || { echo "cfserver did not start:"; cat "$work/$name.log"; exit 1; }
}
stop_cf() { kill -TERM $spid; wait $spid 2>/dev/null; spid=; }
bank() { # LABEL SYSTEM INFLIGHT [env...]: one node, prints "LABEL txn/s lock-p50"
	local label=$1 sys=$2 inflight=$3; shift 3
	rm -rf "$work/data"
	"$B/node/cfctl" mkdata --data "$work/data" --accounts 1000 --balance 100 > /dev/null || exit 1
	env "$@" timeout 180 "$B/node/cfnode" --cf "$ip:$(cat "$work/port")" --transport verbs --system "$sys" \
		--instance "NT$sys" --data "$work/data" --cluster-key "$work/key" --workload bank --duration "$secs" \
		--inflight "$inflight" --json 2>/dev/null | python3 -c '
import json, sys
label = sys.argv[1]
for line in sys.stdin:
    if line.startswith("{") and "txn_per_s" in line:
        d = json.loads(line)
        print("%-34s %8.1f txn/s  (%d commits; lock acquire p50 %.1f us)" % (label, d["txn_per_s"], d["commits"], d["lock_acquire_us"]["p50"]))' "$label"
}

echo "== bank over verbs, 1 node, 1 transaction in flight, ${secs}s each"
start_cf nvram --nvram "$work/cf.img"
bank "nvram, PERSIST" S1 1
bank "nvram, no PERSIST (unsafe)" S2 1 CF_BENCH_NO_PERSIST=1
bank "nvram, PERSIST (again)" S3 1
bank "nvram, no PERSIST (again)" S4 1 CF_BENCH_NO_PERSIST=1
stop_cf
grep "persist:" "$work/nvram.log" | sed 's/^[^ ]* cfserver info: /  cfserver: /'
start_cf dram
bank "DRAM CF (nothing to persist)" S5 1
stop_cf

echo "== 3 nodes x 4 in flight, nvram with PERSIST: grouping at the CF"
start_cf group --nvram "$work/cf2.img"
rm -rf "$work/data"
"$B/node/cfctl" mkdata --data "$work/data" --accounts 1000 --balance 100 > /dev/null || exit 1
pids=()
for i in 1 2 3; do
	timeout 180 "$B/node/cfnode" --cf "$ip:$(cat "$work/port")" --transport verbs --system G$i --instance NG$i \
		--data "$work/data" --cluster-key "$work/key" --workload bank --duration "$secs" --inflight 4 --json \
		> "$work/g$i.log" 2>/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
for i in 1 2 3; do grep -o '"commits":[0-9]*,.*"txn_per_s":[0-9.]*' "$work/g$i.log" | sed "s/^/  G$i /"; done
stop_cf
grep "persist:" "$work/group.log" | sed 's/^[^ ]* cfserver info: /  cfserver: /'
"$B/node/cfctl" verify --data "$work/data" > /dev/null && echo "  data verified"
