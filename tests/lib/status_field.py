#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""status_field.py KIND NAME KEY... < `cfctl status --json`

Print the fields KEY... of the system (KIND sys) or instance (KIND inst) called
NAME, space-separated, from one status read: "-" for a field that is absent (or
for every field when NAME is not listed), booleans as true/false, lists and
objects as JSON. A KEY a.b reads field b of the object a (recovery.waiting).
Exit 2 when stdin is not a status document: the caller's read failed.
The tests' one reader of `cfctl status --json` (tests/lib/harness.sh
cf_status_field)."""
import json
import sys


def field(obj, key):
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return "-"
        obj = obj[part]
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (list, dict)):
        return json.dumps(obj, separators=(",", ":"))
    return str(obj)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("sys", "inst"):
        sys.exit("usage: status_field.py sys|inst NAME KEY...")
    try:
        doc = json.load(sys.stdin)
        rows = doc["systems" if sys.argv[1] == "sys" else "instances"]
    except (ValueError, KeyError, TypeError):
        sys.exit(2)
    row = next((r for r in rows if r.get("name") == sys.argv[2]), {})
    print(" ".join(field(row, k) for k in sys.argv[3:]))


if __name__ == "__main__":
    main()
