#!/bin/bash
# SPDX-License-Identifier: MIT
# cfctl locks: SYSA holds f0.r17 in X (cf_tclient lock, through
# cf_lock: entry written before the CAS); SYSB asks for it and waits inside
# cf_lock_acquire, its entry in its record list. cfctl locks shows the class
# once, NTSA (SYSA) as the holder and NTSB (SYSB) as waiting, in text and in
# JSON, and with the RECORD filter; another record's filter shows it free.
# The waiter still waits afterwards: cfctl changed nothing.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg a "$TC" lock SYSA NTSA f0.r17 X
wait_for 10 grep -q "LOCKED f0.r17" "$CF_WORK/a.log" || fail "SYSA did not lock f0.r17"
start_bg b "$TC" lock SYSB NTSB f0.r17 X 50000
waiter=$BG_PID
wait_for 10 grep -q "ACQUIRING f0.r17" "$CF_WORK/b.log" || fail "SYSB did not start acquiring"
waiting() { cf_ctl locks | grep -q "waiting NTSB (SYSB): f0.r17(X, waiting)"; }
wait_for 10 waiting || fail "NTSB never shown waiting: $(cf_ctl locks)"
cf_ctl locks >"$CF_WORK/locks.txt" || fail "cfctl locks"
cat "$CF_WORK/locks.txt" >&2
[ "$(grep -c '^class ' "$CF_WORK/locks.txt")" = 1 ] || fail "not exactly one lock word"
grep -q "^  held by NTSA (SYSA): f0.r17(X)$" "$CF_WORK/locks.txt" || fail "NTSA not shown holding f0.r17"
! grep -q "held by NTSB" "$CF_WORK/locks.txt" || fail "the waiter shown as a holder"
grep -q "^1 lock word held, 1 entry waiting$" "$CF_WORK/locks.txt" || fail "summary"
cf_ctl locks --json >"$CF_WORK/locks.json" || fail "cfctl locks --json"
python3 - "$CF_WORK/locks.json" <<'PY' || fail "JSON: $(cat "$CF_WORK/locks.json")"
import json,sys
d=json.load(open(sys.argv[1]))
assert d["words"]==1 and d["waiting"]==1, d
l=d["locks"][0]
assert l["mode"]=="X", l
assert l["holders"]==[{"instance":"NTSA","system":"SYSA","names":["f0.r17"]}], l
assert l["waiters"]==[{"instance":"NTSB","system":"SYSB","name":"f0.r17","mode":"X","waiting":True}], l
PY
cf_ctl locks f0.r17 --json >"$CF_WORK/f.json" || fail "cfctl locks f0.r17"
python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["record"]=="f0.r17" and d["words"]==1 and d["locks"][0]["class"]==d["record_class"], d
assert d["locks"][0]["holders"][0]["instance"]=="NTSA" and d["locks"][0]["waiters"][0]["instance"]=="NTSB", d' \
	"$CF_WORK/f.json" || fail "filter: $(cat "$CF_WORK/f.json")"
out=$(cf_ctl locks f0.r18) || fail "cfctl locks f0.r18"
case "$out" in "f0.r18 (class "*"): free") ;; *) fail "f0.r18: $out" ;; esac
# the waiter is still waiting: cfctl changed nothing
kill -0 "$waiter" || fail "the waiter gave up"
! grep -q LOCKED "$CF_WORK/b.log" || fail "the waiter got the lock while SYSA holds it"
pass "cfctl locks tells the holder and the waiter apart, in text, JSON and by record"
