#!/usr/bin/env bash
# The agent is killed (SIGKILL) under a running server: the target's gRPC
# status turns down after at most 3 failed probes while ICMP (answered by
# the agent host's kernel) stays ok; the agent is started again on the same
# port: within 3 probes the gRPC probe succeeds and the status is ok again,
# with the same server process. Counted in probes from the watch stream and
# the status snapshots, not in wall time.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

# The down spell's failures must stay under the 5% "degraded" loss
# threshold of the 1-minute window, so the window first fills with probes.
WARMUP=${E2E_WARMUP_PROBES:-250}
tb_testbed agent
port=$TB_AGENT_PORT
tb_start_server server --target="agent=$TB_AGENT_ADDR:$port" --interval=100ms --timeout=1s
server_pid=$(tb_pid server)
out=$TB_DIR
tb_cli_bg "$out/watch.json" server watch agent --output=json
watch_pid=$TB_BG_PID
tb_wait_status server agent grpc ok >/dev/null

grpc_probes() { grep -c PROBE_KIND_GRPC "$out/watch.json" || true; }
deadline=$((SECONDS + 90))
until (($(grpc_probes) >= WARMUP)); do
  ((SECONDS <= deadline)) || tb_fail "fewer than $WARMUP gRPC probes in 90 s"
  sleep 0.2
done
tb_wait_status server agent grpc ok 1 >/dev/null

tb_stop agent KILL # returns once the process is gone
kill_ns=$(tb_now_ns)
tb_log "killed latency-agent"
tb_wait_status server agent grpc down 20 >"$out/down.json"
tb_log "gRPC status down"

tb_start_agent "$port"
up_ns=$(tb_now_ns)
tb_wait_status server agent grpc ok 20 >"$out/ok.json"
ok_ns=$(tb_now_ns)
tb_log "gRPC status ok"
# Two more probes, so the stream holds everything up to the recovery.
target=$(($(grpc_probes) + 2))
deadline=$((SECONDS + 20))
until (($(grpc_probes) >= target)); do
  ((SECONDS <= deadline)) || tb_fail "gRPC probes stopped after the restart"
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true

tb_alive "$server_pid" || tb_fail "latency-server exited"
[ "$(grep -c "probing 1 targets" "$out/server.log")" = 1 ] || tb_fail "latency-server restarted"
tb_check restart --watch "$out/watch.json" --kill_ns "$kill_ns" \
  --up_ns "$up_ns" --ok_ns "$ok_ns" --down_snapshot "$out/down.json" \
  --ok_snapshot "$out/ok.json" || tb_fail "agent restart bounds (figures above)"
echo "PASS: agent loss and return seen within 3 probes, ICMP unaffected, same server (pid $server_pid)"
