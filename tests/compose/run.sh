#!/usr/bin/env bash
# The docker-compose testbed, for real: starts Debian's dockerd in a network
# namespace of its own, makes (or reuses) local base images, runs
# `docker-compose up -d --build`, waits for both services to be healthy,
# checks /metrics (status ok, latency_ms > 0) and the Prometheus text from
# inside the namespace, then `docker-compose down -v`. The daemon, the
# namespace and the run directory go away on any exit.
#
#   tests/compose/run.sh     as root; prints `N passed, M failed`, exit 1 on
#                            any failure, 2 when it cannot run at all
#
# Cached in $LATENCY_CACHE_DIR (default /var/cache/latency-pair): docker/
# (the daemon's data root: base images, layers, BuildKit cache with ccache),
# bases/ and debootstrap/ (see make-bases.sh). One run at a time holds
# compose.lock, since runs share the data root.
#
#   LATENCY_COMPOSE_TIMEOUT=S   how long to wait for health and for a sample
#                               with status ok (default 120)
#   LATENCY_COMPOSE_KEEP_LOGS=1 print the services' logs even when green
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

CACHE_DIR="${LATENCY_CACHE_DIR:-/var/cache/latency-pair}"
TIMEOUT="${LATENCY_COMPOSE_TIMEOUT:-120}"
NAME="latency-ci-$$"
RUN_DIR="/run/$NAME"
NETNS="/run/netns/$NAME"
PACKAGES=(docker.io docker-compose debootstrap iproute2 curl python3)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

timings=()
phase_start=$SECONDS
phase() {  # ends the running phase (if named) and names the next one
  if [ -n "${phase_name:-}" ]; then
    timings+=("$phase_name $((SECONDS - phase_start))s")
  fi
  phase_name=$1
  phase_start=$SECONDS
  [ -z "$phase_name" ] || echo "== $phase_name"
}

if [ "$(id -u)" -ne 0 ]; then
  echo "compose test: needs root (network namespace, dockerd)" >&2
  exit 2
fi

phase "install tools"
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# Long-lived children get `9>&-`, so one orphaned by a killed run cannot
# hold the lock.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/compose.lock"
if ! flock -w 1800 9; then
  echo "compose test: another run holds $CACHE_DIR/compose.lock" >&2
  exit 2
fi

# Stops the dockerd with PID (if it still is one) and removes what run
# RUN_NAME made: mounts left under its run directory or the data root
# (normally none; the lock keeps other runs off the data root), its network
# namespace and its run directory.
teardown() {
  local run_name=$1 pid=$2
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    kill "$pid"
    for _ in $(seq 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  awk -v a="/run/$run_name/" -v b="$CACHE_DIR/docker/" \
    'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts |
    sort -r | while read -r mnt; do umount -l "$mnt"; done
  if [ -e "/run/netns/$run_name" ]; then ip netns delete "$run_name"; fi
  rm -rf --one-file-system "/run/$run_name"
}

# A run killed outright (SIGKILL, a CI timeout) cannot clean up after
# itself; holding the lock, any other run's directory is such a leftover.
for dir in /run/latency-ci-*/; do
  [ -d "$dir" ] || continue
  echo "removing what $(basename "$dir") left behind"
  teardown "$(basename "$dir")" "$(cat "$dir/dockerd.pid" 2>/dev/null || true)"
done

export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
export DOCKER_CONFIG="$RUN_DIR/docker-cli"
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
export COMPOSE_PROJECT_NAME="$NAME" COMPOSE_FILE="$PWD/docker-compose.yml"
export LATENCY_IMAGE_TAG=ci
# The compose file's own defaults for everything else.
unset LATENCY_TARGETS LATENCY_INTERVAL LATENCY_LOG_LEVEL LATENCY_HTTP_PORT \
  LATENCY_GRPC_PORT LATENCY_BIND LATENCY_IMPAIR_DELAY_MS LATENCY_IMPAIR_JITTER_MS \
  LATENCY_IMPAIR_LOSS_PERCENT

dockerd_pid=""
setup_done=false
compose_up=false
service_logs() {
  echo "--- service logs (last 30 lines each)"
  docker-compose logs --no-color --tail=30 2>&1 || true
}
cleanup() {
  local rc=$?
  set +e
  # The daemon's log tells why it or the base images failed; compose's
  # own output was printed where it failed.
  if [ "$rc" -ne 0 ] && ! $setup_done && [ -f "$RUN_DIR/dockerd.log" ]; then
    echo "--- dockerd log (last 30 lines)"
    grep -v "module=grpc" "$RUN_DIR/dockerd.log" | tail -n 30
  fi
  if $compose_up; then docker-compose --profile impair down -v -t 5 >/dev/null 2>&1; fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    # Keep the data root lean: dangling images of earlier builds, and build
    # cache beyond what the next build reuses.
    docker image prune -f >/dev/null 2>&1
    docker builder prune -f --keep-storage=3gb >/dev/null 2>&1
  fi
  phase "stop dockerd, clean up"
  teardown "$NAME" "$dockerd_pid"
  phase ""
  echo "timings:"
  printf '  %s\n' "${timings[@]}" "total ${SECONDS}s"
  # A run that stopped early counts as a failure even before any check.
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  echo "$passed passed, $failed failed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "start dockerd in netns $NAME"
mkdir -p "$RUN_DIR/bin" "$CACHE_DIR/docker"
# Debian's docker CLI (20.10: BuildKit built in, no buildx plugin needed),
# whatever other docker is first on PATH; docker-compose calls it too.
ln -s /usr/bin/docker "$RUN_DIR/bin/docker"
export PATH="$RUN_DIR/bin:$PATH"
ip netns add "$NAME"
ip -n "$NAME" link set lo up
nsenter --net="$NETNS" dockerd --data-root="$CACHE_DIR/docker" \
  --exec-root="$RUN_DIR/exec" --pidfile="$RUN_DIR/dockerd.pid" \
  -H "$DOCKER_HOST" >"$RUN_DIR/dockerd.log" 2>&1 9>&- &
dockerd_pid=$!
for _ in $(seq 60); do
  if docker version >/dev/null 2>&1; then break; fi
  if ! kill -0 "$dockerd_pid" 2>/dev/null; then
    echo "compose test: dockerd exited" >&2
    exit 2
  fi
  sleep 0.5
done
if ! docker version >/dev/null 2>&1; then
  echo "compose test: dockerd did not answer within 30 s" >&2
  exit 2
fi

phase "base images"
bases="$(tests/compose/make-bases.sh)"
BUILDER_IMAGE="$(sed -n 's/^BUILDER_IMAGE=//p' <<<"$bases")"
RUNTIME_IMAGE="$(sed -n 's/^RUNTIME_IMAGE=//p' <<<"$bases")"
IMPAIR_IMAGE="$(sed -n 's/^IMPAIR_IMAGE=//p' <<<"$bases")"
export BUILDER_IMAGE RUNTIME_IMAGE IMPAIR_IMAGE
echo "builder $BUILDER_IMAGE, runtime $RUNTIME_IMAGE, impair $IMPAIR_IMAGE"

# The dashboard's uPlot from setup.sh's pinned npm install, so the builder
# needs no network (docker/Dockerfile).
mkdir -p docker/uplot
cp "${LATENCY_TOOLS_DIR:-/opt/latency-tools}/node_modules/uplot/dist/uPlot.esm.js" \
  "${LATENCY_TOOLS_DIR:-/opt/latency-tools}/node_modules/uplot/dist/uPlot.min.css" docker/uplot/

phase "docker-compose up -d --build"
setup_done=true
compose_up=true
# In the background, so a signal runs the cleanup without waiting for it.
docker-compose up -d --build >"$RUN_DIR/up.log" 2>&1 9>&- &
if wait $!; then
  pass "docker-compose up -d --build"
  echo "image latency-pair:ci: $(docker image ls latency-pair:ci --format '{{.Size}}')"
else
  tail -n 40 "$RUN_DIR/up.log"
  service_logs
  fail "docker-compose up -d --build"
  exit 1
fi

until_true() {  # CMD...: retries CMD once a second until it succeeds or TIMEOUT
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

phase "wait for health"
health() {  # SERVICE -> its container's health status
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' \
    "$(docker-compose ps -q "$1")" 2>/dev/null || echo "missing"
}
settled() {  # SERVICE: its health check no longer says "starting"
  status="$(health "$1")"
  [ "$status" != "starting" ]
}
for service in agent server; do
  status=""
  until_true settled "$service" || true
  if [ "$status" = "healthy" ]; then
    pass "$service healthy"
  else
    fail "$service healthy (status: ${status:-none})"
  fi
done

phase "check /metrics"
in_netns() { nsenter --net="$NETNS" "$@"; }
metrics_ok() {  # reads JSON on stdin: status ok and latency_ms > 0?
  python3 -c '
import json, sys
m = json.load(sys.stdin)
sys.exit(0 if m.get("status") == "ok" and (m.get("latency_ms") or 0) > 0 else 1)'
}
json=""
serving() {  # GET /metrics (kept in $json) says ok with a latency
  json="$(in_netns curl -sS --max-time 2 http://127.0.0.1:5000/metrics 2>&1)" || true
  metrics_ok <<<"$json" 2>/dev/null
}
if until_true serving; then ok=true; else ok=false; fi
echo "GET /metrics: $json"
if $ok; then
  pass "/metrics status ok, latency_ms > 0"
else
  fail "/metrics status ok, latency_ms > 0"
fi

# Read the whole body before matching: `curl | grep -q` fails under pipefail
# when grep exits at the first match and curl cannot write the rest (CI saw
# "curl: (23) Failed writing body").
prometheus=$(in_netns curl -sS --max-time 2 'http://127.0.0.1:5000/metrics?format=prometheus' || true)
if grep -q '^latency_last_rtt_seconds{' <<<"$prometheus"; then
  pass "/metrics?format=prometheus has latency_last_rtt_seconds"
else
  fail "/metrics?format=prometheus has latency_last_rtt_seconds"
fi

if docker-compose exec -T server latencyctl status --server=127.0.0.1:50052; then
  pass "latencyctl status in the server container exits 0"
else
  fail "latencyctl status in the server container exits 0"
fi

uids="$(for s in agent server; do docker-compose exec -T "$s" id -u; done |
  tr -d '\r' | xargs)" || true
if [ -n "$uids" ] && [[ " $uids " != *" 0 "* ]]; then
  pass "services run as non-root (uid $uids)"
else
  fail "services run as non-root (uid ${uids:-?})"
fi

# README's hardening, checked from inside each container: an empty
# capability bounding set (cap_drop: ALL; datagram ICMP needs none; the
# effective set is empty anyway for a non-root user, so the bounding set is
# what cap_drop shows in) and a root filesystem mounted read-only
# (read_only: true).
for s in agent server; do
  caps="$(docker-compose exec -T "$s" cat /proc/1/status |
    tr -d '\r' | awk '$1 == "CapBnd:" { print $2 }')" || true
  if [ "$caps" = "0000000000000000" ]; then
    pass "$s can gain no capability (CapBnd $caps)"
  else
    fail "$s can gain no capability (CapBnd ${caps:-?})"
  fi
  # The mount itself (a non-root user could not write to / anyway).
  root_opts="$(docker-compose exec -T "$s" cat /proc/mounts |
    tr -d '\r' | awk '$2 == "/" { opts = $4 } END { print opts }')" || true
  if [[ "$root_opts" == ro,* ]]; then
    pass "$s root filesystem is mounted read-only (${root_opts%%,*})"
  else
    fail "$s root filesystem is mounted read-only (${root_opts%%,*})"
  fi
done

published=$(docker-compose port server 5000 2>/dev/null || true)
if [ "$published" = "127.0.0.1:5000" ]; then
  pass "ports published on loopback by default ($published)"
else
  fail "server port 5000 published on '$published', expected 127.0.0.1:5000"
fi

# The image itself: a curl-less HEALTHCHECK and OCI labels; `docker save`
# writes what CI can hand on (build/artifacts/).
healthcheck=$(docker image inspect latency-pair:ci --format '{{json .Config.Healthcheck.Test}}')
if [[ "$healthcheck" == *'"latencyctl","health"'* ]]; then
  pass "image HEALTHCHECK runs latencyctl health ($healthcheck)"
else
  fail "image HEALTHCHECK: $healthcheck"
fi
version=$(docker image inspect latency-pair:ci --format '{{index .Config.Labels "org.opencontainers.image.version"}}')
if [ -n "$version" ]; then pass "OCI label org.opencontainers.image.version=$version"; else
  fail "no org.opencontainers.image.version label"
fi
mkdir -p build/artifacts
if docker save latency-pair:ci | gzip -1 >build/artifacts/latency-pair-image.tar.gz; then
  pass "docker save -> build/artifacts/latency-pair-image.tar.gz ($(du -h build/artifacts/latency-pair-image.tar.gz | cut -f1))"
else
  fail "docker save"
fi

# The compose file repeats the Dockerfile's digest-pinned bases (compose
# cannot leave a build argument unset): they must not drift apart.
pins_match=true
for arg in BUILDER_IMAGE RUNTIME_IMAGE IMPAIR_IMAGE; do
  dockerfile_pin="$(sed -n "s/^ARG $arg=//p" docker/Dockerfile)"
  compose_pin="$(sed -n "s/^ *$arg: \${$arg:-\(.*\)}$/\1/p" docker-compose.yml)"
  if [[ "$dockerfile_pin" != *@sha256:* || "$dockerfile_pin" != "$compose_pin" ]]; then
    echo "$arg: Dockerfile '$dockerfile_pin', docker-compose.yml '$compose_pin'"
    pins_match=false
  fi
done
if $pins_match; then pass "bases pinned by digest, the same in Dockerfile and compose"; else
  fail "bases pinned by digest, the same in Dockerfile and compose"
fi

if command -v promtool >/dev/null; then
  if promtool check config docker/prometheus.yml >/dev/null; then
    pass "promtool check config docker/prometheus.yml"
  else
    fail "promtool check config docker/prometheus.yml"
  fi
fi

phase "impair sidecar: delay and loss on the agent's path"
# README's "5 ms and 1% loss", made decisive: the sidecar holds every packet
# the agent sends for 5 ms and drops half of them. The server's latest ICMP
# and gRPC RTTs must read 5 ms or more (and well under 50), its ICMP loss
# must rise above 0, and once the sidecar is stopped the path is clean again.
latest() {  # FIELD: the field of GET /metrics, empty when absent
  in_netns curl -sS --max-time 2 http://127.0.0.1:5000/metrics 2>/dev/null |
    python3 -c 'import json, sys
value = json.load(sys.stdin).get(sys.argv[1])
print("" if value is None else value)' "$1" 2>/dev/null || true
}
between() { python3 -c 'import sys; sys.exit(not (sys.argv[2] and float(sys.argv[1]) <= float(sys.argv[2]) < float(sys.argv[3])))' "$@"; }
icmp_loss() {  # the icmp latency_loss_ratio, from the Prometheus text
  in_netns curl -sS --max-time 2 'http://127.0.0.1:5000/metrics?format=prometheus' 2>/dev/null |
    sed -n 's/^latency_loss_ratio{.*kind="icmp".*} \([0-9.eE+-]*\)$/\1/p' | head -n 1 || true
}
if LATENCY_IMPAIR_DELAY_MS=5 LATENCY_IMPAIR_LOSS_PERCENT=50 docker-compose \
    --profile impair up -d --build --no-deps impair >"$RUN_DIR/impair.log" 2>&1 9>&-; then
  pass "docker-compose --profile impair up (5 ms, 50% loss)"
else
  tail -n 30 "$RUN_DIR/impair.log"
  fail "docker-compose --profile impair up"
fi
icmp_ms="" grpc_ms="" loss=""
slow_icmp() { icmp_ms="$(latest latency_ms)"; between 5 "$icmp_ms" 50; }
slow_grpc() { grpc_ms="$(latest grpc_latency_ms)"; between 5 "$grpc_ms" 1e9; }
lossy() { loss="$(icmp_loss)"; between 0.000001 "$loss" 1.000001; }
if until_true slow_icmp; then pass "impaired: ICMP RTT $icmp_ms ms (5 <= RTT < 50)"; else
  fail "impaired: ICMP RTT '${icmp_ms}' ms, expected 5 <= RTT < 50"
fi
if until_true slow_grpc; then pass "impaired: gRPC RTT $grpc_ms ms (>= 5)"; else
  fail "impaired: gRPC RTT '${grpc_ms}' ms, expected >= 5"
fi
if until_true lossy; then pass "impaired: ICMP loss ratio $loss (> 0)"; else
  fail "impaired: ICMP loss ratio '${loss}', expected > 0"
fi
docker-compose --profile impair stop -t 10 impair >>"$RUN_DIR/impair.log" 2>&1 9>&- || true
impair_exit="$(docker inspect -f '{{.State.ExitCode}}' \
  "$(docker-compose --profile impair ps -q impair)" 2>/dev/null || echo "?")"
if [ "$impair_exit" = 0 ]; then pass "impair sidecar stops cleanly (exit 0)"; else
  docker-compose --profile impair logs --no-color --tail=20 impair 2>&1 || true
  fail "impair sidecar exit status $impair_exit"
fi
fast_icmp() { icmp_ms="$(latest latency_ms)"; between 0 "$icmp_ms" 5; }
if until_true fast_icmp; then pass "sidecar stopped: ICMP RTT $icmp_ms ms again (< 5)"; else
  fail "sidecar stopped: ICMP RTT '${icmp_ms}' ms, expected < 5"
fi

phase "docker-compose down -v"
if [ "$failed" -ne 0 ] || [ -n "${LATENCY_COMPOSE_KEEP_LOGS:-}" ]; then
  service_logs
fi
if docker-compose --profile impair down -v -t 5 >"$RUN_DIR/down.log" 2>&1 &&
    [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$NAME")" ]; then
  pass "docker-compose down -v leaves no containers"
else
  cat "$RUN_DIR/down.log"
  fail "docker-compose down -v leaves no containers"
fi
compose_up=false

[ "$failed" -eq 0 ]  # the summary comes from cleanup
