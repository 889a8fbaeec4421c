#!/usr/bin/env bash
# The dashboard in headless chromium against a server on the namespace
# testbed, its agent 20 ms away (injected on the agent host's replies): a
# first server stores history (its stop writes the minute in progress), the
# restarted one is what the browser loads — overview and one target over 1h
# must show the delay exactly as the /v1 API reports it
# (tests/web/dashboard_testbed.mjs). Screenshots: build/artifacts/screenshots.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
tb_serialize "$@"

for tool in node /usr/bin/chromium; do
  command -v "$tool" >/dev/null || {
    [ "${CI:-}" = true ] && tb_fail "missing $tool (scripts/setup.sh installs it)"
    echo "SKIP: missing $tool" >&2
    exit 77
  }
done
delay_ms=20
tb_testbed agent
history_dir="$TB_DIR/history"
mkdir -p "$history_dir"
chown "$TB_USER:$TB_GROUP" "$history_dir"
flags=(--target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" --interval=500ms
  --history_db="$history_dir/history.db")
tb_inject --delay_ms="$delay_ms"
tb_start_server first "${flags[@]}"
tb_wait_status first agent grpc ok >/dev/null
sleep 5
tb_stop first
tb_start_server server "${flags[@]}"
tb_wait_status server agent grpc ok >/dev/null
sleep 3

ip netns exec "$TB_SERVER_NS" env \
  TESTBED_URL="http://127.0.0.1:$(tb_server_port server http)" \
  TESTBED_TARGET=agent TESTBED_DELAY_MS="$delay_ms" \
  SCREENSHOT_DIR="${SCREENSHOT_DIR:-$TB_SOURCE_DIR/../../build/artifacts/screenshots}" \
  node --test "$TB_SOURCE_DIR/../web/dashboard_testbed.mjs" ||
  tb_fail "the dashboard on the testbed (output above)"
echo "PASS: the dashboard shows the testbed's ${delay_ms} ms as the API reports it"
