#!/usr/bin/env bash
# Run each libFuzzer target of tests/fuzz for a bounded time (default 60 s).
#
#   scripts/fuzz.sh [-t SECONDS] [-j JOBS] [-m] [TARGET...]  targets: frame ctrl logrec logscan header image key
#
# -j runs that many targets at a time (default: the number of CPUs, at most 4); each fuzzer
# is one process on one CPU, so each still gets its SECONDS of a whole CPU.
# -m merges the inputs that reached new coverage into the checked-in corpus
# (tests/fuzz/corpus/<target>/), so the unit suite's replay covers them too.
#
# Builds the targets with clang in build-fuzz (-Dfuzz=true), seeds each run
# from tests/fuzz/corpus/<target>/ and replays tests/fuzz/regress/<target>/
# first. A crash, leak, timeout or OOM input is kept in
# tests/fuzz/regress/<target>/ (commit it: the unit suite replays it in every
# build) and the script fails. Prints executions and execs/s per target.
# Needs clang and libclang-rt-14-dev (scripts/deps.sh --fuzz).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECS=${FUZZ_TIME:-60}
ALL=(frame ctrl logrec logscan header image key)

MERGE=0
JOBS=$(nproc 2>/dev/null || echo 1)
[ "$JOBS" -gt 4 ] && JOBS=4
usage() { echo "usage: $0 [-t SECONDS] [-j JOBS] [-m] [TARGET...]   (targets: ${ALL[*]})" >&2; exit 2; }
while getopts "t:j:mh" o; do
  case $o in
    t) SECS=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    m) MERGE=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || usage
[[ $JOBS =~ ^[0-9]+$ ]] && [ "$JOBS" -gt 0 ] || usage
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown target $t" >&2; usage; }
done
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/deps.sh --fuzz)" >&2; exit 1; }

FLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
       -std=gnu11 -D_GNU_SOURCE -I"$ROOT/proto" -I"$ROOT/common")
# The meson build (tests/fuzz/meson.build) is the normal way; when the rest of
# the tree does not configure or build at the moment, compile the targets
# directly with the same flags, so fuzzing never depends on unrelated code.
build_direct() {
  echo "fuzz: meson build unavailable, compiling the targets directly" >&2
  mkdir -p "$BUILD/tests/fuzz"
  local pids=() t pid rc=0
  for t in "${TARGETS[@]}"; do
    extra=()
    [ "$t" = logscan ] && extra=(-I"$ROOT/node" "$ROOT/node/cf_log.c" "$ROOT/tests/unit/session_stub.c")
    [ "$t" = image ] && extra=(-I"$ROOT/cfserver" "$ROOT/cfserver/cf_image.c" -lpmem2)
    clang "${FLAGS[@]}" -o "$BUILD/tests/fuzz/fuzz_$t" "$ROOT/tests/fuzz/fuzz_$t.c" "${extra[@]}" \
      "$ROOT"/proto/*.c "$ROOT"/common/*.c -lz -lsodium &
    pids+=($!)
    # JOBS compilers at a time
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || rc=1; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}
if { [ -f "$BUILD/build.ninja" ] || CC=clang meson setup "$BUILD" "$ROOT" -Dfuzz=true -Dtests=true >/dev/null 2>&1; } &&
   ninja -C "$BUILD" $(printf 'tests/fuzz/fuzz_%s ' "${TARGETS[@]}") >/dev/null 2>&1; then
  :
else
  build_direct
fi

max_len() {
  case $1 in
    frame) echo 70000 ;;  # room for a frame above CF_FRAME_MAX
    ctrl) echo 8192 ;;
    logrec|logscan) echo 16384 ;;
    header) echo 4200 ;;
    image) echo 8192 ;;
    key) echo 512 ;;
  esac
}

# fuzz_one TARGET: one target's run; its summary line in $BUILD/fuzz-TARGET.summary, exit 1 if it failed
fuzz_one() {
  local t=$1 work regress log inputs rc execs rate cov
  work="$BUILD/fuzz-corpus/$t"
  regress="$ROOT/tests/fuzz/regress/$t"
  log="$BUILD/fuzz-$t.log"
  mkdir -p "$work" "$regress"
  cp -n "$ROOT/tests/fuzz/corpus/$t"/* "$work"/ 2>/dev/null || true
  inputs=("$work")
  # kept regression inputs are replayed before fuzzing starts
  compgen -G "$regress/*" >/dev/null && inputs+=("$regress")
  echo "fuzz: $t for ${SECS}s (log $log)"
  rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    timeout --kill-after=10 $((SECS + 120)) \
    "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -print_final_stats=1 -timeout=10 \
      -rss_limit_mb=2048 -max_len="$(max_len "$t")" -artifact_prefix="$regress/" \
      "${inputs[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); inputs kept in $regress:" >&2
    ls -1 "$regress" >&2 || true
    grep -m5 -E 'ERROR|assertion|runtime error|SUMMARY' "$log" >&2 || true
    printf '%-8s FAILED  executions=%s  execs/s=%s  cov=%s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" >"$BUILD/fuzz-$t.summary"
    return 1
  fi
  printf '%-8s ok      executions=%s  execs/s=%s  cov=%s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" >"$BUILD/fuzz-$t.summary"
  if [ $MERGE -eq 1 ]; then
    "$BUILD/tests/fuzz/fuzz_$t" -merge=1 -max_len="$(max_len "$t")" "$ROOT/tests/fuzz/corpus/$t" "$work" \
      >>"$log" 2>&1 || echo "fuzz: merging $t's corpus failed (see $log)" >&2
  fi
  return 0
}

# JOBS targets at a time, each in the background; a failure fails the run once all are done
fail=0
pids=()
for t in "${TARGETS[@]}"; do
  rm -f "$BUILD/fuzz-$t.summary"
  fuzz_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
for t in "${TARGETS[@]}"; do
  cat "$BUILD/fuzz-$t.summary" 2>/dev/null || printf '%-8s FAILED  (no summary)\n' "$t"
done
exit $fail
