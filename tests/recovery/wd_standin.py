#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# wd_standin.py FIFO TIMEOUT_MS PIDFILE [MAX_S]
#
# A stand-in for a hardware watchdog, for the tests (cfnode --watchdog FIFO):
# cfnode writes one byte per pet; 'V' is the magic close that disarms it (we
# exit 0). Armed by the first pet; when no pet arrives for TIMEOUT_MS it
# "resets the machine": SIGKILL to every pid listed in PIDFILE (read at that
# moment), and exits 1. Exits 2 after MAX_S seconds (default 600) in any case.
# A PIDFILE entry "uts:PID" stands for a whole host: every process in the UTS
# namespace of PID (never the stand-in's own namespace). An entry "net:PID"
# (PID may be "self") stands for the host the stand-in runs on, as a hardware
# watchdog resets its own machine: every process of the network namespace of
# PID but the stand-in itself (refused for the root namespace, that of pid 1);
# the stand-in then waits (bounded, 2 s) until none is left and logs
# "host reset: N processes killed, none left" before it exits 1.
import os
import select
import signal
import sys
import time


def log(msg):
    # the timestamp of cfnode's log (common/cf_slog.h): ISO-8601 UTC, milliseconds; the tests
    # compare the two as strings
    t = time.time()
    print("%s.%03dZ wd-standin: %s" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)), int(t * 1000) % 1000, msg),
          flush=True)


def ns_of(pid, kind="uts"):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def net_members(ns):
    """Every process of network namespace ns but ourselves."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid() and ns_of(int(d), "net") == ns:
            out.append(int(d))
    return out


def running(pid):
    """Not gone and not a zombie (a zombie executes nothing)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def net_targets(entries):
    """The network namespaces named by "net:PID" entries (never the root one)."""
    out = []
    for e in entries:
        if e.startswith("net:"):
            ns = ns_of(os.getpid() if e[4:] == "self" else int(e[4:]), "net")
            if ns is not None and ns != ns_of(1, "net"):
                out.append(ns)
    return out


def victims(entries):
    pids = []
    own = ns_of(os.getpid())
    for ns in net_targets(entries):
        pids.extend(net_members(ns))
    for e in entries:
        if e.startswith("net:"):
            continue
        if e.startswith("uts:"):
            ns = ns_of(int(e[4:]))
            if ns is None or ns == own:
                continue
            for d in os.listdir("/proc"):
                if d.isdigit() and ns_of(int(d)) == ns:
                    pids.append(int(d))
        else:
            pids.append(int(e))
    return pids


def main():
    fifo, tmo, pidfile = sys.argv[1], int(sys.argv[2]) / 1000.0, sys.argv[3]
    limit = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) > 4 else 600.0)
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    # our own writer end: a writer that closes does not turn the FIFO into an EOF storm
    keep = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    log("listening on %s, timeout %d ms" % (fifo, tmo * 1000))
    last = None
    while time.monotonic() < limit:
        ready, _, _ = select.select([rd], [], [], 0.01)
        now = time.monotonic()
        if ready:
            data = os.read(rd, 65536)
            if b"V" in data:
                log("magic close: disarmed")
                os.close(keep)
                return 0
            if data:
                if last is None:
                    log("armed")
                last = now
        if last is not None and now - last >= tmo:
            try:
                with open(pidfile) as f:
                    entries = f.read().split()
                pids = victims(entries)
            except (OSError, ValueError):
                entries, pids = [], []
            log("no pet for %.0f ms: firing, killing %s" % ((now - last) * 1000, pids))
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            nets = net_targets(entries)
            if nets:
                # a reset leaves nothing running: kill what appears meanwhile, until none is left
                end = time.monotonic() + 2.0
                left = [p for ns in nets for p in net_members(ns)]
                while left and time.monotonic() < end:
                    for p in left:
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass
                    time.sleep(0.005)
                    left = [p for ns in nets for p in net_members(ns) if running(p)]
                if left:
                    log("host reset FAILED: still running %s" % left)
                else:
                    log("host reset: %d processes killed, none left" % len(pids))
            return 1
    log("time limit")
    return 2


if __name__ == "__main__":
    sys.exit(main())
