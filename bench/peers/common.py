"""Shared helpers of the cfplex benchmark drivers (python3 stdlib only).

Every process a driver starts goes through spawn(), which records its PID; cleanup()
(run at exit and on SIGINT/SIGTERM) resumes and kills each of them by PID and removes
the nftables tables the drivers added.  Every wait is bounded.
"""
import atexit
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

_PIDS = []          # Popen objects we started
_NFT_TABLES = []    # nftables tables we added
_CLEANUPS = []      # extra callables (stop a server cleanly, remove a temp dir)
_VERBOSE = [False]


def set_verbose(v):
    _VERBOSE[0] = bool(v)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def vlog(msg):
    if _VERBOSE[0]:
        log(msg)


def spawn(argv, **kw):
    """Popen that records the child for cleanup.  start_new_session keeps terminal
    signals away from children; they are killed by PID."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    _PIDS.append(p)
    return p


def reap(p, timeout=5.0):
    """Kill one child we started (resume first: a stopped process takes SIGKILL, but a
    stopped process group member may hold others) and wait for it, bounded."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} did not exit within {timeout} s after SIGKILL")
    if p in _PIDS:
        _PIDS.remove(p)


def on_cleanup(fn):
    _CLEANUPS.append(fn)


def cleanup():
    for fn in reversed(_CLEANUPS):
        try:
            fn()
        except Exception as e:  # cleanup must go on
            log(f"cleanup step failed: {e}")
    _CLEANUPS.clear()
    for p in list(_PIDS):
        reap(p, timeout=3.0)
    for t in list(_NFT_TABLES):
        nft_drop_table(t)


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


def install_cleanup():
    atexit.register(cleanup)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def free_port():
    """An unused loopback TCP port (a tiny race with other programs is acceptable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.01):
    """Poll pred() until true or timeout seconds have passed; returns the last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(interval)


def apt_ensure(binaries, packages, allow_install=True):
    """Make sure every binary exists, installing the Debian packages if needed.
    Returns None when present, or a message saying why they are not."""
    missing = [b for b in binaries if not shutil.which(b) and not os.path.exists(b)]
    if not missing:
        return None
    if not allow_install:
        return f"missing {', '.join(missing)} (--no-install)"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"missing {', '.join(missing)} and cannot apt-get install {' '.join(packages)} (not root or no apt)"
    log(f"installing {' '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-qq"] + packages,
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq"] + packages):
        try:
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=600, text=True)
        except subprocess.TimeoutExpired:
            return f"apt-get {' '.join(cmd[1:])} timed out"
        if cmd[1] == "install" and r.returncode == 0:
            break
    missing = [b for b in binaries if not shutil.which(b) and not os.path.exists(b)]
    if missing:
        return f"could not install {' '.join(packages)}: {r.stderr.strip()[-300:]}"
    return None


# ---- nftables: drop one loopback TCP port both ways (a "frozen node") ----

def nft_available():
    return shutil.which("nft") is not None and os.geteuid() == 0


def nft_block_port(port):
    """Add a table dropping every loopback TCP segment from or to port.  Returns the
    table name (pass it to nft_drop_table) or raises RuntimeError."""
    table = f"cfbench_{os.getpid()}_{port}"
    rules = (f"table inet {table} {{\n"
             f"  chain in {{ type filter hook input priority -10; policy accept;\n"
             f"    iifname \"lo\" tcp sport {port} drop\n"
             f"    iifname \"lo\" tcp dport {port} drop\n"
             f"  }}\n}}\n")
    r = subprocess.run(["nft", "-f", "-"], input=rules, text=True, capture_output=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"nft: {r.stderr.strip()}")
    _NFT_TABLES.append(table)
    return table


def nft_drop_table(table):
    subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, timeout=10)
    if table in _NFT_TABLES:
        _NFT_TABLES.remove(table)


# ---- statistics ----

def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def summarize(vals, cap=None):
    """min/p50/p90/p99/max of a list of numbers; values of None mean 'did not happen
    within cap' and count as above every measured value."""
    done = sorted(v for v in vals if v is not None)
    n_cap = sum(1 for v in vals if v is None)
    n = len(vals)
    out = {"n": n, "capped": n_cap, "cap": cap}
    if n == 0:
        return out
    full = done + [math.inf] * n_cap

    def pick(p):
        v = percentile(full, p)
        return None if v == math.inf else v
    for name, p in (("min", 0), ("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        out[name] = pick(p) if p else (full[0] if full[0] != math.inf else None)
    if done:
        out["mean"] = sum(done) / len(done)
    return out


def fmt_ms(v, cap=None):
    if v is None:
        return f"> {cap:g} s" if cap else "n/a"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.3f} ms"


def report(res, lines, json_path, ok):
    """Print a benchmark's table (lines), keep it in res["table"], write res as JSON to json_path
    if given; the exit status: 0 when ok."""
    txt = "\n".join(lines) + "\n"
    sys.stdout.write(txt)
    res["table"] = txt
    if json_path:
        dump_json(res, json_path)
    return 0 if ok else 1


def dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
