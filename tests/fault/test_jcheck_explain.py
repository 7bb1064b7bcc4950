#!/usr/bin/env python3
"""The journal check's explainer (jcheck.explain): which indeterminate transfers landed.

A long run leaves many intents whose outcome nobody saw (fifty CF kills left 70); the
explainer must find the subset that landed among all of them, not give up past a fixed
count of candidates touching a differing account (the first 50-kill run failed its check
with 43 accounts unexplained that way). It must also still refuse a difference no subset
explains. And the recovery journals (cfnode --recovery-journal): what a recovery decided
settles an intent, and contradicts no committed line."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jcheck  # noqa: E402

fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print(f"FAIL: {what}")


def apply(n, subset):
    d = [0] * n
    for _, (x, y, a) in subset:
        d[x] -= a
        d[y] += a
    return d


rng = random.Random(7)
n = 200
for trial in range(20):
    # 70 indeterminate transfers between random accounts, a random half landed
    cands = [((f"SYS{t % 3}.journal", t), (rng.randrange(n), rng.randrange(n), rng.randrange(1, 100)))
             for t in range(70)]
    cands = [c for c in cands if c[1][0] != c[1][1]]
    landed = [c for c in cands if rng.random() < 0.5]
    diff = apply(n, landed)
    got = jcheck.explain(diff, cands)
    check(got is not None, f"trial {trial}: {len(landed)} of {len(cands)} landed transfers not explained")
    if got is not None:
        check(apply(n, got) == diff, f"trial {trial}: the explanation does not sum to the difference")
    # one unit more anywhere is no longer explainable by these transfers
    bad = list(diff)
    k = rng.randrange(n)
    bad[k] += 1
    bad[(k + 1) % n] -= 1
    got = jcheck.explain(bad, cands)
    check(got is None or apply(n, got) == bad, f"trial {trial}: a wrong explanation accepted")
# a difference on an account no candidate touches
check(jcheck.explain([0, 5, -5, 0], [(("j", 1), (0, 3, 5))]) is None, "an untouched account explained")
check(jcheck.explain([0, 0, 0, 0], [(("j", 1), (0, 3, 5))]) == [], "no difference needs no transfer")

# commit groups (cf_bank.c commit_n): what landed of a group is a prefix of it
for trial in range(20):
    pending, groups = {}, []
    t = 0
    for g in range(12):  # twelve crashed groups of up to 8 transfers
        grp = []
        for _ in range(rng.randrange(1, 9)):
            x = rng.randrange(n)
            y = (x + 1 + rng.randrange(n - 1)) % n
            k = (f"SYS{g % 3}.journal", t)
            t += 1
            pending[k] = (x, y, rng.randrange(1, 100))
            grp.append(k)
        groups.append(grp)
    landed = [k for g in groups for k in g[:rng.randrange(len(g) + 1)]]
    diff = apply(n, [(k, pending[k]) for k in landed])
    got = jcheck.explain_groups(diff, pending, groups)
    check(got not in (None, "big"), f"groups trial {trial}: prefixes not explained ({got})")
    if got not in (None, "big"):
        check(apply(n, [(k, pending[k]) for k in got]) == diff, f"groups trial {trial}: wrong explanation")
    # a group's second transfer landed without its first: not a prefix, refused
    g = next(g for g in groups if len(g) >= 2)
    bad = apply(n, [(g[1], pending[g[1]])])
    got = jcheck.explain_groups(bad, pending, groups)
    check(got is None or got == "big" or apply(n, [(k, pending[k]) for k in got]) == bad,
          f"groups trial {trial}: a wrong explanation accepted")
# the simplest non-prefix: one group of two, only the second landed
pend = {("j", 1): (0, 1, 5), ("j", 2): (2, 3, 7)}
check(jcheck.explain_groups(apply(4, [(("j", 2), (2, 3, 7))]), pend, [[("j", 1), ("j", 2)]]) is None,
      "a commit group's later transfer landed without the earlier one: explained")
check(jcheck.explain_groups(apply(4, [(("j", 1), (0, 1, 5))]), pend, [[("j", 1), ("j", 2)]]) == [("j", 1)],
      "a commit group's first transfer alone: not explained")

# recovery journals settle intents: "R INDEX TXID C|B NAME" against the journal's "I INDEX"
import tempfile  # noqa: E402
with tempfile.TemporaryDirectory() as d:
    j = os.path.join(d, "SYS1.journal")
    rj = os.path.join(d, "SYS2.recovery")
    with open(j, "w") as f:
        f.write("I 4 img1\n5 0 1 10\nP 6 2 3 20\nP 7 4 5 30\nP 8 6 7 40\n")
    with open(rj, "w") as f:
        # 6 committed and 7 backed out by a recovery of instance 4; 8 undecided;
        # instance 3's txid 8, and instance 4's under another CF image, are other transactions
        f.write("R 4 6 C NTS001 img1\nR 4 7 B NTS001 img1\nR 3 8 C NTS009 img1\nR 4 8 C NTS001 img2\n")
    com, pend, ab, torn, bad, _, _, groups = jcheck.parse_journals([j, rj], 10)
    check((j, 6) in com and (j, 6) not in pend, "an intent a recovery kept committed is not committed")
    check((j, 7) in ab and (j, 7) not in pend and (j, 7) not in com, "an intent a recovery backed out is not aborted")
    check((j, 8) in pend, "an intent nobody decided is not indeterminate")
    check(groups == [[(j, 8)]], f"the undecided remainder of the group: {groups}")
    check(not torn and not bad, f"recovery or instance lines taken as torn or bad: {torn} {bad}")
    # a committed line that a recovery backed out, and two recoveries that disagree
    with open(rj, "a") as f:
        f.write("R 4 5 B NTS001 img1\nR 4 6 B NTS001 img1\n")
    com, pend, ab, torn, bad, _, _, groups = jcheck.parse_journals([j, rj], 10)
    check(any("txid 5 committed, and backed out" in b for b in bad), f"a backed-out committed line passed: {bad}")
    check(any("both committed and backed out" in b for b in bad), f"disagreeing recoveries passed: {bad}")
print(f"{'FAILED' if fails else 'ok'}: jcheck explain, {fails} failure(s)")
sys.exit(1 if fails else 0)
