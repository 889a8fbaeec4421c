#!/usr/bin/env bash
# Proves the benchmark scripts still run: each bench/run_*.sh and
# history_bench briefly (SMOKE=1; run_loopback.sh with COUNT=200
# SPACED_COUNT=20), its table on stdout, its log on stderr only when it
# fails. Exits 1 when any script fails, times out (SMOKE_TIMEOUT seconds
# each, default 180) or prints no table. The figures are too few to judge
# budgets; BENCHMARKS.md has the real runs. About 1.5 minutes; needs root (network namespaces), the build
# (with the bench targets, including query_load), wrk, fping and
# prometheus-blackbox-exporter (scripts/setup.sh).
#
#   bench/smoke.sh [BUILD_DIR]     (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
LIMIT="${SMOKE_TIMEOUT:-180}"
export LATENCY_BUILD_DIR="$BUILD_DIR"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

failed=()
run() { # NAME COMMAND...
  local name=$1 rc=0 start=$SECONDS
  shift
  echo "== $name"
  timeout --kill-after=30 "$LIMIT" "$@" >"$logs/$name.out" 2>"$logs/$name.err" || rc=$?
  cat "$logs/$name.out"
  if [ "$rc" -eq 0 ] && ! grep -q '^|---' "$logs/$name.out"; then rc=1; fi
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: $name (exit $rc after $((SECONDS - start)) s); its log:"
    tail -n 40 "$logs/$name.err"
    failed+=("$name")
  else
    echo "ok: $name ($((SECONDS - start)) s)"
  fi
  echo
}

run loopback env COUNT=200 SPACED_COUNT=20 bench/run_loopback.sh "$BUILD_DIR"
run icmp_compare env SMOKE=1 bench/run_icmp_compare.sh
run scale env SMOKE=1 bench/run_scale.sh
run history env SMOKE=1 "$BUILD_DIR/bench/history_bench"
run query_load env SMOKE=1 bench/run_query_load.sh
run exposition env SMOKE=1 bench/run_exposition.sh

if [ "${#failed[@]}" -gt 0 ]; then
  echo "bench smoke: FAILED: ${failed[*]}"
  exit 1
fi
echo "bench smoke: all scripts ran"
