#!/bin/bash
# SPDX-License-Identifier: MIT
# The watchdog fence across hosts (sbd-style): SYS2 runs on another
# host (own UTS namespace) with --watchdog on a FIFO read by the stand-in
# (wd_standin.py), petted while its lease holds, announced to the CF. SYS2 is
# frozen (SIGSTOP): it stops petting, the stand-in kills it, and the
# counterpart, which cannot fence another host itself, waits out T/2 +
# watchdog + margin in its own phase (watchdog-wait) and then recovers by
# itself. A clean leave disarms the watchdog (magic close). Bad watchdog
# options are refused.
. "$(dirname "$0")/lib.sh"
have_uts || skip "no UTS namespaces here (unshare --uts needs root)"
HB_TIMEOUT=${CF_TEST_T_MS:-200} cluster
STANDIN=$(dirname "$0")/wd_standin.py
WD_MS=1000

# bad inputs: clear errors, nothing joins
out=$("$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --system SYSX --instance NTSX --data "$DATA" \
	--watchdog-timeout 5 2>&1); [ $? -eq 2 ] || fail "--watchdog-timeout 5 accepted: $out"
mkfifo "$CF_WORK/nobody.fifo"
out=$(bounded 20 "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --system SYSX \
	--instance NTSX --data "$DATA" --watchdog "$CF_WORK/nobody.fifo" --workload none 2>&1) &&
	fail "a FIFO nobody reads accepted: $out"
grep -q "nobody reads" <<<"$out" || fail "unclear error: $out"
: >"$CF_WORK/plain"
out=$(bounded 20 "$CFNODE" --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --system SYSX \
	--instance NTSX --data "$DATA" --watchdog "$CF_WORK/plain" --workload none 2>&1) &&
	fail "a plain file accepted as a watchdog: $out"
cf_ctl status --json | grep -q '"NTSX"' && fail "a refused system opened its instance"

start_bg wd2 "$STANDIN" "$CF_WORK/wd2.fifo" "$WD_MS" "$CF_WORK/SYS2.pid"
WD2=$BG_PID
start_bg wd3 "$STANDIN" "$CF_WORK/wd3.fifo" "$WD_MS" "$CF_WORK/SYS3.pid"
WD3=$BG_PID
wait_for 30 test -p "$CF_WORK/wd2.fifo" -a -p "$CF_WORK/wd3.fifo" || fail "stand-ins did not start"
sleep 0.3 # the stand-ins open their FIFOs right after creating them

node SYS1 NTS001 --fence-agent auto --fence-wd-margin 500
node_host hostB SYS2 NTS002 --watchdog "$CF_WORK/wd2.fifo" --watchdog-timeout "$WD_MS"
echo "$(pid_of SYS2)" >"$CF_WORK/SYS2.pid"
node SYS3 NTS003 --watchdog "$CF_WORK/wd3.fifo" --watchdog-timeout "$WD_MS"
echo "$(pid_of SYS3)" >"$CF_WORK/SYS3.pid"
wait_committing SYS1 SYS2 SYS3
[ "$(cf_status_field sys SYS2 watchdog_ms)" = "$WD_MS" ] ||
	fail "SYS2's watchdog not announced to the CF"
grep -q "armed" "$CF_WORK/wd2.log" || fail "SYS2 does not pet its watchdog"

# a clean leave disarms (magic close): the stand-in exits 0, nobody killed
kill -TERM "$(pid_of SYS3)"
wait_for 20 gone "$WD3" || fail "SYS3's stand-in still running after its clean leave"
wait "$WD3"; [ $? -eq 0 ] || fail "SYS3's stand-in did not see the magic close: $(cat "$CF_WORK/wd3.log")"
grep -q "magic close: disarmed" "$CF_WORK/wd3.log" || fail "no magic close"

# SYS2 freezes: no pet, the stand-in kills it; the counterpart waits out the watchdog
kill -STOP "$(pid_of SYS2)"
wait_recovery NTS002 1 40
[ "$(counterpart_of NTS002 1)" = SYS1 ] || fail "NTS002 recovered by $(counterpart_of NTS002 1)"
grep -q "firing, killing \[$(pid_of SYS2)\]" "$CF_WORK/wd2.log" || fail "the stand-in did not fire: $(cat "$CF_WORK/wd2.log")"
wait_for 10 gone "$(pid_of SYS2)" || fail "SYS2 still alive"
grep -q "recovery NTS002: watchdog wait over: SYS2 (watchdog $WD_MS ms)" "$CF_WORK/SYS1.log" ||
	fail "the watchdog wait is not logged"
# the watchdog fired before the counterpart proceeded (same clock, same format)
fired=$(grep -o '^[0-9TZ:.-]* wd-standin: no pet' "$CF_WORK/wd2.log" | cut -d' ' -f1)
over=$(grep -o '^[0-9TZ:.-]* cfnode\[SYS1\] warning: recovery NTS002: watchdog wait over' "$CF_WORK/SYS1.log" | cut -d' ' -f1)
[[ "$fired" < "$over" ]] || fail "the counterpart proceeded ($over) before the watchdog fired ($fired)"
# its own phase in the timings, at least T/2 + watchdog long (minus what the detection took)
wd_us=$(recoveries NTS002 1 | python3 -c 'import json,sys; print(int(json.loads(sys.stdin.read())["watchdog-wait_us"]))')
[ "$wd_us" -ge $((WD_MS * 1000)) ] || fail "watchdog-wait phase only $wd_us us"
wait_inst NTS002 INACTIVE_CLEAN
[ "$(locks_of NTS002)" -eq 0 ] || fail "NTS002 still holds locks"
[ "$(rec_field NTS002 fence_wait)" = watchdog-expired ] || fail "fence_wait $(rec_field NTS002 fence_wait)"
finish
pass "watchdog fence: frozen cross-host system killed by its watchdog, recovered after lease + watchdog, clean leave disarms"
