#!/usr/bin/env bash
# The .deb installed for real: a Debian 12 root (debootstrap, cached) booted
# with systemd as init in systemd-nspawn (private network: only lo), where
#   install   adds the latency-pair user, installs both units disabled;
#   start     `systemctl enable --now` both; the server probes the agent on
#             127.0.0.1 and /metrics reads "status":"ok", "history":"ok"
#             (the history file in the unit's StateDirectory);
#   verify    systemd-analyze verify and security (exposure score bounded);
#   wire      README's drop-in (CAP_NET_RAW, AF_PACKET, PrivateUsers=no) and
#             --wire_stamps on both: samples are wire-stamped; then removed;
#   reload    a target added to server.textproto + `systemctl reload`: the
#             same process now probes two targets;
#   upgrade   a higher version: edited config kept, running services
#             restarted on the new binaries, the history file kept;
#   purge     user, config, state and units gone.
# One booted root for all of it.
#
#   tests/package/package_test.sh build/latency-pair_VERSION_ARCH.deb
# Needs root, debootstrap, systemd-container (scripts/setup.sh) and the
# Debian mirror for the first (cached) debootstrap.
set -euo pipefail

deb=$(realpath "$1")
# shellcheck source=tests/package/nspawn.sh
source "$(dirname "$0")/nspawn.sh"
init_pid=
fail() {
  log "FAIL: $*"
  if [ -n "$init_pid" ]; then
    nsenter -t "$init_pid" -a -- systemctl status --no-pager -n 15 \
      latency-server latency-agent >&2 2>&1 || true
  fi
  exit 1
}

tarball=$(root_tarball "$deb") || fail "debootstrap"
root=$(mktemp -d /var/tmp/latency-pkgtest-XXXXXX)
nspawn_pid=
cleanup() {
  local rc=$?
  set +e
  stop_root "$nspawn_pid"
  if [ "$rc" -ne 0 ] && [ -f "$root.console" ]; then
    echo "---- container console (last lines) ----" >&2
    tail -30 "$root.console" >&2
  fi
  rm -rf "$root" "$root.console" "$root.dpkg.log"
  exit "$rc"
}
trap cleanup EXIT
unpack_root "$tarball" "$root" latency-pkgtest
cp "$deb" "$root/root/latency-pair.deb"

log "booting $root"
boot_root "$root" --private-network || fail "the container did not boot"
nspawn_pid=$BOOTED_NSPAWN_PID
init_pid=$BOOTED_INIT_PID

# in_root CMD...: runs CMD inside the booted container (all its namespaces).
in_root() { in_pid "$init_pid" "$@"; }

# wait_metrics STATUS_PATTERN SECONDS: until /metrics matches.
wait_metrics() {
  local deadline=$((SECONDS + $2)) out=""
  while ((SECONDS <= deadline)); do
    out=$(in_root curl -s --max-time 2 http://127.0.0.1:5000/metrics || true)
    if grep -qE "$1" <<<"$out"; then
      echo "$out"
      return 0
    fi
    sleep 0.5
  done
  log "last /metrics: $out"
  return 1
}

log "install"
in_root dpkg -i /root/latency-pair.deb >"$root.dpkg.log" 2>&1 || { cat "$root.dpkg.log" >&2; fail "dpkg -i"; }
in_root getent passwd latency-pair >/dev/null || fail "no latency-pair user"
[ "$(in_root stat -c '%U:%G %a' /etc/latency-pair)" = "root:latency-pair 750" ] ||
  fail "/etc/latency-pair is $(in_root stat -c '%U:%G %a' /etc/latency-pair)"
for unit in latency-server latency-agent; do
  enabled=$(in_root systemctl is-enabled "$unit" || true)
  [ "$enabled" = disabled ] || fail "$unit is '$enabled' after install, expected disabled"
done
version=$(in_root latency-server --version)
log "installed: $version"
grep -q "$(dpkg-deb -f "$deb" Version)" <<<"$version" || fail "--version: $version"

log "start"
in_root systemctl enable --now latency-agent latency-server || fail "enable --now"
wait_metrics '"status":"ok"' 30 >/dev/null || fail "/metrics never read ok"
[ "$(in_root ps -o user= -C latency-server)" = latency-pair ] || fail "server not running as latency-pair"
grep -q '"icmp_status":"ok"' <<<"$(wait_metrics ok 1)" || fail "ICMP not ok (ping_group_range?)"
# History is on by default where the unit's StateDirectory exists.
grep -q '"history":"ok"' <<<"$(wait_metrics ok 1)" || fail "history not ok"
in_root test -f /var/lib/latency-pair/history.db || fail "no history file"
# The agent checks the host's ICMP echo sysctl; the sandbox must let it read.
grep -q "host answers ICMP echo" <<<"$(in_root journalctl -u latency-agent --no-pager)" ||
  fail "the agent could not tell whether the host answers ICMP echo"
log "ok: server probes the local agent by ICMP and gRPC as latency-pair"

log "verify"
in_root systemd-analyze verify /lib/systemd/system/latency-server.service \
  /lib/systemd/system/latency-agent.service || fail "systemd-analyze verify"
for unit in latency-server latency-agent; do
  exposure=$(in_root systemd-analyze security --no-pager "$unit.service" |
    grep -oE 'Overall exposure level for [^:]+: [0-9.]+' | awk '{print $NF}')
  log "$unit: systemd-analyze security exposure $exposure"
  awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "$unit exposure $exposure above 2.0"
done

log "wire"
# README's drop-in for --wire_stamps (Troubleshooting), on both units.
for unit in latency-agent latency-server; do
  in_root mkdir -p "/etc/systemd/system/$unit.service.d"
  in_root sh -c "cat >/etc/systemd/system/$unit.service.d/wire-stamps.conf" <<'UNIT'
[Service]
AmbientCapabilities=CAP_NET_RAW
CapabilityBoundingSet=CAP_NET_RAW
PrivateUsers=no
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET
UNIT
done
in_root cp /etc/default/latency-agent /etc/default/latency-server /root/
in_root sed -i 's/^LATENCY_AGENT_ARGS="/&--wire_stamps /' /etc/default/latency-agent
in_root sed -i 's/^LATENCY_SERVER_ARGS="/&--wire_stamps /' /etc/default/latency-server
in_root systemctl daemon-reload
in_root systemctl restart latency-agent latency-server || fail "restart with --wire_stamps"
wire=""
for _ in $(seq 60); do
  wire=$(in_root timeout 5 latencyctl watch localhost --kind=grpc --output=json --count=3 2>/dev/null || true)
  grep -q NETWORK_RTT_SOURCE_WIRE <<<"$wire" && break
  sleep 0.5
done
grep -q NETWORK_RTT_SOURCE_WIRE <<<"$wire" ||
  fail "no wire-stamped sample under the drop-in: $(tail -n 1 <<<"$wire")"
log "ok: the drop-in lets both units stamp on the wire"
for unit in latency-agent latency-server; do
  in_root rm -r "/etc/systemd/system/$unit.service.d"
done
in_root cp /root/latency-agent /etc/default/latency-agent
in_root cp /root/latency-server /etc/default/latency-server
in_root systemctl daemon-reload
in_root systemctl restart latency-agent latency-server || fail "restart without --wire_stamps"
wait_metrics '"status":"ok"' 30 >/dev/null || fail "/metrics not ok after the wire step"

log "reload"
pid_before=$(in_root systemctl show -p MainPID --value latency-server)
in_root sh -c 'echo "targets { name: \"again\" host: \"127.0.0.1\" grpc_port: 50051 }" >>/etc/latency-pair/server.textproto'
in_root systemctl reload latency-server
wait_metrics '"target_count":2' 20 >/dev/null || fail "reload did not add the target"
[ "$(in_root systemctl show -p MainPID --value latency-server)" = "$pid_before" ] ||
  fail "reload restarted the process"
log "ok: reload added a target in place"

log "upgrade"
work=$(mktemp -d)
dpkg-deb -R "$deb" "$work/pkg"
next="$(dpkg-deb -f "$deb" Version)+upgrade1"
sed -i "s/^Version: .*/Version: $next/" "$work/pkg/DEBIAN/control"
dpkg-deb -b "$work/pkg" "$root/root/latency-pair-next.deb" >/dev/null
rm -rf "$work"
in_root dpkg -i /root/latency-pair-next.deb >/dev/null || fail "upgrade"
# shellcheck disable=SC2016 # dpkg-query's own ${Version}
[ "$(in_root dpkg-query -W -f='${Version}' latency-pair)" = "$next" ] || fail "version after upgrade"
in_root grep -q '"again"' /etc/latency-pair/server.textproto || fail "edited config lost on upgrade"
pid_after=$(in_root systemctl show -p MainPID --value latency-server)
if [ "$pid_after" = "$pid_before" ] || [ "$pid_after" = 0 ]; then
  fail "server not restarted by the upgrade"
fi
wait_metrics '"target_count":2' 30 >/dev/null || fail "/metrics after upgrade"
in_root test -f /var/lib/latency-pair/history.db || fail "history lost by the upgrade"
log "ok: upgrade kept the config and restarted the server ($pid_before -> $pid_after)"

log "purge"
in_root dpkg --purge latency-pair >/dev/null || fail "purge"
for path in /etc/latency-pair /var/lib/latency-pair /lib/systemd/system/latency-server.service /usr/bin/latency-server; do
  if in_root test -e "$path"; then fail "$path left after purge"; fi
done
if in_root getent passwd latency-pair >/dev/null; then fail "user left after purge"; fi
if in_root pgrep -x latency-server >/dev/null; then fail "server still running after purge"; fi
echo "PASS: install, start (status ok), verify, wire stamps, reload, upgrade and purge in a systemd-booted Debian 12"
