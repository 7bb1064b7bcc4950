#!/bin/bash
# SPDX-License-Identifier: MIT
# Readiness for systemd (Type=notify): cfserver sends READY=1 to $NOTIFY_SOCKET
# once it listens (a duplexed secondary once its copy is in sync), cfnode once it has joined
# and its instance is ACTIVE; both
# ignore an unset NOTIFY_SOCKET (every other test).
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CFNODE CFCTL
command -v python3 >/dev/null || skip "python3 missing"

# listen SOCK OUT: a datagram socket that writes what it receives to OUT
listen() {
	start_bg "notify-$(basename "$1")" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".up", "w").close()
s.settimeout(300)
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode() + "\n"); f.flush()' "$1" "$2"
	wait_for 30 test -e "$2.up" || fail "notify listener did not start"
}
ready() { grep -qx "READY=1" "$1"; }

listen "$CF_WORK/srv.sock" "$CF_WORK/srv.notify"
NOTIFY_SOCKET=$CF_WORK/srv.sock start_cfserver --hb-interval 5 --hb-timeout 1000 || fail "cfserver did not start"
wait_for 30 ready "$CF_WORK/srv.notify" || fail "cfserver sent no READY=1: $(cat "$CF_WORK/srv.notify")"

"$CFCTL" mkdata --data "$CF_WORK/data" --accounts 10 --balance 10 >/dev/null || fail "mkdata"
listen "$CF_WORK/node.sock" "$CF_WORK/node.notify"
NOTIFY_SOCKET=$CF_WORK/node.sock cf_node SYS1 SYS1 NTS001
wait_for 30 ready "$CF_WORK/node.notify" || fail "cfnode sent no READY=1: $(cat "$CF_WORK/node.notify")"
grep -q "instance NTS001 (#0) is ACTIVE here" "$CF_WORK/SYS1.log" || fail "READY=1 before the instance was ACTIVE"

# a duplexed secondary does not listen until it takes over, yet it is a started service once
# its copy is in sync: READY=1 then, with a STATUS naming its primary (a unit's start
# timeout would otherwise restart every secondary)
link_port=$(free_port)
start_cfserver P -- --duplex-listen "$CF_HOST:$link_port" --hb-timeout 600000 || fail "primary did not start"
listen "$CF_WORK/sec.sock" "$CF_WORK/sec.notify"
NOTIFY_SOCKET=$CF_WORK/sec.sock start_bg S "$CFSERVER" --listen "$CF_HOST:0" --cluster-key "$CF_KEYFILE" \
	--transport "$CF_TRANSPORT" --duplex-with "$CF_HOST:$link_port" --hb-timeout 600000
wait_for 60 ready "$CF_WORK/sec.notify" || fail "the secondary sent no READY=1: $(cat "$CF_WORK/sec.notify")"
grep -q "in sync with the primary" "$CF_WORK/S.log" || fail "the secondary's READY=1 came before it was in sync"
grep -q "^STATUS=secondary of .*in sync" "$CF_WORK/sec.notify" || fail "no STATUS for the secondary: $(cat "$CF_WORK/sec.notify")"
grep -q "^STATUS=serving on" "$CF_WORK/srv.notify" || fail "no STATUS for the CF: $(cat "$CF_WORK/srv.notify")"
pass "cfserver (single and duplexed secondary) and cfnode notify readiness"
