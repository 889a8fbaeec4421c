#!/usr/bin/env bash
# --dns_sd end to end against a real DNS server: dnsmasq in the server's
# namespace answers an SRV name (agent host and port) and an A name (the
# agents' addresses); /etc/netns/NS/resolv.conf points the server's
# resolver at it. The server probes what DNS names; when the records change
# it follows within a few --dns_sd_refresh periods, without a restart and
# without restarting the targets that stayed; when the DNS server dies the
# targets stay.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
command -v dnsmasq >/dev/null || tb_missing dnsmasq

tb_testbed agent
agent_port=$TB_AGENT_PORT
# A second agent on the agent host's second address.
ip -n "$TB_AGENT_NS" addr add "$TB_SPARE_ADDR/$TB_PREFIX_LEN" dev "$TB_DEV"
TB_AGENT_NAME=agent2 tb_start_agent 0 --listen="$TB_SPARE_ADDR:0"
agent2_port=$TB_AGENT_PORT

netns_dir="/etc/netns/$TB_SERVER_NS"
tb_on_exit rm -rf "$netns_dir"
mkdir -p "$netns_dir"
echo "nameserver 127.0.0.1" >"$netns_dir/resolv.conf"
chmod 644 "$netns_dir/resolv.conf"

# dns RECORD...: (re)starts dnsmasq answering exactly these records.
dns() {
  tb_stop dns
  tb_spawn dns "$TB_SERVER_NS" root dnsmasq --keep-in-foreground --no-resolv \
    --no-hosts --listen-address=127.0.0.1 --bind-interfaces --port=53 \
    --user=root --log-facility=- --log-queries "$@"
  tb_wait_log dns "started, version" >/dev/null
  local i
  for i in $(seq 50); do
    ip netns exec "$TB_SERVER_NS" getent hosts agent-1.fleet.test >/dev/null && return
    sleep 0.1
  done
  tb_fail "dnsmasq does not answer"
}
dns --host-record="agent-1.fleet.test,$TB_AGENT_ADDR" \
  --srv-host="_latency._tcp.fleet.test,agent-1.fleet.test,$agent_port" \
  --host-record="agents.fleet.test,$TB_AGENT_ADDR"

tb_start_server server --dns_sd=srv:_latency._tcp.fleet.test \
  --dns_sd="a:agents.fleet.test:$agent_port" --dns_sd_refresh=1s \
  --interval=100ms --timeout=1s
tb_wait_status server agent-1.fleet.test grpc ok >/dev/null
tb_wait_status server "$TB_AGENT_ADDR" grpc ok >/dev/null
tb_log "ok: SRV target agent-1.fleet.test and A target $TB_AGENT_ADDR probed"

# sent COUNT of a target's gRPC probe (over the default window).
sent() {
  tb_http server "/v1/targets/$1/stats" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["probes"]:
    if p["kind"] == "PROBE_KIND_GRPC":
        print(p.get("sent", 0))'
}
before=$(sent agent-1.fleet.test)

# The SRV name gains the second agent; the A name moves to the spare address.
changed_at=$SECONDS
dns --host-record="agent-1.fleet.test,$TB_AGENT_ADDR" \
  --host-record="agent-2.fleet.test,$TB_SPARE_ADDR" \
  --srv-host="_latency._tcp.fleet.test,agent-1.fleet.test,$agent_port" \
  --srv-host="_latency._tcp.fleet.test,agent-2.fleet.test,$agent2_port" \
  --host-record="agents.fleet.test,$TB_SPARE_ADDR"
tb_wait_status server agent-2.fleet.test grpc ok 15 >/dev/null
tb_wait_status server "$TB_SPARE_ADDR" icmp ok 15 >/dev/null
targets=$(tb_http server /v1/targets)
if [[ "$targets" == *"\"name\":\"$TB_AGENT_ADDR\""* ]]; then
  tb_fail "$TB_AGENT_ADDR is still a target after the A record moved: $targets"
fi
tb_log "ok: followed the records in $((SECONDS - changed_at)) s"
# agent-1 stayed, and kept its window: it was not restarted.
after=$(sent agent-1.fleet.test)
((after > before)) || tb_fail "agent-1.fleet.test restarted (sent $before -> $after)"
tb_log "ok: agent-1.fleet.test kept probing (sent $before -> $after)"

# DNS down: lookups fail, every target stays and the log says why.
tb_stop dns
tb_wait_log server "dns_sd srv:_latency._tcp.fleet.test: lookup failed: .*keeping its last 2 targets" >/dev/null
sleep 2
count=$(tb_http server /v1/targets | grep -o '"name":' | wc -l)
((count == 3)) || tb_fail "expected 3 targets with DNS down, got $count: $(tb_http server /v1/targets)"
tb_wait_status server agent-2.fleet.test grpc ok >/dev/null
echo "PASS: --dns_sd follows SRV and A records in place and keeps targets through a DNS outage"
