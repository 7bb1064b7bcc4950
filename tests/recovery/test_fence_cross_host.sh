#!/bin/bash
# SPDX-License-Identifier: MIT
# A failed system on another host, with no watchdog and no fence agent that
# reaches it: the counterpart must not stall silently. It waits in
# phase disk-fence, visibly (cfctl status --json: waiting, reason, age within
# 1 s), logs an error at intervals, retries the fence, and proceeds only when
# the operator confirms the fence (cfctl fence-confirm); bad confirmations are
# refused and change nothing. Then the home system restarts.
. "$(dirname "$0")/lib.sh"
have_uts || skip "no UTS namespaces here (unshare --uts needs root)"
HB_TIMEOUT=${CF_TEST_T_MS:-200} cluster

node SYS1 NTS001 --fence-agent auto
node_host hostB SYS2 NTS002
wait_committing SYS1 SYS2
[ "$(cf_status_field sys SYS2 host)" = hostB ] ||
	fail "SYS2 does not run on hostB"

t0=$(date +%s.%N)
kill -KILL "$(pid_of SYS2)"
# (a loaded 2-core machine makes cfctl status itself take seconds: bounds below bracket each read)
wait_for 20 fence_waiting NTS002 || fail "the fence wait of NTS002 is not visible in cfctl status: $(cf_ctl status)"
seen=$(date +%s.%N)
log "fence wait visible $(python3 -c "print(round($seen-$t0,3))") s after the kill"
[ "$(inst_owner NTS002)" = SYS1 ] || fail "NTS002 not held by its counterpart SYS1: $(cf_inst_state NTS002)"
reason=$(rec_field NTS002 reason)
case $reason in *SYS2*hostB*fence-confirm*) ;; *) fail "reason does not say who, where and how: $reason" ;; esac
[ "$(rec_field NTS002 phase)" = disk-fence ] || fail "phase $(rec_field NTS002 phase)"
cf_ctl status | grep -q "WAITING .*SYS2 on host hostB" || fail "human status shows no wait: $(cf_ctl status)"
# the age keeps up with the clock (within 1 s); each read bracketed by the clock
t1a=$(date +%s.%N); w1=$(rec_field NTS002 wait_ms); t1b=$(date +%s.%N)
python3 -c "import sys; sys.exit(0 if $w1/1e3 <= $t1b-$t0+1.0 else 1)" || fail "wait age $w1 ms longer than since the kill"
sleep 2
t2a=$(date +%s.%N); w2=$(rec_field NTS002 wait_ms); t2b=$(date +%s.%N)
python3 -c "import sys; d=($w2-$w1)/1e3; sys.exit(0 if $t2a-$t1b-1.0 <= d <= $t2b-$t1a+1.0 else 1)" ||
	fail "wait age off by more than 1 s: $w1 -> $w2 ms between reads at [$t1a,$t1b] and [$t2a,$t2b]"

# logged as an error, repeatedly; the fence retried
wait_for 15 eval '[ "$(grep -c "error: recovery of NTS002 (incident 1) waits in phase disk-fence" "$CF_WORK/SYS1.log")" -ge 2 ]' ||
	fail "the wait is not logged as an error at intervals: $(grep -c 'waits in phase disk-fence' "$CF_WORK/SYS1.log")"
tries=$(rec_field NTS002 wait_tries)
[ "$tries" -ge 3 ] || fail "fence not retried at intervals: $tries attempts"

# bad inputs: clear errors, nothing changes
out=$(cf_ctl fence-confirm NOSUCH 2>&1) && fail "fence-confirm of an unknown system accepted: $out"
grep -q "no system named NOSUCH" <<<"$out" || fail "unclear error: $out"
out=$(cf_ctl fence-confirm SYS1 2>&1) && fail "fence-confirm of a system nothing waits on accepted: $out"
grep -q "no recovery waits on a fence of SYS1" <<<"$out" || fail "unclear error: $out"
out=$(cf_ctl fence-confirm 'bad/name' 2>&1); [ $? -eq 2 ] || fail "bad name not a usage error: $out"
out=$(cf_ctl fence-confirm 2>&1); [ $? -eq 2 ] || fail "missing argument not a usage error: $out"
out=$(cf_ctl recover NOSUCH --retry 2>&1) && fail "recover --retry of an unknown instance accepted: $out"
grep -q "no instance named NOSUCH" <<<"$out" || fail "unclear error: $out"
out=$(cf_ctl recover NTS001 --retry 2>&1) && fail "recover --retry of a healthy instance accepted: $out"
out=$(cf_ctl policy auto --retry 2>&1); [ $? -eq 2 ] || fail "--retry accepted with policy: $out"
fence_waiting NTS002 || fail "a refused request changed the wait"
has_recovery NTS002 && fail "NTS002 backed out without a fence"

# recover --retry: the counterpart tries its fence agent again now
tries=$(rec_field NTS002 wait_tries)
cf_ctl recover NTS002 --retry | grep -q "asked to retry its fence" || fail "recover --retry not accepted"
wait_for 5 eval '[ "$(rec_field NTS002 wait_tries)" -gt "$tries" ]' || fail "recover --retry did not retry the fence"
grep -q "operator asks to retry the fence of SYS2 for NTS002" "$CF_WORK/SYS1.log" || fail "retry not logged"

# the operator vouches SYS2 is down
cf_ctl fence-confirm SYS2 | grep -q "NTS002 (counterpart SYS1)" || fail "fence-confirm not accepted"
wait_recovery NTS002 1 20
grep -q "fence of SYS2 (epoch 1, host hostB) confirmed by the operator" "$CF_WORK/SYS1.log" ||
	fail "the operator's confirmation is not logged"
wait_inst NTS002 INACTIVE_CLEAN
[ "$(locks_of NTS002)" -eq 0 ] || fail "NTS002 still holds $(locks_of NTS002) locks"
[ "$(rec_field NTS002 fence_wait)" = confirmed ] || fail "fence_wait $(rec_field NTS002 fence_wait)"
out=$(cf_ctl fence-confirm SYS2 2>&1) && fail "a second fence-confirm accepted: $out"

# the home system restarts on its host and works again
node_host hostB SYS2 NTS002
wait_inst NTS002 ACTIVE
wait_committing SYS2
finish
pass "cross-host fence: visible, logged, retried wait; fence-confirm resolves it; bad requests refused"
