#!/usr/bin/env bash
# One target's ICMP sends are rejected by a firewall rule in the server
# namespace (iptables OUTPUT REJECT: sendto fails with EPERM after the kernel
# has already numbered the packet for timestamping). The other target must
# not notice: its ICMP median stays within the accuracy bounds beside ping
# and every one of its samples keeps kernel send stamps (issue 11: when TX
# stamps were matched by counting OPT_ID keys, each failed send shifted the
# later stamps, and the other target's samples lost their kernel stamps or
# took another probe's). The rejected target reads down, "not permitted".
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed agent
ip netns exec "$TB_SERVER_NS" iptables -I OUTPUT -d "$TB_SPARE_ADDR" -p icmp -j REJECT
tb_start_server server --target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" \
  --target="rejected=$TB_SPARE_ADDR:$TB_AGENT_PORT" --interval=100ms --timeout=1s
tb_wait_status server agent icmp ok >/dev/null
tb_wait_status server rejected icmp down 10 >"$TB_DIR/rejected.json"
grep -q "Operation not permitted" "$TB_DIR/rejected.json" ||
  tb_fail "rejected target: expected 'Operation not permitted': $(cat "$TB_DIR/rejected.json")"
tb_log "rejected target: ICMP down, sendto: Operation not permitted"

out=$TB_DIR
since=$(tb_now_ns)
tb_cli_bg "$out/icmp.json" server watch agent --kind=icmp --output=json --count="$TB_SAMPLES"
watch=$TB_BG_PID
tb_ping "$out/ping.txt" "$TB_SAMPLES" 0.1
wait "$watch" || true # exit 1 when a sample failed; the check counts them
if ! tb_check icmp-vs-ping --label "ICMP beside a rejected target" \
  --ping "$out/ping.txt" --watch "$out/icmp.json" --since "$since"; then
  # Which samples were not ok or not kernel-stamped, to tell a stamp
  # mismatch from a lost probe.
  grep -v -e TIMESTAMP_SOURCE_KERNEL "$out/icmp.json" | head -5 >&2 || true
  tb_fail "accuracy or kernel stamps beside a rejected target (figures above)"
fi
echo "PASS: a target whose sends are rejected leaves the other's kernel stamps and median intact"
