#!/bin/bash
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT
TC=$CF_TCLIENT
# Events and console operations: SYS_FAILED/INST_FAILED pushed to live systems,
# POLICY_SET, RECOVER (accepted on a failed instance, refused otherwise).
start_cfserver --hb-timeout 600000 || fail "cfserver did not start"
start_bg a "$TC" hold SYSA NTSA; pa=$BG_PID
start_bg b "$TC" hold SYSB NTSB; pb=$BG_PID
wait_for 10 grep -q READY "$CF_WORK/a.log" || fail "SYSA not ready"
wait_for 10 grep -q READY "$CF_WORK/b.log" || fail "SYSB not ready"
sa=$(awk '/^READY/ {print $2}' "$CF_WORK/a.log")
sb=$(awk '/^READY/ {print $2}' "$CF_WORK/b.log")
out=$(bounded 10 "$TC" recover NTSB)
case "$out" in *"NTSB is ACTIVE (owner SYSB, epoch 1"*"not failed, nothing to recover"*) ;; *) fail "recover of an ACTIVE instance: $out" ;; esac
out=$(bounded 10 "$TC" recover NOSUCH)
case "$out" in -2*"no instance named NOSUCH"*) ;; *) fail "recover of an unknown instance: $out" ;; esac
out=$(bounded 10 "$TC" policy operator)
case "$out" in "0 policy operator policy=1") ;; *) fail "policy: $out" ;; esac
wait_for 5 grep -q "EVENT POLICY .* policy 1" "$CF_WORK/b.log" || fail "no POLICY event"
kill -KILL "$pa"
wait_for 5 grep -q "EVENT SYS_FAILED sys $sa epoch 1 .* cause 1" "$CF_WORK/b.log" || fail "no SYS_FAILED event"
wait_for 5 grep -q "EVENT INST_FAILED .* reg INACTIVE_FAILED/1" "$CF_WORK/b.log" || fail "no INST_FAILED event"
out=$(bounded 10 "$TC" recover NTSA SYSA)
case "$out" in *"SYSA is not an active, connected system"*) ;; *) fail "recover on a dead system: $out" ;; esac
out=$(bounded 10 "$TC" recover NTSA SYSB)
case "$out" in "0 $sb recovery of NTSA (incident 1) requested on SYSB") ;; *) fail "recover: $out" ;; esac
wait_for 5 grep -q "EVENT RECOVER sys $sb .* reg INACTIVE_FAILED/1" "$CF_WORK/b.log" || fail "no RECOVER event"
out=$(bounded 10 "$TC" policy 7)
case "$out" in -22*) ;; *) fail "bad policy accepted: $out" ;; esac
pass "events and console operations"
