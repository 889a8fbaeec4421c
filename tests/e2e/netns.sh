# shellcheck shell=bash
# Two hosts on one machine: a "server" and an "agent" network namespace
# joined by a veth pair, with addresses that exist only inside them:
#
#   server ns  veth0 10.77.0.1/24  <---->  veth0 10.77.0.2/24  agent ns
#                                                10.77.0.3/24 (spare, e.g.
#                                                a blackholed target)
#
# latency-agent runs in the agent namespace and latency-server in the server
# namespace, both as an unprivileged user (nobody/nogroup); the server
# namespace's net.ipv4.ping_group_range admits that group, so the server
# uses datagram ICMP sockets. latency-inject (NFQUEUE) delays, jitters and
# drops what the agent namespace sends out of veth0, i.e. the replies: ICMP
# echo replies and the agent's TCP segments. The server's sends, and so its
# kernel send stamps, are untouched.
#
# With TB_TOPOLOGY=routed (set before tb_testbed) a router namespace sits
# between the two, and latency-inject works there, on what it forwards
# toward the server: the delay is on the path, outside both hosts, where
# neither host's packet tap (--wire_stamps) nor its stack can see it:
#
#   server ns  veth0 10.77.0.1/24 <-> 10.77.0.254 router 10.77.1.254
#                                          <-> veth0 10.77.1.2/24 agent ns
#
# Sourced by the e2e tests (tests/e2e/*_test.sh) and by testbed.sh. Needs
# root, iproute2, iptables, ping, setpriv and curl. Every function reads:
#   TB_SERVER_NS, TB_AGENT_NS  namespace names
#   TB_DIR                     logs, pid files, copies of the binaries
# tb_testbed sets them to unique names and tears everything down on exit;
# testbed.sh sets fixed names and keeps the testbed until `testbed.sh down`.

# shellcheck disable=SC2034 # constants and results for the sourcing scripts
TB_SERVER_ADDR=10.77.0.1
TB_AGENT_ADDR=10.77.0.2
TB_SPARE_ADDR=10.77.0.3
TB_PREFIX_LEN=24
TB_DEV=veth0
TB_USER=nobody
TB_GROUP=nogroup

TB_SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TB_BUILD_DIR=$(realpath -m "${LATENCY_BUILD_DIR:-$TB_SOURCE_DIR/../../build}")
TB_AGENT_BIN="${LATENCY_AGENT_BINARY:-$TB_BUILD_DIR/agent/latency-agent}"
TB_SERVER_BIN="${LATENCY_SERVER_BINARY:-$TB_BUILD_DIR/server/latency-server}"
TB_CLI_BIN="${LATENCY_CLI_BINARY:-$TB_BUILD_DIR/cli/latencyctl}"
TB_INJECT_BIN="${LATENCY_INJECT_BINARY:-$TB_BUILD_DIR/tests/e2e/latency-inject}"
# shellcheck disable=SC2034
TB_CHECK="$TB_SOURCE_DIR/e2e_check.py"
TB_EPHEMERAL_PREFIX=lpe2e
# Samples per comparison (100 ms apart in the tests: about 10 s).
TB_SAMPLES=${E2E_SAMPLES:-100}

TB_ROUTER_SERVER_ADDR=10.77.0.254
TB_ROUTER_AGENT_ADDR=10.77.1.254
TB_ROUTED_AGENT_ADDR=10.77.1.2
# Capabilities (e.g. net_raw) that processes started as TB_USER keep, as
# ambient capabilities; empty: none.
TB_USER_CAPS=${TB_USER_CAPS:-}

tb_log() { echo "[$(date +%H:%M:%S.%3N)] $*" >&2; }

# Every failure a test names is also printed again as the last lines of its
# output, after the logs tb_cleanup dumps: a CI excerpt shows the tail.
TB_FAILURES=()
tb_note_failure() {
  echo "FAIL: $*" >&2
  TB_FAILURES+=("$*")
}
tb_fail() {
  tb_note_failure "$@"
  exit 1
}

# tb_check ARGS...: e2e_check.py ARGS, its verdict printed and, when it
# fails, its FAIL lines kept for the summary.
tb_check() {
  local out rc=0
  out=$(python3 "$TB_CHECK" "$@") || rc=$?
  [ -z "$out" ] || printf '%s\n' "$out"
  if [ "$rc" -ne 0 ]; then
    TB_FAILURES+=("$(grep -E 'FAIL' <<<"$out" || tail -n 3 <<<"$out")")
  fi
  return "$rc"
}

# Prints why this machine cannot run the testbed; nothing when it can.
tb_missing() {
  local missing=() tool
  for tool in ip iptables ping setpriv curl python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "needs root (network namespaces)"
  elif [ "${#missing[@]}" -gt 0 ]; then
    echo "missing ${missing[*]} (scripts/setup.sh installs them)"
  else
    for tool in "$TB_AGENT_BIN" "$TB_SERVER_BIN" "$TB_CLI_BIN" "$TB_INJECT_BIN"; do
      if [ ! -x "$tool" ]; then
        echo "not built: $tool"
        return
      fi
    done
  fi
}

# Exit 77 (CTest's SKIP_RETURN_CODE) when this machine cannot run the
# testbed, except under CI, where that is a failure.
tb_require() {
  local why
  why=$(tb_missing)
  [ -n "$why" ] || return 0
  if [ "${CI:-}" = "true" ]; then tb_fail "$why"; fi
  echo "SKIP: $why" >&2
  exit 77
}

# tb_serialize "$@" (at the top of a script): re-runs the calling script
# under `flock TB_LOCK` (default /tmp/e2e.lock), which every e2e or scale run
# on this machine takes, so that runs from several checkouts do not load the
# machine together while one of them measures. No-op when this process
# already holds the lock: an inherited descriptor of it (`flock
# /tmp/e2e.lock ctest ...`) or TB_LOCKED from a caller that took it. Waits
# up to TB_LOCK_WAIT seconds (default 600), then fails; otherwise exits with
# the script's status.
TB_LOCK=${TB_LOCK:-/tmp/e2e.lock}
tb_serialize() {
  [ -z "${TB_LOCKED:-}" ] || return 0
  local fd
  for fd in "/proc/$$/fd"/*; do
    [ "$(readlink "$fd")" = "$TB_LOCK" ] && return 0
  done
  local wait=${TB_LOCK_WAIT:-600}
  if ! flock -n "$TB_LOCK" true; then
    tb_log "waiting up to ${wait}s for $TB_LOCK (another e2e or scale run)"
  fi
  # -o: the lock's descriptor stays with flock, not with the script's
  # children (a server orphaned by a killed run cannot keep it).
  local rc=0
  TB_LOCKED=1 flock -o -E 75 -w "$wait" "$TB_LOCK" bash "$0" "$@" || rc=$?
  if ((rc == 75)); then tb_fail "$TB_LOCK still held after ${wait}s"; fi
  exit "$rc"
}

# True when pid runs (a zombie does not count).
tb_alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Kills what still runs in a namespace (by pid) and deletes it; its veth end
# goes with it, and so does the peer.
tb_delete_ns() {
  local ns=$1 pid
  ip netns list | grep -qw -- "$ns" || return 0
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
}

# Deletes namespaces and run folders left by e2e runs that died without
# cleaning up (SIGKILL, e.g. a CTest timeout): their owner pid is gone.
tb_reap_stale() {
  local ns owner
  for ns in $(ip netns list | awk '{print $1}' | grep "^$TB_EPHEMERAL_PREFIX-[0-9]*-" || true); do
    owner=${ns#"$TB_EPHEMERAL_PREFIX"-}
    owner=${owner%%-*}
    if ! tb_alive "$owner"; then
      tb_log "removing stale namespace $ns (run $owner is gone)"
      tb_delete_ns "$ns"
    fi
  done
  local dir
  for dir in /tmp/"$TB_EPHEMERAL_PREFIX"-*.*; do
    [ -d "$dir" ] || continue
    owner=${dir#/tmp/"$TB_EPHEMERAL_PREFIX"-}
    owner=${owner%%.*}
    tb_alive "$owner" || rm -rf "$dir"
  done
}

# tb_testbed agent|bare: unique names for this run, a trap that removes
# everything on exit (whether the test passed, failed or was interrupted),
# then the testbed (tb_up) and, for `agent`, latency-agent on a free port.
tb_testbed() {
  tb_require
  tb_reap_stale
  TB_SERVER_NS="$TB_EPHEMERAL_PREFIX-$$-server"
  TB_AGENT_NS="$TB_EPHEMERAL_PREFIX-$$-agent"
  TB_ROUTER_NS="$TB_EPHEMERAL_PREFIX-$$-router"
  TB_DIR=$(mktemp -d "/tmp/$TB_EPHEMERAL_PREFIX-$$.XXXXXX")
  chmod 755 "$TB_DIR"
  trap tb_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  tb_up
  if [ "$1" = agent ]; then tb_start_agent 0; fi
}

# tb_on_exit CMD [ARGS...]: tb_cleanup runs CMD too, after stopping every
# process and deleting the namespaces (a test's own trap would have to
# keep $? and errexit straight; this cannot get that wrong).
TB_EXIT_HOOKS=()
tb_on_exit() { TB_EXIT_HOOKS+=("$(printf '%q ' "$@")"); }

tb_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local pidfile hook
  for pidfile in "$TB_DIR"/*.pid; do
    [ -e "$pidfile" ] && tb_stop "$(basename "$pidfile" .pid)"
  done
  tb_delete_ns "$TB_SERVER_NS"
  tb_delete_ns "$TB_AGENT_NS"
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$TB_EPHEMERAL_PREFIX-$$-" || true); do
    tb_delete_ns "$ns"
  done
  for hook in "${TB_EXIT_HOOKS[@]}"; do eval "$hook"; done
  if [ "$rc" -ne 0 ]; then
    local log
    for log in "$TB_DIR"/*.log; do
      [ -e "$log" ] || continue
      echo "---- last lines of $(basename "$log") ----" >&2
      tail -n 15 "$log" >&2
    done
    echo "==== $(basename "$0") failed (exit $rc) ====" >&2
    local failure
    for failure in "${TB_FAILURES[@]}"; do echo "FAIL: $failure" >&2; done
    [ "${#TB_FAILURES[@]}" -gt 0 ] || echo "(no check named the failure: see the lines above the logs)" >&2
  fi
  if [ -n "${E2E_KEEP:-}" ]; then
    echo "kept $TB_DIR" >&2
  else
    rm -rf "$TB_DIR"
  fi
  exit "$rc"
}

# The binaries must be executable by the unprivileged user; a checkout
# under /root is not, so such a run uses copies in TB_DIR.
tb_user_binary() {
  local bin=$1
  if setpriv --reuid="$TB_USER" --regid="$TB_GROUP" --clear-groups test -x "$bin"; then
    echo "$bin"
    return
  fi
  mkdir -p "$TB_DIR/bin"
  chmod 755 "$TB_DIR/bin"
  if [ ! -x "$TB_DIR/bin/$(basename "$bin")" ]; then
    install -m 755 "$bin" "$TB_DIR/bin/"
  fi
  echo "$TB_DIR/bin/$(basename "$bin")"
}

# Namespaces, veth pair, addresses, and ping_group_range for TB_GROUP in the
# server namespace (the default "1 0" allows nobody).
tb_up() {
  local gid
  gid=$(getent group "$TB_GROUP" | cut -d: -f3)
  ip netns add "$TB_SERVER_NS"
  ip netns add "$TB_AGENT_NS"
  local ns
  if [ "${TB_TOPOLOGY:-}" = routed ]; then
    TB_AGENT_ADDR=$TB_ROUTED_AGENT_ADDR
    ip netns add "$TB_ROUTER_NS"
    ip link add "$TB_DEV" netns "$TB_SERVER_NS" type veth \
      peer name to-server netns "$TB_ROUTER_NS"
    ip link add "$TB_DEV" netns "$TB_AGENT_NS" type veth \
      peer name to-agent netns "$TB_ROUTER_NS"
    ip -n "$TB_ROUTER_NS" addr add "$TB_ROUTER_SERVER_ADDR/$TB_PREFIX_LEN" dev to-server
    ip -n "$TB_ROUTER_NS" addr add "$TB_ROUTER_AGENT_ADDR/$TB_PREFIX_LEN" dev to-agent
    ip -n "$TB_ROUTER_NS" link set lo up
    ip -n "$TB_ROUTER_NS" link set to-server up
    ip -n "$TB_ROUTER_NS" link set to-agent up
    ip netns exec "$TB_ROUTER_NS" sysctl -qw net.ipv4.ip_forward=1
  else
    ip link add "$TB_DEV" netns "$TB_SERVER_NS" type veth \
      peer name "$TB_DEV" netns "$TB_AGENT_NS"
  fi
  ip -n "$TB_SERVER_NS" addr add "$TB_SERVER_ADDR/$TB_PREFIX_LEN" dev "$TB_DEV"
  ip -n "$TB_AGENT_NS" addr add "$TB_AGENT_ADDR/$TB_PREFIX_LEN" dev "$TB_DEV"
  for ns in "$TB_SERVER_NS" "$TB_AGENT_NS"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$TB_DEV" up
  done
  if [ "${TB_TOPOLOGY:-}" = routed ]; then
    ip -n "$TB_SERVER_NS" route add default via "$TB_ROUTER_SERVER_ADDR"
    ip -n "$TB_AGENT_NS" route add default via "$TB_ROUTER_AGENT_ADDR"
  fi
  ip netns exec "$TB_SERVER_NS" sysctl -qw "net.ipv4.ping_group_range=$gid $gid"
  tb_log "testbed: $TB_SERVER_NS ($TB_SERVER_ADDR) <-> ${TB_TOPOLOGY:+$TB_ROUTER_NS <-> }" \
    "$TB_AGENT_NS ($TB_AGENT_ADDR), ping_group_range '$gid $gid' ($TB_GROUP) in $TB_SERVER_NS"
}

# tb_spawn NAME NS root|user CMD...: runs CMD in the background inside NS,
# output in TB_DIR/NAME.log, pid in TB_DIR/NAME.pid. setsid (not a group
# leader here), `ip netns exec` and setpriv all exec, so the pid is CMD's.
tb_spawn() {
  local name=$1 ns=$2 who=$3
  shift 3
  local cmd=(ip netns exec "$ns")
  # testbed.sh's processes outlive it, in their own session.
  if [ "${TB_DETACH:-}" = 1 ]; then cmd=(setsid "${cmd[@]}"); fi
  if [ "$who" = user ]; then
    cmd+=(setpriv --reuid="$TB_USER" --regid="$TB_GROUP" --clear-groups --no-new-privs)
    if [ -n "$TB_USER_CAPS" ]; then
      cmd+=(--inh-caps="+$TB_USER_CAPS" --ambient-caps="+$TB_USER_CAPS")
    fi
  fi
  "${cmd[@]}" "$@" </dev/null >"$TB_DIR/$name.log" 2>&1 &
  echo "$!" >"$TB_DIR/$name.pid"
}

tb_pid() { cat "$TB_DIR/$1.pid" 2>/dev/null; }

# tb_stop NAME [SIGNAL]: signals the process (TERM by default), waits up to
# 10 s for it to exit, then kills it.
tb_stop() {
  local name=$1 sig=${2:-TERM} pid
  pid=$(tb_pid "$name") || return 0
  rm -f "$TB_DIR/$name.pid"
  [ -n "$pid" ] || return 0
  # Only a process in one of our namespaces is ours (pids get reused): the
  # testbed's two, or any other this run made (fleet_test.sh's hosts).
  case "$(ip netns identify "$pid" 2>/dev/null)" in
    "$TB_SERVER_NS" | "$TB_AGENT_NS" | "$TB_EPHEMERAL_PREFIX-$$-"*) ;;
    *) return 0 ;;
  esac
  kill -"$sig" "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 200; i++)); do
    tb_alive "$pid" || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# tb_wait_log NAME REGEX [SECONDS]: prints the first log line matching
# REGEX; fails after SECONDS (default 20) or when the process has exited.
tb_wait_log() {
  local name=$1 regex=$2 limit=${3:-20} line pid
  pid=$(tb_pid "$name")
  local deadline=$((SECONDS + limit))
  while ((SECONDS <= deadline)); do
    if line=$(grep -m1 -E -- "$regex" "$TB_DIR/$name.log" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    if [ -n "$pid" ] && ! tb_alive "$pid"; then
      tb_fail "$name exited before logging /$regex/"
    fi
    sleep 0.05
  done
  tb_fail "$name did not log /$regex/ within ${limit}s"
}

# tb_start_agent [PORT [FLAGS...]]: latency-agent as TB_USER on
# TB_AGENT_ADDR; sets TB_AGENT_PORT (port 0, the default, picks one).
# TB_AGENT_NAME (default agent) names its log and pid files.
tb_start_agent() {
  local port=${1:-0} bin name=${TB_AGENT_NAME:-agent}
  shift || true
  bin=$(tb_user_binary "$TB_AGENT_BIN")
  tb_spawn "$name" "$TB_AGENT_NS" user "$bin" --listen="$TB_AGENT_ADDR:$port" "$@"
  TB_AGENT_PORT=$(tb_wait_log "$name" "serving on port [0-9]+" | grep -o "port [0-9]*" | cut -d' ' -f2)
  tb_log "latency-agent $name (pid $(tb_pid "$name"), $TB_USER) serving on $TB_AGENT_ADDR:$TB_AGENT_PORT"
}

# tb_make_tls DIR: a CA (DIR/ca.pem) and a certificate for TB_AGENT_ADDR
# signed by it (DIR/agent.pem, DIR/agent.key), readable by TB_USER.
tb_make_tls() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=latency e2e CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$TB_AGENT_ADDR" -keyout "$dir/agent.key" -out "$dir/agent.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\n' "$TB_AGENT_ADDR" >"$dir/agent.ext"
  openssl x509 -req -in "$dir/agent.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/agent.ext" -out "$dir/agent.pem" 2>/dev/null
  chmod 755 "$dir"
  chmod 644 "$dir"/*.pem "$dir"/*.key
}

# tb_start_server NAME FLAGS...: latency-server as TB_USER in the server
# namespace, query ports picked by the kernel on 127.0.0.1 (FLAGS may
# override them). Checks that ICMP uses a datagram socket with kernel stamps
# (set TB_NO_ICMP=1 when no target has ICMP probes).
tb_start_server() {
  local name=$1 bin
  shift
  bin=$(tb_user_binary "$TB_SERVER_BIN")
  tb_spawn "$name" "$TB_SERVER_NS" user "$bin" --grpc_listen=127.0.0.1:0 \
    --http_listen=127.0.0.1:0 --report_interval=0 "$@"
  tb_wait_log "$name" "HTTP gateway on port [0-9]+" >/dev/null
  tb_wait_log "$name" "probing [0-9]+ targets" >/dev/null
  local icmp
  if [ "${TB_NO_ICMP:-}" = 1 ]; then
    tb_log "latency-server $name (pid $(tb_pid "$name"), $TB_USER), no ICMP targets"
    return
  fi
  icmp=$(tb_wait_log "$name" "ICMP prober: ")
  case "$icmp" in
    *"IPv4 socket: datagram, kernel stamps"*) ;;
    *) tb_fail "$name: expected an IPv4 datagram ICMP socket with kernel stamps: $icmp" ;;
  esac
  tb_log "latency-server $name (pid $(tb_pid "$name"), $TB_USER): ${icmp#*ICMP prober: }"
}

tb_server_port() { # NAME grpc|http
  local what="gRPC query service"
  [ "$2" = http ] && what="HTTP gateway"
  grep -m1 -o "$what on port [0-9]*" "$TB_DIR/$1.log" | awk '{print $NF}'
}

# tb_cli SERVER ARGS...: latencyctl against server SERVER.
tb_cli() {
  local name=$1 bin
  shift
  bin=$(tb_user_binary "$TB_CLI_BIN")
  ip netns exec "$TB_SERVER_NS" setpriv --reuid="$TB_USER" --regid="$TB_GROUP" \
    --clear-groups "$bin" --server="127.0.0.1:$(tb_server_port "$name" grpc)" "$@"
}

# tb_cli_bg OUTFILE SERVER ARGS...: tb_cli in the background, stdout to
# OUTFILE; TB_BG_PID is latencyctl's own pid (every step execs).
tb_cli_bg() {
  local file=$1 name=$2 bin port
  shift 2
  bin=$(tb_user_binary "$TB_CLI_BIN")
  port=$(tb_server_port "$name" grpc)
  ip netns exec "$TB_SERVER_NS" setpriv --reuid="$TB_USER" --regid="$TB_GROUP" \
    --clear-groups "$bin" --server="127.0.0.1:$port" "$@" >"$file" &
  # shellcheck disable=SC2034
  TB_BG_PID=$!
}

# tb_http SERVER PATH: GET from server SERVER's HTTP gateway.
tb_http() {
  ip netns exec "$TB_SERVER_NS" curl -sS --max-time 5 \
    "http://127.0.0.1:$(tb_server_port "$1" http)$2"
}

# tb_wait_status SERVER TARGET KIND STATUS [SECONDS]: polls the server (about
# every 20 ms) until the target's probe KIND (icmp|grpc) has STATUS; prints
# the GetTargetStats JSON that showed it. Protobuf's JSON printer writes
# fields in declaration order, so a fixed pattern finds the probe summary.
tb_wait_status() {
  local name=$1 target=$2 kind=$3 want=$4 limit=${5:-20} json kind_enum
  kind_enum="PROBE_KIND_${kind^^}"
  local pattern="\"kind\":\"$kind_enum\",\"enabled\":true,\"status\":\"$want\""
  local deadline=$((SECONDS + limit))
  while ((SECONDS <= deadline)); do
    if json=$(tb_http "$name" "/v1/targets/$target/stats?window=1m" 2>/dev/null) &&
      grep -qF -- "$pattern" <<<"$json"; then
      echo "$json"
      return 0
    fi
    sleep 0.01
  done
  tb_fail "$name: $target $kind did not turn $want within ${limit}s"
}

# tb_ping OUT COUNT INTERVAL [ADDR]: ping from the server namespace (as
# root, so intervals under 0.2 s are allowed), output in OUT, ping's exit
# code. Meanwhile a tap (e2e_check.py tap) records ping's exact RTTs in
# OUT.tap: ping itself prints 10 ms and more rounded to 0.1 ms.
tb_ping() {
  local out=$1 count=$2 interval=$3 addr=${4:-$TB_AGENT_ADDR} tap rc=0
  tap="tap-$(basename "$out")"
  tb_spawn "$tap" "$TB_SERVER_NS" root python3 "$TB_CHECK" tap --dev "$TB_DEV"
  tb_wait_log "$tap" "tap: listening" >/dev/null
  ip netns exec "$TB_SERVER_NS" ping -n -W 2 -c "$count" -i "$interval" "$addr" >"$out" || rc=$?
  tb_stop "$tap"
  mv "$TB_DIR/$tap.log" "$out.tap"
  return "$rc"
}

# Where tb_inject's rule goes: TB_INJECT_NS, and TB_INJECT_HOOK (chain and
# match): the agent's egress, or the router's forwarding toward the server.
tb_inject_where() {
  if [ "${TB_TOPOLOGY:-}" = routed ]; then
    TB_INJECT_NS=$TB_ROUTER_NS
    TB_INJECT_HOOK=(FORWARD -o to-server)
  else
    TB_INJECT_NS=$TB_AGENT_NS
    TB_INJECT_HOOK=(OUTPUT -o "$TB_DEV")
  fi
}

tb_queue_num() { cat "$TB_DIR/inject.queue" 2>/dev/null || echo 0; }

# tb_inject FLAGS...: (re)starts latency-inject with FLAGS (--delay_ms,
# --jitter_ms, --jitter_distribution, --loss_percent, --reorder, --seed) on
# everything the agent namespace sends out of veth0 (routed: everything the
# router forwards toward the server). A change is gapless: the
# new injector binds the other of two queues, the iptables rule is switched
# to it, then the old one drains (held packets still get their delay).
tb_inject() {
  local old new
  tb_inject_where
  old=$(tb_queue_num)
  new=$((old == 1 ? 2 : 1))
  tb_spawn "inject-q$new" "$TB_INJECT_NS" root "$TB_INJECT_BIN" \
    --queue_num="$new" --realtime_priority=20 "$@"
  tb_wait_log "inject-q$new" "queue $new: delay" >/dev/null
  local rule=("${TB_INJECT_HOOK[@]}" -j NFQUEUE --queue-num "$new")
  if ip netns exec "$TB_INJECT_NS" iptables -C "${TB_INJECT_HOOK[@]}" -j NFQUEUE \
    --queue-num "$old" 2>/dev/null; then
    ip netns exec "$TB_INJECT_NS" iptables -R "${rule[0]}" 1 "${rule[@]:1}"
  else
    ip netns exec "$TB_INJECT_NS" iptables -I "${rule[0]}" 1 "${rule[@]:1}"
  fi
  echo "$new" >"$TB_DIR/inject.queue"
  if [ "$old" != 0 ]; then tb_inject_stop "$old"; fi
  tb_log "injecting on $TB_INJECT_NS ${TB_INJECT_HOOK[*]}: $*"
}

tb_inject_stop() { # QUEUE: drain and stop that injector, log its summary
  tb_stop "inject-q$1"
  grep -h "packets," "$TB_DIR/inject-q$1.log" | sed 's/^.*\[inject\] /latency-inject: /' >&2 || true
}

# tb_inject_off: removes the rule (traffic passes directly), then drains and
# stops the injector.
tb_inject_off() {
  local q
  tb_inject_where
  q=$(tb_queue_num)
  [ "$q" != 0 ] || return 0
  ip netns exec "$TB_INJECT_NS" iptables -D "${TB_INJECT_HOOK[@]}" -j NFQUEUE --queue-num "$q"
  echo 0 >"$TB_DIR/inject.queue"
  tb_inject_stop "$q"
  tb_log "injection off"
}

# tb_inject_ingress FLAGS...: latency-inject (queue 3) on what the agent
# namespace receives on veth0 (the requests), e.g. for paths longer than the
# probe interval. tb_inject holds the agent's own egress: its TCP sockets
# then count held segments as still queued on the host (TCP small queues,
# autocorking), so a reply written while an earlier one is held waits for
# it, and overlapping gRPC probes read 200-250 ms at 150 ms. Held here, the
# packets have left the sender's socket accounting (ip_rcv orphans them),
# and the kernel's ICMP replies are delayed just the same.
tb_inject_ingress() {
  tb_spawn inject-in "$TB_AGENT_NS" root "$TB_INJECT_BIN" --queue_num=3 \
    --realtime_priority=20 "$@"
  tb_wait_log inject-in "queue 3: delay" >/dev/null
  ip netns exec "$TB_AGENT_NS" iptables -I INPUT 1 -i "$TB_DEV" -j NFQUEUE --queue-num 3
  tb_log "injecting on $TB_AGENT_NS $TB_DEV ingress: $*"
}

# tb_blackhole ADDR: adds ADDR to the agent's veth0 and drops everything sent
# to it, so probes to ADDR get neither replies nor errors.
tb_blackhole() {
  ip -n "$TB_AGENT_NS" addr add "$1/$TB_PREFIX_LEN" dev "$TB_DEV"
  ip netns exec "$TB_AGENT_NS" iptables -A INPUT -d "$1" -j DROP
  tb_log "blackholed $1 (in $TB_AGENT_NS: address on $TB_DEV, iptables INPUT DROP)"
}

tb_now_ns() { date +%s%N; }

# tb_prometheus PORT|ADDR:PORT,... [RULE_FILE...]: a real Prometheus in the
# server's namespace on 127.0.0.1:9090, scraping 127.0.0.1:PORT (or every
# ADDR:PORT listed; job latency-pair) every second and evaluating the rule
# files (copied into its folder) every second; returns once the config
# checks out.
tb_prometheus() {
  local targets=$1 dir="$TB_DIR/prometheus" rules="" file
  shift
  [[ "$targets" == *:* ]] || targets="127.0.0.1:$targets"
  targets="'${targets//,/"', '"}'"
  mkdir -p "$dir/data"
  for file in "$@"; do
    cp "$file" "$dir/"
    rules+="${rules:+, }$(basename "$file")"
  done
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [$rules]
scrape_configs:
  - job_name: latency-pair
    static_configs:
      - targets: [$targets]
YAML
  promtool check config "$dir/prometheus.yml" >/dev/null
  tb_spawn prometheus "$TB_SERVER_NS" root prometheus \
    --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address=127.0.0.1:9090 --log.level=warn
}

# tb_promql EXPR: tb_prometheus' answer to EXPR as "labels value" lines,
# labels sorted and without __name__, job, instance and source (an empty
# first field when none are left); fails on a query error.
tb_promql() {
  ip netns exec "$TB_SERVER_NS" curl -sS --max-time 5 -G \
    --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query |
    python3 -c '
import json, sys
reply = json.load(sys.stdin)
assert reply["status"] == "success", reply
for s in reply["data"]["result"]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k not in ("__name__", "job", "instance", "source"))
    print(labels, s["value"][1])'
}
