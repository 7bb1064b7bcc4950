#!/usr/bin/env bash
# ASan+UBSan build of cfplex and its test suites (CI).
#
#   scripts/ci-sanitize.sh [BUILD_DIR]       default: build-asan
#
# Configures -Db_sanitize=address,undefined (reusing the directory when it
# exists), builds, and runs the unit suite; any sanitizer report fails the
# test that triggered it. Later suites (integration) are added below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-asan}

if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$ROOT" -Db_sanitize=address,undefined -Db_lundef=false -Dtests=true
else
  meson configure "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$BUILD"

# Any UB report aborts (so the test fails); leaks are errors too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}

meson test -C "$BUILD" --suite unit --print-errorlogs --timeout-multiplier 3
