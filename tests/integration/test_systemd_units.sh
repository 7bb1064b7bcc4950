#!/bin/bash
# SPDX-License-Identifier: MIT
# The systemd units of dist/systemd, as configured by meson: systemd-analyze
# verify accepts them without a warning (77 where systemd-analyze is missing),
# and they carry what the programs need (readiness, restart policy, limits).
. "$(dirname "$0")/../lib/harness.sh"
require_bin CFSERVER CFNODE
[ -n "${CF_UNITS_DIR:-}" ] && [ -n "${CF_UNITS_BINDIR:-}" ] || skip "CF_UNITS_DIR/CF_UNITS_BINDIR unset (run under meson test)"
command -v systemd-analyze >/dev/null || skip "no systemd-analyze on this machine"
d=$CF_WORK/units
mkdir -p "$d"
# the units name the installed binaries; verify checks that they are executable:
# point them at the built ones
sed "s|$CF_UNITS_BINDIR/cfserver|$CFSERVER|" "$CF_UNITS_DIR/cfserver.service" >"$d/cfserver.service"
sed "s|$CF_UNITS_BINDIR/cfnode|$CFNODE|" "$CF_UNITS_DIR/cfnode@.service" >"$d/cfnode@.service"
grep -q "ExecStart=$CFSERVER " "$d/cfserver.service" || fail "cfserver.service does not start $CF_UNITS_BINDIR/cfserver"
grep -q "ExecStart=$CFNODE " "$d/cfnode@.service" || fail "cfnode@.service does not start $CF_UNITS_BINDIR/cfnode"
for u in cfserver.service cfnode@SYS1.service; do
	out=$(cd "$d" && bounded 60 systemd-analyze verify --man=no "./$u" 2>&1) || fail "systemd-analyze verify $u: $out"
	# unknown keys and unparsable values are only warnings for systemd: not here
	[ -z "$out" ] || fail "systemd-analyze verify $u warns: $out"
done
# what the programs need of their supervisor
for u in cfserver.service cfnode@.service; do
	for kv in Type=notify Restart=on-failure LimitMEMLOCK=infinity LimitRTPRIO=10; do
		grep -qx "$kv" "$d/$u" || fail "$u lacks $kv"
	done
done
grep -qx "RestartPreventExitStatus=2 3 77" "$d/cfserver.service" || fail "cfserver.service: exit 2/3/77 must not restart"
grep -qx "RestartPreventExitStatus=2 77 78" "$d/cfnode@.service" || fail "cfnode@.service: exit 2/77/78 must not restart"
grep -qx "TimeoutStartSec=infinity" "$d/cfserver.service" || fail "cfserver.service: a waiting secondary must not time out its start"
grep -q "^EnvironmentFile=/etc/cfplex/cfnode-%i.conf" "$d/cfnode@.service" || fail "cfnode@.service: no per-instance EnvironmentFile"
pass "systemd-analyze verify accepts cfserver.service and cfnode@.service"
