#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit, integration
# (real binaries, buf curl), proto lint, shell lint, the Terraform checks,
# the namespace e2e and compose testbeds, a benchmark smoke run, fuzzing and
# the sanitizer builds.
#
#   scripts/test.sh                 everything
#   BUILD_DIR=out scripts/test.sh   build elsewhere (default: build/)
#   CI=true scripts/test.sh         warnings are errors, and any skipped
#                                   test not on tests/skip-allowlist.txt
#                                   fails the run (scripts/check-skips.py)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
TOOLS_DIR="${LATENCY_TOOLS_DIR:-/opt/latency-tools}"
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [ "${CI:-}" = "true" ]; then cmake_args+=(-DLATENCY_WERROR=ON); fi
if command -v ccache >/dev/null; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Absolute paths under the checkout become relative, so a fresh clone in
  # another folder still hits the cache.
  export CCACHE_BASEDIR="$PWD"
fi

echo "== build"
cmake -S . -B "$BUILD_DIR" "${cmake_args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"

echo "== buf lint"
(cd proto && "$TOOLS_DIR/node_modules/.bin/buf" lint)

echo "== shellcheck"
shellcheck scripts/*.sh .ci/run tests/e2e/*.sh tests/compose/*.sh tests/package/*.sh bench/*.sh

# Terraform is not a Debian package: a fresh machine without it skips the
# infra checks and says so; CI, which has it, must run them.
echo "== terraform"
if command -v terraform >/dev/null; then
  bash infra/scripts/check.sh
elif [ "${CI:-}" = "true" ]; then
  echo "terraform not found: CI must run the infra checks" >&2
  exit 1
else
  echo "SKIPPED: terraform is not installed (not in Debian's archive), so"
  echo "infra/scripts/check.sh (fmt, validate, terraform test) did not run;"
  echo "install terraform and run it, or let CI run it."
fi

# Each ctest run writes JUnit XML, where skipped tests are told apart from
# passed ones (ctest's summary counts both as passed).
junit_dir="$(cd "$BUILD_DIR" && pwd)"
junit_files=("$junit_dir/junit-main.xml" "$junit_dir/junit-e2e.xml")
rm -f "${junit_files[@]}" build-asan/junit-sanitizer.xml build-tsan/junit-sanitizer.xml

echo "== ctest: unit, integration, fuzz corpus replay, compose testbed"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 -LE e2e \
  --output-junit "${junit_files[0]}"

# The namespace e2e tests print their measured figures, so show them all.
echo "== ctest: namespace e2e (root)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --verbose -L e2e \
  --output-junit "${junit_files[1]}"

echo "== package: the .deb (CPack), lintian, and install/start/reload/upgrade/purge"
echo "   in a systemd-booted Debian 12 root (tests/package/package_test.sh)"
(cd "$BUILD_DIR" && cpack -G DEB >/dev/null)
deb=$(ls "$BUILD_DIR"/latency-pair_*.deb)
lintian --fail-on error,warning --tag-display-limit 0 "$deb"
tests/package/package_test.sh "$deb"
echo "== boot path: Terraform's package user data in three systemd-booted roots,"
echo "   against a stub IMDS/S3/SSM that checks every SigV4 signature (tests/package/boot_test.sh)"
if command -v terraform >/dev/null; then
  tests/package/boot_test.sh "$deb"
elif [ "${CI:-}" = "true" ]; then
  echo "terraform not found: CI must run the boot-path test" >&2
  exit 1
else
  echo "SKIPPED: terraform is not installed, so the boot scripts cannot be rendered"
fi

echo "== bench smoke (each benchmark script briefly; figures not judged)"
bench/smoke.sh "$BUILD_DIR"

echo "== fuzz smoke (libFuzzer, ${FUZZ_SECONDS:-20} s per target)"
scripts/fuzz.sh

echo "== sanitizers (ASan+UBSan: all tests; TSan: concurrency tests)"
scripts/sanitizers.sh

# Last, so the allow-list and every skip are the final lines of the log.
# The sanitizer runs' results count too: a test skipped only under ASan or
# TSan is a skip.
for f in build-asan/junit-sanitizer.xml build-tsan/junit-sanitizer.xml; do
  if [ -f "$f" ]; then junit_files+=("$PWD/$f"); fi
done
echo "== skipped tests"
if [ "${CI:-}" = "true" ]; then
  scripts/check-skips.py tests/skip-allowlist.txt "${junit_files[@]}"
else
  scripts/check-skips.py tests/skip-allowlist.txt "${junit_files[@]}" ||
    echo "(not CI: skips reported, not failed)"
fi
