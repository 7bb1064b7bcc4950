#!/usr/bin/env python3
"""cfplex durability benchmark: bank txn/s of the same cluster (N systems,
K transactions in flight each, 10 000 accounts) against
  dram      cfserver with its image in DRAM (volatile: the reference rate)
  nvram-disk  cfserver --nvram FILE, FILE on a disk filesystem (--disk-dir, default /var/tmp):
            libpmem2's persist is msync there, i.e. a write-back and a device cache flush
  nvram-shm   cfserver --nvram FILE, FILE on tmpfs (--shm-dir, default /dev/shm): the stand-in
            for memory-speed persistence (msync of tmpfs pages costs a system call, no I/O)
The systems run with cfnode --group-commit on; each name may end in "-nogroup": the same
with it off (cfnode's default: every update awaits its own undo record, every commit its own
COMMIT).
And, only when asked (--peers postgres), PostgreSQL pgbench TPC-B at fsync=on,
synchronous_commit=on with as many clients as systems, and with as many clients as
transactions in flight in the whole cluster (systems x K): the first is the number of
processes, the second the concurrency cfplex's group commit draws on (bench/peers/postgres.py
starts its own cluster, installing the package with apt-get if missing unless --no-install).
Configurations run in the order given by --configs, --rounds times (A/B alternating: other
jobs share the machine); the table gives each round and the median, and the ratios.
Run through bench/durability.sh."""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
import micro  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "verbs"])
    ap.add_argument("--host", default=os.environ.get("CF_HOST", "127.0.0.1"))
    ap.add_argument("--seconds", type=int, default=15, help="per run (default 15)")
    ap.add_argument("--systems", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=1, help="repeat every configuration (alternating)")
    ap.add_argument("--configs", default="dram,nvram-disk,nvram-shm")
    ap.add_argument("--disk-dir", default="/var/tmp", help="where the disk image file goes (not tmpfs)")
    ap.add_argument("--shm-dir", default="/dev/shm", help="where the memory-speed image file goes (tmpfs)")
    ap.add_argument("--peers", default="", help="'postgres' to run pgbench TPC-B in the same run")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--h", type=int, default=5)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build or os.path.join(os.path.dirname(HERE), "build"))
    C.install_cleanup()
    work = tempfile.mkdtemp(prefix="cfdurab.", dir="/var/tmp")
    C.on_cleanup(lambda: C.log(f"work directory kept: {work}") if a.keep
                 else shutil.rmtree(work, ignore_errors=True))
    images = []
    C.on_cleanup(lambda: [os.unlink(p) for p in images if os.path.exists(p)])
    configs = [x for x in a.configs.split(",") if x]
    res = {"command": " ".join(["bench/durability.sh"] + sys.argv[1:]), "transport": a.transport,
           "systems": a.systems, "inflight": a.inflight, "accounts": a.accounts, "seconds": a.seconds,
           "cpus": os.cpu_count(), "runs": []}
    for rnd in range(a.rounds):
        for cfg in configs:
            extra = []
            base_cfg = cfg[:-len("-nogroup")] if cfg.endswith("-nogroup") else cfg
            if base_cfg not in ("dram", "nvram-disk", "nvram-shm"):
                C.log(f"unknown configuration {cfg}")
                return 2
            node_extra = ["--group-commit", "off" if cfg != base_cfg else "on"]
            if base_cfg != "dram":
                d = a.disk_dir if base_cfg == "nvram-disk" else a.shm_dir
                img = os.path.join(d, f"cfdurab.{os.getpid()}.{cfg}.img")
                if os.path.exists(img):
                    os.unlink(img)
                images.append(img)
                extra = ["--nvram", img]
            C.log(f"round {rnd + 1}: {cfg}: {a.systems} systems, K={a.inflight}, {a.seconds} s")
            r = micro.cluster_run(a, work, a.systems, a.inflight, a.accounts, a.seconds, cfg, extra, node_extra)
            r["config"] = cfg
            r["round"] = rnd + 1
            res["runs"].append(r)
            if extra and os.path.exists(extra[1]):
                os.unlink(extra[1])
    if "postgres" in [x for x in a.peers.split(",") if x]:
        import postgres
        pg_clients = sorted({a.systems, a.systems * a.inflight})
        C.log(f"PostgreSQL pgbench TPC-B, {pg_clients} clients, {a.seconds} s x {a.rounds}")
        pg = postgres.PgPeer(os.path.join(work, "pg"), allow_install=not a.no_install)
        os.chmod(work, 0o755)
        why = pg.start()
        try:
            if why:
                res["postgres"] = {"skipped": why}
            else:
                runs = [pg.pgbench(pg_clients, a.seconds) for _ in range(a.rounds)]
                res["postgres"] = {"version": pg.version, "runs": runs}
        finally:
            pg.stop()
    ok = all(r.get("nodes") and r.get("verify_ok") for r in res["runs"])
    med = {}
    L = [f"cfplex durability — {res['command']} ({a.transport}, {res['cpus']} CPUs, {a.systems} systems, "
         f"K={a.inflight}, {a.accounts} accounts, {a.seconds} s per run)", ""]
    L.append(f"{'configuration':<28} {'rounds (txn/s)':<32} {'median':>9} {'aborts':>7} verify")
    for cfg in configs:
        rs = [r for r in res["runs"] if r["config"] == cfg]
        vals = [r.get("txn_per_s") for r in rs if r.get("nodes")]
        med[cfg] = statistics.median(vals) if vals else None
        L.append(f"{cfg:<28} {' '.join('%.0f' % v for v in vals) or 'failed':<32} "
                 f"{med[cfg] or 0:>9.0f} {sum(r.get('aborts', 0) for r in rs):>7} "
                 f"{'ok' if all(r.get('verify_ok') for r in rs) else 'FAILED'}")
    pgr = res.get("postgres")
    if pgr and "skipped" in pgr:
        L.append(f"{'postgres pgbench':<28} skipped: {pgr['skipped']}")
    elif pgr:
        for c in sorted({a.systems, a.systems * a.inflight}):
            vals = [x["tps"] for run in pgr["runs"] for x in run.get("runs", []) if x["clients"] == c and x.get("tps")]
            med[f"postgres-c{c}"] = statistics.median(vals) if vals else None
            L.append(f"{'pgbench TPC-B, ' + str(c) + ' clients':<28} "
                     f"{' '.join('%.0f' % v for v in vals) or 'failed':<32} {med[f'postgres-c{c}'] or 0:>9.0f}")
    if pgr and "version" in pgr:
        L.append(f"(PostgreSQL {pgr['version']}, fsync=on, synchronous_commit=on, scale 10, -M prepared)")
    L.append("")
    ratios = {}
    base = med.get("dram")
    for cfg in ("nvram-disk", "nvram-shm"):
        if base and med.get(cfg):
            ratios[f"{cfg}/dram"] = med[cfg] / base
    for cfg in ("dram", "nvram-disk", "nvram-shm"):
        if med.get(cfg) and med.get(cfg + "-nogroup"):
            ratios[f"{cfg}/{cfg}-nogroup"] = med[cfg] / med[cfg + "-nogroup"]
    for k in [k for k in med if k.startswith("postgres-c")]:
        if med.get(k) and med.get("nvram-disk"):
            ratios[f"nvram-disk/{k}"] = med["nvram-disk"] / med[k]
    for k, v in ratios.items():
        L.append(f"ratio {k:<24} {v:6.2f}")
    res["median"] = med
    res["ratios"] = ratios
    return C.report(res, L, a.json, ok)


if __name__ == "__main__":
    sys.exit(main())
