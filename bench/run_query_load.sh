#!/usr/bin/env bash
# Query load while probing: latency-server probes one latency-agent on
# loopback (ICMP and unary gRPC, every 100 ms; both as nobody in a
# namespace of the testbed, tests/e2e/netns.sh, so ports are private), and
# for PHASE seconds each, one after the other, ROUNDS times over:
#   quiet          no load
#   /metrics JSON  wrk -t2 -c16 --latency on GET /metrics
#   /metrics Prometheus  the same with -H 'Accept: text/plain'
#   gRPC GetLatency      bench/query_load (build/bench/query_load): 16 calls
#                  in flight on 16 connections, the gRPC twin of wrk -c16
#   full mix       both of those at once, two `latencyctl watch` streams and
#                  a Prometheus scrape (curl) every second
# then once: control (two busy loops, sh, no queries: CPU contention alone)
# and quiet (after). During each phase (from 1 s after the load starts to
# 1 s before it ends) the raw ICMP and gRPC probe samples (latencyctl watch
# --output=json) and the server's CPU (/proc/PID/stat). A probe median moves
# by 10-30% between two quiet windows of a few seconds, so one window per
# load cannot show a 5% effect: each load's samples are pooled over the
# rounds (interleaved with the quiet windows, so drift falls on both) and
# compared with the pooled quiet samples, with a 95% bootstrap interval of
# the change (bench_stats.py compare). Prints a markdown table: req/s (mean
# of the rounds), the load's p50/p99 (worst round), errors, server CPU, each
# probe median with its change from quiet and the interval. Budgets
# (DESIGN.md §6): /metrics >= 20k req/s while probing, probe medians
# disturbed < 10% (issue 17: < 5%). Everything (wrk, the server, the agent)
# shares this machine's CPUs. Exit status 1 only when a phase produced no
# samples or a load tool failed.
#
#   bench/run_query_load.sh            ROUNDS=4 of 8 s phases (~3.5 min)
#   SMOKE=1 bench/run_query_load.sh    ROUNDS=1 of 4 s phases (~30 s)
#   ROUNDS=N PHASE=S CONNECTIONS=N bench/run_query_load.sh
# Needs root, the build (build/ or LATENCY_BUILD_DIR, with the bench
# target query_load) and wrk (scripts/setup.sh).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/../tests/e2e/netns.sh disable=SC1091 # followed with -x
source "$BENCH_DIR/../tests/e2e/netns.sh"
STATS="$BENCH_DIR/bench_stats.py"
QUERY_LOAD="${QUERY_LOAD_BINARY:-$TB_BUILD_DIR/bench/query_load}"

if [ "${SMOKE:-}" = 1 ]; then
  PHASE=${PHASE:-4}
  ROUNDS=${ROUNDS:-1}
else
  PHASE=${PHASE:-8}
  ROUNDS=${ROUNDS:-4}
fi
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
  echo "$since" >"$out/$name.since"
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
}

wrk_cmd=(wrk -t2 -c16 -d"${PHASE}s" --latency)
# The full mix at once: wrk on /metrics JSON and query_load as above, two
# Watch streams, and a Prometheus scrape every second; wrk's report is the
# phase's load figures.
cli=$(tb_user_binary "$TB_CLI_BIN")
mix="$QUERY_LOAD --server=$grpc --concurrency=16 --connections=$CONNECTIONS --duration=${PHASE}s >/dev/null &
for w in 1 2; do timeout $PHASE $cli --server=$grpc watch >/dev/null & done
for s in \$(seq $PHASE); do curl -s -o /dev/null -H 'Accept: text/plain' $http; sleep 1; done &
${wrk_cmd[*]} $http
wait"
for ((r = 1; r <= ROUNDS; r++)); do
  tb_log "round $r of $ROUNDS: quiet, /metrics JSON, /metrics Prometheus, gRPC GetLatency (${PHASE}s each)"
  phase "quiet-$r"
  phase "json-$r" "${wrk_cmd[@]}" "$http"
  phase "prom-$r" "${wrk_cmd[@]}" -H "Accept: text/plain" "$http"
  phase "grpc-$r" "$QUERY_LOAD" --server="$grpc" --concurrency=16 \
    --connections="$CONNECTIONS" --duration="${PHASE}s"
  phase "mix-$r" bash -c "$mix"
done
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

# windows NAME KIND: FILE:SINCE of every round's window NAME (or the one).
windows() {
  local f
  for f in "$out/$1".since "$out/$1"-[0-9]*.since; do
    [ -e "$f" ] && echo "${f%.since}.$2.json:$(cat "$f")"
  done
}
# load_figures NAME KIND: "req/s p50 p99 errors" over the rounds (mean
# req/s, worst p50/p99, errors summed)
load_figures() {
  local f
  for f in "$out/$1"-[0-9]*.load; do
    if [ "$2" = wrk ]; then wrk_figures "$f"; else ql_figures "$f"; fi
  done | awk '{n++; rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3
    if ($4 == "failed") f = 1; else err += $4}
    END {if (n) printf "%.0f %.3f %.3f %s\n", rps / n, p50, p99, f ? "failed" : err}'
}

rc=0
row() { # LABEL NAME "rps p50 p99 errors"
  local label=$1 name=$2 rps p50 p99 err cpu icmp grpc
  read -r rps p50 p99 err <<<"${3:-"- - - -"}"
  cpu=$({ cat "$out/$name".cpu "$out/$name"-[0-9]*.cpu 2>/dev/null || true; } |
    awk '{s += $1; n++} END {printf "%.1f", s / n}')
  # shellcheck disable=SC2046 # one FILE:SINCE per word
  icmp=$(python3 "$STATS" compare --kind icmp --base $(windows quiet icmp) --load $(windows "$name" icmp)) || rc=1
  # shellcheck disable=SC2046
  grpc=$(python3 "$STATS" compare --kind grpc --base $(windows quiet grpc) --load $(windows "$name" grpc)) || rc=1
  if [ "$err" = failed ]; then rc=1; fi
  awk -v l="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v err="$err" -v cpu="$cpu" \
    -v icmp="$icmp" -v grpc="$grpc" 'function cell(c, quiet,   f) {
      split(c, f, " ")
      if (f[4] == "-") return "- | -"
      if (quiet) return sprintf("%.1f (n %d) | –", f[4] * 1000, f[3])
      return sprintf("%.1f (n %d) | %+.1f%% [%+.1f, %+.1f]", f[4] * 1000, f[3], f[5], f[6], f[7])
    }
    BEGIN {
      load = (rps == "-" ? "- | - | -" : sprintf("%.0f | %s / %s | %s", rps, p50, p99, err))
      q = (l == "quiet")
      printf "| %s | %s | %s | %s | %s |\n", l, load, cpu, cell(icmp, q), cell(grpc, q)
    }'
}
echo "| load (${PHASE} s each, ${ROUNDS} rounds pooled) | req/s | load p50 / p99 (ms) | errors | server CPU (% of one core) | ICMP median µs | vs quiet [95% CI] | gRPC median µs | vs quiet [95% CI] |"
echo "|---|---|---|---|---|---|---|---|---|"
row "quiet" quiet
row "\`/metrics\` JSON, wrk -t2 -c16" json "$(load_figures json wrk)"
row "\`/metrics\` Prometheus, wrk -t2 -c16" prom "$(load_figures prom wrk)"
row "gRPC GetLatency, query_load c16 ($CONNECTIONS conns)" grpc "$(load_figures grpc ql)"
row "full mix: JSON wrk + query_load + 2 Watch + 1 Hz scrape (wrk's figures)" mix "$(load_figures mix wrk)"
row "control: 2 busy loops, no queries" burn
row "quiet (after)" quiet2
echo
echo "Probes every 100 ms; each window holds $(((PHASE - 2) * 10)) samples per kind; $(nproc) vCPUs shared by the load, the server and the agent."
exit "$rc"
