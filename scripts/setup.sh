#!/usr/bin/env bash
# Installs what building and testing latency-pair needs on Debian 12:
# apt packages, and from npm (pinned, into $TOOLS_DIR): buf for proto lint
# and reflection tests, uPlot (the dashboard embeds its dist files at build
# time) and playwright-core (drives Debian's chromium in the dashboard
# test). Idempotent and quiet when everything is already there.
#
#   scripts/setup.sh            build + test dependencies
#   LATENCY_TOOLS_DIR=/opt/x    where npm tools go (default /opt/latency-tools)
set -euo pipefail

TOOLS_DIR="${LATENCY_TOOLS_DIR:-/opt/latency-tools}"
BUF_VERSION="1.75.0"
UPLOT_VERSION="1.6.32"
PLAYWRIGHT_CORE_VERSION="1.65.2"

APT_PACKAGES=(
  build-essential cmake pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libgtest-dev libgmock-dev googletest grpc-proto
  libcpp-httplib-dev libsqlite3-dev sqlite3 zlib1g-dev libyaml-cpp-dev
  iputils-ping iproute2 procps curl ca-certificates
  prometheus shellcheck ccache clang libclang-rt-14-dev
  iptables libnetfilter-queue-dev python3 openssl libssl-dev
  libbenchmark-dev
  bc fping wrk prometheus-blackbox-exporter dnsmasq-base
  debootstrap systemd-container lintian
  chromium
)
# npm may come from a nodejs build that bundles it (Debian's npm package
# would conflict with that), so it is only installed when missing.
if ! command -v npm >/dev/null; then APT_PACKAGES+=(nodejs npm); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # The tests start their own Prometheus and blackbox_exporter; Debian's
  # packages would leave them running as daemons on a developer's machine.
  # Stop and disable only the ones installed just now.
  if [ -d /run/systemd/system ]; then
    for pkg in prometheus prometheus-blackbox-exporter; do
      if [[ " ${missing[*]} " == *" $pkg "* ]]; then
        $SUDO systemctl disable --now --quiet "$pkg.service" || true
      fi
    done
  fi
fi

if [ ! -x "$TOOLS_DIR/node_modules/.bin/buf" ] ||
   [ "$("$TOOLS_DIR/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  echo "setup: installing @bufbuild/buf@$BUF_VERSION into $TOOLS_DIR"
  $SUDO mkdir -p "$TOOLS_DIR"
  (cd "$TOOLS_DIR" && $SUDO npm install --silent --no-fund --no-audit \
    --no-save "@bufbuild/buf@$BUF_VERSION" >/dev/null)
fi

# The installed version of npm package $1 under $TOOLS_DIR, or nothing.
npm_version() {
  node -p "require('$TOOLS_DIR/node_modules/$1/package.json').version" 2>/dev/null || true
}
if [ "$(npm_version uplot)" != "$UPLOT_VERSION" ] ||
   [ "$(npm_version playwright-core)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  echo "setup: installing uplot@$UPLOT_VERSION playwright-core@$PLAYWRIGHT_CORE_VERSION into $TOOLS_DIR"
  $SUDO mkdir -p "$TOOLS_DIR"
  # buf again in the same command: npm install --no-save prunes packages
  # that no package.json names.
  (cd "$TOOLS_DIR" && $SUDO npm install --silent --no-fund --no-audit \
    --no-save "@bufbuild/buf@$BUF_VERSION" "uplot@$UPLOT_VERSION" \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null)
fi
