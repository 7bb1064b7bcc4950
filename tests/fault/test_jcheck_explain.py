#!/usr/bin/env python3
"""The journal check's explainer (jcheck.explain): which indeterminate transfers landed.

A long run leaves many intents whose outcome nobody saw (fifty CF kills left 70); the
explainer must find the subset that landed among all of them, not give up past a fixed
count of candidates touching a differing account (the first 50-kill run failed its check
with 43 accounts unexplained that way). It must also still refuse a difference no subset
explains."""
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
print(f"{'FAILED' if fails else 'ok'}: jcheck explain, {fails} failure(s)")
sys.exit(1 if fails else 0)
