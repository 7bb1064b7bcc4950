#!/bin/bash
# SPDX-License-Identifier: MIT
# Lock hand-off (docs/design.md, "Lock hand-off"): waiters queue at the CF
# and are handed the class in arrival order, without polling the lock word,
# and the queue survives the deaths of its waiters.
#   1. order: A holds f0.r17 X; B, C, D queue in that order (the CF's
#      cfplex_lock_waiting gauge says each is queued before the next
#      starts). Each release hands the class to the next in line and to
#      nobody else; every waiter was queued once, handed the class once, and
#      read the lock word 0 times.
#   2. a queued waiter that dies leaves the queue: E and F queue behind D, E
#      is killed; D's release hands the class to F.
#   3. a waiter handed the class while frozen, then killed: G and H queue
#      behind F; G is stopped; F's release hands the class to G (its word
#      names G's instance), so H still waits; G is killed. A peer's release
#      of G's failed instance (release-failed, as a counterpart's release
#      phase) tells the CF, and H gets the class.
#   4. a wait that times out leaves the queue (I, 300 ms), and the last
#      release leaves the word free: no Q bit left behind.
#   5. a member that asks to wait in another instance's name is refused.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
metric() { # NAME: its value in a fresh scrape
	cf_ctl metrics | awk -v n="$1" '$1 == n { print $2 }'
}
waiting_is() { [ "$(metric cfplex_lock_waiting)" = "$1" ]; }
declare -A PID
holder() { # NAME: start NAME locking f0.r17 X (SYSNAME, NTSNAME), TIMEOUT_MS in $2
	start_bg "$1" "$TC" lock "SYS$1" "NTS$1" f0.r17 X "${2:-60000}"
	PID[$1]=$BG_PID
}
locked() { grep -q "^LOCKED f0.r17" "$CF_WORK/$1.log"; }
queue() { # NAME N: start NAME, wait until N waits are queued at the CF
	holder "$1"
	wait_for 20 waiting_is "$2" || fail "$1 not queued: cfplex_lock_waiting $(metric cfplex_lock_waiting), want $2"
	! locked "$1" || fail "$1 got the class while it is held"
}
release() { # NAME: SIGUSR1 makes it release
	kill -USR1 "${PID[$1]}"
	wait_for 20 grep -q "^RELEASED f0.r17" "$CF_WORK/$1.log" || fail "$1 did not release"
}
handed() { # NAME: it holds the class now, handed over by the CF: queued once, no lock-word polls
	wait_for 20 locked "$1" || fail "$1 was not handed the class: $(tail -2 "$CF_WORK/$1.log")"
	grep -q "^LOCKED f0.r17 entry [0-9]* queued 1 handed 1 polls 0$" "$CF_WORK/$1.log" ||
		fail "$1 not handed over by the queue: $(grep LOCKED "$CF_WORK/$1.log")"
}

# 1. arrival order, no polling
holder A
wait_for 20 locked A || fail "A did not lock f0.r17"
queue B 1
queue C 2
queue D 3
cf_ctl locks f0.r17 | grep -q "^class [0-9]* X, queued " || fail "cfctl locks does not show the queue: $(cf_ctl locks f0.r17)"
release A
grep -q "^RELEASED f0.r17 kicks 1$" "$CF_WORK/A.log" || fail "A's release did not tell the CF: $(grep RELEASED "$CF_WORK/A.log")"
handed B
! locked C && ! locked D || fail "a later waiter got the class with B"
release B
handed C
! locked D || fail "D got the class with C"
release C
handed D
waiting_is 0 || fail "waiters left after the queue emptied: $(metric cfplex_lock_waiting)"
log "order: B, C, D handed the class in arrival order, 0 polls"

# 2. a queued waiter dies: it leaves the queue
queue E 1
queue F 2
kill -9 "${PID[E]}"
wait_for 20 waiting_is 1 || fail "the dead waiter E was not dropped: waiting $(metric cfplex_lock_waiting)"
[ "$(metric cfplex_lock_waits_dropped_total)" -ge 1 ] || fail "no dropped wait counted"
release D
handed F
log "a dead waiter left the queue; the next one was handed the class"

# 3. handed the class while frozen, then killed: the class waits for G's counterpart
queue G 1
queue H 2
kill -STOP "${PID[G]}"
release F
wait_for 20 waiting_is 1 || fail "G was not handed the class: waiting $(metric cfplex_lock_waiting)"
cf_ctl locks f0.r17 | grep -q "held by NTSG (SYSG)" || fail "the word does not name G: $(cf_ctl locks f0.r17)"
kill -9 "${PID[G]}"
kill -CONT "${PID[G]}" 2>/dev/null
! locked H || fail "H got the class while it names the dead G"
out=$(bounded 30 "$TC" release-failed SYSP NTSG) || fail "release-failed NTSG: $out"
[[ $out == *"RELEASED-INSTANCE 1"* ]] || fail "release-failed NTSG released: $out"
handed H
log "a class handed to a waiter that died was released by its counterpart and handed on"

# 4. a wait that times out leaves the queue; the last release leaves no Q bit behind
holder I 300
wait_for 20 grep -q "^TIMEDOUT f0.r17 queued 1 polls 0" "$CF_WORK/I.log" ||
	fail "I did not time out in the queue: $(tail -2 "$CF_WORK/I.log")"
waiting_is 0 || fail "the timed-out wait is still queued"
[ "$(metric cfplex_lock_wait_cancels_total)" -ge 1 ] || fail "no cancelled wait counted"
release H
out=$(cf_ctl locks f0.r17) || fail "cfctl locks f0.r17"
case "$out" in "f0.r17 (class "*"): free") ;; *) fail "the word is not free after the last release: $out" ;; esac
# 5. what the CF checks: a wait in the name of an instance the sender does not hold
out=$(bounded 20 "$TC" lock-wait-as SYSZ NTSH 5) || fail "lock-wait-as: $out"
[ "$out" = "REFUSED EPERM" ] || fail "a wait forged for NTSH was not refused: $out"
pass "lock hand-off: arrival order, no polls, dead and timed-out waiters leave the queue, a dead grantee's class is released by its counterpart"
