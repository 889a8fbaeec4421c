#!/usr/bin/env bash
# ICMP targets behind a redirect, IPv4 and IPv6: the server's route to each
# goes through a router on the same link, which forwards the echo request
# back out the interface it came in on and so sends the server an ICMP
# redirect (type 5) or ICMPv6 redirect (type 137) besides forwarding the
# packet. The reply still comes: the probes must read ok (before issue 11 a
# datagram socket's queued redirect became a ttl_exceeded sample). Three
# namespaces on one bridge (no DAD, so IPv6 addresses work at once):
#
#   server 10.78.0.1, fd78::1 ─┐
#   agent  10.78.0.2, fd78::2 ─┼─ br0 in the router namespace, router
#          + 10.79.0.2/32,     │  10.78.0.254, fd78::fe, forwarding
#          + fd79::2/128: the targets the server reaches "via" the router
# Linux sends an IPv6 redirect only when the next hop is link-local, so the
# router routes fd79::/64 via the agent's fe80:: address.
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
tb_on_exit tb_delete_ns "$ROUTER_NS"
trap tb_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ns in "$TB_SERVER_NS" "$TB_AGENT_NS" "$ROUTER_NS"; do
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
    net.ipv6.conf.default.accept_dad=0
done
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
ip -n "$ROUTER_NS" -6 addr add fd78::fe/64 dev br0 nodad
ip -n "$TB_SERVER_NS" -6 addr add fd78::1/64 dev "$TB_DEV" nodad
ip -n "$TB_AGENT_NS" -6 addr add fd78::2/64 dev "$TB_DEV" nodad
ip -n "$TB_AGENT_NS" -6 addr add fd79::2/128 dev "$TB_DEV" nodad
ip -n "$TB_SERVER_NS" -6 route add fd79::/64 via fd78::fe
ip netns exec "$ROUTER_NS" sysctl -qw net.ipv6.conf.all.forwarding=1
agent_ll=""
for _ in $(seq 50); do
  agent_ll=$(ip -n "$TB_AGENT_NS" -6 -o addr show dev "$TB_DEV" scope link |
    awk '{sub("/.*", "", $4); print $4; exit}')
  [ -n "$agent_ll" ] && break
  sleep 0.1
done
[ -n "$agent_ll" ] || tb_fail "the agent's veth has no IPv6 link-local address"
ip -n "$ROUTER_NS" -6 route add fd79::/64 via "$agent_ll" dev br0
gid=$(getent group "$TB_GROUP" | cut -d: -f3)
ip netns exec "$TB_SERVER_NS" sysctl -qw "net.ipv4.ping_group_range=$gid $gid"
tb_log "testbed: $TB_SERVER_NS 10.78.0.1 -> 10.79.0.2 via router 10.78.0.254, fd78::1 -> fd79::2 via fd78::fe (same link: redirects)"

# ICMP only: a gRPC connection would take the redirect first.
cat >"$TB_DIR/server.textproto" <<'CONF'
defaults { interval_ms: 100 timeout_ms: 1000 grpc_enabled: false }
targets { name: "agent" host: "10.79.0.2" }
targets { name: "agent6" host: "fd79::2" }
CONF
chmod 644 "$TB_DIR/server.textproto"
tb_start_server server --config="$TB_DIR/server.textproto"
tb_wait_status server agent icmp ok >/dev/null
tb_wait_status server agent6 icmp ok >/dev/null
sleep 3 # 30 probes each
ip netns exec "$TB_SERVER_NS" cat /proc/net/snmp /proc/net/snmp6 >"$TB_DIR/snmp.txt"
for target in agent agent6; do
  tb_http server "/v1/targets/$target/stats?window=1m" >"$TB_DIR/$target.json"
done
python3 - "$TB_DIR" <<'PY'
import json, sys
d = sys.argv[1]
lines = open(f"{d}/snmp.txt").read().splitlines()
icmp_lines = [l.split() for l in lines if l.startswith("Icmp:")]
redirects = {
    "agent": int(dict(zip(icmp_lines[0], icmp_lines[1]))["InRedirects"]),
    "agent6": int(next(l.split()[1] for l in lines
                       if l.startswith("Icmp6InRedirects"))),
}
failed = False
for target in ("agent", "agent6"):
    doc = json.load(open(f"{d}/{target}.json"))
    icmp = next(p for p in doc["probes"] if p["kind"] == "PROBE_KIND_ICMP")
    sent, received = int(icmp.get("sent", 0)), int(icmp.get("received", 0))
    failures = icmp.get("failures", {})
    print(f"{target} behind a redirect: {redirects[target]} redirect(s) "
          f"received, sent {sent}, received {received}, failures {failures}, "
          f"status {icmp['status']}")
    if redirects[target] < 1:
        print(f"FAIL: the testbed produced no redirect for {target}")
        failed = True
    if sent < 20 or failures or received != sent:
        print(f"FAIL: a redirect ended a probe of {target}")
        failed = True
sys.exit(1 if failed else 0)
PY
echo "PASS: ICMP and ICMPv6 redirects do not end probes"
