#!/usr/bin/env bash
# Query load while probing: latency-server probes one latency-agent on
# loopback (ICMP and unary gRPC, every 100 ms; both as nobody in a
# namespace of the testbed, tests/e2e/netns.sh, so ports are private), and
# for PHASE seconds each, one after the other:
#   quiet          no load
#   /metrics JSON  wrk -t2 -c16 --latency on GET /metrics
#   /metrics Prometheus  the same with -H 'Accept: text/plain'
#   gRPC GetLatency      bench/query_load (build/bench/query_load): 16 calls
#                  in flight on 16 connections, the gRPC twin of wrk -c16
#   control        two busy loops (sh), no queries: CPU contention alone
#   quiet (after)  no load again, to show the drift between quiet windows
# During each phase (from 1 s after the load starts to 1 s before it ends)
# the exact ICMP and gRPC probe medians and p99 come from raw samples
# (latencyctl watch --output=json), and the server's CPU from
# /proc/PID/stat. Prints a markdown table: req/s, the load's p50/p99,
# errors, server CPU, and each probe median with its movement (%) from the
# quiet window. Budget (DESIGN.md §6): /metrics >= 20k req/s while probing,
# probe medians disturbed < 10%. Everything (wrk, the server, the agent)
# shares this machine's CPUs. Exit status 1 only when a phase produced no
# samples or a load tool failed.
#
#   bench/run_query_load.sh            10 s phases (~70 s)
#   SMOKE=1 bench/run_query_load.sh    4 s phases (~30 s)
#   PHASE=S CONNECTIONS=N bench/run_query_load.sh
# Needs root, the build (build/ or LATENCY_BUILD_DIR, with the bench
# target query_load) and wrk (scripts/setup.sh).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/../tests/e2e/netns.sh disable=SC1091 # followed with -x
source "$BENCH_DIR/../tests/e2e/netns.sh"
STATS="$BENCH_DIR/bench_stats.py"
QUERY_LOAD="${QUERY_LOAD_BINARY:-$TB_BUILD_DIR/bench/query_load}"

if [ "${SMOKE:-}" = 1 ]; then PHASE=${PHASE:-4}; else PHASE=${PHASE:-10}; fi
CONNECTIONS=${CONNECTIONS:-16}
((PHASE >= 3)) || tb_fail "PHASE must be at least 3 s"
command -v wrk >/dev/null || tb_fail "wrk not installed (scripts/setup.sh)"
[ -x "$QUERY_LOAD" ] || tb_fail "not built: $QUERY_LOAD (cmake --build build --target query_load)"

tb_testbed bare
ns=$TB_SERVER_NS
out=$TB_DIR
tb_spawn agent "$ns" user "$(tb_user_binary "$TB_AGENT_BIN")" --listen=127.0.0.1:0
agent_port=$(tb_wait_log agent "serving on port [0-9]+" | grep -o "port [0-9]*" | cut -d' ' -f2)
tb_start_server server --target="agent=127.0.0.1:$agent_port" --interval=100ms --timeout=1s
tb_wait_status server agent icmp ok >/dev/null
tb_wait_status server agent grpc ok >/dev/null
pid=$(tb_pid server)
http="http://127.0.0.1:$(tb_server_port server http)/metrics"
grpc="127.0.0.1:$(tb_server_port server grpc)"
HZ=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
sleep 2 # a few probes on warm connections before the first window

# phase NAME LOAD...: runs LOAD (if any) in the server namespace for PHASE
# seconds, and measures meanwhile; LOAD's output in NAME.load.
phase() {
  local name=$1 load_pid=
  shift
  if [ "$#" -gt 0 ]; then
    ip netns exec "$ns" "$@" >"$out/$name.load" 2>&1 &
    load_pid=$!
  fi
  sleep 1
  local since t0 c0 icmp_pid grpc_pid count=$(((PHASE - 2) * 10))
  since=$(tb_now_ns)
  t0=$since
  c0=$(ticks "$pid")
  tb_cli_bg "$out/$name.icmp.json" server watch agent --kind=icmp --output=json --count="$count"
  icmp_pid=$TB_BG_PID
  tb_cli_bg "$out/$name.grpc.json" server watch agent --kind=grpc --output=json --count="$count"
  grpc_pid=$TB_BG_PID
  wait "$icmp_pid" || true
  wait "$grpc_pid" || true
  local c1 t1
  c1=$(ticks "$pid")
  t1=$(tb_now_ns)
  if [ -n "$load_pid" ]; then
    local rc=0
    wait "$load_pid" || rc=$?
    # timeout(1) ends the control phase with 124: that is its success.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then echo "load failed: $rc" >>"$out/$name.load"; fi
  else
    sleep 1
  fi
  awk -v d=$((c1 - c0)) -v s="$(((t1 - t0) / 1000000))" -v hz="$HZ" \
    'BEGIN {printf "%.1f\n", d / hz / (s / 1000) * 100}' >"$out/$name.cpu"
  python3 "$STATS" summary --watch "$out/$name.icmp.json" --kind icmp --since "$since" \
    >"$out/$name.icmp" || true
  python3 "$STATS" summary --watch "$out/$name.grpc.json" --kind grpc --since "$since" \
    >"$out/$name.grpc" || true
}

wrk_cmd=(wrk -t2 -c16 -d"${PHASE}s" --latency)
tb_log "phase quiet (${PHASE}s)"
phase quiet
tb_log "phase /metrics JSON"
phase json "${wrk_cmd[@]}" "$http"
tb_log "phase /metrics Prometheus"
phase prom "${wrk_cmd[@]}" -H "Accept: text/plain" "$http"
tb_log "phase gRPC GetLatency"
phase grpc "$QUERY_LOAD" --server="$grpc" --concurrency=16 --connections="$CONNECTIONS" \
  --duration="${PHASE}s"
tb_log "phase control: 2 busy loops"
phase burn timeout "$PHASE" sh -c 'while :; do :; done & while :; do :; done'
tb_log "phase quiet (after)"
phase quiet2

# wrk_figures FILE: "req/s p50_ms p99_ms errors"
wrk_figures() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000
      return v
    }
    /Requests\/sec:/ {rps = $2}
    /^ +50%/ {p50 = ms($2)}
    /^ +99%/ {p99 = ms($2)}
    /Non-2xx/ {err += $NF}
    /Socket errors/ {err += $4 + $6 + $8 + $10}
    /load failed/ {err = "failed"}
    END {r = (rps == "" ? "-" : rps); if (err == "") err = 0; printf "%s %.3f %.3f %s\n", r, p50, p99, err}' "$1"
}
# ql_figures FILE: the same from query_load's line
ql_figures() {
  sed -n 's/.*errors=\([0-9]*\) rps=\([0-9.]*\) p50_us=\([0-9.]*\) p99_us=\([0-9.]*\).*/\2 \3 \4 \1/p' "$1" |
    awk '{printf "%s %.3f %.3f %s\n", $1, $2 / 1000, $3 / 1000, $4}'
}

read -r _ qi _ <"$out/quiet.icmp"
read -r _ qg _ <"$out/quiet.grpc"
rc=0
row() { # LABEL NAME "rps p50 p99 errors"
  local label=$1 name=$2 rps p50 p99 err ni mi pi ng mg pg
  read -r rps p50 p99 err <<<"${3:-"- - - -"}"
  read -r ni mi pi <"$out/$name.icmp"
  read -r ng mg pg <"$out/$name.grpc"
  if [ "$mi" = - ] || [ "$mg" = - ] || [ "$err" = failed ]; then rc=1; fi
  awk -v l="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v err="$err" \
    -v cpu="$(cat "$out/$name.cpu")" -v ni="$ni" -v mi="$mi" -v pi="$pi" -v ng="$ng" \
    -v mg="$mg" -v pg="$pg" -v qi="$qi" -v qg="$qg" 'BEGIN {
      load = (rps == "-" ? "- | - | -" : sprintf("%.0f | %s / %s | %s", rps, p50, p99, err))
      di = ((mi == "-" || qi == "-") ? "-" : sprintf("%+.1f%%", (mi - qi) / qi * 100))
      dg = ((mg == "-" || qg == "-") ? "-" : sprintf("%+.1f%%", (mg - qg) / qg * 100))
      ps = (pi == "-" ? "-" : sprintf("%.1f", pi * 1000))
      gs = (pg == "-" ? "-" : sprintf("%.1f", pg * 1000))
      printf "| %s | %s | %s | %.1f (%s) | %s | %.1f (%s) | %s |\n", l, load, cpu,
        mi * 1000, di, ps, mg * 1000, dg, gs
    }'
}
echo "| load (${PHASE} s each) | req/s | load p50 / p99 (ms) | errors | server CPU (% of one core) | ICMP median µs (vs quiet) | ICMP p99 µs | gRPC median µs (vs quiet) | gRPC p99 µs |"
echo "|---|---|---|---|---|---|---|---|---|"
row "quiet" quiet
row "\`/metrics\` JSON, wrk -t2 -c16" json "$(wrk_figures "$out/json.load")"
row "\`/metrics\` Prometheus, wrk -t2 -c16" prom "$(wrk_figures "$out/prom.load")"
row "gRPC GetLatency, query_load c16 ($CONNECTIONS conns)" grpc "$(ql_figures "$out/grpc.load")"
row "control: 2 busy loops, no queries" burn
row "quiet (after)" quiet2
echo
echo "Probes every 100 ms; each window holds $(((PHASE - 2) * 10)) samples per kind; $(nproc) vCPUs shared by the load, the server and the agent."
exit "$rc"
