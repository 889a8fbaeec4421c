#!/usr/bin/env bash
# 10% injected loss on the agent's replies, over more than 300 ICMP probes
# (10 ms apart, about 1000 in 10 s so that chance stays well inside the
# bound: the binomial standard deviation is about 1%), is reported by the
# server's 1-minute statistics as 10% +- 4%. ping runs beside it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

PROBES=${E2E_LOSS_PROBES:-1000}
tb_testbed bare
tb_inject --loss_percent=10
out=$TB_DIR
cat >"$out/loss.textproto" <<CONFIG
targets {
  name: "agent"
  host: "$TB_AGENT_ADDR"
  probe { interval_ms: 10 timeout_ms: 500 grpc_enabled: false }
}
CONFIG
chmod 644 "$out/loss.textproto"
tb_start_server server --config="$out/loss.textproto"
tb_ping "$out/ping.txt" 200 0.05 &
ping_pid=$!

sent=0
deadline=$((SECONDS + 60))
while ((sent < PROBES)); do
  ((SECONDS <= deadline)) || tb_fail "only $sent ICMP probes completed in 60 s"
  sleep 0.5
  sent=$(tb_http server "/v1/targets/agent/stats?window=1m" | python3 "$TB_CHECK" sent --kind icmp)
done
tb_http server "/v1/targets/agent/stats?window=1m" >"$out/stats.json"
wait "$ping_pid" || true # exits 1 when replies are lost
grep -h "packets transmitted" "$out/ping.txt" | sed 's/^/ping beside it: /'
tb_check loss --label "10% injected loss" --stats "$out/stats.json" \
  --expect 10 --tolerance 4 --min_sent 300 || tb_fail "loss figure out of bounds"
echo "PASS: server reports the injected loss"
