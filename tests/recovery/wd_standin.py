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
# namespace of PID (never the stand-in's own namespace).
import os
import select
import signal
import sys
import time


def log(msg):
    t = time.time()
    print("%02d:%02d:%02d.%03d wd-standin: %s" % (t // 3600 % 24, t // 60 % 60, t % 60, int(t * 1000) % 1000, msg),
          flush=True)


def ns_of(pid):
    try:
        return os.readlink("/proc/%d/ns/uts" % pid)
    except OSError:
        return None


def victims(entries):
    pids = []
    own = ns_of(os.getpid())
    for e in entries:
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
                    pids = victims(f.read().split())
            except (OSError, ValueError):
                pids = []
            log("no pet for %.0f ms: firing, killing %s" % ((now - last) * 1000, pids))
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            return 1
    log("time limit")
    return 2


if __name__ == "__main__":
    sys.exit(main())
