#!/usr/bin/env bash
# A two-host testbed on one machine, to watch latency-pair measure a network
# whose delay, jitter and loss you choose. Needs root and a build (build/).
#
#   tests/e2e/testbed.sh up [SERVER_FLAGS...]   namespaces lp-server and
#       lp-agent, latency-agent on 10.77.0.2:50051, latency-server probing it
#       (default --interval=200ms), both as nobody; the server's query ports
#       are 127.0.0.1:50052 (gRPC) and 127.0.0.1:5000 (HTTP) in lp-server
#   tests/e2e/testbed.sh inject --delay_ms=5 [--jitter_ms=1] [--loss_percent=10]
#       shape what the agent host sends (its replies); again to change it
#   tests/e2e/testbed.sh inject off             no shaping
#   tests/e2e/testbed.sh exec CMD...            run CMD in lp-server, e.g.
#       tests/e2e/testbed.sh exec build/cli/latencyctl watch agent
#       tests/e2e/testbed.sh exec curl -s 127.0.0.1:5000/metrics
#   tests/e2e/testbed.sh status                 processes, then latencyctl status
#   tests/e2e/testbed.sh down                   stop everything, delete it all
#
# LATENCY_TESTBED_NAME=lp changes the name prefix; LATENCY_BUILD_DIR the build.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

name=${LATENCY_TESTBED_NAME:-lp}
TB_SERVER_NS="$name-server"
TB_AGENT_NS="$name-agent"
TB_DIR="/run/latency-testbed/$name"
TB_DETACH=1
export TB_DETACH

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

is_up() { ip netns list | grep -qw -- "$TB_SERVER_NS"; }

action=${1:-}
[ -n "$action" ] || usage
shift
case "$action" in
  up)
    why=$(tb_missing)
    [ -z "$why" ] || tb_fail "$why"
    is_up && tb_fail "testbed $name is up already ($0 down first)"
    mkdir -p "$TB_DIR"
    chmod 755 "$TB_DIR"
    if ! tb_up; then
      "$0" down
      exit 1
    fi
    tb_start_agent 50051
    tb_start_server server --target="agent=$TB_AGENT_ADDR:50051" --interval=200ms \
      --grpc_listen=127.0.0.1:50052 --http_listen=127.0.0.1:5000 --report_interval=1m "$@"
    cat <<HELP
testbed $name is up: latency-server in $TB_SERVER_NS probes latency-agent at $TB_AGENT_ADDR:50051
  $0 exec $TB_CLI_BIN watch agent
  $0 exec curl -s 127.0.0.1:5000/metrics
  $0 inject --delay_ms=5 --jitter_ms=1
  $0 down
logs: $TB_DIR/*.log
HELP
    ;;
  inject)
    is_up || tb_fail "testbed $name is not up"
    if [ "$#" -eq 0 ] || [ "$1" = off ]; then
      tb_inject_off
    else
      tb_inject "$@"
    fi
    ;;
  exec)
    is_up || tb_fail "testbed $name is not up"
    [ "$#" -gt 0 ] || usage
    exec ip netns exec "$TB_SERVER_NS" "$@"
    ;;
  status)
    is_up || tb_fail "testbed $name is not up"
    for pidfile in "$TB_DIR"/*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      state=gone
      if tb_alive "$pid"; then state="running"; fi
      echo "$(basename "$pidfile" .pid): pid $pid $state"
    done
    ip netns exec "$TB_SERVER_NS" "$TB_CLI_BIN" status
    ;;
  down)
    for pidfile in "$TB_DIR"/*.pid; do
      [ -e "$pidfile" ] && tb_stop "$(basename "$pidfile" .pid)"
    done
    tb_delete_ns "$TB_SERVER_NS"
    tb_delete_ns "$TB_AGENT_NS"
    rm -rf "$TB_DIR"
    echo "testbed $name is down"
    ;;
  *) usage ;;
esac
