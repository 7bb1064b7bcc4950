#!/usr/bin/env python3
"""cfplex duplexed-CF benchmark: in one run,
  cost      bank txn/s and commit-point latency (p50, p99 of the worst system) of the same cluster
            against a single DRAM CF and a duplexed DRAM pair on this host (--rounds, alternating),
            and the ratios duplex/single;
  failover  --reps kill -9's of the primary under the bank load: primary death -> the first and the
            last system committing again. Each system keeps its incarnation (docs/design.md,
            "Incarnations kept across a switch"): the same process resumes at the secondary, which
            took over, backs out its open transactions from its log there, attaches again and its
            workload goes on; a system that exits instead fails the run. p50 / p99 / max; the lost
            CF comes back as the new secondary and must be in sync before the next kill.
"Committing again" is the cfnode log line "switched to CF" (the workload goes on right after it;
its first commit follows within a commit point) at millisecond resolution. Run through
bench/duplex.sh."""
import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
import micro  # noqa: E402

# the one log line format of cfserver, cfnode and cfctl (common/cf_slog.h): ISO-8601 UTC, milliseconds,
# after an optional syslog priority prefix <N>
STARTED = re.compile(r"^(?:<\d>)?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z cfnode\[\S+\] info: workload bank started")
SWITCHED = re.compile(r"^(?:<\d>)?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z cfnode\[\S+\] info: switched to CF")


def started_after(path, t0, pattern=STARTED):
    """Wall-clock seconds of the first line of pattern after t0 (UTC), or None."""
    try:
        with open(path) as f:
            for line in f:
                m = pattern.match(line)
                if not m:
                    continue
                t = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                if t >= t0 - 0.0005:
                    return t
    except OSError:
        pass
    return None


def failover(a, work):
    w = tempfile.mkdtemp(prefix="failover.", dir=work)
    b = lambda *p: os.path.join(a.build, *p)  # noqa: E731
    key = os.path.join(w, "key")
    subprocess.run([b("node", "cfctl"), "keygen", "--out", key], timeout=10, check=True)
    data = os.path.join(w, "data")
    os.makedirs(data)
    subprocess.run([b("node", "cfctl"), "mkdata", "--data", data, "--accounts", str(a.accounts), "--balance", "1000"],
                   capture_output=True, timeout=120, check=True)
    port = {"A": C.free_port(), "B": C.free_port()}
    link = {"A": f"{a.host}:{C.free_port()}", "B": f"{a.host}:{C.free_port()}"}
    cf = {}
    logs = {}

    def cf_start(x, follow=None):
        logs[x] = os.path.join(w, f"cf{x}.log")
        argv = [b("cfserver", "cfserver"), "--listen", f"{a.host}:{port[x]}", "--cluster-key", key,
                "--transport", a.transport, "--hb-interval", str(a.h), "--hb-timeout", str(a.T),
                "--duplex-listen", link[x]]
        if follow:
            argv += ["--duplex-with", link[follow]]
        n0 = open(logs[x]).read().count("in sync with the primary") if os.path.exists(logs[x]) else 0
        cf[x] = C.spawn(argv, stdout=open(logs[x], "a"), stderr=subprocess.STDOUT)
        return n0

    def wait_sync(x, n0):
        if not C.wait_until(lambda: open(logs[x]).read().count("in sync with the primary") > n0, 60):
            raise RuntimeError(f"CF {x} did not get in sync (see {logs[x]})")

    addr = f"{a.host}:{port['A']},{a.host}:{port['B']}"
    nodes = {}

    def node_start(i):
        nodes[i] = C.spawn([b("node", "cfnode"), "--cf", addr, "--cluster-key", key, "--transport", a.transport,
                            "--system", f"SYS{i}", "--instance", "NTS%03d" % i, "--data", data,
                            "--workload", "bank", "--accounts", str(a.accounts), "--duration", "3600",
                            "--inflight", str(a.inflight), "--policy", "auto"],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(w, f"SYS{i}.log"), "a"))

    out = {"reps": [], "error": None}
    try:
        cf_start("A")
        if not C.wait_until(lambda: "listening on" in open(logs["A"]).read(), 30):
            raise RuntimeError("primary did not start")
        wait_sync("B", cf_start("B", follow="A"))
        t_start = time.time()
        for i in range(1, a.systems + 1):
            node_start(i)
        for i in nodes:
            if not C.wait_until(lambda i=i: started_after(os.path.join(w, f"SYS{i}.log"), t_start - 5), 30):
                raise RuntimeError(f"SYS{i} did not start")
        prim, sec = "A", "B"
        for rep in range(a.reps):
            time.sleep(a.gap)
            t0 = time.time()
            os.kill(cf[prim].pid, signal.SIGKILL)
            cf[prim].wait()
            resumed = {}
            end = time.monotonic() + 30
            while len(resumed) < len(nodes) and time.monotonic() < end:
                for i, p in nodes.items():
                    if p.poll() is not None:
                        raise RuntimeError(f"SYS{i} exited {p.returncode} after the primary's death instead of "
                                           f"switching to {sec} (see {w}/SYS{i}.log)")
                    if i not in resumed:
                        t = started_after(os.path.join(w, f"SYS{i}.log"), t0, SWITCHED)
                        if t is not None:
                            resumed[i] = t
                time.sleep(0.002)
            if len(resumed) < len(nodes):
                raise RuntimeError(f"rep {rep + 1}: only {len(resumed)} of {len(nodes)} systems resumed within 30 s")
            first = (min(resumed.values()) - t0) * 1000.0
            last = (max(resumed.values()) - t0) * 1000.0
            out["reps"].append({"first_ms": first, "last_ms": last})
            C.log(f"rep {rep + 1}: kill -9 of primary {prim}: first system committing again after {first:.1f} ms, "
                  f"all after {last:.1f} ms")
            # the lost CF comes back as the secondary
            wait_sync(prim, cf_start(prim, follow=sec))
            prim, sec = sec, prim
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        out["error"] = str(e)
        C.log(f"failover: {e} (work dir {w})")
    finally:
        for p in nodes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in nodes.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                C.reap(p)
        for x in ("A", "B"):
            if x in cf:
                C.reap(cf[x])
    r = subprocess.run([b("node", "cfctl"), "verify", "--data", data], capture_output=True, text=True, timeout=120)
    out["verify_ok"] = r.returncode == 0
    if not out["verify_ok"]:
        C.log(f"failover: cfctl verify: {r.stdout.strip()} {r.stderr.strip()}")
    return out


def pct(vals, p):
    s = sorted(vals)
    return C.percentile(s, p) if s else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "verbs"])
    ap.add_argument("--host", default=os.environ.get("CF_HOST", "127.0.0.1"))
    ap.add_argument("--seconds", type=int, default=10, help="per throughput run (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="throughput runs of each configuration, alternating")
    ap.add_argument("--systems", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=20, help="primary kills (default 20)")
    ap.add_argument("--gap", type=float, default=1.0, help="seconds of load between kills")
    ap.add_argument("--h", type=int, default=5)
    ap.add_argument("--T", type=int, default=50)
    ap.add_argument("--skip", default="", help="'cost' or 'failover' to leave that part out")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build or os.path.join(os.path.dirname(HERE), "build"))
    C.install_cleanup()
    work = tempfile.mkdtemp(prefix="cfduplex.", dir="/var/tmp")
    if not a.keep:
        C.on_cleanup(lambda: shutil.rmtree(work, ignore_errors=True))
    res = {"command": " ".join(["bench/duplex.sh"] + sys.argv[1:]), "transport": a.transport, "cpus": os.cpu_count(),
           "systems": a.systems, "inflight": a.inflight, "accounts": a.accounts, "runs": []}
    ok = True
    L = [f"cfplex duplexed CF — {res['command']} ({a.transport}, {res['cpus']} CPUs, {a.systems} systems, "
         f"K={a.inflight}, {a.accounts} accounts, h = {a.h} ms, T = {a.T} ms)", ""]
    if "cost" not in a.skip:
        for rnd in range(a.rounds):
            for cfg in ("single", "duplex"):
                C.log(f"round {rnd + 1}: {cfg}: {a.seconds} s")
                r = micro.cluster_run(a, work, a.systems, a.inflight, a.accounts, a.seconds, cfg, duplex=cfg == "duplex")
                r["config"] = cfg
                res["runs"].append(r)
                ok = ok and bool(r.get("nodes")) and r.get("verify_ok")
        L.append(f"{'DRAM CF':<10} {'txn/s per round':<24} {'median':>8} {'commit p50':>11} {'commit p99':>11}")
        med = {}
        for cfg in ("single", "duplex"):
            rs = [r for r in res["runs"] if r["config"] == cfg and r.get("nodes")]
            tps = [r["txn_per_s"] for r in rs]
            p50 = [r["commit_p50_us"] for r in rs if r.get("commit_p50_us")]
            p99 = [r["commit_p99_us"] for r in rs if r.get("commit_p99_us")]
            med[cfg] = {"txn_per_s": statistics.median(tps) if tps else None,
                        "commit_p50_us": statistics.median(p50) if p50 else None,
                        "commit_p99_us": statistics.median(p99) if p99 else None}
            L.append(f"{cfg:<10} {' '.join('%.0f' % v for v in tps) or 'failed':<24} "
                     f"{med[cfg]['txn_per_s'] or 0:>8.0f} {med[cfg]['commit_p50_us'] or 0:>9.0f}us "
                     f"{med[cfg]['commit_p99_us'] or 0:>9.0f}us")
        res["median"] = med
        if med["single"]["txn_per_s"] and med["duplex"]["txn_per_s"]:
            res["ratios"] = {
                "txn_per_s duplex/single": med["duplex"]["txn_per_s"] / med["single"]["txn_per_s"],
                "commit_p50 duplex/single": (med["duplex"]["commit_p50_us"] or 0) / (med["single"]["commit_p50_us"] or 1),
                "commit_p99 duplex/single": (med["duplex"]["commit_p99_us"] or 0) / (med["single"]["commit_p99_us"] or 1),
            }
            for k, v in res["ratios"].items():
                L.append(f"ratio {k:<28} {v:6.2f}")
        L.append("")
    if "failover" not in a.skip:
        C.log(f"failover: {a.reps} kill -9 of the primary, {a.gap} s of load between")
        fo = failover(a, work)
        res["failover"] = fo
        ok = ok and not fo["error"] and fo["verify_ok"]
        first = [r["first_ms"] for r in fo["reps"]]
        last = [r["last_ms"] for r in fo["reps"]]
        L.append("primary CF kill -9 -> systems committing again (ms; every system keeps its incarnation "
                 f"and switches; T = {a.T} ms)")
        L.append(f"{'':<26} {'n':>4} {'p50':>9} {'p99':>9} {'max':>9}")
        for name, v in (("first system", first), ("every system", last)):
            if v:
                L.append(f"{name:<26} {len(v):>4} {pct(v, 50):>9.1f} {pct(v, 99):>9.1f} {max(v):>9.1f}")
        L.append(f"data after the kills: {'verified' if fo['verify_ok'] else 'VERIFY FAILED'}"
                 + (f"; error: {fo['error']}" if fo["error"] else ""))
    return C.report(res, L, a.json, ok)


if __name__ == "__main__":
    sys.exit(main())
