#!/usr/bin/env bash
# The local demo: builds the project, starts latency-agent and latency-server
# on loopback, and shows live latency through latencyctl and curl until
# Ctrl-C, then stops both cleanly.
#
#   scripts/demo.sh                    run until Ctrl-C
#   DEMO_SECONDS=20 scripts/demo.sh    stop by itself after 20 s
#
# Ports (loopback only): agent 50051, gRPC query API 50052, HTTP 5000.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
echo "demo: building (the first build takes a few minutes)..."
cmake --build "$BUILD_DIR" -j"$(nproc)" \
  --target latency-agent latency-server latencyctl >/dev/null

logs="$(mktemp -d)"
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo: logs were in $logs"
}
trap stop EXIT
trap 'exit 0' INT TERM

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: not root: ICMP needs CAP_NET_RAW or net.ipv4.ping_group_range" \
       "covering your group; gRPC probing works either way" >&2
fi

"$BUILD_DIR/agent/latency-agent" --listen=127.0.0.1:50051 2>"$logs/agent.log" &
pids+=($!)
"$BUILD_DIR/server/latency-server" --target=local=127.0.0.1:50051 \
  --grpc_listen=127.0.0.1:50052 --http_listen=127.0.0.1:5000 \
  --report_interval=0 --history_db="$logs/history.db" 2>"$logs/server.log" &
pids+=($!)

for _ in $(seq 100); do
  curl -sf localhost:5000/readyz >/dev/null 2>&1 && break
  if ! kill -0 "${pids[1]}" 2>/dev/null; then
    echo "demo: latency-server did not start:" >&2
    cat "$logs/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

deadline=$(( $(date +%s) + ${DEMO_SECONDS:-1000000000} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 2
  echo "=== $(date +%T)   (Ctrl-C to stop)"
  "$BUILD_DIR/cli/latencyctl" targets --server=127.0.0.1:50052 || true
  echo "\$ curl -s localhost:5000/metrics"
  curl -s localhost:5000/metrics | cut -c1-160
  echo
done
