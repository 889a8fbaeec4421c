#!/usr/bin/env bash
# The local demo: builds the project, starts latency-agent on loopback and
# echoes it with latencyctl, printing each RTT, then stops the agent.
#
#   scripts/demo.sh            5 echoes
#   ECHOES=0 scripts/demo.sh   echo until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target latency-agent latencyctl >/dev/null

log="$(mktemp)"
"$BUILD_DIR/agent/latency-agent" --listen=127.0.0.1:0 2>"$log" &
agent_pid=$!
cleanup() {
  kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT

port=""
for _ in $(seq 100); do
  port="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$log")"
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: latency-agent did not start:" >&2
  cat "$log" >&2
  exit 1
fi
echo "demo: latency-agent on 127.0.0.1:$port"
"$BUILD_DIR/cli/latencyctl" echo "127.0.0.1:$port" --c="${ECHOES:-5}" \
  --interval=500ms || true
