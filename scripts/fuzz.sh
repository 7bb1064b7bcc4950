#!/usr/bin/env bash
# Run each libFuzzer target of tests/fuzz for a bounded time (default 60 s).
#
#   scripts/fuzz.sh [-t SECONDS] [-m] [TARGET...]  targets: frame ctrl logrec logscan header image key
#
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
usage() { echo "usage: $0 [-t SECONDS] [-m] [TARGET...]   (targets: ${ALL[*]})" >&2; exit 2; }
while getopts "t:mh" o; do
  case $o in
    t) SECS=$OPTARG ;;
    m) MERGE=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
[[ $SECS =~ ^[0-9]+$ ]] && [ "$SECS" -gt 0 ] || usage
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown target $t" >&2; usage; }
done
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/deps.sh --fuzz)" >&2; exit 1; }

FLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
       -std=gnu11 -D_GNU_SOURCE -I"$ROOT/proto")
# The meson build (tests/fuzz/meson.build) is the normal way; when the rest of
# the tree does not configure or build at the moment, compile the targets
# directly with the same flags, so fuzzing never depends on unrelated code.
build_direct() {
  echo "fuzz: meson build unavailable, compiling the targets directly" >&2
  mkdir -p "$BUILD/tests/fuzz"
  for t in "${TARGETS[@]}"; do
    extra=()
    [ "$t" = logscan ] && extra=(-I"$ROOT/node" "$ROOT/node/cf_log.c" "$ROOT/tests/unit/session_stub.c")
    [ "$t" = image ] && extra=(-I"$ROOT/cfserver" "$ROOT/cfserver/cf_image.c" -lpmem2)
    clang "${FLAGS[@]}" -o "$BUILD/tests/fuzz/fuzz_$t" "$ROOT/tests/fuzz/fuzz_$t.c" "${extra[@]}" \
      "$ROOT"/proto/*.c -lz -lsodium
  done
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

fail=0
summary=()
for t in "${TARGETS[@]}"; do
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
    fail=1
    echo "fuzz: $t FAILED (exit $rc); inputs kept in $regress:" >&2
    ls -1 "$regress" >&2 || true
    grep -m5 -E 'ERROR|assertion|runtime error|SUMMARY' "$log" >&2 || true
    summary+=("$(printf '%-8s FAILED  executions=%s  execs/s=%s  cov=%s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
  else
    summary+=("$(printf '%-8s ok      executions=%s  execs/s=%s  cov=%s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
    if [ $MERGE -eq 1 ]; then
      "$BUILD/tests/fuzz/fuzz_$t" -merge=1 -max_len="$(max_len "$t")" "$ROOT/tests/fuzz/corpus/$t" "$work" \
        >>"$log" 2>&1 || echo "fuzz: merging $t's corpus failed (see $log)" >&2
    fi
  fi
done
printf '%s\n' "${summary[@]}"
exit $fail
