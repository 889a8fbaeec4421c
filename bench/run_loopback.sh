#!/usr/bin/env bash
# gRPC echo overhead on loopback, side by side with the raw TCP floor, in one
# run: back to back, and spaced like a prober (idle threads must wake up).
# Prints a markdown table with ratios. Needs a build (scripts/setup.sh, cmake).
#
#   bench/run_loopback.sh [BUILD_DIR]      (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
COUNT="${COUNT:-3000}"
SPACED_COUNT="${SPACED_COUNT:-300}"

cmake --build "$BUILD_DIR" -j"$(nproc)" --target tcp_pingpong echo_bench latency-agent >/dev/null
logs="$(mktemp -d)"
# tcp_pingpong takes a fixed port: pick a free one.
port_tcp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD_DIR/bench/tcp_pingpong" --serve="127.0.0.1:$port_tcp" &
tcp_pid=$!
"$BUILD_DIR/agent/latency-agent" --listen=127.0.0.1:0 2>"$logs/agent.log" &
agent_pid=$!
trap 'kill $tcp_pid $agent_pid 2>/dev/null; rm -rf "$logs"' EXIT
for _ in $(seq 100); do
  port_agent="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$logs/agent.log")"
  [ -n "$port_agent" ] && break
  sleep 0.1
done
sleep 0.2

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
run() {  # run LABEL INTERVAL_US COUNT
  local tcp grpc
  tcp="$("$BUILD_DIR/bench/tcp_pingpong" --connect="127.0.0.1:$port_tcp" --count="$3" --interval_us="$2")"
  grpc="$("$BUILD_DIR/bench/echo_bench" --agent="127.0.0.1:$port_agent" --count="$3" --interval_us="$2")"
  local t u s
  t="$(echo "$tcp" | field median_us)"
  u="$(echo "$grpc" | grep grpc_unary | field median_us)"
  s="$(echo "$grpc" | grep grpc_stream | field median_us)"
  printf '| %s | %s | %s (%.1fx) | %s (%.1fx) | %s / %s / %s |\n' "$1" "$t" "$u" \
    "$(echo "$u / $t" | bc -l)" "$s" "$(echo "$s / $t" | bc -l)" \
    "$(echo "$tcp" | field p99_us)" "$(echo "$grpc" | grep grpc_unary | field p99_us)" \
    "$(echo "$grpc" | grep grpc_stream | field p99_us)"
}
echo "| spacing | TCP median µs | gRPC unary median µs (÷TCP) | gRPC stream median µs (÷TCP) | p99 µs TCP / unary / stream |"
echo "|---|---|---|---|---|"
run "back to back ($COUNT)" 0 "$COUNT"
run "100 ms apart ($SPACED_COUNT)" 100000 "$SPACED_COUNT"
