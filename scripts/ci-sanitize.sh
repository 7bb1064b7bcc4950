#!/usr/bin/env bash
# Sanitizer builds of cfplex and their test runs (CI).
#
#   scripts/ci-sanitize.sh [asan|tsan] [BUILD_DIR]
#
# asan (default): -Db_sanitize=address,undefined in build-asan; runs the unit
#   suite and the integration suite (real cfserver/cfnode processes, every one
#   of them instrumented). Any sanitizer report aborts the process, so the test
#   that triggered it fails.
# tsan: -Db_sanitize=thread in build-tsan; runs the tests whose processes are
#   multi-threaded (cfnode: agent loop, heartbeat thread, workload thread).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-asan}
case $MODE in
  asan) SAN=address,undefined ;;
  tsan) SAN=thread ;;
  *) echo "usage: $0 [asan|tsan] [BUILD_DIR]" >&2; exit 2 ;;
esac
BUILD=${2:-$ROOT/build-$MODE}

if [ ! -f "$BUILD/build.ninja" ]; then
  # fault points on: the recovery tests of the integration suite fire them (CF_FAULT)
  meson setup "$BUILD" "$ROOT" -Db_sanitize=$SAN -Db_lundef=false -Dtests=true -Dfault-injection=true >/dev/null
else
  meson configure "$BUILD" -Db_sanitize=$SAN -Db_lundef=false -Dfault-injection=true
fi
ninja -C "$BUILD"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
# TSan: a report makes the process exit 66, which fails its test.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1}

if [ "$MODE" = asan ]; then
  meson test -C "$BUILD" --suite unit --suite integration --suite security --print-errorlogs --timeout-multiplier 3 \
    --num-processes 2
else
  meson test -C "$BUILD" --print-errorlogs --timeout-multiplier 4 --num-processes 1 \
    node_bank3 node_wait_active recovery_claim2_auto_recovery recovery_zombie_lease gcommit persist_answer \
    node_persist_bank duplex_cli duplex_pair example_kv_switch
fi
