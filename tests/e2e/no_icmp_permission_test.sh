#!/usr/bin/env bash
# latency-server without ICMP permission (an unprivileged user, the server
# namespace's default ping_group_range "1 0", no CAP_NET_RAW) is not an
# outage: every target's ICMP reads no_permission, never down and never
# loss; /readyz answers 503 with the fix; the log names the fix; gRPC
# probing goes on and reads ok.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed agent
ip netns exec "$TB_SERVER_NS" sysctl -qw "net.ipv4.ping_group_range=1 0"
TB_NO_ICMP=1 tb_start_server server --target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" \
  --interval=100ms --timeout=1s
tb_wait_status server agent grpc ok >/dev/null
sleep 1 # ten ICMP intervals: long past "down after 3 failures"
json=$(tb_wait_status server agent icmp no_permission 5)
tb_log "agent ICMP: no_permission"
grep -qF "ping_group_range" <<<"$json" || tb_fail "status lacks the fix: $json"
python3 - "$json" <<'PY' || tb_fail "ICMP counted as loss without permission"
import json, sys
doc = json.loads(sys.argv[1])
icmp = next(p for p in doc["probes"] if p["kind"] == "PROBE_KIND_ICMP")
sent = int(icmp.get("sent", 0))
print(f"ICMP without permission: status {icmp['status']}, sent {sent}, "
      f"loss {icmp.get('loss_percent')}")
sys.exit(0 if sent == 0 and icmp.get("loss_percent") is None else 1)
PY

metrics=$(tb_http server /metrics)
grep -qF '"icmp_status":"no_permission"' <<<"$metrics" || tb_fail "/metrics: $metrics"
code=$(ip netns exec "$TB_SERVER_NS" curl -s -o "$TB_DIR/readyz.txt" -w '%{http_code}' \
  "http://127.0.0.1:$(tb_server_port server http)/readyz")
tb_log "/readyz: $code $(cat "$TB_DIR/readyz.txt")"
[ "$code" = 503 ] || tb_fail "/readyz answered $code"
grep -qF "CAP_NET_RAW" "$TB_DIR/readyz.txt" || tb_fail "/readyz lacks the fix"
grep -q "ICMP disabled for IPv4: .*ping_group_range.*CAP_NET_RAW" "$TB_DIR/server.log" ||
  tb_fail "the log lacks the fix"
if grep -q "icmp: .* -> down" "$TB_DIR/server.log"; then
  tb_fail "ICMP logged as down"
fi
echo "PASS: no ICMP permission reads no_permission (not down, not loss), with the fix"
