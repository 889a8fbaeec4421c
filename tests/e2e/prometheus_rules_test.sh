#!/usr/bin/env bash
# The shipped Prometheus rules (infra/prometheus/) against a real Prometheus
# scraping a real latency-server that probes a real agent 5 ms away: every
# recording rule yields a series, the percentiles fall in the histogram
# bucket that holds 5 ms, nothing alerts on a healthy path, and stopping the
# agent fires LatencyTargetDown and LatencyHighLoss for gRPC only (the host
# still answers ICMP).
# Then every query of the Grafana dashboard (infra/grafana/latency-pair.json)
# must be valid and return data (with the agent dead, so that the "not ok"
# table has a row). The alerts' `for:` durations are shortened to 5 s.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
command -v prometheus >/dev/null || tb_missing prometheus
RULES_DIR="$TB_SOURCE_DIR/../../infra/prometheus"
DASHBOARD="$TB_SOURCE_DIR/../../infra/grafana/latency-pair.json"

tb_testbed agent
tb_inject --delay_ms=5
tb_start_server server --target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" \
  --interval=100ms --timeout=1s --source=vantage-a
tb_wait_status server agent grpc ok >/dev/null

# The alerts' `for:` shortened to 5 s.
sed -E 's/for: [0-9]+m/for: 5s/' "$RULES_DIR/alerting.rules.yml" >"$TB_DIR/alerting.rules.yml"
tb_prometheus "$(tb_server_port server http)" "$RULES_DIR/recording.rules.yml" \
  "$TB_DIR/alerting.rules.yml"
query() { tb_promql "$1"; }

# wait_for EXPR SECONDS: until EXPR has at least one series; prints them.
wait_for() {
  local deadline=$((SECONDS + $2)) out
  while ((SECONDS <= deadline)); do
    out=$(query "$1" 2>/dev/null || true)
    if [ -n "$out" ]; then
      echo "$out"
      return 0
    fi
    sleep 1
  done
  tb_fail "no series for $1 within $2 s"
}

# in_range VALUE LOW HIGH: LOW <= VALUE <= HIGH.
in_range() { python3 -c "import sys; v,lo,hi=map(float,sys.argv[1:]); sys.exit(0 if lo<=v<=hi else 1)" "$@"; }

rc=0
# Every series says where it was measured from.
line=$(wait_for 'count(latency_last_rtt_seconds{source="vantage-a"})' 30)
if [ "${line##* }" = 2 ]; then tb_log "ok: source label on both probes"; else
  tb_log "FAIL: latency_last_rtt_seconds with source=vantage-a: $line"
  rc=1
fi
# 5 ms plus the veth's tens of µs lies in the (5 ms, 10 ms] bucket: the
# interpolated p50 stays inside it. p99 of the ~200 probes so far moves with
# two slow ones (a gRPC reply behind a held packet): at most one bucket up.
for kind in icmp grpc; do
  for q in p50:0.010 p99:0.025; do
    expr="instance_target_kind:latency_rtt_seconds:${q%:*}_5m{kind=\"$kind\"}"
    line=$(wait_for "$expr" 30)
    value=${line##* }
    if in_range "$value" 0.005 "${q#*:}"; then
      tb_log "ok: ${q%:*} $kind = $value s"
    else
      tb_log "FAIL: ${q%:*} $kind = $value s, expected within (0.005, ${q#*:}]"
      rc=1
    fi
  done
done
line=$(wait_for 'instance_target_kind:latency_probes_failed:ratio_5m{kind="icmp"}' 30)
if in_range "${line##* }" 0 0.01; then tb_log "ok: icmp failed ratio ${line##* }"; else
  tb_log "FAIL: icmp failed ratio ${line##* } on a clean path"
  rc=1
fi
line=$(wait_for 'instance_target:latency_grpc_overhead_seconds:p50_5m' 30)
if in_range "${line##* }" -0.005 0.005; then tb_log "ok: gRPC overhead ${line##* } s"; else
  tb_log "FAIL: gRPC overhead ${line##* } s"
  rc=1
fi

# Healthy for a few evaluations (longer than the shortened `for:`): nothing fires.
sleep 8
firing=$(query 'ALERTS{alertstate="firing"}')
if [ -n "$firing" ]; then
  tb_log "FAIL: alerts firing on a healthy path: $firing"
  rc=1
fi

tb_stop agent KILL
tb_log "agent killed"
for alert in LatencyTargetDown LatencyHighLoss; do
  line=$(wait_for "ALERTS{alertname=\"$alert\",alertstate=\"firing\"}" 60)
  tb_log "firing: $line"
done
sleep 3
firing=$(query 'ALERTS{alertstate="firing"}' | sort)
expected="alertname=LatencyHighLoss,alertstate=firing,kind=grpc,severity=ticket,target=agent 1
alertname=LatencyTargetDown,alertstate=firing,kind=grpc,severity=page,status=down,target=agent 1"
if [ "$firing" != "$expected" ]; then
  tb_log "FAIL: firing alerts after the agent died:"
  echo "$firing" >&2
  tb_log "expected exactly:"
  echo "$expected" >&2
  rc=1
fi

# Each panel query with the dashboard's variables set to "all targets and
# probers, ICMP", the way Grafana sends them.
while IFS=$'\t' read -r panel expr; do
  out=$(query "$expr" 2>&1) || {
    tb_log "FAIL: panel '$panel': query error: $out"
    rc=1
    continue
  }
  if [ -z "$out" ]; then
    tb_log "FAIL: panel '$panel' returns no series: $expr"
    rc=1
  else
    tb_log "ok: panel '$panel': $(wc -l <<<"$out") series"
  fi
done < <(python3 - "$DASHBOARD" <<'PY'
import json, sys
variables = {"$__rate_interval": "1m", "$instance": ".*", "$target": ".*", "$kind": "icmp"}
for panel in json.load(open(sys.argv[1]))["panels"]:
    for target in panel["targets"]:
        expr = target["expr"]
        for name, value in variables.items():
            expr = expr.replace(name, value)
        print(f"{panel['title']}\t{expr}")
PY
)

[ "$rc" = 0 ] || tb_fail "Prometheus rules (lines above)"
echo "PASS: recording rules read the 5 ms path; a dead agent fires gRPC down + loss alone; every dashboard query returns data"
