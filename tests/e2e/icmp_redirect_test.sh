#!/usr/bin/env bash
# An ICMP target behind a redirect: the server's route to it goes through a
# router on the same link, which forwards the echo request back out the
# interface it came in on and so sends the server an ICMP redirect (type 5)
# besides forwarding the packet. The reply still comes: the probe must read
# ok (before issue 11 a datagram socket's queued redirect became a
# ttl_exceeded sample). Three namespaces on one bridge:
#
#   server 10.78.0.1 ─┐
#   agent  10.78.0.2 ─┼─ br0 in the router namespace, router 10.78.0.254
#          + 10.79.0.2/32, the target the server reaches "via" the router
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_require
tb_reap_stale
TB_SERVER_NS="$TB_EPHEMERAL_PREFIX-$$-server"
TB_AGENT_NS="$TB_EPHEMERAL_PREFIX-$$-agent"
ROUTER_NS="$TB_EPHEMERAL_PREFIX-$$-router"
TB_DIR=$(mktemp -d "/tmp/$TB_EPHEMERAL_PREFIX-$$.XXXXXX")
chmod 755 "$TB_DIR"
cleanup() {
  local rc=$?
  set +e # `(exit rc)` below must not end the trap
  tb_delete_ns "$ROUTER_NS"
  (exit "$rc")
  tb_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$TB_SERVER_NS"
ip netns add "$TB_AGENT_NS"
ip netns add "$ROUTER_NS"
ip -n "$ROUTER_NS" link add br0 type bridge
ip -n "$ROUTER_NS" link set br0 up
ip -n "$ROUTER_NS" addr add 10.78.0.254/24 dev br0
for end in server agent; do
  ns=$TB_SERVER_NS
  [ "$end" = agent ] && ns=$TB_AGENT_NS
  ip -n "$ROUTER_NS" link add "p-$end" type veth peer name "$TB_DEV" netns "$ns"
  ip -n "$ROUTER_NS" link set "p-$end" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$TB_DEV" up
done
ip -n "$TB_SERVER_NS" addr add 10.78.0.1/24 dev "$TB_DEV"
ip -n "$TB_AGENT_NS" addr add 10.78.0.2/24 dev "$TB_DEV"
ip -n "$TB_AGENT_NS" addr add 10.79.0.2/32 dev "$TB_DEV"
ip -n "$TB_SERVER_NS" route add 10.79.0.0/24 via 10.78.0.254
ip netns exec "$ROUTER_NS" sysctl -qw net.ipv4.ip_forward=1
ip -n "$ROUTER_NS" route add 10.79.0.0/24 via 10.78.0.2
gid=$(getent group "$TB_GROUP" | cut -d: -f3)
ip netns exec "$TB_SERVER_NS" sysctl -qw "net.ipv4.ping_group_range=$gid $gid"
tb_log "testbed: $TB_SERVER_NS 10.78.0.1 -> 10.79.0.2 via router 10.78.0.254 (same link: redirect)"

# ICMP only: a gRPC connection would take the redirect first.
cat >"$TB_DIR/server.textproto" <<'CONF'
defaults { interval_ms: 100 timeout_ms: 1000 grpc_enabled: false }
targets { name: "agent" host: "10.79.0.2" }
CONF
chmod 644 "$TB_DIR/server.textproto"
tb_start_server server --config="$TB_DIR/server.textproto"
tb_wait_status server agent icmp ok >/dev/null
sleep 3 # 30 probes
json=$(tb_http server "/v1/targets/agent/stats?window=1m")
ip netns exec "$TB_SERVER_NS" cat /proc/net/snmp >"$TB_DIR/snmp.txt"
python3 - "$json" "$TB_DIR/snmp.txt" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
icmp_lines = [l.split() for l in open(sys.argv[2]) if l.startswith("Icmp:")]
redirects = int(dict(zip(icmp_lines[0], icmp_lines[1]))["InRedirects"])
icmp = next(p for p in doc["probes"] if p["kind"] == "PROBE_KIND_ICMP")
sent, received = int(icmp.get("sent", 0)), int(icmp.get("received", 0))
failures = icmp.get("failures", {})
print(f"ICMP behind a redirect: {redirects} redirect(s) received, sent {sent}, "
      f"received {received}, failures {failures}, status {icmp['status']}")
if redirects < 1:
    sys.exit("FAIL: the testbed produced no ICMP redirect")
if sent < 20 or failures or received != sent:
    sys.exit("FAIL: a redirect ended a probe")
PY
echo "PASS: ICMP redirects do not end probes"
