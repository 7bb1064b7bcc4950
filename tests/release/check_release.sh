#!/usr/bin/env bash
# check_release.sh BUILD_DIR: the programs of a release build ignore CF_FAULT.
#
# A fault point fires only where CF_FAULT() was compiled in (-Dfault-injection=true): its
# name is a string literal at the call and cf_fault_point() is a symbol. So a binary without
# either cannot react to CF_FAULT. Checked on cfserver, cfnode, cfctl and libcfnode; then each
# program is run with CF_FAULT naming every point and must behave as without it, silently.
# Run by 'make release' / 'make install' before installing, and by tests/release/test_release_build.sh.
set -euo pipefail
B=${1:?usage: check_release.sh BUILD_DIR}
POINTS=$(dirname "$0")/../fault/points.txt
fail() { echo "check_release: $*" >&2; exit 1; }

bins=("$B/cfserver/cfserver" "$B/node/cfnode")
for f in "$B/node/cfctl" "$B"/node/libcfnode.so.*.*.*; do [ -f "$f" ] && bins+=("$f"); done
for f in "${bins[@]}"; do
	[ -x "$f" ] || [ -f "$f" ] || fail "$f: not built"
	syms=$({ nm -a "$f"; nm -D "$f"; } 2>/dev/null || true)
	if grep -q cf_fault_point <<<"$syms"; then
		fail "$f: has cf_fault_point (built with -Dfault-injection=true)"
	fi
	while read -r p; do
		case $p in '' | \#*) continue ;; esac
		if grep -qaF -- "$p" "$f"; then fail "$f: fault point $p is compiled in"; fi
	done <"$POINTS"
	# the power-loss emulation of the CF image (cf_image.c) is a test aid too
	if grep -qaF -- CF_FAULT_POWERLOSS "$f"; then fail "$f: the power-loss emulation is compiled in"; fi
done

# Behaviour: every point armed (kill, no skip), the log of firings on; --version must exit 0
# and print no cf-fault line.
while read -r p; do
	case $p in '' | \#*) continue ;; esac
	for prog in "$B/cfserver/cfserver" "$B/node/cfnode"; do
		out=$(CF_FAULT="$p:kill" CF_FAULT_LOG=1 "$prog" --version 2>&1) || fail "$prog --version with CF_FAULT=$p:kill: exit $?"
		case $out in *cf-fault*) fail "$prog reacts to CF_FAULT=$p: $out" ;; esac
	done
done <"$POINTS"
echo "check_release: $B: no fault points in ${#bins[@]} binaries; CF_FAULT ignored"
