#!/usr/bin/env bash
# Two builds' round trips in one session, interleaved (A B A B ...), so that a shared
# machine's load falls on both alike: bench/cf_rtt --cfserver of each build, ROUNDS rounds.
#   bench/rtt_ab.sh BUILD_A BUILD_B [ROUNDS] [ITERS] [OPS]
# Prints one line per run and, per build, the median over rounds of each op's median and p99.
set -euo pipefail
A=${1:?usage: rtt_ab.sh BUILD_A BUILD_B [ROUNDS] [ITERS] [OPS]}
B=${2:?usage: rtt_ab.sh BUILD_A BUILD_B [ROUNDS] [ITERS] [OPS]}
ROUNDS=${3:-5}
ITERS=${4:-20000}
OPS=${5:-cas}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= ROUNDS; i++)); do
	for b in "$A" "$B"; do
		j=$("$b/bench/cf_rtt" --cfserver "$b/cfserver/cfserver" --ops "$OPS" --iters "$ITERS" --json)
		printf '%s\t%s\n' "$b" "$j" >>"$out"
		printf '%s round %d: %s\n' "$b" "$i" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(" ".join("%s median %.2f us p99 %.2f us" % (r["op"], r["median_us"], r["p99_us"]) for r in d["results"]))' "$j")"
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$A" "$B" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1])]
res = {}
for b, j in rows:
    for r in json.loads(j)["results"]:
        res.setdefault((b, r["op"]), []).append(r)
ops = sorted({op for _, op in res})
for op in ops:
    a, b = res[(sys.argv[2], op)], res[(sys.argv[3], op)]
    ma, mb = statistics.median(r["median_us"] for r in a), statistics.median(r["median_us"] for r in b)
    pa, pb = statistics.median(r["p99_us"] for r in a), statistics.median(r["p99_us"] for r in b)
    print(f"{op}: median {ma:.2f} -> {mb:.2f} us (x{mb / ma:.3f}), p99 {pa:.2f} -> {pb:.2f} us (x{pb / pa:.3f}), "
          f"median of {len(a)} rounds each")
PY
