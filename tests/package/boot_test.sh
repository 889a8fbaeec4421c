#!/usr/bin/env bash
# The EC2 boot path of a package install, run for real: the user data
# Terraform renders (infra/tests/render: agent_package, server_package,
# member_package) runs as cloud-init would (a service of the instance's
# systemd, clean environment) in three Debian 12 roots booted with systemd:
# an agent on 10.42.0.10 and the metrics server on 10.42.0.5, joined by a
# veth pair, and a mesh member (latency-agent and latency-server on one host,
# source us-east-1a) on 10.42.1.20, joined to the agent by a second veth pair:
# the agent's 10.42.1.10 there stands in for the member us-east-1b's agent
# (the render's us-east-1c, 10.42.2.10, does not exist here).
# Each root's network namespace has its own tests/package/aws_stub.py:
# IMDSv2, S3 and SSM, every SigV4 signature checked as AWS checks it (the
# stub's signature code is first checked against AWS's published examples).
#   boot      both scripts install the .deb from "S3" (manifest, SHA-256),
#             fetch their TLS material and the token from "SSM", start the
#             services and the sync timer and report "ok: ..." to their own
#             status parameter; the server reads the agent by ICMP and over
#             mTLS; /metrics answers over HTTPS with the token only; every
#             request the instances made was accepted, while a wrong secret
#             and IMDSv1 are refused;
#   member    its boot script (run alongside the agent's; the third root costs ~12 s)
#             installs the .deb from "S3", fetches the mesh's TLS material
#             and token, starts both latency-agent and latency-server and
#             reports "ok: ..." naming both; its server reads us-east-1b by
#             ICMP and over mTLS with source "us-east-1a";
#   reload    a new config object reaches the running server through
#             latency-pair-sync: same process, new target, "updated: config";
#   broken    a manifest whose package fails its SHA-256 is refused and
#             reported as "failed: sync: ...", the service untouched; the
#             good manifest back is reported "ok" again;
#   denied    the boot script run where S3 refuses the role reports
#             "failed: bootstrap: ..." (and the sync's own failure).
#
#   tests/package/boot_test.sh build/latency-pair_VERSION_ARCH.deb
# Needs root, terraform, openssl, python3, debootstrap, systemd-container
# (the root tarball is the one package_test.sh uses, cached).
set -euo pipefail

[ "$(id -u)" = 0 ] || {
  echo "boot_test.sh needs root (debootstrap, systemd-nspawn, veth)" >&2
  exit 2
}
deb=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/package/nspawn.sh
source "$here/nspawn.sh"

readonly BUCKET=latency-pair-artifacts-0123456789 REGION=eu-west-1
readonly AGENT_IP=10.42.0.10 SERVER_IP=10.42.0.5
readonly AGENT_STATUS=/latency-pair/status/agent-same-az SERVER_STATUS=/latency-pair/status/server
# The member's other member us-east-1b, as rendered, is the agent's second
# address (its latency-agent listens on all of them).
readonly PEER_IP=10.42.1.10 MEMBER_IP=10.42.1.20
readonly MEMBER_STATUS=/latency-mesh/status/member-us-east-1a
# The veth pairs: nspawn creates them with the agent's and the member's
# roots (host sides named $veth, $veth_member), which then move into the
# server's and the agent's network namespaces. Two point-to-point links, no
# bridge: the member only needs the agent, the server never probes it.
readonly veth=lpboot$$ veth_member=lpmemb$$
work=$(mktemp -d /var/tmp/latency-boottest-XXXXXX)
server_pid="" agent_pid="" server_init="" agent_init="" member_pid="" member_init=""
stub_pids=()
started=$SECONDS

fail() {
  echo "FAIL: $*" >&2
  for init in "$agent_init" "$server_init" "$member_init"; do
    [ -n "$init" ] || continue
    echo "---- $(in_pid "$init" hostname 2>/dev/null) ----" >&2
    in_pid "$init" sh -c 'tail -n 25 /var/log/latency-pair-bootstrap.log;
      systemctl status --no-pager -n 10 latency-server latency-agent latency-pair-sync' >&2 2>&1 || true
  done
  for stub in agent server member; do
    [ -f "$work/stub-$stub/requests.log" ] || continue
    echo "---- stub ($stub) requests ----" >&2
    tail -n 25 "$work/stub-$stub/requests.log" >&2
    [ -s "$work/stub-$stub/stub.err" ] && tail -n 10 "$work/stub-$stub/stub.err" >&2
  done
  exit 1
}
pass() { echo "PASS: $*"; }

cleanup() {
  local rc=$?
  set +e
  stop_root "$server_pid"
  stop_root "$agent_pid"
  stop_root "$member_pid"
  for pid in "${stub_pids[@]}"; do kill "$pid" 2>/dev/null; done
  ip link del "$veth" 2>/dev/null # only if it never left the host
  ip link del "$veth_member" 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 "$here/aws_stub.py" --self-test || fail "the stub's SigV4 code disagrees with AWS's examples"

log "rendering the package boot scripts (infra/tests/render)"
cp -r "$repo/infra" "$work/infra"
export TF_CLI_CONFIG_FILE=/dev/null
(
  cd "$work/infra/tests/render"
  terraform init -input=false -no-color >/dev/null &&
    terraform apply -auto-approve -input=false -no-color >/dev/null &&
    terraform output -raw agent_package >"$work/agent-user-data.sh" &&
    terraform output -raw server_package >"$work/server-user-data.sh" &&
    terraform output -raw server_package_config >"$work/server.textproto" &&
    terraform output -raw member_package >"$work/member-user-data.sh" &&
    terraform output -raw member_package_config >"$work/member.textproto"
) || fail "terraform could not render the boot scripts"

log "certificates: the stub's endpoints, and the deployment's CA, server, agent, member and probe"
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
cert agent agent-same-az "IP:$AGENT_IP,IP:$PEER_IP" ca
# One certificate for the member's three surfaces (agent, gRPC, HTTPS); its
# probes use the same probe certificate as the server's, from the same CA.
cert member member-us-east-1a "IP:127.0.0.1,IP:$MEMBER_IP" ca
cert probe probe "DNS:probe" ca
token=$(openssl rand -hex 16)

log "the bucket and the parameters"
aws=$work/aws
mkdir -p "$aws/s3/packages" "$aws/s3/config" "$aws/ssm/latency-pair/tls" "$aws/ssm/latency-mesh/tls"
sha=$(sha256sum "$deb" | cut -d' ' -f1)
package_key="packages/$(basename "$deb" .deb)-${sha:0:16}.deb"
cp "$deb" "$aws/s3/$package_key"
printf 'package_key=%s\npackage_sha256=%s\n' "$package_key" "$sha" >"$aws/s3/manifest"
cp "$aws/s3/manifest" "$work/good-manifest"
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
# The member's config: its source and the other members, us-east-1c dropped.
grep -v 'us-east-1c' "$work/member.textproto" >"$aws/s3/config/member-us-east-1a.textproto"
if ! grep -q "source: \"us-east-1a\"" "$aws/s3/config/member-us-east-1a.textproto" ||
  ! grep -q "name: \"us-east-1b\" host: \"$PEER_IP\"" "$aws/s3/config/member-us-east-1a.textproto"; then
  fail "the render's member is not us-east-1a probing us-east-1b on $PEER_IP"
fi
cp "$work/ca.crt" "$aws/ssm/latency-mesh/tls/ca"
cp "$work/member.crt" "$aws/ssm/latency-mesh/tls/member-cert"
cp "$work/member.key" "$aws/ssm/latency-mesh/tls/member-key"
cp "$work/probe.crt" "$aws/ssm/latency-mesh/tls/probe-cert"
cp "$work/probe.key" "$aws/ssm/latency-mesh/tls/probe-key"
printf '%s' "$token" >"$aws/ssm/latency-mesh/token"

tarball=$(root_tarball "$deb") || fail "debootstrap"
prepare_root() { # ROLE: unpacked, trusting the stub's CA, AWS names on the stub
  local root=$work/root-$1
  mkdir -p "$root"
  unpack_root "$tarball" "$root" "lpboot-$1"
  cp "$work/stub-ca.crt" "$root/usr/local/share/ca-certificates/aws-stub.crt"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || fail "update-ca-certificates in the $1 root"
  grep -qF "$(sed -n 2p "$work/stub-ca.crt")" "$root/etc/ssl/certs/ca-certificates.crt" ||
    fail "the stub's CA is not in the $1 root's bundle"
  printf '127.0.0.1 %s.s3.%s.amazonaws.com ssm.%s.amazonaws.com\n' "$BUCKET" "$REGION" "$REGION" \
    >>"$root/etc/hosts"
  cp "$work/$1-user-data.sh" "$root/root/user-data.sh"
  cat >"$root/etc/systemd/system/user-data.service" <<'EOF'
[Unit]
Description=The instance's user data, as cloud-init's cloud-final.service runs it
[Service]
Type=oneshot
ExecStart=/bin/bash /root/user-data.sh
TimeoutStartSec=300
EOF
}
prepare_root agent
prepare_root server
prepare_root member

# Private network namespaces that nspawn creates (so /proc/sys/net is the
# container's own and writable, as on an instance: the package's postinst
# sets ping_group_range itself).
boot_root "$work/root-agent" --private-network --network-veth-extra="$veth:eth0" ||
  fail "the agent root did not boot"
agent_pid=$BOOTED_NSPAWN_PID agent_init=$BOOTED_INIT_PID
boot_root "$work/root-server" --private-network || fail "the server root did not boot"
server_pid=$BOOTED_NSPAWN_PID server_init=$BOOTED_INIT_PID
boot_root "$work/root-member" --private-network --network-veth-extra="$veth_member:eth0" ||
  fail "the member root did not boot"
member_pid=$BOOTED_NSPAWN_PID member_init=$BOOTED_INIT_PID

log "network: server $SERVER_IP <-> agent $AGENT_IP, agent $PEER_IP <-> member $MEMBER_IP, IMDS on each"
ip link set "$veth" netns "$server_init" || fail "moving $veth to the server"
nsenter -t "$server_init" -n ip link set "$veth" name eth0
nsenter -t "$server_init" -n ip addr add "$SERVER_IP/24" dev eth0
nsenter -t "$agent_init" -n ip addr add "$AGENT_IP/24" dev eth0
ip link set "$veth_member" netns "$agent_init" || fail "moving $veth_member to the agent"
nsenter -t "$agent_init" -n ip link set "$veth_member" name eth1
nsenter -t "$agent_init" -n ip addr add "$PEER_IP/24" dev eth1
nsenter -t "$agent_init" -n ip link set eth1 up
nsenter -t "$member_init" -n ip addr add "$MEMBER_IP/24" dev eth0
for init in "$server_init" "$agent_init" "$member_init"; do
  nsenter -t "$init" -n ip link set eth0 up
  nsenter -t "$init" -n ip addr add 169.254.169.254/32 dev lo
done

start_stub() { # ROLE INIT_PID: the stub in that root's network namespace
  local dir=$work/stub-$1
  mkdir -p "$dir"
  ln -s "$aws/s3" "$dir/s3"
  ln -s "$aws/ssm" "$dir/ssm"
  nsenter -t "$2" -n python3 "$here/aws_stub.py" --state "$dir" --region "$REGION" \
    --bucket "$BUCKET" --cert "$work/endpoints.crt" --key "$work/endpoints.key" 2>>"$dir/stub.err" &
  stub_pids+=($!)
  for _ in $(seq 50); do
    [ -f "$dir/ready" ] && return 0
    sleep 0.1
  done
  fail "the AWS stub for $1 did not start: $(cat "$dir/stub.err")"
}
start_stub agent "$agent_init"
start_stub server "$server_init"
start_stub member "$member_init"

# user_data ROLE INIT_PID: the root's user data, run as cloud-init runs it
# (cloud-final.service): a oneshot service of its systemd, clean environment.
# When systemctl fails before the script wrote a line (a CI run: no request
# reached the stub, nothing logged), the harness failed, not the boot:
# systemctl's words and the unit's journal are shown and it starts again.
user_data() {
  local before attempt
  for attempt in 1 2; do
    before=$(in_pid "$2" sh -c 'wc -l </var/log/latency-pair-bootstrap.log 2>/dev/null || echo 0')
    in_pid "$2" systemctl start user-data.service 2>"$work/$1-boot.log" && return 0
    if [ "$attempt" = 1 ] && [ "$(in_pid "$2" sh -c 'wc -l </var/log/latency-pair-bootstrap.log 2>/dev/null || echo 0')" = "$before" ]; then
      log "$1: systemctl start failed before the user data ran ($(tr '\n' ' ' <"$work/$1-boot.log")); its journal:"
      in_pid "$2" journalctl -u user-data.service -n 10 --no-pager >&2 || true
      sleep 1
      continue
    fi
    in_pid "$2" tail -n 20 /var/log/latency-pair-bootstrap.log >>"$work/$1-boot.log" 2>&1
    return 1
  done
}
# statuses ROLE PARAMETER: the values the root wrote to PARAMETER, oldest first.
statuses() {
  [ -f "$work/stub-$1/put.jsonl" ] || return 0
  python3 -c 'import json, sys
for record in map(json.loads, open(sys.argv[1])):
    if record["name"] == sys.argv[2]:
        print(record["value"])' "$work/stub-$1/put.jsonl" "$2"
}
last_status() { statuses "$@" | tail -n 1; }
# refused ROLE: the stub's requests so far that were not answered 200.
refused() { grep -v -- '-> 200$' "$work/stub-$1/requests.log" || true; }
metrics() { # PATH [curl args]: the server's HTTPS gateway, with the token
  local path=$1
  shift
  in_pid "${metrics_init:-$server_init}" curl -sS --max-time 3 --cacert /etc/latency-pair/tls/ca.crt \
    -H "Authorization: Bearer $token" "$@" "https://127.0.0.1:5000$path"
}
# metrics_when_ok INIT: that root's /metrics once its gRPC and ICMP probes
# both read ok (30 s at most); the last answer either way.
metrics_when_ok() {
  local out=""
  for _ in $(seq 60); do
    out=$(metrics_init=$1 metrics /metrics || true)
    grep -q '"grpc_status":"ok"' <<<"$out" && grep -q '"icmp_status":"ok"' <<<"$out" && break
    sleep 0.5
  done
  printf '%s\n' "$out"
}
server_main_pid() { in_pid "$server_init" systemctl show -p MainPID --value latency-server; }

# The member boots alongside the agent (its probes of us-east-1b start
# failing, then succeed once the agent is up): checked after the server.
log "boot: the member's user data (in the background)"
(
  start=$SECONDS
  user_data member "$member_init"
  rc=$?
  echo $((SECONDS - start)) >"$work/member-boot.seconds"
  exit "$rc"
) &
member_boot=$!

log "boot: the agent's user data"
start=$SECONDS
user_data agent "$agent_init" || { cat "$work/agent-boot.log" >&2; fail "the agent's boot script failed"; }
status=$(last_status agent "$AGENT_STATUS")
log "agent booted in $((SECONDS - start)) s: $status"
[[ "$status" == *"ok: latency-agent active, latency-pair $(dpkg-deb -f "$deb" Version)" ]] ||
  fail "agent status: '$status'"
in_pid "$agent_init" systemctl is-active --quiet latency-agent || fail "latency-agent not active"
in_pid "$agent_init" systemctl is-enabled --quiet latency-pair-sync.timer || fail "agent: sync timer not enabled"
[ "$(in_pid "$agent_init" stat -c '%U:%G %a' /etc/latency-pair/tls/cert.key)" = "root:latency-pair 640" ] ||
  fail "agent key is $(in_pid "$agent_init" stat -c '%U:%G %a' /etc/latency-pair/tls/cert.key)"
pass "agent boot: package from S3, TLS from SSM, latency-agent active, '$status'"

log "boot: the server's user data"
start=$SECONDS
user_data server "$server_init" || { cat "$work/server-boot.log" >&2; fail "the server's boot script failed"; }
status=$(last_status server "$SERVER_STATUS")
log "server booted in $((SECONDS - start)) s: $status"
[[ "$status" == *"ok: latency-server active, latency-pair $(dpkg-deb -f "$deb" Version)" ]] ||
  fail "server status: '$status'"
in_pid "$server_init" systemctl is-enabled --quiet latency-pair-sync.timer || fail "server: sync timer not enabled"
out=$(metrics_when_ok "$server_init")
grep -q '"grpc_status":"ok"' <<<"$out" || fail "the server never read the agent over mTLS: $out"
grep -q '"icmp_status":"ok"' <<<"$out" || fail "ICMP to the agent not ok: $out"
grep -q '"status":"ok"' <<<"$out" || fail "/metrics status not ok: $out"
code=$(in_pid "$server_init" curl -s -o /dev/null -w '%{http_code}' --cacert /etc/latency-pair/tls/ca.crt \
  https://127.0.0.1:5000/metrics || true)
[ "$code" = 401 ] || fail "/metrics without the token answered $code, expected 401"
code=$(in_pid "$server_init" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/metrics || true)
[ "$code" != 200 ] || fail "/metrics answered in plaintext"
pass "server boot: '$status'; the agent ok by ICMP and mTLS gRPC; /metrics over HTTPS with the token only"

log "member: its user data, both programs, its probes of us-east-1b"
wait "$member_boot" || { cat "$work/member-boot.log" >&2; fail "the member's boot script failed"; }
status=$(last_status member "$MEMBER_STATUS")
log "member booted in $(cat "$work/member-boot.seconds") s (alongside the agent): $status"
[[ "$status" == *"ok: latency-agent active, latency-server active, latency-pair $(dpkg-deb -f "$deb" Version)" ]] ||
  fail "member status: '$status'"
for unit in latency-agent latency-server; do
  in_pid "$member_init" systemctl is-active --quiet "$unit" || fail "member: $unit not active"
done
in_pid "$member_init" systemctl is-enabled --quiet latency-pair-sync.timer || fail "member: sync timer not enabled"
cmp -s "$aws/s3/config/member-us-east-1a.textproto" "$work/root-member/etc/latency-pair/server.textproto" ||
  fail "the member's /etc/latency-pair/server.textproto is not its config object"
out=$(metrics_when_ok "$member_init")
grep -q '"grpc_status":"ok"' <<<"$out" || fail "the member never read us-east-1b over mTLS: $out"
grep -q '"icmp_status":"ok"' <<<"$out" || fail "the member's ICMP to us-east-1b not ok: $out"
grep -q 'us-east-1b' <<<"$out" || fail "the member's /metrics does not name us-east-1b: $out"
grep -q 'us-east-1a' <<<"$out" || fail "the member's /metrics does not carry its source us-east-1a: $out"
pass "member boot: '$status'; us-east-1b ok by ICMP and mTLS gRPC from source us-east-1a"

# Every request of the three boots was signed as AWS requires; the stub does refuse.
for role in agent server member; do
  [ -z "$(refused "$role")" ] || fail "the $role's boot made requests AWS would refuse: $(refused "$role")"
done
n=$(awk '/amazonaws.com/ { n++ } END { print n }' "$work"/stub-*/requests.log)
imds_creds() { # the role's key id, secret and session token, as the instance sees them
  # shellcheck disable=SC2016 # expanded in the root
  in_pid "$agent_init" sh -c 't=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    http://169.254.169.254/latest/api/token) &&
    curl -fsS -H "X-aws-ec2-metadata-token: $t" \
      http://169.254.169.254/latest/meta-data/iam/security-credentials/latency-pair-boot-test'
}
creds=$(imds_creds) || fail "IMDSv2 credentials"
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$creds" "$1"; }
code=$(in_pid "$agent_init" curl -s -o /dev/null -w '%{http_code}' \
  --aws-sigv4 "aws:amz:$REGION:s3" --user "$(field AccessKeyId):wrong-secret" \
  -H "x-amz-security-token: $(field Token)" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
  "https://$BUCKET.s3.$REGION.amazonaws.com/manifest" || true)
if [ "$code" != 403 ] || ! grep -q 'signature does not match' "$work/stub-agent/requests.log"; then
  fail "a request signed with a wrong secret got $code"
fi
code=$(in_pid "$agent_init" curl -s -o /dev/null -w '%{http_code}' \
  http://169.254.169.254/latest/meta-data/placement/region || true)
[ "$code" = 401 ] || fail "IMDSv1 answered $code"
pass "all $n S3/SSM requests of the three boots had valid SigV4 signatures; a wrong secret (403) and IMDSv1 (401) are refused"

log "reload: a new target in the config object reaches the running server"
pid_before=$(server_main_pid)
printf 'targets { name: "again" host: "%s" grpc_port: 50051 }\n' "$AGENT_IP" >>"$aws/s3/config/server.textproto"
in_pid "$server_init" systemctl start latency-pair-sync.service || fail "latency-pair-sync failed on a new config"
# (Whole answers before matching: `curl | grep -q` fails under pipefail when
# grep stops reading first.)
for _ in $(seq 40); do
  grep -q '"again"' <<<"$(metrics /v1/targets || true)" && break
  sleep 0.25
done
grep -q '"again"' <<<"$(metrics /v1/targets || true)" || fail "the new target never appeared: $(metrics /v1/targets)"
cmp -s "$aws/s3/config/server.textproto" "$work/root-server/etc/latency-pair/server.textproto" ||
  fail "/etc/latency-pair/server.textproto is not the new config"
[ "$(server_main_pid)" = "$pid_before" ] || fail "the server was restarted, not reloaded"
status=$(last_status server "$SERVER_STATUS")
[[ "$status" == *"ok: latency-pair "*", latency-server active, updated: config" ]] ||
  fail "status after the reload: '$status'"
pass "reload: same process ($pid_before), new target, '$status'"

log "broken: a package that fails its SHA-256 is refused and reported"
bad_key="packages/latency-pair-broken.deb"
head -c 4096 "$deb" >"$aws/s3/$bad_key"
printf 'package_key=%s\npackage_sha256=%s\n' "$bad_key" "$(echo other | sha256sum | cut -d' ' -f1)" >"$aws/s3/manifest"
if in_pid "$server_init" systemctl start latency-pair-sync.service 2>/dev/null; then
  fail "latency-pair-sync accepted a package that fails its SHA-256"
fi
status=$(last_status server "$SERVER_STATUS")
[[ "$status" == *"failed: sync: checking the SHA-256 of the package (exit 1); see journalctl -u latency-pair-sync" ]] ||
  fail "status after a broken package: '$status'"
in_pid "$server_init" systemctl is-active --quiet latency-server || fail "a broken package stopped the server"
[ "$(server_main_pid)" = "$pid_before" ] || fail "a broken package restarted the server"
# shellcheck disable=SC2016 # dpkg-query's own ${Version}
[ "$(in_pid "$server_init" dpkg-query -W -f='${Version}' latency-pair)" = "$(dpkg-deb -f "$deb" Version)" ] ||
  fail "the installed package changed"
pass "broken package refused, service untouched, '$status'"
cp "$work/good-manifest" "$aws/s3/manifest"
in_pid "$server_init" systemctl start latency-pair-sync.service || fail "latency-pair-sync failed on the good manifest"
status=$(last_status server "$SERVER_STATUS")
[[ "$status" == *"ok: latency-pair "*", latency-server active, updated: nothing" ]] ||
  fail "status once the good manifest is back: '$status'"
pass "recovery reported: '$status'"

log "denied: the boot script where S3 refuses the role"
touch "$work/stub-agent/deny-s3"
if user_data agent "$agent_init"; then
  fail "the agent's boot script succeeded without S3"
fi
rm "$work/stub-agent/deny-s3"
recent=$(statuses agent "$AGENT_STATUS" | tail -n 2)
grep -q "failed: sync: reading s3://$BUCKET/manifest (exit 22)" <<<"$recent" ||
  fail "the sync's failure was not reported: $recent"
status=$(last_status agent "$AGENT_STATUS")
[[ "$status" == *"failed: bootstrap: installing the package from s3://$BUCKET (exit 22); see /var/log/latency-pair-bootstrap.log" ]] ||
  fail "status after a boot without S3: '$status'"
in_pid "$agent_init" systemctl is-active --quiet latency-agent || fail "latency-agent stopped"
pass "a boot where S3 answers 403 is reported: '$status'"

echo "PASS: the package boot path (Terraform's user data, IMDSv2, S3, SSM, SigV4) in $((SECONDS - started)) s"
