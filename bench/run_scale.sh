#!/usr/bin/env bash
# latency-server's cost at scale: 1, 100, 1,000 and 10,000 ICMP targets at
# 1 Hz, then with 1,000 gRPC targets, each run a fresh server. The targets
# are addresses in 127.0.0.0/8, which the loopback device answers in full
# (ICMP by the kernel; gRPC by ONE latency-agent listening on 0.0.0.0, so
# every 127.x address reaches it and each gRPC target is its own channel and
# TCP connection). Server and agent run as nobody in a namespace of the
# testbed (tests/e2e/netns.sh): datagram ICMP, kernel stamps, private ports.
#
# Targets (one --config textproto per run):
#   ref          127.0.0.1, ICMP only, every 100 ms (10 Hz, so the window
#                holds enough samples for a median); always present
#   i-N          127.1.x.y (then 127.3.x.y, ... past 62,500), ICMP only,
#                1 Hz (ICMP targets - 1 of them)
#   g-N          127.2.x.y, gRPC only (unary, or GRPC_MODE), 1 Hz
# After WARMUP seconds, over a WINDOW-second window: the server's CPU
# (utime + stime from /proc/PID/stat, % of one core, and each part), RSS
# (VmRSS after warm-up, before any scrape; at the end; VmHWM at the end,
# i.e. with the run's three Prometheus scrapes; and what the first scrape
# alone adds: VmRSS before it, VmHWM after it with the peak reset just
# before; the last plain scrape's size and time and a gzip one's wire size
# and time, as Prometheus asks), the warm RSS per target (KB: for a run of N ICMP targets,
# or of 1 ICMP + G gRPC, its warm RSS less that of the latest 1:0 run
# before it, divided by the N - 1 or G targets it adds; "-" for mixed runs
# and without a 1:0 run before), open fds and threads, the largest prober lag
# (latency_prober_lag_seconds at the end: the gauge is the maximum over about
# the last minute, so with WARMUP + WINDOW under 70 s it includes the end of
# the warm-up), probes completed per second
# and lost, skipped probes, the agent's CPU, and the exact ICMP median and
# p99 of `ref` (latencyctl watch) and its ratio to the first run's (1
# target), beside `ping -i 0.1 127.0.0.1` in the same window (a control:
# loopback RTTs shrink when the vCPUs are busy, whoever keeps them busy).
# Prints a markdown table. Budget (DESIGN.md §6): 10k ICMP + 1k gRPC at
# 1 Hz < 50% of one core, < 256 MB RSS, ICMP medians within 10% of the
# single-target run. Exit status 1 only when a run produced no samples.
# Raises the soft fd limit when 1,024 + the gRPC targets do not fit.
#
#   bench/run_scale.sh              RUNS="1:0 100:0 1000:0 10000:0 1:1000 10000:1000",
#                                   30 s warm-up, 30 s window (~7 min)
#   SMOKE=1 bench/run_scale.sh      RUNS="1:0 100:0 100:100", 3 s + 5 s (~35 s)
#   RUNS="ICMP:GRPC ..." WARMUP=S WINDOW=S bench/run_scale.sh
#   HISTORY=1 ...                  with --history_db (a file per run), else off
#   GRPC_MODE=stream ...           gRPC targets probe on a stream (default unary)
#   WIRE_STAMPS=1 ...              agent and server with --wire_stamps (and
#                                   CAP_NET_RAW)
#   TARGETS=veth ...               ICMP targets in another namespace instead of
#                                   on loopback: 10.128.0.0/14, a local route
#                                   in the testbed's agent namespace behind the
#                                   veth pair, whose receive work (the echo, and
#                                   the replies' way in) RPS steers to CPU 1
#                                   while the server is pinned to CPU 0, as a
#                                   real network answers elsewhere (the last
#                                   column, the machine's softirq time, shows
#                                   what moved there)
#   RSS_OUT=FILE ...               also writes "ICMP GRPC WARM_RSS_KB" per run
#                                   (tests/e2e/memory_claim_test.sh reads it)
#   PERF_OUT=PREFIX ...            also `perf record` (DWARF stacks) the server
#                                   (and the agent) over each window into
#                                   PREFIX-RUN-server.data (-agent.data); the
#                                   CPU figures then include perf's own cost
# Needs root and the build (build/ or LATENCY_BUILD_DIR). Runs under
# `flock /tmp/e2e.lock` (tb_serialize), like the e2e tests that take it.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/../tests/e2e/netns.sh disable=SC1091 # followed with -x
source "$BENCH_DIR/../tests/e2e/netns.sh"
tb_serialize "$@"
STATS="$BENCH_DIR/bench_stats.py"

if [ "${SMOKE:-}" = 1 ]; then
  RUNS=${RUNS:-"1:0 100:0 100:100"}
  WARMUP=${WARMUP:-3}
  WINDOW=${WINDOW:-5}
else
  RUNS=${RUNS:-"1:0 100:0 1000:0 10000:0 1:1000 10000:1000"}
  WARMUP=${WARMUP:-30}
  WINDOW=${WINDOW:-30}
fi
HZ=$(getconf CLK_TCK)

# Each gRPC target holds a connection (an fd) in the server and in the
# agent; both inherit this shell's limit.
max_grpc=0
for run in $RUNS; do
  grpc=${run#*:}
  ((grpc > max_grpc)) && max_grpc=$grpc
done
need_fds=$((max_grpc + 1024))
if [ "$(ulimit -n)" != unlimited ] && (("$(ulimit -n)" < need_fds)); then
  ulimit -n "$need_fds" || tb_fail "ulimit -n is $(ulimit -n), need $need_fds for $max_grpc gRPC targets"
fi

wire=()
if [ "${WIRE_STAMPS:-}" = 1 ]; then
  wire=(--wire_stamps)
  # shellcheck disable=SC2034 # read by netns.sh: the packet taps need it
  TB_USER_CAPS=net_raw
fi

tb_testbed bare
targets_net=127
if [ "${TARGETS:-loopback}" = veth ]; then
  targets_net=10
  ip -n "$TB_AGENT_NS" route add local 10.128.0.0/14 dev lo
  ip -n "$TB_SERVER_NS" route add 10.128.0.0/14 via "$TB_AGENT_ADDR"
  for rps_ns in "$TB_SERVER_NS" "$TB_AGENT_NS"; do
    ip netns exec "$rps_ns" sh -c "echo 2 >/sys/class/net/$TB_DEV/queues/rx-0/rps_cpus"
  done
  tb_log "ICMP targets: 10.128.0.0/14 in $TB_AGENT_NS, receive work on CPU 1, server on CPU 0"
fi
ns=$TB_SERVER_NS
out=$TB_DIR
if ((max_grpc > 0)); then
  tb_spawn agent "$ns" user "$(tb_user_binary "$TB_AGENT_BIN")" --listen=0.0.0.0:0 "${wire[@]}"
  agent_port=$(tb_wait_log agent "serving on port [0-9]+" | grep -o "port [0-9]*" | cut -d' ' -f2)
  tb_log "latency-agent (pid $(tb_pid agent)) on 0.0.0.0:$agent_port in $ns"
fi

# config ICMP GRPC: the textproto for one run.
config() {
  awk -v icmp="$1" -v grpc="$2" -v port="${agent_port:-0}" -v mode="${GRPC_MODE:-unary}" \
    -v net="$targets_net" 'BEGIN {
    print "defaults { interval_ms: 1000 timeout_ms: 1000 }"
    print "targets { name: \"ref\" host: \"127.0.0.1\"" \
          " probe { interval_ms: 100 grpc_enabled: false } }"
    # 62,500 per /16: 127.1, then 127.3, 127.4, ... (127.2 is for gRPC);
    # TARGETS=veth: 10.128, 10.129, ...
    for (i = 1; i < icmp; i++) {
      block = int(i / 62500)
      printf "targets { name: \"i-%d\" host: \"%d.%d.%d.%d\" probe { grpc_enabled: false } }\n",
             i, net, net == 10 ? 128 + block : (block == 0 ? 1 : block + 2),
             int(i % 62500 / 250), i % 250 + 1
    }
    for (i = 0; i < grpc; i++)
      printf "targets { name: \"g-%d\" host: \"127.2.%d.%d\" grpc_port: %d" \
             " probe { icmp_enabled: false grpc_mode: GRPC_MODE_%s } }\n",
             i, int(i / 250), i % 250 + 1, port, toupper(mode)
  }'
}

softirq_ticks() { # the machine's softirq time, clock ticks over all CPUs
  awk '$1 == "cpu" {print $8}' /proc/stat
}
ticks() { # PID: "utime+stime utime" in clock ticks
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13, $12}'
}
status_kb() { # PID FIELD: a /proc/PID/status value in kB (or a count)
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}
prom() { # FILE QUERY...: see bench_stats.py prom
  python3 "$STATS" prom --file "$@"
}

# scrape SERVER [gzip]: the Prometheus text on stdout; with gzip, as
# Prometheus asks for it, "WIRE_BYTES SECONDS" instead.
scrape() {
  local url
  url="http://127.0.0.1:$(tb_server_port "$1" http)/metrics?format=prometheus"
  if [ "${2:-}" = gzip ]; then
    ip netns exec "$ns" curl -sS --max-time 300 -H 'Accept-Encoding: gzip' \
      -o /dev/null -w '%{size_download} %{time_total}\n' "$url"
  else
    ip netns exec "$ns" curl -sS --max-time 300 "$url"
  fi
}

rows=()
lag_rows=()
rc=0
base_median=
base_rss=
i=0
for run in $RUNS; do
  i=$((i + 1))
  icmp=${run%:*}
  grpc=${run#*:}
  name="server-$i"
  config "$icmp" "$grpc" >"$out/targets-$i.textproto"
  chmod 644 "$out/targets-$i.textproto"
  tb_log "run $i: $icmp ICMP + $grpc gRPC targets; warm-up ${WARMUP}s, window ${WINDOW}s"
  # HISTORY=1: each run writes its history (a file of its own).
  history=(--history_db=)
  if [ "${HISTORY:-}" = 1 ]; then
    mkdir -p "$out/history-$i"
    chmod 777 "$out/history-$i"
    history=(--history_db="$out/history-$i/history.db")
  fi
  tb_start_server "$name" --config="$out/targets-$i.textproto" --max_watchers=4 \
    "${history[@]}" "${wire[@]}"
  pid=$(tb_pid "$name")
  if [ "${TARGETS:-loopback}" = veth ]; then taskset -a -p -c 0 "$pid" >/dev/null; fi
  tb_wait_status "$name" ref icmp ok 30 >/dev/null
  sleep "$WARMUP"
  rss_warm=$(status_kb "$pid" VmRSS)
  if [ -n "${RSS_OUT:-}" ]; then echo "$icmp $grpc $rss_warm" >>"$RSS_OUT"; fi
  if [ "$icmp" = 1 ] && [ "$grpc" = 0 ]; then base_rss=$rss_warm; fi
  rss_per_target=$(awk -v i="$icmp" -v g="$grpc" -v r="$rss_warm" -v b="${base_rss:-}" 'BEGIN {
    if (b == "" || (i > 1 && g > 0) || (i <= 1 && g == 0)) print "-"
    else printf "%.1f", (r - b) / (g > 0 ? g : i - 1)
  }')

  # The first scrape's own peak: VmHWM reset to the RSS of now (clear_refs
  # 5), so it rises only for the scrape, into a process that has not
  # rendered before (no freed render memory to reuse).
  echo 5 >"/proc/$pid/clear_refs"
  rss_quiet=$(status_kb "$pid" VmRSS)
  # The exposition copies its counters when the scrape starts: the rate's
  # time runs from there (a 100k-target scrape takes seconds).
  scrape0=$(tb_now_ns)
  scrape "$name" >"$out/prom-$i-start.txt"
  hwm_first=$(status_kb "$pid" VmHWM)
  since=$(tb_now_ns)
  t0=$since
  read -r cpu0 user0 < <(ticks "$pid")
  softirq0=$(softirq_ticks)
  agent0=0
  if ((grpc > 0)); then read -r agent0 _ < <(ticks "$(tb_pid agent)"); fi
  tb_cli_bg "$out/ref-$i.json" "$name" watch ref --kind=icmp --output=json \
    --count=$((WINDOW * 10))
  watch_pid=$TB_BG_PID
  # Control: ping to the same address in the same window, to tell the
  # server's own inflation from the machine's (busy vCPUs answer faster).
  ip netns exec "$ns" ping -n -i 0.1 -c $((WINDOW * 10)) 127.0.0.1 >"$out/ping-$i.txt" &
  ping_pid=$!
  perf_pids=()
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -q --call-graph dwarf,16384 -F 499 -p "$pid" -o "$PERF_OUT-$i-server.data" -- sleep "$WINDOW" 2>/dev/null &
    perf_pids+=($!)
    if ((grpc > 0)); then
      perf record -q --call-graph dwarf,16384 -F 499 -p "$(tb_pid agent)" -o "$PERF_OUT-$i-agent.data" -- sleep "$WINDOW" 2>/dev/null &
      perf_pids+=($!)
    fi
  fi
  sleep "$WINDOW"
  read -r cpu1 user1 < <(ticks "$pid")
  softirq1=$(softirq_ticks)
  agent1=0
  if ((grpc > 0)); then read -r agent1 _ < <(ticks "$(tb_pid agent)"); fi
  t1=$(tb_now_ns)
  rss_end=$(status_kb "$pid" VmRSS)
  fds=$(find "/proc/$pid/fd" -mindepth 1 | wc -l)
  threads=$(status_kb "$pid" Threads)
  wait "$watch_pid" || true
  wait "$ping_pid" || true
  for perf_pid in "${perf_pids[@]}"; do wait "$perf_pid" || true; done
  scrape1=$(tb_now_ns)
  scrape "$name" >"$out/prom-$i-end.txt"
  scrape_ms=$((($(tb_now_ns) - scrape1) / 1000000))
  scrape_mb=$(awk -v b="$(stat -c %s "$out/prom-$i-end.txt")" 'BEGIN {printf "%.1f", b / 1048576}')
  # As Prometheus asks: gzip; its size on the wire and time.
  read -r gzip_bytes gzip_secs < <(scrape "$name" gzip)
  gzip_scrape=$(awk -v b="$gzip_bytes" -v s="$gzip_secs" 'BEGIN {printf "%.1f MB, %d ms", b / 1048576, s * 1000}')
  hwm=$(status_kb "$pid" VmHWM)
  tb_stop "$name"

  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')
  cpu=$(awk -v d=$((cpu1 - cpu0)) -v u=$((user1 - user0)) -v s="$secs" -v hz="$HZ" \
    'BEGIN {printf "%.1f (%.1f / %.1f)", d / hz / s * 100, u / hz / s * 100, (d - u) / hz / s * 100}')
  agent_cpu=$(awk -v d=$((agent1 - agent0)) -v s="$secs" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz / s * 100}')
  softirq=$(awk -v d=$((softirq1 - softirq0)) -v s="$secs" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz / s * 100}')
  # Probes completed and lost, skipped probes: the counters' difference
  # between the two scrapes.
  q=(latency_probes_total "latency_probes_total,result=ok" latency_skipped_probes_total)
  read -r total0 ok0 skipped0 < <(prom "$out/prom-$i-start.txt" "${q[@]}")
  read -r total1 ok1 skipped1 lag_icmp lag_grpc < <(prom "$out/prom-$i-end.txt" "${q[@]}" \
    latency_prober_lag_seconds,kind=icmp:max latency_prober_lag_seconds,kind=grpc:max)
  read -r completed lost skipped < <(awk -v t0="$total0" -v o0="$ok0" -v s0="$skipped0" \
    -v t1="$total1" -v o1="$ok1" -v s1="$skipped1" \
    'BEGIN {print t1 - t0, (t1 - t0) - (o1 - o0), s1 - s0}')
  scrape_secs=$(awk -v a="$scrape0" -v b="$scrape1" 'BEGIN {print (b - a) / 1e9}')
  read -r n median p99 <<<"$(python3 "$STATS" summary --watch "$out/ref-$i.json" --kind icmp \
    --since "$since" || true)"
  read -r _ ping_median _ <<<"$(python3 "$STATS" summary --ping "$out/ping-$i.txt" || true)"
  # The history writer's round starts at second 2 of a minute (timeout 1 s
  # + 1 s grace): ref's send lag then, against the rest of the window (no
  # scrape falls inside the watch).
  lag_rows+=("| $icmp | $grpc | $([ "${HISTORY:-}" = 1 ] && echo on || echo off) | $(python3 "$STATS" minute_lag \
    --watch "$out/ref-$i.json" --kind icmp --since "$since" --from_s 2 --to_s 5 |
    awk '{printf "%s | %s | %s | %s / %s", $1, $2, $3, $4, $5}') |")
  if [ "$median" = - ]; then rc=1; fi
  if [ -z "$base_median" ] && [ "$icmp" = 1 ] && [ "$grpc" = 0 ] && [ "$median" != - ]; then
    base_median=$median
  fi
  ratio=$(awk -v m="$median" -v b="${base_median:-0}" \
    'BEGIN {if (b > 0 && m != "-") printf "%.2f", m / b; else print "-"}')
  rows+=("$(awk -v icmp="$icmp" -v grpc="$grpc" -v cpu="$cpu" -v rw="$rss_warm" -v re="$rss_end" \
    -v hwm="$hwm" -v rpt="$rss_per_target" -v fds="$fds" -v th="$threads" -v li="$lag_icmp" -v lg="$lag_grpc" \
    -v done="$completed" -v lost="$lost" -v sk="$skipped" -v ss="$scrape_secs" -v n="$n" \
    -v m="$median" -v p="$p99" -v r="$ratio" -v acpu="$agent_cpu" -v si="$softirq" -v pm="$ping_median" \
    -v smb="$scrape_mb" -v sms="$scrape_ms" -v rq="$rss_quiet" -v hf="$hwm_first" -v gz="$gzip_scrape" 'BEGIN {
      lag = sprintf("%.2f", li * 1000) " / " (grpc > 0 ? sprintf("%.2f", lg * 1000) : "-")
      lossp = (done > 0 ? lost / done * 100 : 0)
      ms = (m == "-" ? "-" : sprintf("%.1f", m * 1000))
      ps = (p == "-" ? "-" : sprintf("%.1f", p * 1000))
      ac = (grpc > 0 ? acpu : "-")
      pms = (pm == "-" ? "-" : sprintf("%.1f", pm * 1000))
      dp = ((pm == "-" || m == "-") ? "-" : sprintf("%+.1f", (m - pm) * 1000))
      printf "| %d | %d | %s | %.1f / %.1f / %.1f | %.1f → %.1f (%+.1f%%) | %s | %s MB, %d ms; gzip %s | %d / %d | %s | %.0f (%.2f%%) / %d | %s | %s / %s | %s | %s (%s) | %s | %s |\n",
        icmp, grpc, cpu, rw / 1024, re / 1024, hwm / 1024, rq / 1024, hf / 1024, (hf - rq) / rq * 100, rpt, smb, sms, gz, fds, th, lag,
        done / ss, lossp, sk, n, ms, ps, r, pms, dp, ac, si
    }')")
done

echo "| ICMP targets | gRPC targets | server CPU, % of one core (user / sys) | RSS MB: warm / end / peak | RSS MB before the first scrape → its peak | warm RSS KB per target | Prometheus scrape: text, time; gzip wire, time | fds / threads | max prober lag ms: ICMP / gRPC | probes/s (lost) / skipped | ref n | ref ICMP median / p99 (µs) | ref median ÷ 1 target | ping 127.0.0.1 median µs (ref − ping) | agent CPU (%) | machine softirq (% of a core) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "| ICMP targets | gRPC targets | history | ref send lag ms, max at s 2–4 of a minute | max elsewhere | p99 elsewhere | samples at / elsewhere |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${lag_rows[@]}"
echo
echo "Window ${WINDOW}s after ${WARMUP}s warm-up; $(nproc) vCPUs; ulimit -n $(ulimit -n)."
exit "$rc"
