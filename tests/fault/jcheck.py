#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""jcheck.py - the journal check of the fault suite (I3, docs/design.md §0).

Replays every committed transfer of every journal from the initial balances
(a copy of f0.cfd taken when the data directory was made) and compares the
result with the data file account by account: every committed transfer
present, nothing in flight left.

Journal lines (node/cf_bank.c, one per committed transaction):
    TXID FROM TO AMOUNT            committed
and, when the workload writes them (requested of cf_bank.c):
    P TXID FROM TO AMOUNT          about to commit (intent)
    A TXID                         backed out
    I INDEX [IMAGE]                the journal's instance (its index) and CF image, at
                                   each start (a fresh volatile image numbers
                                   instances and epochs, hence txids, anew)
and, in the recovery journals (cfnode --recovery-journal, NAME.recovery):
    R INDEX TXID C|B NAME [IMAGE]  a recovery of that instance's log found
                                   TXID unfinished and kept it committed (C:
                                   its COMMIT is in the log) or backed it out (B)
A transaction with an intent line and no committed line is indeterminate
(the process died between the two): it may or may not be in the data -
unless a recovery decided it: then it must be in the data exactly as the
recovery said (a node that wrote before-images over a transaction whose
COMMIT reached the log, its answer lost, fails here). A committed line whose
transaction a recovery backed out is a violation.
Consecutive intent lines of one journal are one commit group (cf_bank.c
commit_n: the group's COMMITs are posted in order and awaited once); what
landed of a group is a prefix of it in that order, because the CF executes
one connection's writes in order and recovery reads the log only up to its
first missing record. The check looks for the prefix of each group that
explains the data (solve_tails), and only if that search is too big for any
subset (explain), with a warning.

Without intent lines, a process killed after a commit but before its journal
line reached the file leaves committed transfers the journal does not know
("unjournaled"). --max-unknown N allows at most N of them: the difference
must then conserve the total and touch at most 2N accounts; reported as a
warning, never silently.

Exact tails without intent lines: when a journal's name carries the bank seed
its incarnation ran with (NAME.seed<S>.journal, cfnode --seed S), the i-th
transaction of that incarnation (txid = epoch << 32 | i) is regenerated from
the seed (cf_bank.c: xorshift64*, three draws per transaction). A killed
writer's unwritten journal tail is then a known sequence: the transactions
after its last journaled one, committed in order (FIFO). A sidecar
NAME.seed<S>.journal.tail holds how long that tail may be (0 for a clean
exit, 1 for an exit 75, 64 + K for a kill). The check then looks for the
prefixes of those tails that make the data equal the replay exactly;
anything else is a lost commit or an in-flight update left.

usage: jcheck.py --initial F0COPY --data DIR [--max-unknown N] [--json] JOURNAL...
exit: 0 holds, 1 violated, 2 usage / unreadable.
"""
import argparse
import itertools
import json
import os
import struct
import sys
import zlib

HDR = 64


def load(path):
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < HDR or b[:8] != b"CFPXDATA":
        raise ValueError(f"{path}: not a cfplex data file")
    version, rec_size, rec_count = struct.unpack_from("<IIQ", b, 8)
    if rec_size != 8:
        raise ValueError(f"{path}: {rec_size}-byte records, not a bank file")
    bal, bad = [], []
    for i in range(rec_count):
        off = HDR + i * 16
        if off + 16 > len(b):
            raise ValueError(f"{path}: truncated at record {i}")
        crc, flags, v = struct.unpack_from("<IIq", b, off)
        want = zlib.crc32(b[off + 8:off + 16], zlib.crc32(struct.pack("<Q", i))) & 0xFFFFFFFF
        if crc != want or not flags & 1:
            bad.append(i)
        bal.append(v)
    return bal, bad


def parse_journals(paths, n):
    committed = {}  # (journal, txid) -> (from, to, amount)
    pending = {}  # intent without commit (yet)
    groups = []  # runs of consecutive intent lines of one journal: [key, ...] in order
    aborted = set()
    torn = []
    dup = []
    same = []  # the same committed line twice: a journal buffer written twice
    partial = []
    inst_of = {}  # journal path -> (CF image, instance index) ("I" line)
    decided = {}  # (CF image, instance index, txid) -> "C" | "B" (recovery journals)
    conflicts = []
    for p in paths:
        try:
            text = open(p, encoding="ascii", errors="replace").read()
        except FileNotFoundError:
            continue
        lines = text.split("\n")
        prev_p = False
        if text and not text.endswith("\n"):
            # a partial last line (the write that hit ENOSPC, or a killed writer's
            # half-flushed buffer): not a committed line
            partial.append(f"{os.path.basename(p)}: {lines[-1][:40]!r}")
            lines = lines[:-1]
        for ln, line in enumerate(lines, 1):
            f = line.split()
            if not f:
                continue
            if f[0] == "I" and len(f) in (2, 3) and f[1].isdigit():
                k = (f[2] if len(f) == 3 else "-", int(f[1]))
                if inst_of.setdefault(p, k) != k:
                    conflicts.append(f"{os.path.basename(p)}:{ln}: instance {k} after {inst_of[p]}")
                # a new start (a switch of CF in the same process too): no commit group spans it
                prev_p = False
                continue
            if f[0] == "R" and len(f) >= 4 and f[1].isdigit() and f[2].isdigit() and f[3] in ("C", "B"):
                k = (f[5] if len(f) >= 6 else "-", int(f[1]), int(f[2]))
                if decided.setdefault(k, f[3]) != f[3]:
                    conflicts.append(f"{os.path.basename(p)}:{ln}: txid {k[2]} of instance {k[1]} "
                                     f"both committed and backed out by recoveries")
                continue
            is_p = f[0] == "P"
            was_p, prev_p = prev_p, is_p
            try:
                if is_p and len(f) == 5:
                    t = (p, int(f[1]))
                    pending[t] = (int(f[2]), int(f[3]), int(f[4]))
                    if was_p:
                        groups[-1].append(t)
                    else:
                        groups.append([t])
                    continue
                if f[0] == "A" and len(f) == 2:
                    t = (p, int(f[1]))
                    pending.pop(t, None)
                    aborted.add(t)
                    continue
                if len(f) != 4:
                    raise ValueError
                t = (p, int(f[0]))
                x, y, a = int(f[1]), int(f[2]), int(f[3])
            except ValueError:
                torn.append(f"{os.path.basename(p)}:{ln}: {line[:60]!r}")
                continue
            if not (0 <= x < n and 0 <= y < n and x != y):
                torn.append(f"{os.path.basename(p)}:{ln}: {line[:60]!r} (account out of range)")
                continue
            if t in committed:
                if committed[t] != (x, y, a):
                    dup.append(f"{os.path.basename(p)}:{ln}: txid {t[1]} committed twice, differently")
                else:
                    same.append(f"{os.path.basename(p)}:{ln}")
                continue
            committed[t] = (x, y, a)
            pending.pop(t, None)
    # what recoveries decided settles intents, and contradicts no committed line
    for t in list(pending):
        d = decided.get(inst_of.get(t[0], ("?", -1)) + (t[1],))
        if d == "C":
            committed[t] = pending.pop(t)
        elif d == "B":
            pending.pop(t)
            aborted.add(t)
    for t in committed:
        if decided.get(inst_of.get(t[0], ("?", -1)) + (t[1],)) == "B":
            conflicts.append(f"{os.path.basename(t[0])}: txid {t[1]} committed, and backed out by a recovery")
    groups = [[t for t in g if t in pending] for g in groups]
    return committed, pending, aborted, torn, dup + conflicts, same, partial, [g for g in groups if g]


M64 = (1 << 64) - 1


def draws(seed, n, count, max_amount=100):
    """The first count (from, to, amount) triples of cf_bank.c's generator."""
    st = seed & M64 or 1
    out = [None]

    def rnd():
        nonlocal st
        st ^= st >> 12
        st ^= (st << 25) & M64
        st ^= st >> 27
        return (st * 2685821657736338717) & M64
    for _ in range(count):
        x = rnd() % n
        y = rnd() % (n - 1)
        a = 1 + rnd() % max_amount
        if y >= x:
            y += 1
        out.append((x, y, a))
    return out


def seeded_tails(paths, committed, n, warnings):
    """For each seeded journal: the list of prefix-sum dicts of its possible unjournaled tail."""
    import re
    tails = []
    for p in paths:
        m = re.search(r"\.seed(\d+)\.f?journal$", p)
        if not m:
            continue
        seed = int(m.group(1))
        fixed = None
        try:
            txt = open(p + ".tail").read().strip()
            if txt.startswith("="):
                fixed = tl = int(txt[1:])  # solved by an earlier check: exactly this long
            else:
                tl = int(txt)
        except (OSError, ValueError):
            tl = 72
        seqs = {t[1] & 0xFFFFFFFF: v for t, v in committed.items() if t[0] == p}
        last = max(seqs) if seqs else 0
        gen = draws(seed, n, last + tl)
        bad = [q for q, v in seqs.items() if gen[q] != v]
        if bad:
            warnings.append(f"{os.path.basename(p)}: {len(bad)} journal lines do not match the seed's "
                            f"transactions (txid {bad[0]}): tail not used")
            continue
        if tl == 0:
            continue
        pre, acc = [{}], {}
        for q in range(last + 1, last + tl + 1):
            x, y, a = gen[q]
            acc = dict(acc)
            acc[x] = acc.get(x, 0) - a
            acc[y] = acc.get(y, 0) + a
            pre.append({k: v for k, v in acc.items() if v})
        if fixed is not None:
            pre = pre[-1:]  # no choice left
        tails.append((p, last, pre, fixed))
    return tails


def solve_tails(diff, tails, budget=200_000):
    """Prefix lengths, one per tail, whose sums equal diff; None if none; 'big' if the
    search gives up. Backtracking with bounds: after fixing some tails, every
    account's residual must lie between the least and the most the remaining
    tails can still contribute to it."""
    n = len(diff)
    if not tails:
        return [] if not any(diff) else None
    vecs = []
    for _, _, pre, _ in tails:
        vs = []
        for d in pre:
            v = [0] * n
            for k, x in d.items():
                v[k] = x
            vs.append(v)
        vecs.append(vs)
    D = len(vecs)
    lo = [[min(v[a] for v in vecs[j]) for a in range(n)] for j in range(D)]
    hi = [[max(v[a] for v in vecs[j]) for a in range(n)] for j in range(D)]
    LO = [[0] * n for _ in range(D + 1)]
    HI = [[0] * n for _ in range(D + 1)]
    for j in range(D - 1, -1, -1):
        LO[j] = [LO[j + 1][a] + lo[j][a] for a in range(n)]
        HI[j] = [HI[j + 1][a] + hi[j][a] for a in range(n)]
    visited = 0

    def rec(j, resid, chosen):
        nonlocal visited
        visited += 1
        if visited > budget:
            raise OverflowError
        L, H = LO[j], HI[j]
        for a in range(n):
            if resid[a] < L[a] or resid[a] > H[a]:
                return None
        if j == D:
            return chosen
        for m, v in enumerate(vecs[j]):
            got = rec(j + 1, [resid[a] - v[a] for a in range(n)], chosen + [m])
            if got is not None:
                return got
        return None
    try:
        return rec(0, list(diff), [])
    except (OverflowError, RecursionError):  # more groups than Python's stack: as too big
        return "big"


def explain(diff, cands, limit=22):
    """A subset of candidate (key, (from, to, amount)) items whose sum is diff, or None.

    Only candidates that touch a differing account can start an answer; a chosen one that
    also moves another account needs others to put that account back. So the candidates
    are split into groups linked by the accounts they touch, and each group is solved on
    its own: a long run (fifty CF kills, each leaving a few intents whose outcome nobody
    saw) has many indeterminate transfers in all, but few that touch each other."""
    touched = {k for k, v in enumerate(diff) if v}
    c = [t for t in cands if t[1][0] in touched or t[1][1] in touched]
    # grow the groups: a candidate touching an account of a group joins it, and every
    # other candidate touching one of its accounts too (transfers between accounts that
    # already agree may be needed to cancel a chosen one's side effect)
    parent = list(range(len(cands)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_acct = {}
    for i, (_, (x, y, _a)) in enumerate(cands):
        for acct in (x, y):
            if acct in by_acct:
                parent[find(i)] = find(by_acct[acct])
            else:
                by_acct[acct] = i
    groups = {}
    idx = {id(t): i for i, t in enumerate(cands)}
    for t in c:
        groups.setdefault(find(idx[id(t)]), set())
    members = {}
    for i, t in enumerate(cands):
        r = find(i)
        if r in groups:
            members.setdefault(r, []).append(t)
    covered = set()
    for g in members.values():
        for _, (x, y, _a) in g:
            covered.update((x, y))
    if touched - covered:
        return None  # a differing account no indeterminate transfer touches
    answer = []
    for g in members.values():
        accts = sorted({a for _, (x, y, _m) in g for a in (x, y)})
        want = [diff[a] for a in accts]
        pos = {a: i for i, a in enumerate(accts)}
        if len(g) > limit:
            return None
        found = None
        for r in range(0, len(g) + 1):
            for sub in itertools.combinations(g, r):
                d = [0] * len(accts)
                for _, (x, y, amt) in sub:
                    d[pos[x]] -= amt
                    d[pos[y]] += amt
                if d == want:
                    found = list(sub)
                    break
            if found is not None:
                break
        if found is None:
            return None
        answer.extend(found)
    return answer


def explain_groups(diff, pending, groups, budget=200_000):
    """The landed indeterminate transfers as one prefix per commit group, or None when no
    choice of prefixes explains diff, or 'big' when the search gives up."""
    tails = []
    for g in groups:
        pre, acc = [{}], {}
        for t in g:
            x, y, a = pending[t]
            acc = dict(acc)
            acc[x] = acc.get(x, 0) - a
            acc[y] = acc.get(y, 0) + a
            pre.append({k: v for k, v in acc.items() if v})
        tails.append((None, 0, pre, None))
    got = solve_tails(diff, tails, budget)
    if got is None or got == "big":
        return got
    return [t for g, m in zip(groups, got) for t in g[:m]]


def settle_pending(pending, landed):
    """Write the outcome of each solved intent into its journal, once the writer is gone
    (its .tail file exists): "txid from to amount" when its commit landed, "A txid" when
    not, so that later checks need not search for it again."""
    for (path, txid), (x, y, a) in pending.items():
        if not os.path.exists(path + ".tail"):
            continue  # a live writer: its commit may still come
        with open(path, "a") as f:
            f.write(f"{txid} {x} {y} {a}\n" if (path, txid) in landed else f"A {txid}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--initial", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--max-unknown", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--strict-dup", action="store_true", help="fail on identical duplicate lines too")
    ap.add_argument("--fix-tails", action="store_true",
                    help="on success, record each solved tail length in its .tail file (=M) for later checks")
    ap.add_argument("journals", nargs="*")
    a = ap.parse_args()
    try:
        init, ibad = load(a.initial)
        cur, cbad = load(os.path.join(a.data, "f0.cfd"))
    except (OSError, ValueError) as e:
        print(f"jcheck: {e}")
        return 2
    n = len(init)
    problems, warnings = [], []
    if len(cur) != n:
        problems.append(f"data has {len(cur)} accounts, initial {n}")
        cur = (cur + [0] * n)[:n]
    if cbad:
        problems.append(f"{len(cbad)} records with a bad crc or never written: {cbad[:10]}")
    committed, pending, aborted, torn, dup, same, partial, groups = parse_journals(a.journals, n)
    if partial:
        warnings.append(f"partial last journal lines ignored: {partial[:3]}")
    problems += dup
    if same:
        msg = (f"{len(same)} committed lines appear twice, identically (the journal's stdio buffer "
               f"was flushed twice: exit() racing the workload thread), counted once: {same[:3]}")
        (problems if a.strict_dup else warnings).append(msg)
    exp = list(init)
    for x, y, amt in committed.values():
        exp[x] -= amt
        exp[y] += amt
    diff = [c - e for c, e in zip(cur, exp)]
    off = [k for k, v in enumerate(diff) if v]
    explained = []
    if off:
        sub = explain_groups(diff, pending, groups)
        if sub == "big":
            warnings.append(f"{len(groups)} commit groups of indeterminate transfers: too many prefix "
                            f"combinations, any subset searched instead")
            sub = explain(diff, [(k, pending[k]) for k in pending])
            sub = [k for k, _ in sub] if sub is not None else None
        if sub is not None:
            explained = sub
            off = []
    if not off and a.fix_tails:
        settle_pending(pending, set(explained))
    tails_used = []
    if off:
        tails = seeded_tails(a.journals, committed, n, warnings)
        got = solve_tails(diff, tails)
        if got == "big":
            warnings.append(f"{len(tails)} seeded tails: too many combinations, not searched")
        elif got is not None:
            lens = [t[3] if t[3] is not None else m for t, m in zip(tails, got)]
            tails_used = [f"{os.path.basename(t[0])}: {k} of its unjournaled tail after seq {t[1]}"
                          for t, k in zip(tails, lens) if k]
            if a.fix_tails:
                for t, k in zip(tails, lens):
                    with open(t[0] + ".tail", "w") as f:
                        f.write(f"={k}\n")
            off = []
    unknown_used = 0
    if off:
        s = sum(diff)
        if s != 0:
            problems.append(f"total not conserved: data total - replayed total = {s}")
        if a.max_unknown and s == 0 and len(off) <= 2 * a.max_unknown:
            unknown_used = (len(off) + 1) // 2
            warnings.append(f"{len(off)} accounts differ from the replay, explainable by <= {unknown_used} "
                            f"unjournaled committed transfers (allowance {a.max_unknown}): "
                            + ", ".join(f"acct {k} {diff[k]:+d}" for k in off[:8]))
        else:
            problems.append(f"{len(off)} accounts differ from the replay of the journals "
                            f"(committed transfer lost or in-flight update left): "
                            + ", ".join(f"acct {k} data {cur[k]} expected {exp[k]} ({diff[k]:+d})" for k in off[:8]))
    if torn:
        if a.max_unknown:
            warnings.append(f"{len(torn)} torn journal lines (a killed writer's partial buffer): {torn[:3]}")
        else:
            problems.append(f"{len(torn)} unparseable journal lines: {torn[:3]}")
    res = {"accounts": n, "committed": len(committed), "indeterminate": len(pending),
           "indeterminate_applied": len(explained), "aborted": len(aborted), "differing": len(off),
           "tails": tails_used, "unknown_used": unknown_used, "torn": len(torn), "duplicated": len(same), "ok": not problems,
           "problems": problems, "warnings": warnings}
    if a.json:
        print(json.dumps(res))
    else:
        for w in warnings:
            print(f"jcheck: warning: {w}")
        for p in problems:
            print(f"jcheck: FAILED: {p}")
        if tails_used:
            print("jcheck: committed transfers whose journal lines a killed writer never wrote (regenerated "
                  "from its seed): " + "; ".join(tails_used))
        if not problems:
            print(f"jcheck: ok{' (within the allowance)' if unknown_used else ''}: {n} accounts equal the replay of {len(committed)} committed transfers "
                  f"({len(pending)} indeterminate, {len(explained)} of them landed)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
