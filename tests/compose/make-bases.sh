#!/usr/bin/env bash
# Makes the three base images docker/Dockerfile builds on when no registry is
# reachable: Debian 12 minbase from debootstrap with docker/packages-builder.txt
# ("builder"), docker/packages-runtime.txt ("runtime") or
# docker/packages-impair.txt ("impair") preinstalled through
# docker/install-packages.sh, imported into the daemon at DOCKER_HOST. The
# Dockerfile's package steps then find everything present and skip apt, which
# containers here could not reach.
#
# Cached in $LATENCY_CACHE_DIR/bases (default /var/cache/latency-pair): the
# minbase and each base as a tarball, named by a key over this recipe, the
# mirror and the package list, so a changed list makes a new base and an
# unchanged one costs nothing (or one `docker import` on an empty daemon).
# Older keys are deleted. Prints BUILDER_IMAGE=TAG, RUNTIME_IMAGE=TAG and
# IMPAIR_IMAGE=TAG.
#
#   DOCKER_HOST=unix:///run/x/docker.sock tests/compose/make-bases.sh
#   LATENCY_DEBIAN_MIRROR=URL            default: the host's apt source
#   LATENCY_DEBIAN_SECURITY_MIRROR=URL   default: the host's, else deb.debian.org
# Needs root, debootstrap and python3.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

RECIPE=1  # bump to rebuild every base
SUITE=bookworm
CACHE_DIR="${LATENCY_CACHE_DIR:-/var/cache/latency-pair}"
BASES_DIR="$CACHE_DIR/bases"
IMAGE_REPO=latency-pair-base

log() { echo "make-bases: $*" >&2; }

# The first apt source (one-line or deb822) that serves SUITE, else $2.
host_mirror() {
  python3 - "$1" "$2" <<'EOF'
import glob, re, sys
suite, fallback = sys.argv[1], sys.argv[2]
files = glob.glob("/etc/apt/sources.list") + sorted(
    glob.glob("/etc/apt/sources.list.d/*.list")
    + glob.glob("/etc/apt/sources.list.d/*.sources"))
for path in files:
    text = open(path, encoding="utf-8", errors="replace").read()
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if suite in fields.get("Suites", "").split():
                print(fields.get("URIs", "").split()[0]); sys.exit()
    else:
        for line in text.splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == suite:
                print(m.group(1)); sys.exit()
print(fallback)
EOF
}

MIRROR="${LATENCY_DEBIAN_MIRROR:-$(host_mirror "$SUITE" http://deb.debian.org/debian)}"
SECURITY_MIRROR="${LATENCY_DEBIAN_SECURITY_MIRROR:-$(host_mirror \
  "$SUITE-security" http://deb.debian.org/debian-security)}"

key() {  # FILES... -> 12 hex digits over the recipe, mirrors and FILES
  { echo "$RECIPE $SUITE $MIRROR $SECURITY_MIRROR"; cat "$@"; } |
    sha256sum | cut -c1-12
}

# Scratch root file systems; /proc is mounted in them while apt runs.
WORK=""
cleanup() {
  if [ -n "$WORK" ]; then
    if mountpoint -q "$WORK/root/proc"; then umount "$WORK/root/proc"; fi
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

# Prints the path of the cached minbase tarball, making it if needed.
minbase_tarball() {
  local tarball
  tarball="$BASES_DIR/minbase-$(key /dev/null).tar"
  if [ ! -f "$tarball" ]; then
    log "debootstrap $SUITE minbase from $MIRROR"
    mkdir -p "$CACHE_DIR/debootstrap"
    rm -rf --one-file-system "$WORK/root"
    if ! debootstrap --variant=minbase --cache-dir="$CACHE_DIR/debootstrap" \
        "$SUITE" "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
      tail -n 30 "$WORK/debootstrap.log" >&2
      exit 1
    fi
    tar -C "$WORK/root" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
  fi
  echo "$tarball"
}

# Builds the root file system of base NAME with the packages of LIST into
# TARBALL: minbase, apt sources for the suite, docs/man/locales excluded
# (as in debian:*-slim), then install-packages.sh in a chroot.
build_rootfs() {
  local list=$1 tarball=$2 root="$WORK/root" minbase
  minbase="$(minbase_tarball)"
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$minbase"
  rm -f "$root"/etc/apt/sources.list.d/*
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" \
    >"$root/etc/apt/sources.list"
  printf '%s\n' 'path-exclude /usr/share/doc/*' \
    'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
    'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    'path-exclude /usr/share/lintian/*' \
    >"$root/etc/dpkg/dpkg.cfg.d/latency-pair-slim"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp docker/install-packages.sh "$list" "$root/tmp/"
  mount -t proc proc "$root/proc"
  chroot "$root" /bin/sh /tmp/install-packages.sh "/tmp/$(basename "$list")" >&2
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d" "$root/tmp/install-packages.sh" \
    "$root/tmp/$(basename "$list")"
  : >"$root/etc/resolv.conf"
  tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf --one-file-system "$root"
}

# Prints the tag of base NAME with the packages of LIST, making it if needed.
base_image() {
  local name=$1 list=$2 tag tarball
  tag="$IMAGE_REPO/$name:$(key "$list" docker/install-packages.sh)"
  tarball="$BASES_DIR/$name-${tag##*:}.tar"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    if [ ! -f "$tarball" ]; then
      log "building $name base ($list)"
      build_rootfs "$list" "$tarball"
    fi
    log "docker import $tag"
    docker import --change 'CMD ["bash"]' --change \
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$tarball" "$tag" >/dev/null
  fi
  echo "$tag"
}

# Deletes tarballs and images whose NAME-KEY is not one of KEEP.
prune() {
  local keep=" $* " path image name
  for path in "$BASES_DIR"/*.tar; do
    [ -e "$path" ] || continue
    name="$(basename "$path" .tar)"
    [[ "$keep" == *" $name "* ]] && continue
    log "removing old $path"
    rm -f "$path"
  done
  for image in $(docker image ls --format '{{.Repository}}:{{.Tag}}' \
      --filter "reference=$IMAGE_REPO/*"); do
    name="${image#"$IMAGE_REPO"/}"
    [[ "$keep" == *" ${name%%:*}-${name##*:} "* ]] && continue
    log "removing old image $image"
    docker image rm "$image" >/dev/null || true
  done
}

mkdir -p "$BASES_DIR"
WORK="$(mktemp -d "$BASES_DIR/work.XXXXXX")"
builder="$(base_image builder docker/packages-builder.txt)"
runtime="$(base_image runtime docker/packages-runtime.txt)"
impair="$(base_image impair docker/packages-impair.txt)"
prune "minbase-$(key /dev/null)" "builder-${builder##*:}" \
  "runtime-${runtime##*:}" "impair-${impair##*:}"
echo "BUILDER_IMAGE=$builder"
echo "RUNTIME_IMAGE=$runtime"
echo "IMPAIR_IMAGE=$impair"
