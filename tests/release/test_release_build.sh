#!/usr/bin/env bash
# The installed build ignores CF_FAULT: configure a release build the way
# 'make install' does (buildtype release, fault injection at its default, off), build
# cfserver, cfnode, cfctl and libcfnode into a temporary directory and run check_release.sh
# on it, then ignores_fault.sh on its programs. Suite 'release' (about 20 s of CPU for the
# build): not part of make test.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cfplex-release.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
meson setup "$T/b" "$SRC" --buildtype=release -Dtests=false -Dsystemd=false >"$T/setup.log" 2>&1 ||
	{ cat "$T/setup.log" >&2; exit 1; }
lib=$(ninja -C "$T/b" -t targets all | sed -n 's,^\(node/libcfnode\.so\.[0-9.]*[0-9]\): c_LINKER,\1,p')
ninja -C "$T/b" cfserver/cfserver node/cfnode node/cfctl $lib >"$T/ninja.log" 2>&1 ||
	{ tail -n 40 "$T/ninja.log" >&2; exit 1; }
bash "$SRC/tests/release/check_release.sh" "$T/b"
# and by behaviour: a cluster of these programs with CF_FAULT armed everywhere (CF_TCLIENT,
# a test tool, comes from the test build)
CFSERVER=$T/b/cfserver/cfserver CFNODE=$T/b/node/cfnode CFCTL=$T/b/node/cfctl CF_TRANSPORT=tcp \
	bash "$SRC/tests/release/ignores_fault.sh"
