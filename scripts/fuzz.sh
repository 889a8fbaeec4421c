#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, ASan and UBSan in
# build-fuzz, then fuzzes each one for a bounded time, starting from a temp
# copy of its committed seed corpus (tests/fuzz/corpus/NAME) so runs never
# dirty the tree. Exits non-zero when any target finds a crash, a sanitizer
# report, a failed FUZZ_CHECK, a timeout or an out-of-memory; the input is
# saved as build-fuzz/fuzz-artifacts/NAME/crash-... and the command that
# replays it is printed.
#
#   scripts/fuzz.sh                     every target, 20 s each
#   scripts/fuzz.sh json config         some targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh    longer
#   FUZZ_MERGE=1 scripts/fuzz.sh        afterwards, add the inputs that found
#                                       new coverage to tests/fuzz/corpus
#   FUZZ_SEED=N scripts/fuzz.sh         libFuzzer's -seed (random by default;
#                                       1 under CI, so a CI result belongs to
#                                       the commit and replays with its seed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
FUZZ_SEED="${FUZZ_SEED:-}"
if [ -z "$FUZZ_SEED" ] && [ -n "${CI:-}" ]; then FUZZ_SEED=1; fi
JOBS="${JOBS:-2}"
BUILD_DIR=build-fuzz
ALL_TARGETS=(icmp_packet icmp_prober config json query http_gateway history_blob)
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then targets=("${ALL_TARGETS[@]}"); fi

scripts/setup.sh

SANITIZERS="address,undefined"
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLATENCY_FUZZ=ON
            -DLATENCY_SANITIZE="$SANITIZERS")
if command -v ccache >/dev/null; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$ROOT"
fi
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"

start=$SECONDS
echo "== build ($BUILD_DIR)"
CXX=clang++ cmake -S . -B "$BUILD_DIR" "${cmake_args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]/%/_fuzzer}"
build_seconds=$((SECONDS - start))

work="$(mktemp -d "${TMPDIR:-/tmp}/latency-fuzz.XXXXXX")"
failed=()
summary=()
for name in "${targets[@]}"; do
  binary="$BUILD_DIR/tests/fuzz/${name}_fuzzer"
  corpus="$work/$name"
  artifacts="$ROOT/$BUILD_DIR/fuzz-artifacts/$name/"
  log="$ROOT/$BUILD_DIR/fuzz-logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp tests/fuzz/corpus/"$name"/* "$corpus"/
  flags=(-max_total_time="$FUZZ_SECONDS" -timeout=5 -rss_limit_mb=2048
         -print_final_stats=1 -artifact_prefix="$artifacts")
  dict="$ROOT/tests/fuzz/${name}_fuzzer.dict"
  if [ -f "$dict" ]; then flags+=(-dict="$dict"); fi
  if [ -n "$FUZZ_SEED" ]; then flags+=(-seed="$FUZZ_SEED"); fi
  echo "== fuzz $name (${FUZZ_SECONDS}s)"
  status=0
  (cd "$work" && TMPDIR="$work" "$ROOT/$binary" "${flags[@]}" "$corpus") \
    >"$log" 2>&1 || status=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
    grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
  units="$(find "$corpus" -type f | wc -l)"
  line="$(printf '%-13s %8s runs  %-10s corpus %4d' "$name" "$runs" \
    "${cov:-cov: ?}" "$units")"
  if [ "$status" -ne 0 ]; then
    failed+=("$name")
    summary+=("$line  FAILED")
    echo "---- $name failed (log: $log); last lines:"
    tail -40 "$log"
    for crash in "$artifacts"*; do
      [ -f "$crash" ] && echo "replay: $binary $crash"
    done
  else
    summary+=("$line  ok")
    if [ "${FUZZ_MERGE:-}" = 1 ]; then
      "$ROOT/$binary" -merge=1 "$ROOT/tests/fuzz/corpus/$name" "$corpus" \
        >>"$log" 2>&1
    fi
  fi
done
rm -rf "$work"

echo "== summary (build ${build_seconds}s, fuzzing $((SECONDS - start - build_seconds))s)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all targets ran ${FUZZ_SECONDS}s without findings"
