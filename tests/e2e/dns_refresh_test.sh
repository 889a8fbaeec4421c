#!/usr/bin/env bash
# --dns_refresh end to end: the server resolves a target's host name
# through its namespace's /etc/hosts (ip netns exec bind-mounts
# /etc/netns/NS/hosts over it). When the name moves to the agent host's
# other address, the same server process probes the new address within a
# few refresh periods, logs the move, and the target stays ok.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed agent
# The agent host's second address, where the name moves to.
ip -n "$TB_AGENT_NS" addr add "$TB_SPARE_ADDR/$TB_PREFIX_LEN" dev "$TB_DEV"
hosts_dir="/etc/netns/$TB_SERVER_NS"
tb_on_exit rm -rf "$hosts_dir"
mkdir -p "$hosts_dir"
hosts="$hosts_dir/hosts"
echo "$TB_AGENT_ADDR agent-host.test" >"$hosts"
chmod 644 "$hosts"

tb_start_server server --target="moving=agent-host.test:$TB_AGENT_PORT" \
  --interval=100ms --timeout=1s --dns_refresh=1s
tb_wait_status server moving icmp ok >/dev/null
targets=$(tb_http server /v1/targets)
case "$targets" in
  *"\"address\":\"$TB_AGENT_ADDR\""*) ;;
  *) tb_fail "expected address $TB_AGENT_ADDR first: $targets" ;;
esac

# Same inode (truncate and write), so the bind mount shows the new text.
echo "$TB_SPARE_ADDR agent-host.test" >"$hosts"
moved_at=$SECONDS
until [[ "$(tb_http server /v1/targets)" == *"\"address\":\"$TB_SPARE_ADDR\""* ]]; do
  ((SECONDS - moved_at <= 15)) || tb_fail "still not $TB_SPARE_ADDR 15 s after the change"
  sleep 0.2
done
tb_wait_log server "target moving: agent-host.test now resolves to $TB_SPARE_ADDR" >/dev/null
# Probed there and answered: the latest ICMP probe has an RTT again (a
# probe lost in the move may leave it "degraded" for the minute's window).
received() {
  tb_http server /v1/targets/moving/stats | grep -oE '"received":[0-9]+' | head -1 |
    grep -oE '[0-9]+'
}
before=$(received)
sleep 1
after=$(received)
((after > before)) || tb_fail "no ICMP reply from $TB_SPARE_ADDR (received $before -> $after)"
echo "moved to $TB_SPARE_ADDR after $((SECONDS - moved_at)) s (dns_refresh 1 s)"
echo "PASS: --dns_refresh re-resolves a moved name without a restart"
