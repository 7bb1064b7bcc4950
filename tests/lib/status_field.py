#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""status_field.py status QUERY [-- QUERY...] < `cfctl status --json`
   status_field.py locks [INST]              < `cfctl locks --json`

The tests' one reader of cfctl's JSON (tests/lib/harness.sh cf_status_field,
cf_lock_words): the tests read the CF's state only as an operator does.

status: one line per QUERY, its fields space-separated, all from one read:
  sys NAME KEY...    the system called NAME
  inst NAME KEY...   the instance called NAME
  cf KEY...          the document's own fields (generation, restart.state)
  systems KEY...     every system listed, a line each: its name, then its fields
  instances KEY...   every instance listed, the same way
A field that is absent prints "-" (every field, when NAME is not listed);
booleans print true/false, lists and objects JSON; KEY a.b is field b of the
object a (recovery.waiting).

locks: how many words of the whole lock table are not 0 (held, or marked
queued); with INST, how many name INST as a holder (X, or one of the S holders).

Exit 2 when stdin is not such a document (the caller's read failed), 64 on a
malformed query.
"""
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


def usage():
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    sys.exit(64)


def read_doc(key):
    try:
        doc = json.load(sys.stdin)
        if not isinstance(doc, dict) or not isinstance(doc[key], list):
            raise TypeError
        return doc
    except (ValueError, KeyError, TypeError):
        sys.exit(2)


def status(args):
    queries, q = [], []
    for a in args:
        if a == "--":
            queries.append(q)
            q = []
        else:
            q.append(a)
    queries.append(q)
    for q in queries:
        if not q or q[0] not in ("sys", "inst", "cf", "systems", "instances") or (q[0] in ("sys", "inst") and len(q) < 3):
            usage()
    doc = read_doc("systems")
    out = []
    for q in queries:
        kind = q[0]
        if kind == "cf":
            out.append(" ".join(field(doc, k) for k in q[1:]))
        elif kind in ("systems", "instances"):
            for row in doc[kind]:
                out.append(" ".join([field(row, "name")] + [field(row, k) for k in q[1:]]))
        else:
            rows = doc["systems" if kind == "sys" else "instances"]
            row = next((r for r in rows if r.get("name") == q[1]), {})
            out.append(" ".join(field(row, k) for k in q[2:]))
    if out:
        print("\n".join(out))


def locks(args):
    if len(args) > 1:
        usage()
    doc = read_doc("locks")
    n = 0
    for w in doc["locks"]:  # cfctl lists the words that are not 0
        if not args or not args[0] or any(h.get("instance") == args[0] for h in w.get("holders", [])):
            n += 1
    print(n)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("status", "locks"):
        usage()
    (status if sys.argv[1] == "status" else locks)(sys.argv[2:])


if __name__ == "__main__":
    main()
