#!/usr/bin/env bash
# At 10 ms injected delay the gRPC network RTT (rtt - the agent's own
# handling time) has a median within 5% of the ICMP median taken in the same
# window, for unary probes (the default mode). Streaming probes of the same
# agent are measured beside them and reported, not bounded.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed agent
out=$TB_DIR
cat >"$out/targets.textproto" <<CONFIG
defaults { interval_ms: 100 timeout_ms: 1000 }
targets { name: "agent" host: "$TB_AGENT_ADDR" grpc_port: $TB_AGENT_PORT }
targets {
  name: "agent-stream"
  host: "$TB_AGENT_ADDR"
  grpc_port: $TB_AGENT_PORT
  probe { grpc_mode: GRPC_MODE_STREAM icmp_enabled: false }
}
CONFIG
chmod 644 "$out/targets.textproto"
tb_start_server server --config="$out/targets.textproto"
tb_wait_status server agent grpc ok >/dev/null
tb_wait_status server agent-stream grpc ok >/dev/null
tb_inject --delay_ms=10

since=$(tb_now_ns)
tb_cli_bg "$out/icmp.json" server watch agent --kind=icmp --output=json --count="$TB_SAMPLES"
icmp_watch=$TB_BG_PID
tb_cli_bg "$out/unary.json" server watch agent --kind=grpc --output=json --count="$TB_SAMPLES"
unary_watch=$TB_BG_PID
tb_cli_bg "$out/stream.json" server watch agent-stream --kind=grpc --output=json --count="$TB_SAMPLES"
stream_watch=$TB_BG_PID
tb_ping "$out/ping.txt" "$TB_SAMPLES" 0.1
wait "$icmp_watch" || true
wait "$unary_watch" || true
wait "$stream_watch" || true

tb_check icmp-vs-ping --label "ICMP at 10 ms" --ping "$out/ping.txt" \
  --watch "$out/icmp.json" --since "$since" || true # bounded in e2e_accuracy
tb_check grpc-vs-icmp --label "gRPC stream at 10 ms" --watch_icmp "$out/icmp.json" \
  --watch_grpc "$out/stream.json" --since "$since"
tb_check grpc-vs-icmp --label "gRPC unary at 10 ms" --watch_icmp "$out/icmp.json" \
  --watch_grpc "$out/unary.json" --since "$since" --pct 5 ||
  tb_fail "gRPC network RTT too far from ICMP (figures above)"
echo "PASS: gRPC network RTT within 5% of ICMP at 10 ms"
