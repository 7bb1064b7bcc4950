#!/usr/bin/env python3
"""cfplex microbenchmarks, perftest style, each against the raw CAS round
trip measured in the same run:
  rtt        READ/WRITE/CAS/FAA round trip (bench/cf_rtt: warm-up, min/median/p99/p99.9/max)
  uncontended  lock acquire with one system, one transaction in flight, 100000 accounts
  contended  2, 4, 8 systems (one transaction in flight each) on one pair of records
             (--accounts 2: every transfer locks accounts 0 and 1), and spread over many
  bank       txn/s with 1, 2, 3 systems at K = 1 and K = 100 transactions in flight
Lock figures come from each cfnode's own --json report (lock acquire p50/p90/p99/max and the
CAS round trip it measured itself while running).  Run through bench/micro.sh."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
import common as C  # noqa: E402


def start_secondary(a, w, key, primary_link, listen_port=0, extra=(), name="secondary"):
    """A duplexed CF's secondary following primary_link; returns (process, log path) once it is in
    sync (docs/design.md, "A duplexed CF"); raises RuntimeError if it is not within 60 s."""
    b = lambda *p: os.path.join(a.build, *p)  # noqa: E731
    lg = os.path.join(w, name + ".log")
    p = C.spawn([b("cfserver", "cfserver"), "--listen", f"{a.host}:{listen_port}", "--cluster-key", key,
                 "--transport", a.transport, "--hb-interval", str(a.h), "--hb-timeout", str(a.T),
                 "--duplex-with", primary_link] + list(extra),
                stdout=open(lg, "a"), stderr=subprocess.STDOUT)
    if not C.wait_until(lambda: "in sync with the primary" in open(lg).read(), 60):
        C.reap(p)
        raise RuntimeError(f"{name} did not get in sync with {primary_link} (see {lg})")
    return p, lg


def cluster_run(a, work, systems, inflight, accounts, seconds, label, srv_extra=(), node_extra=(), duplex=False):
    """srv_extra: more cfserver arguments (bench/durability.py passes --nvram FILE); node_extra: more
    cfnode arguments (--group-commit off). duplex: the CF is a duplexed pair on this host (a DRAM
    secondary in sync before the systems start; bench/duplex.py)."""
    w = tempfile.mkdtemp(prefix=label + ".", dir=work)
    b = lambda *p: os.path.join(a.build, *p)  # noqa: E731
    key = os.path.join(w, "key")
    subprocess.run([b("node", "cfctl"), "keygen", "--out", key], timeout=10, check=True)
    data = os.path.join(w, "data")
    os.makedirs(data)
    subprocess.run([b("node", "cfctl"), "mkdata", "--data", data, "--accounts", str(accounts), "--balance", "1000"],
                   capture_output=True, timeout=120, check=True)
    portf = os.path.join(w, "port")
    link = f"{a.host}:{C.free_port()}" if duplex else None
    srv = C.spawn([b("cfserver", "cfserver"), "--listen", f"{a.host}:0", "--port-file", portf, "--cluster-key", key,
                   "--transport", a.transport, "--hb-interval", str(a.h), "--hb-timeout", str(a.T)] + list(srv_extra)
                  + (["--duplex-listen", link] if duplex else []),
                  stdout=open(os.path.join(w, "cfserver.log"), "w"), stderr=subprocess.STDOUT)
    sec = None
    out = {"label": label, "systems": systems, "inflight": inflight, "accounts": accounts, "seconds": seconds,
           "nodes": [], "error": None}
    nodes = []
    try:
        if not C.wait_until(lambda: os.path.exists(portf) and open(portf).read().strip(), 10):
            raise RuntimeError("cfserver did not start")
        addr = f"{a.host}:" + open(portf).read().strip()
        if duplex:
            sec, _ = start_secondary(a, w, key, link)
        for i in range(1, systems + 1):
            nodes.append(C.spawn([b("node", "cfnode"), "--cf", addr, "--cluster-key", key, "--transport", a.transport,
                                  "--system", f"SYS{i}", "--instance", "NTS%03d" % i, "--data", data,
                                  "--workload", "bank", "--accounts", str(accounts), "--duration", str(seconds),
                                  "--inflight", str(inflight), "--lock-timeout", "10000", "--json", "-q"]
                                 + list(node_extra),
                                 stdout=subprocess.PIPE, stderr=open(os.path.join(w, f"SYS{i}.log"), "w")))
        for i, p in enumerate(nodes):
            try:
                so, _ = p.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"SYS{i + 1} did not finish within {seconds + 60} s")
            rep = None
            for line in so.decode(errors="replace").splitlines():
                if line.startswith("{"):
                    try:
                        rep = json.loads(line)
                    except ValueError:
                        pass
            if rep is None:
                raise RuntimeError(f"SYS{i + 1} printed no JSON report (exit {p.returncode}, see {w}/SYS{i + 1}.log)")
            out["nodes"].append(rep)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        out["error"] = str(e)
        C.log(f"{label}: {e}")
    finally:
        for p in nodes:
            C.reap(p)
        if sec:
            C.reap(sec)  # first: the primary's stop is then no takeover
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        C.reap(srv)
    r = subprocess.run([b("node", "cfctl"), "verify", "--data", data], capture_output=True, text=True, timeout=120)
    out["verify_ok"] = r.returncode == 0
    n = out["nodes"]
    if n:
        out["txn_per_s"] = sum(x.get("txn_per_s", 0) for x in n)
        out["commits"] = sum(x.get("commits", 0) for x in n)
        out["aborts"] = sum(x.get("aborts", 0) for x in n)
        # worst node's percentiles (conservative), and the median node's CAS round trip
        cl = [x["commit_us"] for x in n if x.get("commit_us", {}).get("n")]
        out["commit_p50_us"] = max(x["p50"] for x in cl) if cl else None
        out["commit_p99_us"] = max(x["p99"] for x in cl) if cl else None
        out["lock_p50_us"] = max(x["lock_acquire_us"]["p50"] for x in n)
        out["lock_p99_us"] = max(x["lock_acquire_us"]["p99"] for x in n)
        out["lock_max_us"] = max(x["lock_acquire_us"]["max"] for x in n)
        cas = sorted(x["cas_rtt_us"]["p50"] for x in n if x["cas_rtt_us"]["n"])
        out["cas_p50_us"] = cas[len(cas) // 2] if cas else None
        out["lock_over_cas"] = out["lock_p50_us"] / out["cas_p50_us"] if out["cas_p50_us"] else None
        out["contended_frac"] = (sum(x["locks"]["contended"] for x in n) /
                                 max(1, sum(x["locks"]["cas"] for x in n)))
        # starvation: the least served system's commits against the mean (1.0: all equal)
        cm = [x.get("commits", 0) for x in n]
        out["min_share"] = min(cm) / (sum(cm) / len(cm)) if sum(cm) else 0.0
        out["handed"] = sum(x["locks"].get("handed", 0) for x in n)
        out["polls"] = sum(x["locks"].get("polls", 0) for x in n)
    if out["error"] is None and out["verify_ok"] and not a.keep:
        shutil.rmtree(w, ignore_errors=True)
    else:
        a.keep = True
    return out


def rtt(a, work):
    """cf_rtt against a cfserver of our own on a.host (T long: only round trips matter)."""
    w = tempfile.mkdtemp(prefix="rtt.", dir=work)
    key = os.path.join(w, "key")
    subprocess.run([os.path.join(a.build, "node", "cfctl"), "keygen", "--out", key], timeout=10, check=True)
    portf = os.path.join(w, "port")
    srv = C.spawn([os.path.join(a.build, "cfserver", "cfserver"), "--listen", f"{a.host}:0", "--port-file", portf,
                   "--cluster-key", key, "--transport", a.transport, "--hb-interval", str(a.h), "--hb-timeout", "10000",
                   "--log-size", "64K"], stdout=open(os.path.join(w, "cfserver.log"), "w"), stderr=subprocess.STDOUT)
    try:
        if not C.wait_until(lambda: os.path.exists(portf) and open(portf).read().strip(), 10):
            return {"error": "cfserver did not start"}
        r = subprocess.run([os.path.join(a.build, "bench", "cf_rtt"), "--cf", f"{a.host}:" + open(portf).read().strip(),
                            "--key", key, "--transport", a.transport, "--iters", "2000" if a.quick else "20000",
                            "--json"], capture_output=True, text=True, timeout=600)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": f"cf_rtt failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"}
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        C.reap(srv)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--build")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "verbs"])
    ap.add_argument("--host", default=os.environ.get("CF_HOST", "127.0.0.1"),
                    help="address cfserver listens on (default $CF_HOST or 127.0.0.1; in the soft-RoCE rig "
                         "rxe0's address, which the rig puts in CF_HOST)")
    ap.add_argument("--seconds", type=int, help="per run (default 10; --quick 2)")
    ap.add_argument("--h", type=int, default=5)
    ap.add_argument("--T", type=int, default=1000,
                    help="heartbeat timeout, ms (default 1000: throughput does not depend on T, and a loaded "
                         "machine must not fail a system mid-run)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", help="run only the runs whose label starts with this (e.g. contended-one-pair)")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build or os.path.join(os.path.dirname(HERE), "build"))
    secs = a.seconds or (2 if a.quick else 10)
    C.install_cleanup()
    work = tempfile.mkdtemp(prefix="cfmicro.")
    C.on_cleanup(lambda: C.log(f"work directory kept: {work}") if a.keep
                 else shutil.rmtree(work, ignore_errors=True))
    res = {"command": " ".join(["bench/micro.sh"] + sys.argv[1:]), "transport": a.transport, "h_ms": a.h,
           "T_ms": a.T, "seconds": secs, "cpus": os.cpu_count()}
    C.log("transport round trips (cf_rtt)")
    res["rtt"] = rtt(a, work)
    plan = [("uncontended", 1, 1, 100000)]
    plan += [(f"contended-one-pair-{n}", n, 1, 2) for n in ((2, 4) if a.quick else (2, 4, 8))]
    plan += [(f"contended-spread-{n}", n, 1, 100000) for n in ((4,) if a.quick else (2, 4, 8))]
    plan += [(f"bank-{s}sys-K{k}", s, k, 10000) for k in (1, 100) for s in ((1, 3) if a.quick else (1, 2, 3))]
    if a.only:
        plan = [p for p in plan if p[0].startswith(a.only)]
    res["runs"] = []
    for label, s, k, acc in plan:
        C.log(f"{label}: {s} systems, K={k}, {acc} accounts, {secs} s")
        res["runs"].append(cluster_run(a, work, s, k, acc, secs, label))
    L = [f"cfplex microbenchmarks — {res['command']} ({a.transport}, {res['cpus']} CPUs, {secs} s per run)", ""]
    if "results" in res["rtt"]:
        L.append(f"{'op':<6} {'min':>9} {'median':>9} {'p99':>9} {'p99.9':>9} {'max':>9}  (us, {res['rtt']['iters']} iterations after {res['rtt']['warmup']} warm-up)")
        for x in res["rtt"]["results"]:
            L.append(f"{x['op']:<6} {x['min_us']:>9.1f} {x['median_us']:>9.1f} {x['p99_us']:>9.1f} {x['p999_us']:>9.1f} {x['max_us']:>9.1f}")
    else:
        L.append(f"cf_rtt: {res['rtt'].get('error')}")
    L.append("")
    L.append(f"{'run':<26} {'sys':>3} {'K':>4} {'accounts':>8} {'txn/s':>9} {'aborts':>7} {'lock p50':>9} {'lock p99':>9} "
             f"{'CAS p50':>8} {'lock/CAS':>8} {'contended':>9} {'min share':>9} {'handed':>7} {'polls':>7} verify")
    for r in res["runs"]:
        if not r.get("nodes"):
            L.append(f"{r['label']:<26} failed: {r['error']}")
            continue
        L.append(f"{r['label']:<26} {r['systems']:>3} {r['inflight']:>4} {r['accounts']:>8} {r['txn_per_s']:>9.0f} "
                 f"{r['aborts']:>7} {r['lock_p50_us']:>9.1f} {r['lock_p99_us']:>9.1f} {r['cas_p50_us'] or 0:>8.1f} "
                 f"{r['lock_over_cas'] or 0:>8.2f} {r['contended_frac'] * 100:>8.1f}% {r['min_share']:>9.2f} "
                 f"{r['handed']:>7} {r['polls']:>7} {'ok' if r['verify_ok'] else 'FAILED'}")
    L.append("(lock figures: the worst node's percentiles, us; CAS p50: the round trip each node measured while running; "
             "contended: share of lock CASes that found the class held by another instance; min share: the least "
             "served system's commits over the mean, 1.00 = equal; handed: waits the CF handed the class to; "
             "polls: lock-word re-reads while waiting)")
    return C.report(res, L, a.json, all(r.get("nodes") and r["verify_ok"] for r in res["runs"]))


if __name__ == "__main__":
    sys.exit(main())
