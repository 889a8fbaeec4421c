# shellcheck shell=bash
# Debian 12 roots booted with systemd as init (systemd-nspawn), shared by
# package_test.sh and boot_test.sh. Source it; needs root, debootstrap and
# systemd-container, and the Debian mirror for the first (cached) debootstrap.
#
#   tarball=$(root_tarball DEB)        cached root with the .deb's dependencies
#   boot_root ROOT NSPAWN_ARGS...      boots ROOT; sets BOOTED_NSPAWN_PID and
#                                      BOOTED_INIT_PID (the container's PID 1)
#   in_pid PID CMD...                  runs CMD inside a booted container
#   stop_root NSPAWN_PID               powers it off (TERM, then KILL)

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# The roots' packages: systemd and the tools the tests and the boot script
# use, plus the .deb's runtime dependencies (so installing it needs no
# network); the cache is keyed by that list.
root_tarball() {
  local deb=$1 depends base key tarball staging
  local cache_dir=${LATENCY_ROOT_CACHE:-/var/cache/latency-pair/roots}
  depends=$(dpkg-deb -f "$deb" Depends | sed -E 's/\([^)]*\)//g; s/[ ]//g')
  base="systemd,systemd-sysv,dbus,curl,ca-certificates,iproute2,adduser,procps,python3"
  key=$(echo "$base,$depends" | sha256sum | cut -c1-16)
  tarball="$cache_dir/bookworm-$key.tar"
  if [ ! -f "$tarball" ]; then
    log "debootstrap Debian 12 with $base,$depends (cached as $tarball)"
    mkdir -p "$cache_dir"
    staging=$(mktemp -d /var/tmp/latency-root-XXXXXX)
    # The dependencies through apt in the root: some are virtual packages
    # (libspdlog1.10-fmt9), which debootstrap cannot resolve.
    if ! debootstrap --variant=minbase --include="$base" bookworm \
      "$staging" http://deb.debian.org/debian >"$staging.log" 2>&1 ||
      ! chroot "$staging" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends ${depends//,/ } && apt-get clean" \
        >>"$staging.log" 2>&1; then
      tail -20 "$staging.log" >&2
      rm -rf "$staging" "$staging.log"
      return 1
    fi
    rm -f "$staging.log"
    tar -C "$staging" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$staging"
  fi
  echo "$tarball"
}

# unpack_root TARBALL ROOT HOSTNAME: a bootable copy.
unpack_root() {
  tar -C "$2" -xf "$1"
  # mktemp's 0700 (also the cached tarball's ".") would be the container's
  # "/", where the service user could not even chdir.
  chmod 755 "$2"
  echo "$3" >"$2/etc/hostname"
  # No D-Bus in the root: nspawn's sandbox denies dbus-daemon's inotify
  # here, so it never finishes starting and boot never completes. systemctl
  # (as root) and systemd-analyze reach PID 1 over its private socket.
  local unit
  for unit in dbus.service dbus.socket systemd-logind.service; do
    ln -sf /dev/null "$2/etc/systemd/system/$unit"
  done
}

in_pid() {
  local pid=$1
  shift
  nsenter -t "$pid" -a -- "$@"
}

boot_root() {
  local root=$1 deadline state=""
  shift
  # nspawn keeps its state under /run/systemd/nspawn; the host has no
  # systemd as PID 1 to provide it.
  mkdir -p /run/systemd/nspawn
  mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
  systemd-nspawn -b --register=no --keep-unit "$@" -D "$root" \
    --console=passive >"$root.console" 2>&1 &
  BOOTED_NSPAWN_PID=$!
  BOOTED_INIT_PID=""
  # The container's PID 1 is the systemd among nspawn's children.
  deadline=$((SECONDS + 60))
  while ((SECONDS <= deadline)); do
    BOOTED_INIT_PID=$(pgrep -x systemd -P "$BOOTED_NSPAWN_PID" | head -1 || true)
    if [ -n "$BOOTED_INIT_PID" ]; then
      state=$(in_pid "$BOOTED_INIT_PID" systemctl is-system-running 2>/dev/null || true)
      case "$state" in running | degraded) break ;; esac
    fi
    sleep 0.2
  done
  log "$root booted: ${state:-no systemd}"
  case "$state" in running | degraded) return 0 ;; *) return 1 ;; esac
}

stop_root() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}
