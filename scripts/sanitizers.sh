#!/usr/bin/env bash
# Sanitizer builds with clang, each in its own folder:
#   build-asan  ASan + UBSan (+ LeakSanitizer): every unit and integration
#               test, the fuzz corpus replays and the binaries they start
#   build-tsan  ThreadSanitizer: the tests that run threads against each
#               other (prober, store and Watch under queries via the
#               in-process and binary servers, echo streams, fault load,
#               certificate/token reloads under TLS traffic, the HTTP
#               gateway's event loop and workers)
# Any sanitizer report fails its test (halt_on_error); the script exits
# non-zero when any phase fails, after printing per-phase timings.
#
#   scripts/sanitizers.sh              both
#   scripts/sanitizers.sh asan         one of them (asan | tsan)
#   JOBS=2 CTEST_JOBS=2 scripts/sanitizers.sh
#
# Not run here, on purpose: the e2e label (network namespaces and timing
# accuracy against ping: sanitizer slowdown breaks the accuracy bounds,
# not the code), the compose label (builds and runs its own containers,
# nothing from these build folders), and
# FaultTest.TenThousandMalformedHttpRequests, whose RSS bound measures the
# allocator (ASan's quarantine holds freed memory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

JOBS="${JOBS:-2}"
CTEST_JOBS="${CTEST_JOBS:-2}"
phases=("$@")
if [ "${#phases[@]}" -eq 0 ]; then phases=(asan tsan); fi

scripts/setup.sh

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if command -v ccache >/dev/null; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$ROOT"
fi

# Suppressions cover third-party code only (see the files). Every process
# (tests and the binaries they start) writes its reports to
# BUILD/sanitizer-logs/, which the script prints: a subprocess's report
# can otherwise vanish into a test's captured output.
common_options="halt_on_error=1:print_suppressions=0"
ASAN_BASE="$common_options:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
UBSAN_BASE="$common_options:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
TSAN_BASE="$common_options:second_deadlock_stack=1:suppressions=$ROOT/scripts/tsan.supp"

timings=()
failed=()
# run_phase NAME COMMAND...: runs it, records its time and whether it failed.
run_phase() {
  local name="$1" start=$SECONDS status=0
  shift
  echo "== $name"
  "$@" || status=$?
  timings+=("$(printf '%-14s %4ds %s' "$name" $((SECONDS - start)) \
    "$([ "$status" -eq 0 ] && echo ok || echo "FAILED ($status)")")")
  if [ "$status" -ne 0 ]; then failed+=("$name"); fi
  return 0
}

# build DIR SANITIZERS [TARGET...]: configure and build (everything when no
# target is named). Steps are chained with && because run_phase calls it
# from an || list, where set -e does not apply.
build() {
  local dir="$1" sanitizers="$2"
  shift 2
  local targets=()
  if [ "$#" -gt 0 ]; then targets=(--target "$@"); fi
  CXX=clang++ cmake -S . -B "$dir" "${cmake_args[@]}" \
    -DLATENCY_SANITIZE="$sanitizers" >/dev/null &&
    cmake --build "$dir" -j"$JOBS" "${targets[@]}"
}

# sanitizer_ctest DIR CTEST_ARGS...: runs ctest with each sanitizer's
# log_path under DIR/sanitizer-logs; fails when ctest fails or any process
# left a report there. Results go to DIR/junit-sanitizer.xml, which
# scripts/test.sh hands to scripts/check-skips.py like the main runs'.
sanitizer_ctest() {
  local dir="$1" logs="$ROOT/$1/sanitizer-logs" status=0
  shift
  rm -rf "$logs"
  mkdir -p "$logs"
  ASAN_OPTIONS="$ASAN_BASE:log_path=$logs/asan" \
    UBSAN_OPTIONS="$UBSAN_BASE:log_path=$logs/ubsan" \
    TSAN_OPTIONS="$TSAN_BASE:log_path=$logs/tsan" \
    ctest --test-dir "$dir" --output-on-failure -j"$CTEST_JOBS" \
    --output-junit "$ROOT/$dir/junit-sanitizer.xml" "$@" ||
    status=$?
  if [ -n "$(ls -A "$logs")" ]; then
    echo "---- sanitizer reports ($logs):"
    cat "$logs"/*
    status=1
  fi
  return "$status"
}

# The concurrency-relevant test binaries (ctest labels = binary names).
TSAN_BINARIES=(api_test store_test history_test history_binary_test prober_test server_probing_test server_clients_test agent_test
               cli_test fault_test reload_test tls_auth_test
               tls_auth_binary_test)
EXCLUDED='TenThousandMalformedHttpRequests'

for phase in "${phases[@]}"; do
  case "$phase" in
    asan)
      run_phase asan-build build build-asan address,undefined
      if [[ " ${failed[*]} " != *" asan-build "* ]]; then
        # Not the browser test (web): it bounds page load times, and the
        # gateway's dashboard routes run under ASan in api_test.
        run_phase asan-test sanitizer_ctest build-asan -LE '^(e2e|compose|web)$' \
          -E "$EXCLUDED"
      fi
      ;;
    tsan)
      run_phase tsan-build build build-tsan thread "${TSAN_BINARIES[@]}" \
        latency_tsan_absl
      if [[ " ${failed[*]} " != *" tsan-build "* ]]; then
        # Abseil's locks made visible to TSan: tests/testing/tsan_absl_annotations.cc
        LD_PRELOAD="$ROOT/build-tsan/tests/liblatency_tsan_absl.so" \
          run_phase tsan-test sanitizer_ctest build-tsan \
          -L "^($(IFS='|'; echo "${TSAN_BINARIES[*]}"))\$" -E "$EXCLUDED"
      fi
      ;;
    *)
      echo "unknown phase '$phase' (want asan or tsan)" >&2
      exit 2
      ;;
  esac
done

echo "== timings"
printf '%s\n' "${timings[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "sanitizers: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sanitizers: all passed"
