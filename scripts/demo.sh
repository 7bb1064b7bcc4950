#!/usr/bin/env bash
# The failover demo: cfserver + three systems running the bank workload on one data
# directory (tcp transport, loopback), the CF duplexed (a primary and a secondary in sync).
# Part 1 kills one system (SIGKILL) in the middle of its transactions; part 2 freezes another
# (SIGSTOP beyond T) under operator policy; part 3 kills the primary CF (kill -9): the
# secondary takes over, every system switches to it keeping its incarnation, the dead CF comes back as the secondary.
# Each time it prints the timeline; at the end it checks the invariants and exits 0 only if
# they all hold.
#
# usage: scripts/demo.sh [BUILD_DIR]      env: CF_TRANSPORT=tcp|verbs CF_HOST=127.0.0.1
set -uo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$BUILD" ] || BUILD="$ROOT/$BUILD"
BUILD=$(cd "$BUILD" && pwd)
CFSERVER=$BUILD/cfserver/cfserver
CFNODE=$BUILD/node/cfnode
CFCTL=$BUILD/node/cfctl
TRANSPORT=${CF_TRANSPORT:-tcp}
HOST=${CF_HOST:-127.0.0.1}
H_MS=${DEMO_H_MS:-5}
T_MS=${DEMO_T_MS:-50}
ACCOUNTS=${DEMO_ACCOUNTS:-10000}
INFLIGHT=${DEMO_INFLIGHT:-100}

for b in "$CFSERVER" "$CFNODE" "$CFCTL"; do
  [ -x "$b" ] || { echo "demo: $b not built (run make demo)" >&2; exit 2; }
done

W=$(mktemp -d /tmp/cfplex-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "demo: logs kept in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%8.3f ms", (b - a) / 1e6 }'; }
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() { echo "demo: FAILED: $*" >&2; KEEP=1; exit 1; }

# wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds
wait_for() {
  local t=$1; shift
  local end=$(( $(date +%s%N) + t * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -gt "$end" ] && return 1
    sleep 0.02
  done
}

ctl() { "$CFCTL" --cf "$CFS" --cluster-key "$W/key" --transport "$TRANSPORT" "$@"; }

start_node() { # start_node SYS INST
  local sys=$1 inst=$2
  "$CFNODE" --cf "$CFS" --cluster-key "$W/key" --transport "$TRANSPORT" \
    --system "$sys" --instance "$inst" --data "$W/data" \
    --policy auto --fence-agent local \
    --workload bank --accounts "$ACCOUNTS" --duration 600 --inflight "$INFLIGHT" \
    --journal "$W/$sys.journal" >>"$W/$sys.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_$sys=$pid"
}

committed() { # committed SYS: the system's commit counter, from cfctl status --json
  ctl status --json 2>/dev/null | python3 -c '
import json,sys
d=json.load(sys.stdin)
for s in d.get("systems",[]):
    if s.get("name")==sys.argv[1] and s.get("state")=="ACTIVE":
        print(s.get("commits",0)); break
else: print(0)' "$1"
}
busy() { [ "$(committed "$1")" -gt "${2:-10}" ]; }

recovery_line() { # recovery_line INST: the RECOVERY json a counterpart logged for INST
  grep -h "RECOVERY {\"inst\":\"$1\"" "$W"/SYS*.log 2>/dev/null | tail -n 1 | sed 's/.*RECOVERY //'
}
has_recovery() { [ -n "$(recovery_line "$1")" ]; }

timeline() { # timeline INST T0_NS MODE
  local j; j=$(recovery_line "$1")
  python3 - "$j" "$2" "$3" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); t0 = int(sys.argv[2]); mode = sys.argv[3]
def at(ns): return "%9.3f ms" % ((ns - t0) / 1e6) if ns else "        ?   "
print(f"  {at(t0)}  {r['failed']} {mode}")
print(f"  {at(r['fail_ns'])}  CF declared {r['failed']} failed, fenced it, marked {r['inst']} INACTIVE_FAILED (incident {r['incident']})")
print(f"  {at(r['detect_ns'])}  {r['counterpart']} learned of it (CF event)")
print(f"  {at(r['locks_free_ns'])}  {r['counterpart']} registered, fenced, backed out {r['txns']} in-flight transactions ({r['updates']} updates written back, {r.get('unwritten', 0)} never written), released {r['locks']} locks")
print(f"  {at(r['done_ns'])}  {r['counterpart']} unregistered: {r['inst']} INACTIVE_CLEAN")
print("  phases (us): " + ", ".join(f"{k[:-3]} {v:.0f}" for k, v in r.items() if k.endswith('_us')))
print(f"  total failover, {mode} -> locks usable: {(r['locks_free_ns'] - t0) / 1e6:.3f} ms")
EOF
}

step "setting up in $W ($TRANSPORT on $HOST, h=${H_MS} ms, T=${T_MS} ms)"
"$CFCTL" keygen --out "$W/key" || die "cfctl keygen"
mkdir -p "$W/data"
"$CFCTL" mkdata --data "$W/data" --accounts "$ACCOUNTS" --balance 1000 || die "cfctl mkdata"
free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$HOST"; }
declare -A CF_PORT=([A]=$(free_port) [B]=$(free_port)) CF_LINK=([A]=$(free_port) [B]=$(free_port)) CF_PID=()
CFS="$HOST:${CF_PORT[A]},$HOST:${CF_PORT[B]}"
other_cf() { [ "$1" = A ] && echo B || echo A; }
cf_start() { # cf_start X: cfserver X of the duplexed pair (always the same command line), its log cfX.log
  local x=$1
  "$CFSERVER" --listen "$HOST:${CF_PORT[$x]}" --duplex-listen "$HOST:${CF_LINK[$x]}" --transport "$TRANSPORT" \
    --duplex-pair "$HOST:${CF_LINK[$(other_cf "$x")]}" --cluster-key "$W/key" --hb-interval "$H_MS" \
    --hb-timeout "$T_MS" >>"$W/cf$x.log" 2>&1 &
  CF_PID[$x]=$!
  PIDS+=($!)
}
in_sync() { [ "$(grep -c "in sync with the primary" "$W/cf$1.log" 2>/dev/null)" -gt "${2:-0}" ]; }
cf_start A
wait_for 10 grep -q "listening on" "$W/cfA.log" || die "cfserver A did not start (see $W/cfA.log)"
cf_start B
wait_for 30 in_sync B || die "cfserver B did not get in sync with A (see $W/cfB.log)"
say "cfserver A (primary) listening on $HOST:${CF_PORT[A]}; cfserver B (secondary) in sync, ready to take over"
say "  (a pair: both started alike, --duplex-pair the other's link; the first to start serves)"
start_node SYS1 NTS001
start_node SYS2 NTS002
start_node SYS3 NTS003
for s in SYS1 SYS2 SYS3; do
  wait_for 20 busy "$s" 10 || die "$s did not start committing (see $W/$s.log)"
done
say "SYS1, SYS2, SYS3 running the bank workload, $INFLIGHT transactions in flight each"
ctl status || true

step "part 1: SIGKILL SYS1 in the middle of its transactions"
T0=$(now_ns)
kill -KILL "$PID_SYS1"
# restart it at once: it must wait until the peer recovery has unregistered
start_node SYS1 NTS001
wait_for 20 has_recovery NTS001 || die "no recovery of NTS001 (see $W/SYS*.log)"
timeline NTS001 "$T0" "SIGKILL"
grep -h "rejected" "$W"/SYS2.log "$W"/SYS3.log | grep NTS001 | sed 's/^/  /' | tail -n 2
grep -h "waiting for peer recovery of NTS001" "$W"/SYS1.log | sed 's/^/  restarted SYS1: /' | tail -n 1
wait_for 20 busy SYS1 5 || die "restarted SYS1 did not rejoin"
say "  SYS1 rejoined as a new incarnation and commits again"

step "part 2: freeze SYS2 (SIGSTOP beyond T) under operator policy"
ctl policy operator || die "cfctl policy operator"
T1=$(now_ns)
kill -STOP "$PID_SYS2"
failed_nts002() { ctl status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if any(i["name"]=="NTS002" and i["state"]=="INACTIVE_FAILED" for i in d["instances"]) else 1)'; }
wait_for 20 failed_nts002 || die "NTS002 not marked INACTIVE_FAILED after heartbeat silence"
say "  $(ms "$T1" "$(now_ns)") NTS002 INACTIVE_FAILED: heartbeat silence; policy operator, nobody recovers it yet"
ctl recover NTS002 --on SYS3 || die "cfctl recover NTS002"
wait_for 20 has_recovery NTS002 || die "no recovery of NTS002"
timeline NTS002 "$T1" "SIGSTOP"
grep -h "disk fence" "$W"/SYS3.log | grep -i sys2 | tail -n 1 | sed 's/^/  /'
start_node SYS2 NTS002
wait_for 20 busy SYS2 5 || die "restarted SYS2 did not rejoin"
say "  SYS2 restarted and rejoined as a new incarnation"
ctl policy auto >/dev/null

step "part 3: kill -9 of the primary CF (A)"
T2=$(now_ns)
kill -KILL "${CF_PID[A]}"
wait_for 10 grep -q "taking over as the primary CF" "$W/cfB.log" || die "cfserver B did not take over (see $W/cfB.log)"
say "  $(ms "$T2" "$(now_ns)") B took over: $(grep -h "duplex: the primary's process\|duplex: primary fenced" "$W/cfB.log" | tail -n 1 | sed 's/^[^ ]* cfserver [a-z]*: duplex: //')"
# every system keeps its incarnation: the same process switches to B (docs/design.md,
# "Incarnations kept across a switch")
for s in SYS1 SYS2 SYS3; do
  pv=PID_$s
  wait_for 30 eval 'grep -q "switched to CF" "$W/'"$s"'.log" || ! kill -0 '"${!pv}"' 2>/dev/null' ||
    die "$s did not switch to B (see $W/$s.log)"
  kill -0 "${!pv}" 2>/dev/null || die "$s exited after the primary CF's death instead of switching to B (see $W/$s.log)"
  # when it was back at work, from its own log (ISO-8601 UTC, milliseconds: the first word,
  # after a syslog priority <N> if there is one)
  t=$(grep "switched to CF" "$W/$s.log" | tail -n 1 | cut -d' ' -f1 | sed 's/^<[0-9]>//')
  say "  $(ms "$T2" "$(date -u -d "$t" +%s%N)") $s switched to B, same process, same epoch: $(grep -o 'switched to CF .*' "$W/$s.log" | tail -n 1 | sed 's/, workload goes on//')"
done
for s in SYS1 SYS2 SYS3; do
  wait_for 30 busy "$s" 5 || die "$s did not commit again on B (see $W/$s.log)"
done
say "  SYS1, SYS2, SYS3 commit again on B; no incarnation ended"
say "  (each backed out its open transactions from its log on B before it attached again)"
cf_start A
wait_for 30 in_sync A || die "cfserver A did not come back as B's secondary (see $W/cfA.log)"
say "  A restarted with its own command line, found B serving, and copied the live image as its"
say "  secondary: the pair is whole again"

step "stopping the workload and checking the invariants"
ctl status || true
for s in SYS1 SYS2 SYS3; do pv=PID_$s; kill -TERM "${!pv}" 2>/dev/null; done
for s in SYS1 SYS2 SYS3; do pv=PID_$s; wait "${!pv}" 2>/dev/null; done
"$CFCTL" verify --data "$W/data" || die "cfctl verify: the bank invariant does not hold"
say "demo: all invariants hold"
