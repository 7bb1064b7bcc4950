"""PostgreSQL side by side: how long a waiter blocked on SELECT ... FOR UPDATE waits after
the client holding the row (it updated it inside an open transaction) crashes, and
pgbench TPC-B transactions per second at fsync=on.

The benchmark starts its own cluster (initdb in a temp dir, loopback port, as the
'postgres' user when run as root) from the Debian package, and skips with a clear message
when PostgreSQL cannot be installed.  Crash modes:
  kill    SIGKILL the holder: its kernel closes the socket, the backend sees EOF and aborts;
  stop    SIGSTOP the holder: its kernel still answers TCP, so nothing notices but a timeout;
  frozen  SIGSTOP plus an nftables rule dropping the holder's loopback port both ways
          (a frozen machine: keepalives and tcp_user_timeout can now notice).
Configurations: 'default' (stock settings), 'keepalive' (tcp_keepalives_idle/interval/count
and tcp_user_timeout at their smallest values) and 'tuned' (those plus
idle_in_transaction_session_timeout = 1 s), applied to the holder's session as a server-wide
setting would be.  idle_in_transaction_session_timeout counts from the holder's last statement,
not from the crash, so its figure is at most the timeout."""
import glob
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from pgwire import PgConn, PgError  # noqa: E402

TUNED = {
    "idle_in_transaction_session_timeout": "1000",
    "tcp_keepalives_idle": "1",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "1",
    "tcp_user_timeout": "1000",
}
KEEPALIVE = {k: v for k, v in TUNED.items() if k != "idle_in_transaction_session_timeout"}
CONFIGS = {"default": None, "keepalive": KEEPALIVE, "tuned": TUNED}
ROWS = 1000


def find_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    return None


class PgPeer:
    def __init__(self, workdir, allow_install=True):
        self.workdir = workdir
        self.allow_install = allow_install
        self.proc = None
        self.port = None
        self.user = "postgres"
        self.version = None

    def start(self):
        """Returns None, or a message saying why PostgreSQL is skipped."""
        if not find_bindir():
            why = C.apt_ensure(["/usr/lib/postgresql"], ["postgresql"], self.allow_install)
            if why or not find_bindir():
                return why or "postgresql installed but no /usr/lib/postgresql/*/bin/postgres"
        bindir = find_bindir()
        self.bindir = bindir
        runas = {}
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user to run the server"
            runas = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.runas = runas
        d = os.path.join(self.workdir, "pg")
        os.makedirs(d, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        if runas:
            os.chown(d, runas["user"], runas["group"])
        self.datadir = os.path.join(d, "data")
        r = subprocess.run([os.path.join(bindir, "initdb"), "-D", self.datadir, "-U", self.user,
                            "--auth=trust", "-E", "UTF8", "--no-instructions"],
                           capture_output=True, text=True, timeout=120, cwd=d, **runas)
        if r.returncode != 0:
            return f"initdb failed: {r.stderr.strip()[-400:]}"
        self.port = C.free_port()
        self.logf = open(os.path.join(d, "postgres.log"), "w")
        self.proc = C.spawn([os.path.join(bindir, "postgres"), "-D", self.datadir, "-p", str(self.port),
                             "-k", d, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
                             "-c", "synchronous_commit=on", "-c", "max_connections=120",
                             "-c", "deadlock_timeout=10s"],
                            stdout=self.logf, stderr=subprocess.STDOUT, cwd=d, **runas)
        C.on_cleanup(self.stop)

        def up():
            if self.proc.poll() is not None:
                return "dead"
            try:
                c = PgConn("127.0.0.1", self.port, self.user, "postgres", timeout=1.0)
                c.close()
                return "up"
            except (OSError, PgError):
                return None
        st = C.wait_until(up, 30, 0.05)
        if st != "up":
            return f"postgres did not start (see {d}/postgres.log)"
        c = self.conn("cfbench_setup")
        self.version = c.query("SHOW server_version")[0][0]
        c.query("DROP TABLE IF EXISTS accounts")
        c.query("CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)")
        c.query(f"INSERT INTO accounts SELECT g, 1000 FROM generate_series(0, {ROWS - 1}) g")
        c.close()
        return None

    def conn(self, app, options=None):
        return PgConn("127.0.0.1", self.port, self.user, "postgres", appname=app, options=options)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                C.reap(self.proc)
        self.proc = None

    # ---- crash of a lock holder ----

    def _backends(self, mon, app):
        return mon.query(f"SELECT pid, state, coalesce(wait_event_type, '') FROM pg_stat_activity "
                         f"WHERE application_name = '{app}'")

    def one_crash(self, mon, mode, config, cap_s, row):
        """One measurement; returns ms from the crash to the waiter holding the row, or
        None when it did not within cap_s."""
        opts = None
        if CONFIGS[config]:
            opts = " ".join(f"-c {k}={v}" for k, v in CONFIGS[config].items())
        argv = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pgwire.py"),
                "hold", str(self.port), self.user, "postgres", str(row)]
        if opts:
            argv.append(opts)
        holder = C.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        table = None
        waiter = None
        try:
            rl, _, _ = select.select([holder.stdout], [], [], 10)
            line = holder.stdout.readline().decode() if rl else ""
            m = re.match(r"HELD (\d+) (\d+)", line)
            if not m:
                raise RuntimeError(f"holder did not take the row: {line!r} {holder.stderr.read1(4096)!r}")
            hport = int(m.group(1))
            waiter = self.conn("cfbench_waiter")
            wpid = waiter.backend_pid
            waiter.send_query(f"SELECT balance FROM accounts WHERE id = {row} FOR UPDATE")

            def blocked():
                r = mon.query(f"SELECT wait_event_type FROM pg_stat_activity WHERE pid = {wpid}")
                return r and r[0][0] == "Lock"
            if not C.wait_until(blocked, 10, 0.005):
                raise RuntimeError("waiter never blocked on the holder's row lock")
            if mode == "frozen":
                table = C.nft_block_port(hport)
            t0 = time.monotonic_ns()
            os.kill(holder.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
            try:
                _, t1 = waiter.read_result(timeout=cap_s)
                return (t1 - t0) / 1e6
            except socket.timeout:
                return None
        finally:
            if table:
                C.nft_drop_table(table)
            C.reap(holder)
            if waiter:
                waiter.sock.close()
            # the next round starts with no leftover backends
            def gone():
                return not mon.query("SELECT 1 FROM pg_stat_activity WHERE application_name IN "
                                     "('cfbench_holder', 'cfbench_waiter')")
            if not C.wait_until(gone, 5, 0.01):
                mon.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN "
                          "('cfbench_holder', 'cfbench_waiter')")
                C.wait_until(gone, 10, 0.02)

    def crash_matrix(self, modes, configs, reps, cap_s, progress=None):
        out = {}
        mon = self.conn("cfbench_monitor")
        try:
            for config in configs:
                for mode in modes:
                    if mode == "frozen" and not C.nft_available():
                        out[f"{mode}/{config}"] = {"skipped": "nft not available (needs root and nftables)"}
                        continue
                    # with the stock settings a stopped holder is never noticed: a few
                    # capped rounds prove it without spending reps x cap seconds
                    n = reps
                    if (config == "default" and mode != "kill") or (config == "keepalive" and mode == "stop"):
                        n = min(reps, 3)
                    vals = []
                    for i in range(n):
                        vals.append(self.one_crash(mon, mode, config, cap_s, row=i % ROWS))
                        if progress:
                            progress(f"postgres {mode}/{config} {i + 1}/{n}: {C.fmt_ms(vals[-1], cap_s)}")
                    s = C.summarize(vals, cap_s)
                    s["samples_ms"] = vals
                    s["settings"] = CONFIGS[config] or "stock"
                    out[f"{mode}/{config}"] = s
        finally:
            mon.close()
        return out

    # ---- pgbench TPC-B ----

    def pgbench(self, clients_list, duration_s, scale=10):
        pgb = os.path.join(self.bindir, "pgbench")
        base = [pgb, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        r = subprocess.run(base + ["-i", "-q", "-s", str(scale), "postgres"], capture_output=True, text=True,
                           timeout=300, **self.runas)
        if r.returncode != 0:
            return {"skipped": f"pgbench -i failed: {r.stderr.strip()[-300:]}"}
        out = {"scale": scale, "duration_s": duration_s, "fsync": "on", "synchronous_commit": "on", "runs": []}
        for c in clients_list:
            r = subprocess.run(base + ["-c", str(c), "-j", str(min(c, os.cpu_count() or 1)), "-T", str(duration_s),
                                       "-M", "prepared", "postgres"], capture_output=True, text=True,
                               timeout=duration_s + 120, **self.runas)
            m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
            lat = re.search(r"latency average = ([0-9.]+) ms", r.stdout)
            out["runs"].append({"clients": c, "tps": float(m.group(1)) if m else None,
                                "latency_avg_ms": float(lat.group(1)) if lat else None,
                                "error": None if m else (r.stderr.strip()[-300:] or r.stdout[-300:])})
        return out


def run(workdir, modes=("kill", "stop", "frozen"), configs=("default", "keepalive", "tuned"), reps=10, cap_s=20.0,
        pgbench_clients=(1, 3, 48), pgbench_s=10, allow_install=True, progress=None):
    """The whole PostgreSQL section as one dict (or {'skipped': why})."""
    pg = PgPeer(workdir, allow_install)
    why = pg.start()
    if why:
        C.log(f"PostgreSQL skipped: {why}")
        pg.stop()
        return {"skipped": why}
    try:
        res = {"version": pg.version, "cap_s": cap_s, "reps": reps}
        res["lock_wait"] = pg.crash_matrix(modes, configs, reps, cap_s, progress)
        if pgbench_s > 0:
            res["pgbench"] = pg.pgbench(pgbench_clients, pgbench_s)
        return res
    finally:
        pg.stop()


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(description="PostgreSQL lock-holder crash and pgbench peer measurement")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap", type=float, default=20.0)
    ap.add_argument("--pgbench-seconds", type=int, default=10)
    ap.add_argument("--no-install", action="store_true")
    a = ap.parse_args()
    C.install_cleanup()
    w = tempfile.mkdtemp(prefix="cfbench-pg.")
    C.on_cleanup(lambda: shutil.rmtree(w, ignore_errors=True))
    r = run(w, reps=a.reps, cap_s=a.cap, pgbench_s=a.pgbench_seconds, allow_install=not a.no_install,
            progress=C.log)
    print(json.dumps(r, indent=1))
