#!/usr/bin/env bash
# The EC2 boot path of a package install, run for real: the user data
# Terraform renders (infra/tests/render: agent_package, server_package) runs
# in two Debian 12 roots booted with systemd (an agent on 10.42.0.10, the
# metrics server on 10.42.0.5, joined by a veth pair), against
# tests/package/aws_stub.py in each root's network namespace: IMDSv2, S3 and
# SSM, with every request's SigV4 signature checked as AWS checks it.
#   boot      both scripts install the .deb from "S3" (manifest, SHA-256),
#             fetch their TLS material and the token from "SSM", start the
#             services and report "ok: ..." to their status parameters; the
#             server reads the agent over mTLS, /metrics answers over HTTPS
#             with the token only;
#   reload    a new config in "S3" reaches the running server through
#             latency-pair-sync: same process, new target;
#   broken    a manifest whose package fails its SHA-256 is refused and
#             reported as "failed: sync: ...", the service untouched.
#
#   tests/package/boot_test.sh build/latency-pair_VERSION_ARCH.deb
# Needs root, terraform, openssl, debootstrap, systemd-container (the root
# tarball is the one package_test.sh uses, cached).
set -euo pipefail

deb=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/package/nspawn.sh
source "$here/nspawn.sh"

readonly BUCKET=latency-pair-artifacts-0123456789 REGION=us-east-1
readonly AGENT_IP=10.42.0.10 SERVER_IP=10.42.0.5
work=$(mktemp -d /var/tmp/latency-boottest-XXXXXX)
ns_server=lpboot-s-$$
ns_agent=lpboot-a-$$
server_pid="" agent_pid="" server_init="" agent_init=""
stub_pids=()

fail() {
  log "FAIL: $*"
  for init in "$server_init" "$agent_init"; do
    [ -n "$init" ] || continue
    in_pid "$init" sh -c 'tail -n 25 /var/log/latency-pair-bootstrap.log;
      systemctl status --no-pager -n 10 latency-server latency-agent latency-pair-sync' >&2 2>&1 || true
  done
  for stub in server agent; do
    [ -f "$work/stub-$stub/requests.log" ] || continue
    echo "---- stub ($stub) requests ----" >&2
    tail -n 20 "$work/stub-$stub/requests.log" >&2
  done
  exit 1
}

cleanup() {
  local rc=$?
  set +e
  stop_root "$server_pid"
  stop_root "$agent_pid"
  for pid in "${stub_pids[@]}"; do kill "$pid" 2>/dev/null; done
  ip netns del "$ns_server" 2>/dev/null
  ip netns del "$ns_agent" 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

log "rendering the package boot scripts (infra/tests/render)"
cp -r "$repo/infra" "$work/infra"
export TF_CLI_CONFIG_FILE=/dev/null
(
  cd "$work/infra/tests/render"
  terraform init -input=false -no-color >/dev/null &&
    terraform apply -auto-approve -input=false -no-color >/dev/null &&
    terraform output -raw agent_package >"$work/agent-user-data.sh" &&
    terraform output -raw server_package >"$work/server-user-data.sh" &&
    terraform output -raw server_package_config >"$work/server.textproto"
) || fail "terraform could not render the boot scripts"

log "certificates: the stub's endpoints, and the deployment's CA, server, agent and probe"
cert() { # NAME CN SAN [CA]: NAME.key, NAME.crt (self-signed without CA)
  local name=$1 cn=$2 san=$3 ca=${4:-}
  if [ -z "$ca" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=$cn" -keyout "$work/$name.key" -out "$work/$name.crt" 2>/dev/null
    return
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -addext "subjectAltName=$san" -keyout "$work/$name.key" -out "$work/$name.csr" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -CA "$work/$ca.crt" -CAkey "$work/$ca.key" \
    -days 2 -copy_extensions copyall -out "$work/$name.crt" 2>/dev/null
}
cert stub-ca stub-ca ""
cert endpoints endpoints "DNS:$BUCKET.s3.$REGION.amazonaws.com,DNS:ssm.$REGION.amazonaws.com" stub-ca
cert ca latency-ca ""
cert server latency-server "IP:127.0.0.1,IP:$SERVER_IP" ca
cert agent agent-same-az "IP:$AGENT_IP" ca
cert probe probe "DNS:probe" ca
token=$(openssl rand -hex 16)

log "the bucket and the parameters"
aws=$work/aws
mkdir -p "$aws/s3/packages" "$aws/s3/config" "$aws/ssm/latency-pair/tls"
sha=$(sha256sum "$deb" | cut -d' ' -f1)
package_key="packages/$(basename "$deb" .deb)-${sha:0:16}.deb"
cp "$deb" "$aws/s3/$package_key"
printf 'package_key=%s\npackage_sha256=%s\n' "$package_key" "$sha" >"$aws/s3/manifest"
# The rendered config's first target is the agent; the second (another zone)
# does not exist here.
grep -v 'cross-az' "$work/server.textproto" >"$aws/s3/config/server.textproto"
grep -q "host: \"$AGENT_IP\"" "$aws/s3/config/server.textproto" || fail "the render's first target is not $AGENT_IP"
cp "$work/ca.crt" "$aws/ssm/latency-pair/tls/ca"
cp "$work/server.crt" "$aws/ssm/latency-pair/tls/server-cert"
cp "$work/server.key" "$aws/ssm/latency-pair/tls/server-key"
cp "$work/agent.crt" "$aws/ssm/latency-pair/tls/agent-cert"
cp "$work/agent.key" "$aws/ssm/latency-pair/tls/agent-key"
cp "$work/probe.crt" "$aws/ssm/latency-pair/tls/probe-cert"
cp "$work/probe.key" "$aws/ssm/latency-pair/tls/probe-key"
printf '%s' "$token" >"$aws/ssm/latency-pair/token"

log "network: $ns_server ($SERVER_IP) <-> $ns_agent ($AGENT_IP), IMDS on each"
ip netns add "$ns_server"
ip netns add "$ns_agent"
ip link add lpb-s-$$ netns "$ns_server" type veth peer name lpb-a-$$ netns "$ns_agent"
ip -n "$ns_server" addr add "$SERVER_IP/24" dev lpb-s-$$
ip -n "$ns_agent" addr add "$AGENT_IP/24" dev lpb-a-$$
for ns in "$ns_server" "$ns_agent"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$([ "$ns" = "$ns_server" ] && echo lpb-s-$$ || echo lpb-a-$$)" up
  ip -n "$ns" addr add 169.254.169.254/32 dev lo
done
# The package's sysctl drop-in (ping_group_range for the service's group)
# is applied by its postinst on an instance; nspawn keeps /proc/sys
# read-only in a network namespace it did not create, so set it from here.
ip netns exec "$ns_server" sysctl -qw net.ipv4.ping_group_range="0 2147483647"

tarball=$(root_tarball "$deb") || fail "debootstrap"
start_stub() { # ROLE NETNS
  local dir=$work/stub-$1
  mkdir -p "$dir"
  ln -s "$aws/s3" "$dir/s3"
  ln -s "$aws/ssm" "$dir/ssm"
  ip netns exec "$2" python3 "$here/aws_stub.py" --state "$dir" --region "$REGION" \
    --cert "$work/endpoints.crt" --key "$work/endpoints.key" 2>>"$dir/stub.err" &
  stub_pids+=($!)
  for _ in $(seq 50); do [ -f "$dir/ready" ] && return 0; sleep 0.1; done
  cat "$dir/stub.err" >&2
  fail "the AWS stub for $1 did not start"
}
prepare_root() { # ROLE: unpacked, trusting the stub's CA, AWS names on the stub
  local root=$work/root-$1
  mkdir -p "$root"
  unpack_root "$tarball" "$root" "lpboot-$1"
  cp "$work/stub-ca.crt" "$root/usr/local/share/ca-certificates/aws-stub.crt"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || fail "update-ca-certificates in the $1 root"
  printf '127.0.0.1 %s.s3.%s.amazonaws.com ssm.%s.amazonaws.com\n' "$BUCKET" "$REGION" "$REGION" \
    >>"$root/etc/hosts"
  cp "$work/$1-user-data.sh" "$root/root/user-data.sh"
}
for role in agent server; do
  start_stub "$role" "lpboot-${role:0:1}-$$"
  prepare_root "$role"
done

boot_root "$work/root-agent" --network-namespace-path="/run/netns/$ns_agent" || fail "agent root did not boot"
agent_pid=$BOOTED_NSPAWN_PID agent_init=$BOOTED_INIT_PID
boot_root "$work/root-server" --network-namespace-path="/run/netns/$ns_server" || fail "server root did not boot"
server_pid=$BOOTED_NSPAWN_PID server_init=$BOOTED_INIT_PID

# last_status ROLE: the newest value the instance wrote to its status parameter.
last_status() { tail -n 1 "$work/stub-$1/put.jsonl" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["value"])' 2>/dev/null || true; }
metrics() { # PATH [curl args]: the server's HTTPS gateway, with the token
  local path=$1
  shift
  in_pid "$server_init" curl -sS --max-time 3 --cacert /etc/latency-pair/tls/ca.crt \
    -H "Authorization: Bearer $token" "$@" "https://127.0.0.1:5000$path"
}

log "boot: the agent's user data"
start=$SECONDS
timeout 300 nsenter -t "$agent_init" -a -- bash /root/user-data.sh >"$work/agent-boot.log" 2>&1 ||
  { tail -n 20 "$work/agent-boot.log" >&2; fail "the agent's boot script failed"; }
log "agent booted in $((SECONDS - start)) s: $(last_status agent)"
[[ "$(last_status agent)" == *"ok: latency-agent active, latency-pair "* ]] || fail "agent status: $(last_status agent)"
[ "$(in_pid "$agent_init" stat -c '%U:%G %a' /etc/latency-pair/tls/cert.key)" = "root:latency-pair 640" ] ||
  fail "agent key is $(in_pid "$agent_init" stat -c '%U:%G %a' /etc/latency-pair/tls/cert.key)"

log "boot: the server's user data"
start=$SECONDS
timeout 300 nsenter -t "$server_init" -a -- bash /root/user-data.sh >"$work/server-boot.log" 2>&1 ||
  { tail -n 20 "$work/server-boot.log" >&2; fail "the server's boot script failed"; }
log "server booted in $((SECONDS - start)) s: $(last_status server)"
[[ "$(last_status server)" == *"ok: latency-server active, latency-pair "* ]] || fail "server status: $(last_status server)"
in_pid "$server_init" systemctl is-enabled --quiet latency-pair-sync.timer || fail "the sync timer is not enabled"

out=""
for _ in $(seq 60); do
  out=$(metrics /metrics || true)
  grep -q '"grpc_status":"ok"' <<<"$out" && grep -q '"icmp_status":"ok"' <<<"$out" && break
  sleep 0.5
done
grep -q '"grpc_status":"ok"' <<<"$out" || fail "the server never read the agent over mTLS: $out"
grep -q '"icmp_status":"ok"' <<<"$out" || fail "ICMP to the agent not ok: $out"
log "ok: /metrics over HTTPS with the token: ${out:0:120}"
code=$(in_pid "$server_init" curl -s -o /dev/null -w '%{http_code}' --cacert /etc/latency-pair/tls/ca.crt \
  https://127.0.0.1:5000/metrics || true)
[ "$code" = 401 ] || fail "/metrics without the token answered $code, expected 401"
code=$(in_pid "$server_init" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/metrics || true)
[ "$code" != 200 ] || fail "/metrics answered in plaintext"

log "reload: a new target in the config object reaches the running server"
pid_before=$(in_pid "$server_init" systemctl show -p MainPID --value latency-server)
printf 'targets { name: "again" host: "%s" grpc_port: 50051 }\n' "$AGENT_IP" >>"$aws/s3/config/server.textproto"
in_pid "$server_init" systemctl start latency-pair-sync.service || fail "latency-pair-sync failed on a new config"
for _ in $(seq 40); do
  metrics /v1/targets | grep -q '"again"' && break
  sleep 0.25
done
metrics /v1/targets | grep -q '"again"' || fail "the new target never appeared: $(metrics /v1/targets)"
[ "$(in_pid "$server_init" systemctl show -p MainPID --value latency-server)" = "$pid_before" ] ||
  fail "the server was restarted, not reloaded"
[[ "$(last_status server)" == *"updated: config"* ]] || fail "status after the reload: $(last_status server)"
log "ok: same process ($pid_before), new target, status '$(last_status server)'"

log "broken: a package that fails its SHA-256 is refused and reported"
bad_key="packages/latency-pair-broken.deb"
head -c 4096 "$deb" >"$aws/s3/$bad_key"
printf 'package_key=%s\npackage_sha256=%s\n' "$bad_key" "$(echo other | sha256sum | cut -d' ' -f1)" >"$aws/s3/manifest"
if in_pid "$server_init" systemctl start latency-pair-sync.service; then
  fail "latency-pair-sync accepted a package that fails its SHA-256"
fi
[[ "$(last_status server)" == *"failed: sync: checking the SHA-256 of the package"* ]] ||
  fail "status after a broken package: $(last_status server)"
in_pid "$server_init" systemctl is-active --quiet latency-server || fail "a broken package stopped the server"
[ "$(in_pid "$server_init" systemctl show -p MainPID --value latency-server)" = "$pid_before" ] ||
  fail "a broken package restarted the server"
log "ok: '$(last_status server)'"

echo "PASS: boot scripts install the package from S3, serve TLS with the token, reload in place and report failures"
