"""etcd side by side: a holder takes a lock (etcdctl lock, i.e. a key under a session
lease) with the smallest TTL etcd grants; a waiter blocks on the same lock; the holder is
crashed by SIGKILL or SIGSTOP and the waiter's acquisition is timed.  A lease is not tied
to a connection, so both crash modes wait for the lease to expire (TTL, plus the lessor's
expiry check).  etcd is started by the benchmark on loopback in a temp dir (Debian
packages etcd-server, etcd-client) and skipped with a clear message if unavailable.  The
server runs with the shortest raft timing it accepts on one node (heartbeat 10 ms,
election 100 ms), which is what lets it grant a 1 s TTL (the stock timing rounds it up to 2 s)."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


class EtcdPeer:
    def __init__(self, workdir, allow_install=True, heartbeat_ms=10, election_ms=100):
        self.workdir = workdir
        self.allow_install = allow_install
        self.hb = heartbeat_ms
        self.el = election_ms
        self.proc = None

    def start(self):
        why = C.apt_ensure(["etcd", "etcdctl"], ["etcd-server", "etcd-client"], self.allow_install)
        if why:
            return why
        d = os.path.join(self.workdir, "etcd")
        os.makedirs(d, exist_ok=True)
        self.cport, pport = C.free_port(), C.free_port()
        self.ep = f"127.0.0.1:{self.cport}"
        self.logf = open(os.path.join(d, "etcd.log"), "w")
        self.proc = C.spawn(["etcd", "--name", "cfbench", "--data-dir", os.path.join(d, "data"),
                             "--listen-client-urls", f"http://{self.ep}",
                             "--advertise-client-urls", f"http://{self.ep}",
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-cluster", f"cfbench=http://127.0.0.1:{pport}",
                             "--heartbeat-interval", str(self.hb), "--election-timeout", str(self.el)],
                            stdout=self.logf, stderr=subprocess.STDOUT)
        C.on_cleanup(self.stop)
        ok = C.wait_until(lambda: self.proc.poll() is None and self.ctl("endpoint", "health").returncode == 0,
                          30, 0.1)
        if not ok:
            return f"etcd did not start (see {d}/etcd.log)"
        v = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"etcd Version: (\S+)", v)
        self.version = m.group(1) if m else "?"
        return None

    def ctl(self, *args, timeout=10):
        return subprocess.run(["etcdctl", "--endpoints", self.ep] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                C.reap(self.proc)
        self.proc = None

    def _locker(self, name, ttl):
        return C.spawn(["etcdctl", "--endpoints", self.ep, "lock", f"--ttl={ttl}", name],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def granted_ttl(self, name):
        r = self.ctl("get", "--prefix", name, "-w", "json")
        try:
            kvs = json.loads(r.stdout).get("kvs", [])
            lease = kvs[0]["lease"]
        except (ValueError, KeyError, IndexError):
            return None
        r = self.ctl("lease", "timetolive", "%x" % lease, "-w", "json")
        try:
            return json.loads(r.stdout).get("granted-ttl")
        except ValueError:
            return None

    def one_crash(self, mode, ttl, cap_s, i):
        name = f"cfbench-{os.getpid()}-{i}"
        holder = self._locker(name, ttl)
        waiter = None
        try:
            rl, _, _ = select.select([holder.stdout], [], [], 10)
            if not rl or not holder.stdout.readline():
                raise RuntimeError(f"etcd holder did not get the lock: {holder.stderr.read1(2048)!r}")
            granted = self.granted_ttl(name)
            waiter = self._locker(name, ttl)

            def queued():
                r = self.ctl("get", "--prefix", name, "--keys-only")
                return len([x for x in r.stdout.split() if x]) >= 2
            if not C.wait_until(queued, 10, 0.01):
                raise RuntimeError("etcd waiter never queued on the lock")
            t0 = time.monotonic_ns()
            os.kill(holder.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
            rl, _, _ = select.select([waiter.stdout], [], [], cap_s)
            t1 = time.monotonic_ns()
            if not rl:
                return None, granted
            waiter.stdout.readline()
            return (t1 - t0) / 1e6, granted
        finally:
            C.reap(holder)
            if waiter and waiter.poll() is None:
                waiter.send_signal(signal.SIGINT)  # unlocks and revokes its session
                try:
                    waiter.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if waiter:
                C.reap(waiter)


def run(workdir, modes=("kill", "stop"), reps=10, cap_s=20.0, ttl=1, allow_install=True, progress=None):
    e = EtcdPeer(workdir, allow_install)
    why = e.start()
    if why:
        C.log(f"etcd skipped: {why}")
        e.stop()
        return {"skipped": why}
    try:
        res = {"version": e.version, "requested_ttl_s": ttl, "heartbeat_ms": e.hb, "election_ms": e.el,
               "cap_s": cap_s, "reps": reps, "lock_wait": {}}
        for mode in modes:
            vals, granted = [], set()
            for i in range(reps):
                v, g = e.one_crash(mode, ttl, cap_s, f"{mode}{i}")
                vals.append(v)
                granted.add(g)
                if progress:
                    progress(f"etcd {mode} {i + 1}/{reps}: {C.fmt_ms(v, cap_s)} (granted TTL {g} s)")
            s = C.summarize(vals, cap_s)
            s["samples_ms"] = vals
            s["granted_ttl_s"] = sorted(x for x in granted if x is not None)
            res["lock_wait"][mode] = s
        return res
    finally:
        e.stop()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="etcd lock-holder crash peer measurement")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cap", type=float, default=20.0)
    ap.add_argument("--ttl", type=int, default=1)
    ap.add_argument("--no-install", action="store_true")
    a = ap.parse_args()
    C.install_cleanup()
    w = tempfile.mkdtemp(prefix="cfbench-etcd.")
    C.on_cleanup(lambda: shutil.rmtree(w, ignore_errors=True))
    print(json.dumps(run(w, reps=a.reps, cap_s=a.cap, ttl=a.ttl, allow_install=not a.no_install,
                         progress=C.log), indent=1))
