#!/usr/bin/env python3
"""Print the tail of every failed test's output from meson's testlog.json files.

CI shows only the end of a run's output, and meson prints a failing test's log
where it failed, long before the end. .ci/run calls this when a stage fails so
that the cause is the last thing printed.

usage: scripts/ci-failures.py [--lines N] BUILD_DIR...
"""
import json
import os
import sys

BAD = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}


def main(argv):
    lines = 60
    dirs = []
    it = iter(argv)
    for a in it:
        if a == "--lines":
            lines = int(next(it))
        else:
            dirs.append(a)
    found = 0
    for d in dirs:
        path = os.path.join(d, "meson-logs", "testlog.json")
        try:
            f = open(path, encoding="utf-8", errors="replace")
        except OSError:
            continue
        with f:
            for raw in f:
                try:
                    t = json.loads(raw)
                except ValueError:
                    continue
                if t.get("result") not in BAD:
                    continue
                found += 1
                out = (t.get("stdout") or "") + (t.get("stderr") or "")
                all_lines = out.splitlines()
                tail = all_lines[-lines:]
                # the harness's verdict lines, wherever they are in the output
                verdict = [l for l in all_lines[:-lines] if "FAIL:" in l or "timeout after" in l]
                print(f"==== {path}: {t.get('name')} {t.get('result')} "
                      f"(rc {t.get('returncode')}, {t.get('duration', 0):.1f} s), last {len(tail)} lines ====")
                if verdict:
                    print("\n".join(verdict[-10:]))
                    print("....")
                print("\n".join(tail))
    if not found:
        print("ci-failures: no failed test in " + " ".join(dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
