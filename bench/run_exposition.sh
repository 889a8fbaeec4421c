#!/usr/bin/env bash
# What one prober costs a fleet's Prometheus: a real Prometheus scrapes a
# latency-server with N ICMP and G gRPC targets every 10 s; per run, the
# samples per scrape (scrape_samples_scraped), the series of one ICMP-only
# target, one gRPC-only target and of the prober itself (no target label),
# the exposition's size and
# Prometheus' own scrape_duration_seconds (mean and max of the run's
# scrapes). Targets: ICMP on 127.1.x.y and gRPC on 127.2.x.y to one
# latency-agent on 0.0.0.0, as bench/run_scale.sh does, each with a label.
#
#   bench/run_exposition.sh                RUNS="1000:100 10000:1000", 40 s each
#   SMOKE=1 bench/run_exposition.sh        RUNS="100:10", 12 s (~20 s)
#   RUNS="N:G ..." WARMUP=S bench/run_exposition.sh
# Needs root, prometheus and the build. Runs under `flock /tmp/e2e.lock`.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/../tests/e2e/netns.sh disable=SC1091 # followed with -x
source "$BENCH_DIR/../tests/e2e/netns.sh"
tb_serialize "$@"
command -v prometheus >/dev/null || tb_fail "needs prometheus"
if [ "${SMOKE:-}" = 1 ]; then
  RUNS=${RUNS:-"100:10"}
  WARMUP=${WARMUP:-12}
fi
RUNS=${RUNS:-"1000:100 10000:1000"}
WARMUP=${WARMUP:-40}

max_grpc=0
for run in $RUNS; do ((${run#*:} > max_grpc)) && max_grpc=${run#*:}; done
if [ "$(ulimit -n)" != unlimited ] && (("$(ulimit -n)" < max_grpc + 1024)); then
  ulimit -n $((max_grpc + 1024))
fi

tb_testbed bare
ns=$TB_SERVER_NS
tb_spawn agent "$ns" user "$(tb_user_binary "$TB_AGENT_BIN")" --listen=0.0.0.0:0
agent_port=$(tb_wait_log agent "serving on port [0-9]+" | grep -o "port [0-9]*" | cut -d' ' -f2)

# config N G: the textproto of one run; every target ICMP-only or
# gRPC-only (as in run_scale.sh), with an `az` label as a fleet's would have.
config() {
  awk -v icmp="$1" -v grpc="$2" -v port="$agent_port" 'BEGIN {
    print "defaults { interval_ms: 1000 timeout_ms: 1000 }"
    for (i = 0; i < icmp; i++)
      printf "targets { name: \"i-%d\" host: \"127.1.%d.%d\" probe { grpc_enabled: false }" \
             " labels { key: \"az\" value: \"eu-west-1a\" } }\n", i, int(i / 250), i % 250 + 1
    for (i = 0; i < grpc; i++)
      printf "targets { name: \"g-%d\" host: \"127.2.%d.%d\" grpc_port: %d" \
             " probe { icmp_enabled: false } labels { key: \"az\" value: \"eu-west-1b\" } }\n",
             i, int(i / 250), i % 250 + 1, port
  }'
}

promql() { # EXPR: the first result's value
  ip netns exec "$ns" curl -sS --max-time 10 -G --data-urlencode "query=$1" \
    http://127.0.0.1:9090/api/v1/query |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "-")'
}

rows=()
i=0
for run in $RUNS; do
  i=$((i + 1))
  icmp=${run%:*}
  grpc=${run#*:}
  config "$icmp" "$grpc" >"$TB_DIR/config-$i.textproto"
  chmod 644 "$TB_DIR/config-$i.textproto"
  tb_log "run $i: $icmp ICMP + $grpc gRPC targets, ${WARMUP}s of 10 s scrapes"
  tb_start_server "server-$i" --config="$TB_DIR/config-$i.textproto" \
    --history_db= --http_listen=127.0.0.1:5000
  port=5000
  dir="$TB_DIR/prometheus-$i"
  mkdir -p "$dir/data"
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 10s
  scrape_timeout: 8s
scrape_configs:
  - job_name: latency-pair
    static_configs:
      - targets: ['127.0.0.1:$port']
YAML
  tb_spawn "prometheus-$i" "$ns" root prometheus --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" --web.listen-address=127.0.0.1:9090 --log.level=warn
  sleep "$WARMUP"
  samples=$(promql 'scrape_samples_scraped{job="latency-pair"}')
  icmp_series=$(promql 'count({__name__=~"latency_.+",target="i-1"})')
  grpc_series=$(promql 'count({__name__=~"latency_.+",target="g-1"})')
  prober_series=$(promql 'count({__name__=~"latency_.+",target=""})')
  duration=$(promql 'avg_over_time(scrape_duration_seconds{job="latency-pair"}[5m])')
  duration_max=$(promql 'max_over_time(scrape_duration_seconds{job="latency-pair"}[5m])')
  scrapes=$(promql 'count_over_time(up{job="latency-pair"}[5m])')
  up=$(promql 'min_over_time(up{job="latency-pair"}[5m])')
  url="http://127.0.0.1:$port/metrics?format=prometheus"
  plain=$(ip netns exec "$ns" curl -sS -o /dev/null -w '%{size_download}' "$url")
  rows+=("$(awk -v i="$icmp" -v g="$grpc" -v s="$samples" -v si="$icmp_series" \
    -v sg="$grpc_series" -v sp="$prober_series" -v p="$plain" \
    -v d="$duration" -v dm="$duration_max" -v n="$scrapes" -v up="$up" 'BEGIN {
      printf "| %d | %d | %d | %d | %d | %d | %.2f (%d B a target) | %.0f / %.0f (%d scrapes, up %s) |",
        i, g, s, si, sg, sp, p / 1e6, p / (i + g), d * 1000, dm * 1000, n, up
    }')")
  tb_stop "prometheus-$i"
  tb_stop "server-$i"
done
echo
echo "| ICMP targets | gRPC targets | samples per scrape | series per ICMP target | series per gRPC target | series per prober | exposition MB | scrape ms: mean / max |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
