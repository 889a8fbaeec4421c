#!/usr/bin/env bash
# An agent 150 ms away (injected on its ingress, see tb_inject_ingress)
# probed every 100 ms with a 1 s timeout connects over gRPC, plaintext and
# TLS, and reads ~150 ms: the gRPC network RTT median within 5% of the ICMP
# median of the same window.
# (gRPC's "min reconnect backoff" is its minimum connect timeout: at 100 ms
# no connection to such an agent ever completed.)
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed agent
out=$TB_DIR
plain_port=$TB_AGENT_PORT
tb_make_tls "$out/tls"
TB_AGENT_NAME=agent-tls tb_start_agent 0 --tls_cert="$out/tls/agent.pem" \
  --tls_key="$out/tls/agent.key"
tls_port=$TB_AGENT_PORT
tb_inject_ingress --delay_ms=150

tb_start_server plain --target="agent=$TB_AGENT_ADDR:$plain_port" --interval=100ms --timeout=1s
tb_start_server tls --target="agent=$TB_AGENT_ADDR:$tls_port" --interval=100ms --timeout=1s \
  --probe_tls_ca="$out/tls/ca.pem"
tb_wait_status plain agent grpc ok 30 >/dev/null
tb_log "plaintext: gRPC ok"
tb_wait_status tls agent grpc ok 30 >/dev/null
tb_log "TLS: gRPC ok"

since=$(tb_now_ns)
watches=()
for name in plain tls; do
  tb_cli_bg "$out/$name.json" "$name" watch agent --output=json --count=$((2 * TB_SAMPLES))
  watches+=("$TB_BG_PID")
done
for pid in "${watches[@]}"; do wait "$pid" || true; done

rc=0
for name in plain tls; do
  tb_check grpc-vs-icmp --label "gRPC ($name) at 150 ms, 100 ms interval" \
    --watch_icmp "$out/$name.json" --watch_grpc "$out/$name.json" --since "$since" \
    --min_samples 40 --pct 5 || rc=1
done
[ "$rc" = 0 ] || tb_fail "gRPC did not read the 150 ms path (figures above)"
echo "PASS: gRPC connects and reads ~150 ms at a 100 ms interval, plaintext and TLS"
