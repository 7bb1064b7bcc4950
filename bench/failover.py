#!/usr/bin/env python3
"""cfplex failover benchmark: crash one of N systems running the bank workload
with K transactions in flight, measure crash -> the failed instance's locks usable again
(from the counterpart's RECOVERY line) with the per-phase breakdown, against the physical
floor measured in the same run, and (only with --peers postgres,etcd) against PostgreSQL and
etcd crashed lock holders.
Writes a human table, --json with every figure, and gnuplot PNGs.  python3 stdlib only.
Run it through bench/failover.sh; see bench/README.md."""
import argparse
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))
import common as C  # noqa: E402

# "crash->declared" (the crash to cfserver starting failure processing, from its log, whose
# timestamps are CLOCK_MONOTONIC: CF_LOG_CLOCK=monotonic) and "declared->detect" (to the counterpart learning of it)
# are measured by the driver; the others are the counterpart's own phase timings from its
# RECOVERY line.  STACKED are the disjoint ones that add up to crash -> unregistered.
# watchdog-wait: a counterpart waiting out a cross-host peer's watchdog (T/2 + timeout + margin); 0 otherwise
PHASES = ["crash->declared", "declared->detect", "detect", "cf-fence", "register", "disk-fence", "watchdog-wait", "attach",
          "read-log", "backout", "sync", "release", "unregister"]
STACKED = ["crash->declared", "declared->detect", "register", "disk-fence", "watchdog-wait", "attach", "read-log",
           "backout", "sync", "release", "unregister"]


class Cluster:
    """cfserver + N cfnode systems running the bank workload on one data directory."""

    def __init__(self, a, workdir, inflight, log_size, label, netns=False):
        self.a, self.w, self.k, self.log_size, self.label = a, workdir, inflight, log_size, label
        # netns: each system on its own namespace-host of tests/lib/hosts.sh (bench/failover.sh
        # --hosts netns set them up and exports where they are), the default fence (auto), each
        # host guarded by its watchdog stand-in
        self.netns = netns
        self.wds = {}        # host -> Popen of its watchdog stand-in
        self.nodes = {}      # sys -> Popen
        self.logpos = {}     # log path -> bytes already scanned
        self.incident = {}   # inst -> last incident seen
        self.crashes = []    # (victim, CLOCK_MONOTONIC ns) of every crash this driver caused
        self.raced = 0       # crashes taken again: a false suspicion had declared the victim first
        self.pending = []    # RECOVERY reports read from the logs, not yet taken (recovery_line)
        self.started_ns = {} # sys -> wall-clock ns its current process was started
        self.server = None
        self.image = None    # --nvram: this cluster's CF image file

    def bin(self, *p):
        return os.path.join(self.a.build, *p)

    def ctl(self, *args, timeout=10):
        cmd = [self.bin("node", "cfctl"), args[0], "--cf", self.addr, "--cluster-key", self.key,
               "--transport", self.a.transport] + list(args[1:])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def status(self):
        try:
            r = self.ctl("status", "--json")
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (ValueError, subprocess.TimeoutExpired):
            return None

    def start(self):
        os.makedirs(self.w, exist_ok=True)
        self.key = os.path.join(self.w, "key")
        # --out: the key file 0600 (a key open to others is refused); it never overwrites one
        if not os.path.exists(self.key):
            r = subprocess.run([self.bin("node", "cfctl"), "keygen", "--out", self.key], timeout=10)
            if r.returncode:
                raise RuntimeError("cfctl keygen failed")
        self.data = os.path.join(self.w, "data")
        os.makedirs(self.data, exist_ok=True)
        r = subprocess.run([self.bin("node", "cfctl"), "mkdata", "--data", self.data, "--accounts",
                            str(self.a.accounts), "--balance", "1000"], capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError(f"cfctl mkdata: {r.stderr.strip()}")
        portf = os.path.join(self.w, "port")
        durable = []
        if self.a.nvram:
            # a durable CF: a fresh image file per cluster in that directory (removed by stop)
            self.image = os.path.join(self.a.nvram, f"cfbench.{os.getpid()}.{os.path.basename(self.w)}.img")
            durable = ["--nvram", self.image]
        self.server = C.spawn([self.bin("cfserver", "cfserver"), "--listen", f"{self.a.host}:0", "--port-file", portf,
                               "--cluster-key", self.key, "--transport", self.a.transport,
                               "--hb-interval", str(self.a.h), "--hb-timeout", str(self.a.T),
                               "--log-size", self.log_size] + durable,
                              stdout=open(os.path.join(self.w, "cfserver.log"), "w"), stderr=subprocess.STDOUT,
                              # its log's timestamps on CLOCK_MONOTONIC, microseconds (declared_mono)
                              env=dict(os.environ, CF_LOG_CLOCK="monotonic"))
        if not C.wait_until(lambda: os.path.exists(portf) and open(portf).read().strip(), 10):
            raise RuntimeError(f"cfserver did not start (see {self.w}/cfserver.log)")
        self.addr = f"{self.a.host}:" + open(portf).read().strip()
        for i in range(1, self.a.systems + 1):
            self.start_node(f"SYS{i}")
        for i in range(1, self.a.systems + 1):
            s = f"SYS{i}"
            if self.wait_busy(s, None, 20):
                continue
            if self.nodes[s].poll() is None:
                raise RuntimeError(f"{s} did not start committing (see {self.w}/{s}.log)")
            # It ended while starting: a heartbeat gap over T (a false suspicion, counted as
            # one in the report; a VM's stolen time does it at T = 10 ms).  Started again the
            # way a restarted victim is.
            C.log(f"{self.label}: {s} ended while starting (exit {self.nodes[s].poll()}): started again")
            C.reap(self.nodes[s])
            ent = self.sys_entry(self.status(), s)
            self.restart(s, ent.get("epoch") if ent else None)

    def inst_of(self, sysname):
        return "NTS%03d" % int(sysname[3:])

    def host_of(self, sysname):
        return "host" + chr(ord("A") + int(sysname[3:]) - 1)

    def host_prefix(self, host):
        """nsenter into a namespace-host of tests/lib/hosts.sh (its net, UTS and mount namespaces)."""
        holder = os.environ[f"FAILOVER_HOLDER_{host}"]
        return ["nsenter", f"--net=/run/netns/cfmh{os.environ['FAILOVER_HOSTS_ID']}-{host}",
                f"--uts=/proc/{holder}/ns/uts", f"--mount=/proc/{holder}/ns/mnt", "--"]

    def wd_fifo(self, host):
        return os.path.join(self.w, f"wd-{host}.fifo")

    def host_watchdog(self, host):
        """The host's watchdog stand-in (tests/recovery/wd_standin.py, target net:self: a reset
        kills every process of the host), started unless it runs."""
        p = self.wds.get(host)
        if p is not None and p.poll() is None:
            return
        if p is not None:
            C.reap(p)
        tg = os.path.join(self.w, f"wd-{host}.targets")
        with open(tg, "w") as f:
            f.write("net:self\n")
        log = os.path.join(self.w, f"wd-{host}.log")
        n = open(log).read().count("listening on") if os.path.exists(log) else 0
        self.wds[host] = C.spawn(self.host_prefix(host) + [
            "python3", os.path.join(os.path.dirname(HERE), "tests", "recovery", "wd_standin.py"),
            self.wd_fifo(host), str(self.a.wd_ms), tg, "86400"], stdout=open(log, "a"), stderr=subprocess.STDOUT)
        if not C.wait_until(lambda: open(log).read().count("listening on") > n, 10):
            raise RuntimeError(f"watchdog stand-in of {host} did not start (see {log})")

    def start_node(self, sysname):
        log = os.path.join(self.w, f"{sysname}.log")
        pre, fence = [], ["--fence-agent", "local"]
        if self.netns:
            host = self.host_of(sysname)
            self.host_watchdog(host)
            pre = self.host_prefix(host)
            fence = ["--watchdog", self.wd_fifo(host), "--watchdog-timeout", str(self.a.wd_ms)]  # fence auto
        self.started_ns[sysname] = time.time_ns()
        self.nodes[sysname] = C.spawn(pre + 
            [self.bin("node", "cfnode"), "--cf", self.addr, "--cluster-key", self.key, "--transport", self.a.transport,
             "--system", sysname, "--instance", self.inst_of(sysname), "--data", self.data,
             "--policy", "auto"] + fence + ["--workload", "bank", "--accounts", str(self.a.accounts),
             "--duration", "100000", "--inflight", str(self.k)]
            + (["--ballast", str(self.a.ballast)] if self.a.ballast else []),
            stdout=open(log, "a"), stderr=subprocess.STDOUT)

    def sys_entry(self, st, sysname):
        for s in (st or {}).get("systems", []):
            if s.get("name") == sysname:
                return s
        return None

    def wait_busy(self, sysname, old_epoch, timeout, commits=5):
        """Until sysname is ACTIVE (in a new epoch when old_epoch is given) and committing."""
        base = {}
        self.busy_seen = "no status"

        def ok():
            p = self.nodes[sysname]
            if p.poll() is not None:
                return "dead"
            s = self.sys_entry(self.status(), sysname)
            if s:
                self.busy_seen = (f"last seen {s.get('state')} epoch {s.get('epoch')} (old {old_epoch}), "
                                  f"{s.get('commits')} commits (base {base.get(s.get('epoch'))})")
            if not s or s.get("state") != "ACTIVE" or (old_epoch is not None and s.get("epoch") == old_epoch):
                return False
            c = s.get("commits", 0)
            base.setdefault(s.get("epoch"), c)
            return c >= base[s.get("epoch")] + commits
        return C.wait_until(ok, timeout, 0.02) is True

    def recovery_line(self, inst):
        """A RECOVERY report for inst with an incident newer than the last one taken."""
        for name in sorted(os.listdir(self.w)):
            if not (name.startswith("SYS") and name.endswith(".log")):
                continue
            path = os.path.join(self.w, name)
            with open(path, "rb") as f:
                f.seek(self.logpos.get(path, 0))
                chunk = f.read()
            # only whole lines
            end = chunk.rfind(b"\n") + 1
            self.logpos[path] = self.logpos.get(path, 0) + end
            for line in chunk[:end].decode(errors="replace").splitlines():
                m = re.search(r"RECOVERY (\{.*\})\s*$", line)
                if not m:
                    continue
                try:
                    r = json.loads(m.group(1))
                except ValueError:
                    continue
                self.pending.append(r)
        for r in list(self.pending):
            if r.get("inst") == inst and r.get("incident", 0) > self.incident.get(inst, -1):
                self.pending.remove(r)
                self.incident[inst] = r["incident"]
                return r
        return None

    def recovery_since(self, inst, born_ns):
        """recovery_line, passing over the recoveries of incarnations from before born_ns (wall
        clock): one declared failed while it started, or a restart given up on and killed. They
        are nobody's race with the next crash. (fail_ns is the counterpart's wall clock: every
        system of the benchmark, namespace-hosts included, runs on this machine's clock.)"""
        while True:
            r = self.recovery_line(inst)
            if r is None or r.get("fail_ns", born_ns) >= born_ns:
                return r

    def declared_mono(self, victim, after_ns):
        """CLOCK_MONOTONIC ns at which cfserver logged the start of victim's failure
        processing, the first such line after after_ns (None if not found)."""
        try:
            with open(os.path.join(self.w, "cfserver.log"), errors="replace") as f:
                for line in f:
                    m = re.match(r"(?:<\d>)?(\d+)\.(\d{6}) cfserver \S+: failure: (\S+) \(system .*processing starts", line)
                    if m and m.group(3) == victim:
                        ns = int(m.group(1)) * 10**9 + int(m.group(2)) * 1000
                        if ns >= after_ns:
                            return ns
        except OSError:
            pass
        return None

    def crash_once(self, victim, mode):
        """Crash victim; returns a result dict (or raises RuntimeError).  A false suspicion
        that declared the victim just before our crash (T = 10 ms on a VM whose vCPUs are
        stolen for that long) is not this crash's recovery: the victim is restarted and the
        crash taken again, and the declaration counts as a false suspicion (run_config)."""
        for attempt in range(3):
            res = self.crash_try(victim, mode)
            if res is not None:
                return res
            self.raced += 1
            C.log(f"{self.label}: {victim} was declared failed before the {mode} (a false suspicion): "
                  f"restarted, crash taken again")
        raise RuntimeError(f"{victim}: 3 crashes in a row raced with a false suspicion of it (see {self.w})")

    def crash_try(self, victim, mode):
        st = self.status()
        ent = self.sys_entry(st, victim)
        old_epoch = ent.get("epoch") if ent else None
        inst = self.inst_of(victim)
        p = self.nodes[victim]
        born = self.started_ns.get(victim, 0)
        stale = self.recovery_since(inst, born)  # consume anything older
        if stale is not None or p.poll() is not None:
            return self.restart_raced(victim, p, old_epoch)
        t0m = time.monotonic_ns()
        t0 = time.time_ns()
        os.kill(p.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
        self.crashes.append((victim, t0m))
        rec = C.wait_until(lambda: self.recovery_since(inst, born), 20 + self.a.T / 1000.0 + self.a.wd_ms / 1000.0,
                           0.002)
        if not rec:
            raise RuntimeError(f"no RECOVERY of {inst} within 20 s after {mode} of {victim} (see {self.w})")
        if rec.get("fail_ns") is not None and rec["fail_ns"] < t0:
            self.crashes.pop()  # the recovery of a declaration that came first
            return self.restart_raced(victim, p, old_epoch)
        # the victim: killed by us, or (stop) by the counterpart's local fence agent
        try:
            p.wait(timeout=5)
            fenced_exit = p.returncode
        except subprocess.TimeoutExpired:
            fenced_exit = "still alive: not fenced"
        C.reap(p)
        if self.netns:
            # the victim's host was reset by its watchdog (pets stopped) before it restarts
            wd = self.wds.get(self.host_of(victim))
            try:
                wd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{victim}'s watchdog did not fire (see {self.w})")
        decl = self.declared_mono(victim, t0m)
        if decl is not None:
            declared_real = t0 + (decl - t0m)
            res_decl = {"crash->declared": (decl - t0m) / 1e3,
                        "declared->detect": (rec["detect_ns"] - declared_real) / 1e3 if rec.get("detect_ns") else None}
        else:
            res_decl = {"crash->declared": None, "declared->detect": None}
        # the waiter check: the victim's locks really are free and its instance is clean
        st = self.status()
        ist = next((i for i in (st or {}).get("instances", []) if i.get("name") == inst), {})
        locks_ok = ist.get("locks_held", -1) == 0 and ist.get("state") in ("INACTIVE_CLEAN", "ACTIVE")
        res = {
            "crash_to_detect_ms": (rec["detect_ns"] - t0) / 1e6 if rec.get("detect_ns") else None,
            "victim": victim, "mode": mode, "counterpart": rec.get("counterpart"),
            "total_ms": (rec["locks_free_ns"] - t0) / 1e6,
            "done_ms": (rec["done_ns"] - t0) / 1e6 if rec.get("done_ns") else None,
            "detect_ms": (rec["detect_ns"] - t0) / 1e6 if rec.get("detect_ns") else None,
            "declared_ms": (rec["fail_ns"] - t0) / 1e6 if rec.get("fail_ns") else None,
            "txns": rec.get("txns"), "updates": rec.get("updates"), "locks": rec.get("locks"),
            "log_bytes": rec.get("log_bytes"),
            "phases_us": {ph: rec.get(ph + "_us") for ph in PHASES[2:]},
            "victim_exit": fenced_exit,
            "cf_declared_ms": (res_decl["crash->declared"] or 0) / 1e3 if res_decl["crash->declared"] else None,
            "waiter_check": {"ok": locks_ok, "state": ist.get("state"), "locks_held": ist.get("locks_held")},
        }
        res["phases_us"].update(res_decl)
        res["restarts"] = self.restart(victim, old_epoch)
        return res

    def restart(self, victim, old_epoch):
        """Restart the victim as a new incarnation and wait until it commits again; returns
        how many starts it took.  A restarted system can itself be declared failed while it
        starts (e.g. a heartbeat gap over T on a loaded machine): then it is restarted again."""
        n = 0
        for attempt in range(3):
            n += 1
            self.start_node(victim)
            # 30 s, or 20 T where T is scaled up for CPU emulation (the rig: T = 3 s)
            if self.wait_busy(victim, old_epoch, max(30.0, 20 * self.a.T / 1000.0)):
                return n
            C.log(f"{self.label}: restarted {victim} did not commit again (exit "
                  f"{self.nodes[victim].poll()}; {self.busy_seen}); restarting it again")
            C.reap(self.nodes[victim])
            ent = self.sys_entry(self.status(), victim)
            old_epoch = ent.get("epoch") if ent else old_epoch
        raise RuntimeError(f"restarted {victim} did not commit again after 3 tries (see {self.w}/{victim}.log)")

    def restart_raced(self, victim, p, old_epoch):
        """The victim was declared failed before our crash: wait until its recovery is
        over (the counterpart's fence kills it), then restart it.  Returns None."""
        inst = self.inst_of(victim)
        C.wait_until(lambda: p.poll() is not None, 20, 0.01)
        C.reap(p)
        C.wait_until(lambda: (next((i for i in (self.status() or {}).get("instances", [])
                                    if i.get("name") == inst), {}).get("state") in ("INACTIVE_CLEAN", "ACTIVE")),
                     20, 0.02)
        self.restart(victim, old_epoch)
        return None

    def declarations(self):
        """(CLOCK_MONOTONIC ns, system, cause) of every failure cfserver declared."""
        out = []
        try:
            with open(os.path.join(self.w, "cfserver.log"), errors="replace") as f:
                for line in f:
                    m = re.match(r"(?:<\d>)?(\d+)\.(\d{6}) cfserver \S+: failure: (\S+) \(system [^)]*\): "
                                 r"(.*); processing starts", line)
                    if m:
                        out.append((int(m.group(1)) * 10**9 + int(m.group(2)) * 1000, m.group(3), m.group(4)))
        except OSError:
            pass
        return out

    def false_suspicions(self):
        """The declarations no crash of ours explains: each crash explains the first
        declaration of its victim after it."""
        decl = sorted(self.declarations())
        used = set()
        for victim, t0m in self.crashes:
            for i, (ns, name, _) in enumerate(decl):
                if i not in used and name == victim and ns >= t0m:
                    used.add(i)
                    break
        return [{"system": name, "cause": cause} for i, (ns, name, cause) in enumerate(decl) if i not in used]

    def stop(self):
        """Stop the workload cleanly, then check the bank invariant."""
        for p in self.nodes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in list(self.nodes.values()) + list(self.wds.values()):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            C.reap(p)
        if self.server:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            C.reap(self.server)
            self.server = None
        if self.image:
            try:
                os.unlink(self.image)
            except OSError:
                pass
            self.image = None
        r = subprocess.run([self.bin("node", "cfctl"), "verify", "--data", self.data], capture_output=True,
                           text=True, timeout=120)
        return r.returncode == 0, (r.stdout + r.stderr).strip()[-400:]


def phase_stats(samples):
    out = {}
    for ph in PHASES:
        vals = [s["phases_us"].get(ph) for s in samples if s["phases_us"].get(ph) is not None]
        s = C.summarize(vals)
        out[ph] = {"p50_us": s.get("p50"), "p99_us": s.get("p99"), "mean_us": s.get("mean")}
    return out


def run_config(a, label, mode, inflight, log_size, reps, workroot, netns=False):
    w = tempfile.mkdtemp(prefix=f"{label}.", dir=workroot)
    os.chmod(w, 0o755)
    cl = Cluster(a, w, inflight, log_size, label, netns)
    out = {"label": label, "mode": mode, "inflight": inflight, "log_size": log_size, "systems": a.systems,
           "hosts": "netns" if netns else "local", "wd_ms": a.wd_ms if netns else None,
           "h_ms": a.h, "T_ms": a.T, "reps": reps, "reps_done": 0, "samples": [], "error": None,
           "verify_ok": False}
    try:
        cl.start()
        for i in range(reps):
            victim = f"SYS{i % a.systems + 1}"
            s = cl.crash_once(victim, mode)
            out["samples"].append(s)
            out["reps_done"] += 1
            C.log(f"{label} {i + 1}/{reps}: {mode} {victim} -> locks free {s['total_ms']:.3f} ms "
                  f"(counterpart {s['counterpart']}, {s['txns']} txns, {s['locks']} locks, "
                  f"{s['log_bytes']} log bytes{'' if s['waiter_check']['ok'] else ', WAITER CHECK FAILED'})")
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        out["error"] = str(e)
        C.log(f"{label}: {e}")
        a.keep = True
    finally:
        ok, msg = cl.stop()
        out["verify_ok"], out["verify"] = ok, msg
        if not ok:
            C.log(f"{label}: cfctl verify FAILED: {msg}")
            a.keep = True
    sm = out["samples"]
    out["total_ms"] = C.summarize([s["total_ms"] for s in sm])
    out["done_ms"] = C.summarize([s["done_ms"] for s in sm if s["done_ms"] is not None])
    out["phases"] = phase_stats(sm)
    out["log_bytes"] = C.summarize([s["log_bytes"] for s in sm if s["log_bytes"] is not None])
    out["waiter_checks_failed"] = sum(1 for s in sm if not s["waiter_check"]["ok"])
    out["extra_restarts"] = sum(s.get("restarts", 1) - 1 for s in sm)
    # stop mode: the frozen victim must have been fenced (SIGKILLed by the counterpart's
    # local fence agent) before its instance was backed out; kill mode: we killed it
    out["victims_fenced"] = sum(1 for s in sm if s["victim_exit"] == -signal.SIGKILL)
    # the goal is none at T = 10 ms; reported, never a failure of the run (a VM's
    # stolen vCPU time is not cfplex's), and a crash that raced one was taken again
    out["false_suspicions"] = cl.false_suspicions()
    out["crashes_retaken"] = cl.raced
    return out


# ---- the physical floor, measured in the same run ----

def measure_floor(a, workroot):
    out = {}
    for attempt in range(2):  # a second try with a fresh cfserver if the first one failed
        out = _floor_rtt(a, workroot)
        if "error" not in out:
            break
        C.log(f"floor (try {attempt + 1}): {out['error']}")
    w = tempfile.mkdtemp(prefix="floor.", dir=workroot)
    # one fdatasync of a 4 KiB record write on the data directory's filesystem
    path = os.path.join(w, "fsync.probe")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    lat = []
    try:
        os.write(fd, b"\0" * 65536)
        os.fdatasync(fd)
        for i in range(30 if a.quick else 200):
            os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
            t = time.monotonic_ns()
            os.fdatasync(fd)
            lat.append((time.monotonic_ns() - t) / 1e3)
    finally:
        os.close(fd)
    s = C.summarize(lat)
    out["fdatasync_us"] = {"p50": s["p50"], "p99": s["p99"], "min": s["min"], "filesystem_of": workroot}
    return out


def _floor_rtt(a, workroot):
    """CAS/READ/WRITE/FAA round trips (cf_rtt) and READ bandwidth (cf_lockbench) against a
    cfserver of our own."""
    w = tempfile.mkdtemp(prefix="floor.", dir=workroot)
    out = {}
    key = os.path.join(w, "key")
    subprocess.run([os.path.join(a.build, "node", "cfctl"), "keygen", "--out", key], timeout=10)
    portf = os.path.join(w, "port")
    srv = C.spawn([os.path.join(a.build, "cfserver", "cfserver"), "--listen", f"{a.host}:0", "--port-file", portf,
                   "--cluster-key", key, "--transport", a.transport, "--hb-interval", str(a.h),
                   # T does not change a round trip; a long one keeps cf_rtt's own heartbeat
                   # thread (a plain nanosleep loop) from being declared failed mid-run
                   "--hb-timeout", "10000"], stdout=open(os.path.join(w, "cfserver.log"), "w"),
                  stderr=subprocess.STDOUT)
    try:
        if not C.wait_until(lambda: os.path.exists(portf) and open(portf).read().strip(), 10):
            raise RuntimeError("cfserver for the floor did not start")
        addr = f"{a.host}:" + open(portf).read().strip()
        iters = "2000" if a.quick else "20000"
        r = subprocess.run([os.path.join(a.build, "bench", "cf_rtt"), "--cf", addr, "--key", key, "--transport",
                            a.transport, "--ops", "cas,read,write,faa", "--iters", iters, "--json"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise RuntimeError(f"cf_rtt failed: {r.stderr.strip()[-300:]} (cfserver exit {srv.poll()})")
        rtt = json.loads(r.stdout)
        out["rtt"] = {x["op"]: x for x in rtt["results"]}
        out["rtt_command"] = rtt.get("command")
        r = subprocess.run([os.path.join(a.build, "bench", "cf_lockbench"), "--cf", addr, "--key", key,
                            "--transport", a.transport, "--json"], capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise RuntimeError(f"cf_lockbench failed: {r.stderr.strip()[-300:]} (cfserver exit {srv.poll()})")
        out["read_bw"] = json.loads(r.stdout)
    except (ValueError, RuntimeError, subprocess.SubprocessError) as e:
        out["error"] = f"{e}"
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        C.reap(srv)
    return out


def floor_ms(fl, mode, T, log_bytes):
    """T (stop only) + one CAS round trip + READ log_bytes + one fdatasync, in ms."""
    try:
        cas = fl["rtt"]["cas"]["median_us"] / 1e3
        bw = fl["read_bw"]["median_Bps"]
        sync = fl["fdatasync_us"]["p50"] / 1e3
    except (KeyError, TypeError):
        return None
    return (T if mode == "stop" else 0) + cas + (log_bytes or 0) / bw * 1e3 + sync


# ---- report ----

def peer_rows(res):
    """(table label, short label for plots, crash mode, summary) of every peer figure."""
    rows = []
    pg = res.get("postgres", {})
    if "lock_wait" in pg:
        ver = (pg.get("version") or "").split(" ")[0]
        for k, v in pg["lock_wait"].items():
            if "skipped" in v:
                continue
            mode, cfg = k.split("/")
            rows.append((f"PostgreSQL {ver} ({cfg})", f"PostgreSQL {cfg}", mode, v))
    et = res.get("etcd", {})
    if "lock_wait" in et:
        for mode, v in et["lock_wait"].items():
            ttl = ",".join(map(str, v.get("granted_ttl_s", []))) or et.get("requested_ttl_s")
            rows.append((f"etcd {et.get('version', '')} (lease TTL {ttl} s)", f"etcd TTL {ttl} s", mode, v))
    return rows


def pg_ratios(res):
    """cfplex's main rows as ratios to PostgreSQL's from the same run: a kill against the
    default configuration's killed holder, a stop against the tuned one's stopped holder
    (the fastest PostgreSQL row of that crash mode when the preferred one is missing)."""
    pg = res.get("postgres", {}).get("lock_wait", {})
    out = []
    for r in res["cfplex"]["runs"]:
        if not r["label"].startswith("main-") or not r["samples"]:
            continue
        want = "default" if r["mode"] == "kill" else "tuned"
        cands = {k.split("/")[1]: v for k, v in pg.items() if k.split("/")[0] == r["mode"] and "skipped" not in v
                 and v.get("n")}
        if not cands:
            continue
        cfg = want if want in cands else min(cands, key=lambda c: cands[c].get("p50") or float("inf"))
        v = cands[cfg]
        if not v.get("p50") or not v.get("p99"):
            continue
        rp50, rp99 = r["total_ms"]["p50"] / v["p50"], r["total_ms"]["p99"] / v["p99"]
        r.setdefault("vs_postgres", {})[cfg] = {"p50": rp50, "p99": rp99}
        out.append(f"ratio cfplex/PostgreSQL ({cfg}) {r['mode']}, T={r['T_ms']} ms: p50 {rp50:.2f}, p99 {rp99:.2f}"
                   f"  (cfplex {r['total_ms']['p50']:.1f} / {r['total_ms']['p99']:.1f} ms, PostgreSQL "
                   f"{v['p50']:.1f} / {v['p99']:.1f} ms; below 1: cfplex faster)")
    return out


def table(res, a):
    L = []
    p = L.append
    p(f"cfplex failover benchmark — {res['host']['when']} on {res['host']['uname']}, {res['host']['cpus']} CPUs")
    p(f"command: {res['command']}")
    p(f"transport {a.transport}, h = {a.h} ms, T = {a.T} ms, {a.systems} systems, bank workload, "
      f"{a.accounts} accounts, CF " + (f"durable (--nvram, an image file in {a.nvram})" if a.nvram else "DRAM")
      + (f", {a.ballast} MiB of ballast per system" if a.ballast else ""))
    p("")
    p("crash -> the failed holder's locks usable by a waiter (ms)")
    p(f"{'system':<44} {'crash':<7} {'n':>4} {'min':>10} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10}")

    def row(name, mode, s, cap=None):
        cells = [C.fmt_ms(s.get(k), cap) if s.get("n") else "-" for k in ("min", "p50", "p90", "p99", "max")]
        p(f"{name:<44} {mode:<7} {s.get('n', 0):>4} " + " ".join(f"{c:>10}" for c in cells))
    several_t = len({r["T_ms"] for r in res["cfplex"]["runs"] if r["label"].startswith("main-")}) > 1
    for r in res["cfplex"]["runs"]:
        if r["label"].startswith("main-"):
            tt = f", T={r['T_ms']} ms" if several_t else ""
            row(f"cfplex (K={r['inflight']} in flight, log {r['log_size']}{tt})", r["mode"], r["total_ms"])
    for r in res["cfplex"]["runs"]:
        if r["label"].startswith("hosts-"):
            row(f"cfplex netns-hosts, watchdog {r['wd_ms']} ms (K={r['inflight']})", r["mode"], r["total_ms"])
    for name, _, mode, s in peer_rows(res):
        row(name, mode, s, s.get("cap"))
    for k in ("postgres", "etcd"):
        if res.get(k, {}).get("skipped"):
            p(f"{k}: skipped: {res[k]['skipped']}")
    for line in pg_ratios(res):
        p(line)
    p("")
    mains = [r for r in res["cfplex"]["runs"] if r["label"].startswith(("main-", "hosts-")) and r["samples"]]
    p("cfplex per-phase breakdown, us (p50 / p99); * = the stacked, disjoint phases that add up to "
      "crash -> unregistered")
    def col(r):
        return (r["mode"] + ("@ns" if r["label"].startswith("hosts-") else "")
                + (f"@T{r['T_ms']}" if r["T_ms"] != a.T else ""))
    p(f"{'phase':<20} " + " ".join(f"{col(r) + ' p50':>12} {col(r) + ' p99':>12}" for r in mains))
    for ph in PHASES:
        def cell(v):
            return f"{v:>12.0f}" if v is not None else f"{'-':>12}"
        p(f"{('* ' if ph in STACKED else '  ') + ph:<20} " + " ".join(
            cell(r['phases'][ph]['p50_us']) + " " + cell(r['phases'][ph]['p99_us']) for r in mains))
    p(f"{'  = locks free':<20} " + " ".join(
        f"{r['total_ms']['p50'] * 1e3:>12.0f} {r['total_ms']['p99'] * 1e3:>12.0f}" for r in mains))
    for r in mains:
        n = len(r["samples"])
        p(f"  {col(r)}: per crash p50 {_p50([s['txns'] for s in r['samples']])} in-flight transactions backed out, "
          f"{_p50([s['locks'] for s in r['samples']])} locks released, "
          f"{_p50([s['log_bytes'] for s in r['samples']])} log bytes in use; waiter check (victim instance clean, "
          f"0 locks) passed {n - r['waiter_checks_failed']}/{n}"
          + (f"; frozen victim fenced by the counterpart {r.get('victims_fenced', '?')}/{n}" if r["mode"] == "stop"
             and not r["label"].startswith("hosts-") else "")
          + (f"; victim killed by its host's watchdog {r.get('victims_fenced', '?')}/{n}, the counterpart on another "
             f"host waited it out (watchdog-wait)" if r["mode"] == "stop" and r["label"].startswith("hosts-") else ""))
    if any(r["label"].startswith("hosts-") for r in mains):
        p("  @ns: every system on its own namespace-host (tests/lib/hosts.sh), default fence (auto): the counterpart "
          "waits T/2 + the victim's watchdog + 250 ms margin (watchdog-wait)")
    p("")
    fl = res["floor"]
    if "rtt" in fl and "read_bw" in fl:
        p(f"physical floor (same run): CAS round trip p50 {fl['rtt']['cas']['median_us']:.1f} us, "
          f"READ {fl['read_bw']['median_Bps'] / 1e6:.0f} MB/s ({fl['read_bw']['chunk']} B chunks), "
          f"fdatasync p50 {fl['fdatasync_us']['p50']:.0f} us")
    p(f"{'run':<28} {'mode':<6} {'K':>5} {'log bytes p50':>14} {'floor':>10} {'p50':>10} {'p50/floor':>10}")
    for r in res["cfplex"]["runs"]:
        if not r["samples"]:
            p(f"{r['label']:<28} {r['mode']:<6} {r['inflight']:>5}  no samples: {r['error']}")
            continue
        f = r.get("floor_ms")
        ratio = r["total_ms"]["p50"] / f if f else None
        p(f"{r['label']:<28} {r['mode']:<6} {r['inflight']:>5} {r['log_bytes'].get('p50') or 0:>14.0f} "
          f"{C.fmt_ms(f):>10} {C.fmt_ms(r['total_ms']['p50']):>10} {ratio if ratio else 0:>10.1f}")
    pgb = res.get("postgres", {}).get("pgbench")
    if pgb and pgb.get("runs"):
        p("")
        p("PostgreSQL pgbench TPC-B, fsync=on: " + ", ".join(
            f"{x['clients']} clients {x['tps']:.0f} txn/s" for x in pgb["runs"] if x.get("tps")))
    for r in res["cfplex"]["runs"]:
        if not r["verify_ok"]:
            p(f"!! {r['label']}: cfctl verify failed: {r.get('verify')}")
        if r.get("extra_restarts"):
            p(f"note {r['label']}: {r['extra_restarts']} restarted victims were declared failed while starting "
              f"and restarted again")
        if r.get("false_suspicions"):
            p(f"note {r['label']}: {len(r['false_suspicions'])} false suspicions (declared with no crash of ours: "
              + ", ".join(f"{x['system']} {x['cause']}" for x in r["false_suspicions"])
              + f"); {r.get('crashes_retaken', 0)} crashes taken again because one came first")
        if r["waiter_checks_failed"]:
            p(f"!! {r['label']}: {r['waiter_checks_failed']} waiter checks failed")
        if r["error"]:
            p(f"!! {r['label']}: {r['error']}")
    return "\n".join(L) + "\n"


# A qualitative palette with a colour for each of the 11 stacked phases and each CDF series
# (Paul Tol's "muted" and "bright" sets, their pale greys swapped for black and orange; no
# colour twice); the CDF adds a dash type per crash mode and a marker per system.
PALETTE = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
           "#AA4499", "#000000", "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#EE7733"]
DASH = {"kill": 1, "stop": 2, "frozen": 3}


def human_bytes(n):
    """1048576 -> '1 MiB', 262144 -> '256 KiB': axis labels, not 1e+06."""
    for unit, sh in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << sh:
            v = n / (1 << sh)
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def subtitle(res):
    """Where the numbers come from: transport, the hosts (one machine: loopback or its
    namespace-hosts' bridge), CPUs and kernel."""
    p, h = res["params"], res.get("host", {})
    host = p.get("cf_host", "127.0.0.1")
    if p.get("hosts") == "netns":
        where = f"one machine's namespace-hosts on a bridge ({host}), plus loopback runs"
    elif host.startswith("127."):
        where = "loopback (one machine)"
    else:
        where = f"{host} (one machine)"
    cpus = h.get("cpus")
    return (f"{p.get('transport', 'tcp')} on {where}, {cpus} CPU{'s' if cpus != 1 else ''}"
            f" - {h.get('uname', '?')}, {h.get('when', '')}")


def plots(res, out, a):
    if not shutil.which("gnuplot"):
        why = C.apt_ensure(["gnuplot"], ["gnuplot-nox"], not a.no_install)
        if why:
            C.log(f"plots skipped: {why}")
            return []
    d = os.path.join(out, "plotdata")
    os.makedirs(d, exist_ok=True)
    runs = res["cfplex"]["runs"]
    # 1. timeline: p50 of each phase, stacked, per crash mode
    with open(os.path.join(d, "phases.dat"), "w") as f:
        f.write("mode " + " ".join(STACKED) + "\n")
        for r in runs:
            if r["label"].startswith("main-") and r["samples"] and r["T_ms"] == a.T:
                f.write(r["mode"] + " " + " ".join(f"{(r['phases'][ph]['p50_us'] or 0) / 1e3:.4f}" for ph in STACKED)
                        + "\n")
    # 2. CDFs
    cdfs = []
    for r in runs:
        if r["label"].startswith("main-") and r["samples"]:
            tt = f" T={r['T_ms']}" if r["T_ms"] != a.T else ""
            cdfs.append((f"cfplex {r['mode']}{tt}", [s["total_ms"] for s in r["samples"]], len(r["samples"]),
                         "cfplex", r["mode"]))
    for _, short, mode, s in peer_rows(res):
        vals = [v for v in s.get("samples_ms", []) if v is not None]
        if vals:  # capped waits count in the denominator: the curve stops below 1
            cdfs.append((f"{short} {mode}", vals, len(s.get("samples_ms", [])), short.split(" ")[0], mode))
    marker = {"cfplex": 7, "PostgreSQL": 5, "etcd": 9}  # filled circle, square, triangle
    files = []
    for i, (name, vals, n, system, mode) in enumerate(cdfs):
        fn = os.path.join(d, f"cdf{i}.dat")
        vals = sorted(vals)
        with open(fn, "w") as f:  # a step function drawn as a line: up at each sample
            f.write(f"{vals[0]:.6f} 0\n")
            for j, v in enumerate(vals):
                if j:
                    f.write(f"{v:.6f} {j / n:.6f}\n")
                f.write(f"{v:.6f} {(j + 1) / n:.6f}\n")
        style = (f"lc rgb '{PALETTE[i % len(PALETTE)]}' dt {DASH.get(mode, 4)} pt {marker.get(system, 11)}"
                 f" pi {max(1, (2 * len(vals)) // 6)} ps 1.3 lw {3 if system == 'cfplex' else 2}")
        files.append((fn, name.replace("_", " "), style))
    # 3. total vs K and vs log bytes
    with open(os.path.join(d, "sweep.dat"), "w") as f:
        f.write("# mode K log_bytes_p50 p50 p99 floor\n")
        for r in runs:
            if (r["label"].startswith(("main-", "k-")) and r["samples"] and r["log_size"] == a.log_size
                    and r["T_ms"] == a.T):
                f.write(f"{r['mode']} {r['inflight']} {r['log_bytes'].get('p50') or 0} {r['total_ms']['p50']:.4f} "
                        f"{r['total_ms']['p99']:.4f} {r.get('floor_ms') or 0:.4f}\n")
    with open(os.path.join(d, "logsize.dat"), "w") as f:
        for r in runs:
            if r["label"].startswith(("main-kill", "log-")) and r["samples"] and r["T_ms"] == a.T:
                f.write(f"{r['log_size']} {_size(r['log_size'])} {r['total_ms']['p50']:.4f} {r['total_ms']['p99']:.4f} "
                        f"{(r['phases']['read-log']['p50_us'] or 0) / 1e3:.4f} \"{human_bytes(_size(r['log_size']))}\"\n")
    cdf_plot = ", ".join(f"'{fn}' using 1:2 with linespoints {st} title '{t}'" for fn, t, st in files) or "NaN notitle"
    sub = subtitle(res).replace('"', "'")
    vs = ("cfplex vs peers (waits past the cap are missing mass)" if any(c[3] != "cfplex" for c in cdfs)
          else "cfplex (no peers measured: --peers postgres,etcd)")
    colours = " ".join(PALETTE)

    def title(t):  # the figure's title, and under it where it was measured
        return f'set title "{t}\\n{sub}"'
    script = f"""
set terminal pngcairo size 1200,650 noenhanced
set datafile separator whitespace
set output '{out}/failover_timeline.png'
{title(f"cfplex failover: p50 of each phase, stacked (h={a.h} ms, T={a.T} ms, K={a.inflight})")}
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.6
set key outside right
set ylabel 'ms from the crash'
colours = "{colours}"
plot for [i=2:{len(STACKED) + 1}] '{d}/phases.dat' using i:xtic(1) title columnheader(i) lc rgb word(colours, i - 1)
unset style
set output '{out}/failover_cdf.png'
{title("crash -> lock usable: CDF per crash mode, " + vs)}
set key outside right top
set logscale x
set xlabel 'ms (log scale)'
set ylabel 'fraction of crashes'
set yrange [0:1.02]
plot {cdf_plot}
unset logscale x
set output '{out}/failover_vs_inflight.png'
{title("cfplex failover total vs in-flight transactions per system")}
set logscale x
set xlabel 'K (transactions in flight per system)'
set ylabel 'ms'
set key outside right top
set yrange [*:*]
plot '< grep "^kill" {d}/sweep.dat | sort -n -k2' using 2:4 with linespoints lw 2 lc rgb '#332288' title 'SIGKILL p50', \\
     '< grep "^kill" {d}/sweep.dat | sort -n -k2' using 2:5 with linespoints dt 2 lw 2 lc rgb '#332288' title 'SIGKILL p99', \\
     '< grep "^kill" {d}/sweep.dat | sort -n -k2' using 2:6 with lines dt 3 lw 2 lc rgb '#332288' title 'SIGKILL floor', \\
     '< grep "^stop" {d}/sweep.dat | sort -n -k2' using 2:4 with linespoints lw 2 lc rgb '#CC6677' title 'SIGSTOP p50', \\
     '< grep "^stop" {d}/sweep.dat | sort -n -k2' using 2:5 with linespoints dt 2 lw 2 lc rgb '#CC6677' title 'SIGSTOP p99', \\
     '< grep "^stop" {d}/sweep.dat | sort -n -k2' using 2:6 with lines dt 3 lw 2 lc rgb '#CC6677' title 'SIGSTOP floor (T + ...)'
set output '{out}/failover_vs_logsize.png'
{title("cfplex SIGKILL failover vs undo-log region size")}
set logscale x 2
set offsets graph 0.05, graph 0.05, 0, 0
set xlabel 'undo-log region per instance (cfserver --log-size)'
set ylabel 'ms'
plot '< sort -n -k2 {d}/logsize.dat' using 2:3:xtic(6) with linespoints lw 2 lc rgb '#332288' title 'total p50', \\
     '< sort -n -k2 {d}/logsize.dat' using 2:4 with linespoints dt 2 lc rgb '#332288' title 'total p99', \\
     '< sort -n -k2 {d}/logsize.dat' using 2:5 with linespoints lc rgb '#44AA99' lw 2 title 'read-log phase p50'
"""
    gp = os.path.join(d, "plots.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=120)
    if r.returncode:
        C.log(f"gnuplot: {r.stderr.strip()[-500:]}")
    return [os.path.join(out, n) for n in ("failover_timeline.png", "failover_cdf.png", "failover_vs_inflight.png",
                                            "failover_vs_logsize.png") if os.path.exists(os.path.join(out, n))]


def _p50(vals):
    v = C.summarize([x for x in vals if x is not None]).get("p50")
    return "?" if v is None else f"{v:.0f}"


def _size(s):
    m = re.match(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI-sized run (few repetitions, short peer caps)")
    ap.add_argument("--json", help="write every figure to this JSON file")
    ap.add_argument("--out", help="directory for the table, JSON and PNG plots (default bench-out/DATE)")
    ap.add_argument("--transport", default="tcp", choices=["tcp", "verbs"])
    ap.add_argument("--host", default=os.environ.get("CF_HOST", "127.0.0.1"),
                    help="address cfserver listens on (default $CF_HOST or 127.0.0.1; in the soft-RoCE rig "
                         "rxe0's address, which the rig puts in CF_HOST)")
    ap.add_argument("--build", default=None, help="meson build directory (default: build)")
    ap.add_argument("--systems", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=100, help="K, transactions in flight per system")
    ap.add_argument("--reps", type=int, help="crashes per configuration (default 50; --quick 5)")
    ap.add_argument("--sweep-reps", type=int, help="crashes per sweep point (default 20; --quick 3)")
    ap.add_argument("--sweep-k", default=None, help="in-flight sweep (default 1,10,100,1000; --quick 1,100)")
    ap.add_argument("--sweep-log", default=None, help="log region sizes (default 256K,1M,4M,16M; --quick none)")
    ap.add_argument("--nvram", metavar="DIR", default=None,
                    help="a durable CF: cfserver --nvram with a fresh image file in DIR per cluster "
                         "(a disk directory, or /dev/shm as a memory stand-in); default a DRAM CF")
    ap.add_argument("--log-size", default="4M", help="cfserver --log-size of the main runs (default 4M)")
    ap.add_argument("--h", type=int, default=5, help="heartbeat interval, ms")
    ap.add_argument("--T", type=int, default=50, help="heartbeat timeout, ms")
    ap.add_argument("--also-T", dest="also_t", default=None, metavar="H/T,...",
                    help="main runs also at these heartbeat interval/timeout pairs, ms (default 2/10; --quick none; "
                         "'' for none)")
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--ballast", type=int, default=0, metavar="MIB",
                    help="each system holds MIB of memory (cfnode --ballast): a killed system's exit frees it "
                         "before its sockets close")
    ap.add_argument("--modes", default="kill,stop")
    ap.add_argument("--hosts", default="local", choices=["local", "netns"],
                    help="netns: also crash systems each on its own namespace-host (tests/lib/hosts.sh; root; "
                         "set up by failover.sh) with the default fence, a watchdog per host; reported next to "
                         "the one-host rows")
    ap.add_argument("--wd-ms", type=int, default=1000, help="--hosts netns: each host's watchdog timeout, ms")
    ap.add_argument("--peers", default="", help="peers to measure too, e.g. postgres,etcd (default none): "
                                                 "apt-get installs them if missing (unless --no-install) and runs them")
    ap.add_argument("--peer-reps", type=int, help="crashes per peer configuration (default 20; --quick 3)")
    ap.add_argument("--cap", type=float, help="cap of each peer wait, s (default 20; --quick 3)")
    ap.add_argument("--pgbench-seconds", type=int, help="default 10; --quick 2")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install a missing peer")
    ap.add_argument("--keep", action="store_true", help="keep the work directory with every log")
    ap.add_argument("--replot", metavar="RESULT_JSON", help="only redo the table and plots of an earlier run")
    a = ap.parse_args()
    if a.nvram and not os.path.isdir(a.nvram):
        ap.error(f"--nvram {a.nvram}: not a directory (the CF image files go there)")
    if a.nvram:
        a.nvram = os.path.abspath(a.nvram)
    if a.replot:
        res = json.load(open(a.replot))
        for k, v in res["params"].items():
            if k in ("transport", "systems", "inflight", "accounts", "log_size", "nvram"):
                setattr(a, k, v)
        a.ballast = res["params"].get("ballast_mib", 0)
        a.h, a.T = res["params"]["h_ms"], res["params"]["T_ms"]
        out = os.path.abspath(a.out or os.path.dirname(os.path.abspath(a.replot)))
        txt = table(res, a)
        res["plots"] = plots(res, out, a)
        with open(os.path.join(out, "table.txt"), "w") as f:
            f.write(txt)
        sys.stdout.write(txt)
        print(f"\nreplotted: {out}/table.txt" + "".join(f", {p}" for p in res["plots"]))
        return 0
    q = a.quick
    a.reps = a.reps or (5 if q else 50)
    a.sweep_reps = a.sweep_reps or (3 if q else 20)
    a.peer_reps = a.peer_reps or (3 if q else 20)
    a.cap = a.cap or (3.0 if q else 20.0)
    a.pgbench_seconds = a.pgbench_seconds if a.pgbench_seconds is not None else (2 if q else 10)
    sweep_k = [int(x) for x in (a.sweep_k if a.sweep_k is not None else ("1,100" if q else "1,10,100,1000")).split(",")
               if x]
    sweep_log = [x for x in (a.sweep_log if a.sweep_log is not None else ("" if q else "256K,1M,4M,16M")).split(",")
                 if x]
    modes = [m for m in a.modes.split(",") if m]
    root = os.path.dirname(HERE)
    a.build = os.path.abspath(a.build or os.path.join(root, "build"))
    for b in (("cfserver", "cfserver"), ("node", "cfnode"), ("node", "cfctl"), ("bench", "cf_rtt"),
              ("bench", "cf_lockbench")):
        if not os.access(os.path.join(a.build, *b), os.X_OK):
            print(f"failover: {os.path.join(a.build, *b)} not built (ninja -C {a.build})", file=sys.stderr)
            return 2
    out = os.path.abspath(a.out or os.path.join(root, "bench-out", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    C.install_cleanup()
    workroot = tempfile.mkdtemp(prefix="cfbench.")
    os.chmod(workroot, 0o755)  # the PostgreSQL peer runs as the 'postgres' user below it
    a.keep = a.keep
    C.on_cleanup(lambda: (C.log(f"work directory kept: {workroot}") if a.keep
                          else shutil.rmtree(workroot, ignore_errors=True)))
    un = os.uname()
    res = {"command": " ".join(["bench/failover.sh"] + sys.argv[1:]),
           "host": {"uname": f"{un.sysname} {un.release} {un.machine}", "cpus": os.cpu_count(),
                    "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())},
           "params": {"transport": a.transport, "h_ms": a.h, "T_ms": a.T, "systems": a.systems,
                      "inflight": a.inflight, "reps": a.reps, "sweep_reps": a.sweep_reps, "sweep_k": sweep_k,
                      "sweep_log": sweep_log, "log_size": a.log_size, "accounts": a.accounts, "modes": modes,
                      "quick": q, "hosts": a.hosts, "wd_ms": a.wd_ms, "cf_host": a.host, "nvram": a.nvram,
                      "ballast_mib": a.ballast},
           "cfplex": {"runs": []}}
    C.log("measuring the physical floor (cf_rtt, READ bandwidth, fdatasync)")
    res["floor"] = measure_floor(a, workroot)
    plan = [(f"main-{m}", m, a.inflight, a.log_size, a.reps) for m in modes]
    also = []
    for pair in (a.also_t if a.also_t is not None else ("" if q else "2/10")).split(","):
        if pair:
            hh, tt = (int(x) for x in pair.split("/"))
            also.append((hh, tt))
            plan += [(f"main-{m}-T{tt}", m, a.inflight, a.log_size, a.reps) for m in modes]
    res["params"]["also_t"] = [f"{hh}/{tt}" for hh, tt in also]
    plan += [(f"k-{m}-{k}", m, k, a.log_size, a.sweep_reps) for m in modes for k in sweep_k if k != a.inflight]
    plan += [(f"log-kill-{s}", "kill", a.inflight, s, a.sweep_reps) for s in sweep_log if s != a.log_size]
    if a.hosts == "netns":
        if not os.environ.get("FAILOVER_HOSTS_ID"):
            print("failover: --hosts netns needs the namespace-hosts: run it through bench/failover.sh", file=sys.stderr)
            return 2
        plan += [(f"hosts-{m}", m, a.inflight, a.log_size, a.reps) for m in modes]
    for label, mode, k, ls, reps in plan:
        ra = a
        m_t = re.search(r"-T(\d+)$", label)
        if m_t:  # a main run at another heartbeat timeout (--also-T)
            ra = copy.copy(a)
            ra.h, ra.T = next((hh, tt) for hh, tt in also if tt == int(m_t.group(1)))
        C.log(f"cfplex {label}: {mode}, K={k}, log {ls}, h {ra.h} ms, T {ra.T} ms, {reps} crashes")
        r = run_config(ra, label, mode, k, ls, reps, workroot, label.startswith("hosts-"))
        if ra is not a and ra.keep:
            a.keep = True
        lb = r["log_bytes"].get("p50")
        r["floor_ms"] = floor_ms(res["floor"], mode, ra.T, lb) if r["samples"] else None
        if r["floor_ms"] and label.startswith("hosts-"):
            r["floor_ms"] += a.T / 2 + a.wd_ms + 250  # the watchdog fence's wait is part of the floor there
        if r["floor_ms"] and r["samples"]:
            r["p50_over_floor"] = r["total_ms"]["p50"] / r["floor_ms"]
        res["cfplex"]["runs"].append(r)
    peers = [p for p in a.peers.split(",") if p]
    if "postgres" in peers:
        import postgres
        C.log("PostgreSQL peer")
        res["postgres"] = postgres.run(os.path.join(workroot, "pg"), reps=a.peer_reps, cap_s=a.cap,
                                       pgbench_s=a.pgbench_seconds, allow_install=not a.no_install, progress=C.vlog)
    if "etcd" in peers:
        import etcd
        C.log("etcd peer")
        res["etcd"] = etcd.run(os.path.join(workroot, "etcd"), reps=a.peer_reps, cap_s=a.cap,
                               allow_install=not a.no_install, progress=C.vlog)
    txt = table(res, a)
    res["plots"] = plots(res, out, a)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(txt)
    C.dump_json(res, os.path.join(out, "result.json"))
    if a.json:
        C.dump_json(res, a.json)
    sys.stdout.write(txt)
    print(f"\nreport: {out}/table.txt, {out}/result.json" + "".join(f", {p}" for p in res["plots"]))
    bad = [r for r in res["cfplex"]["runs"] if r["error"] or not r["verify_ok"] or r["waiter_checks_failed"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
