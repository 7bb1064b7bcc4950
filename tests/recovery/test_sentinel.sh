#!/bin/bash
# SPDX-License-Identifier: MIT
# The sentinel (node/cf_sentinel.h): a SIGKILLed system is declared failed by
# the CF as it starts to die, not once the kernel has freed its memory and
# closed its sockets. SYS1 carries 768 MiB of ballast (a quarter of the
# available memory where that is less: 1/4 of the soft-RoCE rig's), whose freeing takes
# far longer than anything else on this path. The CF's declaration (fail_ns
# of the recovery) must come in the first quarter of the span from the kill to
# the end of SYS1's exit (wait returns; the sockets closed shortly before).
# Without the sentinel (CF_SENTINEL=off) it came at 72% of the span (43 of 61
# ms), with it at 2% (2 of 89 ms).
# The sentinel is the program started again, sharing no anonymous memory
# with its system (forked at JOIN, it shared 288 KiB of it).
# Then the counterpart's local fence confirms by every thread exiting
# (node/cf_fence.c), and the usual end state holds. The sentinel has a
# connection of its own and says DIED on it, over tcp and verbs alike; a
# sentinel that dies alone fails nobody.
. "$(dirname "$0")/lib.sh"
[ "$CF_HOSTS" = netns ] && skip "one host: the kill and the exit are timed here"
HB_TIMEOUT=${CF_TEST_T_MS:-2000} cluster # a long T: only the sentinel or the close can declare SYS1
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
ballast=$((avail_mib / 4 < 768 ? avail_mib / 4 : 768))
[ "$ballast" -ge 64 ] || skip "only $avail_mib MiB available: no room for a ballast whose exit takes long"
node SYS1 NTS001 --ballast "$ballast"
node SYS2 NTS002
wait_committing SYS1 SYS2
p1=$(pid_of SYS1)
[ -n "$(ls /proc/"$p1"/task 2>/dev/null)" ] || fail "SYS1 (pid $p1) is not running"
# The sentinel shares no memory with its system: it is the program started
# again, not a fork. A fork's child shares every anonymous page the system
# had (its session buffers: hundreds of KiB), and every first write of the
# system to one of them was a copy-on-write fault with a TLB shootdown.
p2=$(pid_of SYS2)
sen=$(pgrep -P "$p2" -x cf-sentinel | head -n 1)
[ -n "$sen" ] || fail "SYS2 (pid $p2) has no cf-sentinel child"
shared_kib=$(python3 - "$sen" <<'PY'
import sys
anon, total = False, 0
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    f = line.split()
    if "-" in f[0] and ":" not in f[0]:  # a mapping's first line: anonymous if no path, or [heap]/[stack]
        anon = len(f) < 6 or f[5].startswith("[heap") or f[5].startswith("[stack")
    elif anon and f[0] in ("Shared_Clean:", "Shared_Dirty:"):
        total += int(f[1])
print(total)
PY
)
echo "SYS2's sentinel (pid $sen) shares $shared_kib KiB of anonymous memory"
[ "$shared_kib" -eq 0 ] || fail "SYS2's sentinel shares $shared_kib KiB of anonymous memory with it (a fork)"
# each system's sentinel watches it on a connection of its own
wait_for 10 grep -q "SENTINEL: .* watches SYS1" "$CF_WORK/cfserver.log" || fail "SYS1 has no sentinel at the CF"
wait_for 10 grep -q "SENTINEL: .* watches SYS2" "$CF_WORK/cfserver.log" || fail "SYS2 has no sentinel at the CF"
# a sentinel that dies alone is no failure of its system
kill -KILL "$sen"
# the CF logs that line as it handles the close (cb_close), so SYS2's state is settled by then
wait_for 10 grep -q "the sentinel of SYS2 closed" "$CF_WORK/cfserver.log" || fail "the CF did not see SYS2's sentinel go"
cf_sys_is SYS2 "ACTIVE" || fail "SYS2 failed with its sentinel: $(cf_sys_state SYS2)"
t_kill=$(date +%s%N)
kill -KILL "$p1"
wait "$p1" 2>/dev/null
t_exit=$(date +%s%N)
wait_recovery NTS001
fail_ns=$(recoveries NTS001 | tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["fail_ns"])')
span=$((t_exit - t_kill))
early=$((fail_ns - t_kill))
echo "kill -> exit complete $((span / 1000)) us; kill -> declared $((early / 1000)) us"
[ "$early" -lt $((span / 4)) ] ||
	fail "declared $((early / 1000)) us after the kill, the exit took $((span / 1000)) us: not before the exit's end"
# declared by its sentinel's DIED, not by a connection's end
grep -q "DIED: the sentinel of SYS1 says its process is exiting" "$CF_WORK/cfserver.log" ||
	fail "SYS1's sentinel did not say DIED: $(grep -E "failure: SYS1 \\(" "$CF_WORK/cfserver.log")"
grep -q "failure: SYS1 (system [0-9]*, epoch [0-9]*): process exiting" "$CF_WORK/cfserver.log" ||
	fail "SYS1 not declared as process exiting: $(grep -E "failure: SYS1 \\(" "$CF_WORK/cfserver.log")"
# the fence ran while SYS1's memory was still being freed: confirmed by the flag, not by the exit
grep -q "disk fence: SYS1 (pid $p1) .*exit confirmed (every thread exiting)" "$CF_WORK/SYS2.log" ||
	fail "fence not confirmed by every thread exiting: $(grep "disk fence: SYS1" "$CF_WORK/SYS2.log")"
finish
pass "SYS1 declared $((early / 1000)) us after its SIGKILL, its exit took $((span / 1000)) us; recovered"
