#!/bin/bash
# cfctl status shows as held only the locks whose lock word names the
# instance. A node writes its record-list entry before its lock CAS,
# so a waiter has an entry too: it used to be shown as a second X holder.
# SYS1 holds f0.r5; SYS2 waits for it: only NTS001 holds it, NTS002 waits,
# and the instance's count agrees with its system's heartbeat. Then a system
# killed with many locks: more names than shown, and status says how many.
. "$(dirname "$0")/node_lib.sh"

start_cf
mkdata 1000 100
cf_node holder SYS1 NTS001 --workload hold --record 5 --hold-ms 60000
holder=$NODE_PID
wait_for 20 log_has holder "holding f0.r5" || fail "SYS1 did not take the lock"
cf_node waiter SYS2 NTS002 --workload lock --record 5 --lock-timeout 60000
waiter=$NODE_PID
# the waiter's record-list entry is there once it waits
waiting() {
	local v
	v=$(cf_status_field inst NTS002 lock_names) && [ "$v" != - ] && [ "$v" != "[]" ]
}
wait_for 20 waiting || fail "NTS002 never shows its lock entry"
cf_ctl status --json >"$CF_WORK/status.json" || fail "status --json"
python3 - "$CF_WORK/status.json" <<'PY' || fail "JSON lock state: $(cat "$CF_WORK/status.json")"
import json,sys
d=json.load(open(sys.argv[1]))
inst={i["name"]:i for i in d["instances"]}
sysm={s["name"]:s for s in d["systems"]}
h, w = inst["NTS001"], inst["NTS002"]
assert h["locks_held"]==1 and h["locks"]==1 and h["locks_waiting"]==0, h
assert h["lock_names"]==[dict(h["lock_names"][0], name="f0.r5", mode="X", held=True)], h
assert w["locks_held"]==0 and w["locks"]==0 and w["locks_waiting"]==1, w
assert w["lock_names"][0]["name"]=="f0.r5" and w["lock_names"][0]["held"] is False, w
assert not h["lock_names_truncated"] and h["lock_names_total"]==1, h
# the instance agrees with what its system counts on its heartbeat
assert sysm["SYS1"]["locks_held"]==h["locks_held"], (sysm["SYS1"], h)
assert sysm["SYS2"]["locks_held"]==w["locks_held"], (sysm["SYS2"], w)
PY
# --field answers what a JSON reader finds in --json: fields that stay put while SYS1 holds
# and SYS2 waits; absent keys and names, dotted keys, a boolean, a list and an object
Q=("cf generation policy restart.state cf.duplexed nope" "sys SYS1 state epoch host fail_cause nope.x"
   "sys NOPE state epoch" "inst NTS001 state owner home locks_held lock_names recovery.phase recovery.phase_us"
   "inst NTS002 locks_held locks_waiting lock_names_truncated" "systems state epoch" "instances state owner")
F=()
for q in "${Q[@]}"; do F+=(--field "$q"); done
got=$(cf_ctl status "${F[@]}") || fail "status --field"
want=$(python3 - "$CF_WORK/status.json" "${Q[@]}" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
def f(o,k):
    for p in k.split("."):
        if not isinstance(o,dict) or p not in o: return "-"
        o=o[p]
    return ("true" if o else "false") if isinstance(o,bool) else json.dumps(o,separators=(",",":")) if isinstance(o,(list,dict)) else str(o)
for q in sys.argv[2:]:
    w=q.split()
    if w[0]=="cf": print(" ".join(f(d,k) for k in w[1:]))
    elif w[0] in ("systems","instances"):
        for r in d[w[0]]: print(" ".join([r["name"]]+[f(r,k) for k in w[1:]]))
    else:
        r=next((r for r in d["systems" if w[0]=="sys" else "instances"] if r["name"]==w[1]),{})
        print(" ".join(f(r,k) for k in w[2:]))
PY
) || fail "reading status.json"
[ "$got" = "$want" ] || fail "status --field says
$got
where --json says
$want"
# locks: words not 0, those naming each instance as a holder (NTS002 none: absent), waiters
got=$(cf_ctl locks --field "cf words held_by.NTS001 held_by.NTS002 waiting") || fail "locks --field"
[ "$got" = "1 1 - 1" ] || fail "locks --field says '$got', not '1 1 - 1': $(cf_ctl locks --json)"
[ "$(cf_lock_words NTS001)" = 1 ] && [ "$(cf_lock_words NTS002)" = 0 ] && [ "$(cf_lock_words)" = 1 ] ||
	fail "cf_lock_words: $(cf_lock_words NTS001) $(cf_lock_words NTS002) $(cf_lock_words)"
cf_ctl status >"$CF_WORK/status.txt" || fail "status"
cat "$CF_WORK/status.txt" >&2
[ "$(grep -c 'f0\.r5(X)' "$CF_WORK/status.txt")" = 1 ] || fail "f0.r5 shown held by more than one instance"
grep -A3 "NTS001" "$CF_WORK/status.txt" | grep -q "locks: f0.r5(X)$" || fail "NTS001 not shown holding f0.r5"
grep -A3 "NTS002" "$CF_WORK/status.txt" | grep -q "locks: f0.r5(X, waiting)" || fail "NTS002 not shown waiting"
kill_pid "$waiter" TERM
kill_pid "$holder" TERM

# Many locks: a bank with 100 transactions in flight, killed (no peer recovers
# it, so its record list stays). More entries than the text shows (8) say how
# many more; JSON lists at most 64 names and says whether they are all
# (a bank here rarely holds more than 64 at once: the truncated branch is checked when it does).
cf_node bank SYS3 NTS003 --workload bank --accounts 1000 --inflight 100 --duration 60
bank=$NODE_PID
many() {
	local n
	n=$(cf_status_field inst NTS003 lock_names_total) && [ "$n" != - ] && [ "$n" -gt 9 ]
}
wait_for 30 many || fail "NTS003 never had more than 9 locks"
kill -KILL "$bank"
wait_for 10 sh -c "\"$CFCTL\" --cf $CF_ADDR --cluster-key $CF_KEYFILE --transport $CF_TRANSPORT status | grep -q 'NTS003 *INACTIVE_FAILED'" ||
	fail "NTS003 not failed"
cf_ctl status --json >"$CF_WORK/status.json" || fail "status --json"
cf_ctl status >"$CF_WORK/status.txt" || fail "status"
total=$(python3 - "$CF_WORK/status.json" <<'PY'
import json,sys
i=next(i for i in json.load(open(sys.argv[1]))["instances"] if i["name"]=="NTS003")
n=i["lock_names_total"]
assert len(i["lock_names"])==min(n,64), i
assert i["lock_names_truncated"]==(n>64), i
assert i["locks_held"]+i["locks_waiting"]==n, i
print(n)
PY
) || fail "JSON lock names of NTS003"
log "NTS003 was killed with $total lock entries"
if [ "$total" -gt 8 ]; then
	grep -A3 "NTS003" "$CF_WORK/status.txt" | grep -q "locks:.* \.\.\. and $((total - 8)) more" ||
		fail "the text does not say how many names it leaves out: $(grep -A3 NTS003 "$CF_WORK/status.txt")"
else # the kill landed between transactions: nothing left out, nothing to say
	! grep -A3 "NTS003" "$CF_WORK/status.txt" | grep -q "more" || fail "'more' with $total names"
fi
pass "status shows holders and waiters apart, and says how many lock names it leaves out"
