#!/usr/bin/env bash
# The project's ICMP probe beside ping, fping and blackbox_exporter's ICMP
# module, on the namespace testbed (tests/e2e/netns.sh) at 0, 1 and 5 ms
# injected delay. At each delay the four run in ONE window, each sending one
# echo every 100 ms to the agent namespace (10.77.0.2):
#   latency-server  interval 100 ms, ICMP only; exact RTTs from raw samples
#                   (latencyctl watch --output=json); nobody, datagram socket
#                   with kernel timestamps (ping_group_range set by netns.sh)
#   ping            ping -i 0.1 as root; exact RTTs from e2e_check.py's tap
#                   (ping prints 1 to 10 ms rounded to 10 us)
#   fping           fping -C N -p 100 -q as root (raw socket); prints 1 to
#                   10 ms rounded to 10 us
#   blackbox        prometheus-blackbox-exporter in the server namespace as
#                   nobody (so an unprivileged datagram socket, like the
#                   server), module `prober: icmp`, /probe scraped every
#                   100 ms; the figure is probe_icmp_duration_seconds
#                   {phase="rtt"} (probe_duration_seconds, which adds name
#                   resolution and socket setup, is printed after the table)
# Prints a markdown table: per delay and tool the sample count, median and
# p99, median minus ping's, and median minus the injected delay. Budget
# (DESIGN.md §6): the server's median at most 10 us above ping's. Exit
# status 1 only when a tool produced no samples (budgets are reported, not
# enforced: a shared VM is noisy).
#
#   bench/run_icmp_compare.sh            300 echoes per tool and delay (~2 min)
#   SMOKE=1 bench/run_icmp_compare.sh    30 echoes per tool and delay (~30 s)
#   COUNT=N DELAYS="0 1 5" bench/run_icmp_compare.sh
# Needs root, the build (build/ or LATENCY_BUILD_DIR), fping and
# prometheus-blackbox-exporter (scripts/setup.sh).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/../tests/e2e/netns.sh disable=SC1091 # followed with -x
source "$BENCH_DIR/../tests/e2e/netns.sh"
STATS="$BENCH_DIR/bench_stats.py"

if [ "${SMOKE:-}" = 1 ]; then COUNT=${COUNT:-30}; else COUNT=${COUNT:-300}; fi
DELAYS=${DELAYS:-"0 1 5"}
BB_PORT=9115 # in the server namespace, so always free
for tool in fping prometheus-blackbox-exporter; do
  command -v "$tool" >/dev/null || tb_fail "$tool not installed (scripts/setup.sh)"
done

tb_testbed agent
out=$TB_DIR
cat >"$out/targets.textproto" <<CONFIG
defaults { interval_ms: 100 timeout_ms: 1000 grpc_enabled: false }
targets { name: "agent" host: "$TB_AGENT_ADDR" }
CONFIG
cat >"$out/blackbox.yml" <<CONFIG
modules:
  icmp:
    prober: icmp
    timeout: 2s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
CONFIG
chmod 644 "$out/targets.textproto" "$out/blackbox.yml"
tb_start_server server --config="$out/targets.textproto"
tb_spawn blackbox "$TB_SERVER_NS" user prometheus-blackbox-exporter \
  --config.file="$out/blackbox.yml" --web.listen-address="127.0.0.1:$BB_PORT"
tb_wait_log blackbox "Listening on" >/dev/null
bb_url="http://127.0.0.1:$BB_PORT/probe?module=icmp&target=$TB_AGENT_ADDR"
probe=$(ip netns exec "$TB_SERVER_NS" curl -sS --max-time 5 "$bb_url&debug=true")
grep -q "^probe_success 1" <<<"$probe" || tb_fail "blackbox ICMP probe failed: $probe"
# Its debug log names the socket: "Setting TTL (IPv4 unprivileged)".
socket=$(grep -o -m1 "Setting TTL ([^)]*)" <<<"$probe" | sed 's/.*(\(.*\))/\1/' || echo "?")
tb_log "blackbox_exporter (pid $(tb_pid blackbox), $TB_USER) probes; socket: $socket"
tb_wait_status server agent icmp ok >/dev/null

# summary FILE_FLAG FILE [FLAGS]: "n median_ms p99_ms"
summary() { python3 "$STATS" summary "$@" || true; }
# row DELAY TOOL "n median p99" PING_MEDIAN: one table row, differences in us
row() {
  local delay=$1 tool=$2 n median p99
  read -r n median p99 <<<"$3"
  if [ "$median" = - ]; then
    printf '| %s ms | %s | 0 | - | - | - | - |\n' "$delay" "$tool"
    return 1
  fi
  awk -v d="$delay" -v t="$tool" -v n="$n" -v m="$median" -v p="$p99" -v ping="$4" \
    'BEGIN { printf "| %s ms | %s | %d | %.3f | %.3f | %+.1f | %+.1f |\n",
             d, t, n, m, p, (m - ping) * 1000, (m - d) * 1000 }'
}

rc=0
rows=()
budget=()
durations=()
for delay in $DELAYS; do
  if [ "$delay" != 0 ]; then
    tb_inject --delay_ms="$delay"
    sleep 1
  fi
  since=$(tb_now_ns)
  tb_cli_bg "$out/server-$delay.json" server watch agent --kind=icmp --output=json \
    --count="$COUNT"
  watch_pid=$TB_BG_PID
  tb_spawn "blackbox-scrape-$delay" "$TB_SERVER_NS" root python3 "$STATS" blackbox \
    --url "$bb_url" --count "$COUNT" --interval_s 0.1
  bb_pid=$(tb_pid "blackbox-scrape-$delay")
  ip netns exec "$TB_SERVER_NS" fping -C "$COUNT" -p 100 -q "$TB_AGENT_ADDR" \
    2>"$out/fping-$delay.txt" &
  fping_pid=$!
  tb_ping "$out/ping-$delay.txt" "$COUNT" 0.1 || true
  wait "$fping_pid" || true # 1 when an echo was lost; the counts show it
  wait "$watch_pid" || true
  wait "$bb_pid" || true
  cp "$out/blackbox-scrape-$delay.log" "$out/blackbox-$delay.txt"

  ping_s=$(summary --ping "$out/ping-$delay.txt")
  ping_median=$(awk '{print $2}' <<<"$ping_s")
  [ "$ping_median" != - ] || ping_median=0
  server_s=$(summary --watch "$out/server-$delay.json" --kind icmp --since "$since")
  rows+=("$(row "$delay" "latency-server" "$server_s" "$ping_median")") || rc=1
  rows+=("$(row "$delay" "ping" "$ping_s" "$ping_median")") || rc=1
  rows+=("$(row "$delay" "fping" "$(summary --fping "$out/fping-$delay.txt")" \
    "$ping_median")") || rc=1
  rows+=("$(row "$delay" "blackbox_exporter (rtt phase)" \
    "$(summary --blackbox "$out/blackbox-$delay.txt")" "$ping_median")") || rc=1
  budget+=("$(awk -v d="$delay" -v s="$(awk '{print $2}' <<<"$server_s")" -v p="$ping_median" \
    'BEGIN { diff = (s - p) * 1000;
             printf "%s ms: %+.1f us (%s)", d, diff, diff <= 10 ? "met" : "MISSED" }')")
  durations+=("$delay ms: $(summary --blackbox "$out/blackbox-$delay.txt" --duration |
    awk '{printf "median %.3f ms, p99 %.3f ms", $2, $3}')")
done
tb_inject_off

echo "| injected delay | tool | n | median (ms) | p99 (ms) | median − ping (µs) | median − delay (µs) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
join() { # join ITEMS...: "a; b; c"
  local IFS=$'\n'
  sed -z 's/\n/; /g; s/; $//' <<<"$*"
}
echo "Budget, latency-server median at most 10 µs above ping's: $(join "${budget[@]}")."
echo "blackbox_exporter probe_duration_seconds (whole probe, with setup): $(join "${durations[@]}")."
echo "blackbox_exporter socket (from its debug output): $socket."
exit "$rc"
