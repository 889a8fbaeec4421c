#!/usr/bin/env bash
# The agent host drops everything from the server for 20 s (no reply, no
# error: a blackholed connection), then the path heals. HTTP/2 keepalive and
# TCP_USER_TIMEOUT drop the dead connection, reconnect attempts go on, and
# every gRPC probe scheduled 2 intervals or more after healing succeeds.
# Counted in probes from the watch stream.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

HOLE_S=${E2E_BLACKHOLE_SECONDS:-20}
tb_testbed agent
out=$TB_DIR
tb_start_server server --target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" --interval=1s --timeout=1s
tb_wait_status server agent grpc ok >/dev/null
tb_cli_bg "$out/watch.json" server watch agent --kind=grpc --output=json
watch_pid=$TB_BG_PID
sleep 3 # a few good probes on the established connection

rule=(INPUT -s "$TB_SERVER_ADDR" -j DROP)
ip netns exec "$TB_AGENT_NS" iptables -I "${rule[@]}"
cut_ns=$(tb_now_ns)
tb_log "blackholed the agent host for $HOLE_S s"
sleep "$HOLE_S"
ip netns exec "$TB_AGENT_NS" iptables -D "${rule[@]}"
heal_ns=$(tb_now_ns)
tb_log "healed"
# The status reads degraded for a minute after (the failures are loss), so
# the probes themselves are the measure: 8 more after healing.
sleep 8
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true

tb_check heal --label "1 s interval" --watch "$out/watch.json" \
  --cut_ns "$cut_ns" --heal_ns "$heal_ns" --interval_ms 1000 --min_samples 4 ||
  tb_fail "gRPC did not recover within 2 intervals of healing (figures above)"
echo "PASS: after a ${HOLE_S} s blackhole, gRPC probes succeed within 2 intervals of healing"
