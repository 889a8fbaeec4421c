#!/bin/sh
# Installs the Debian packages listed in FILE (one a line, `#` comments)
# that are not installed yet, then empties apt's caches. With every package
# already present (a pre-provisioned base image) it touches nothing and
# needs no network.
#
#   install-packages.sh FILE
set -eu

packages=$(sed -e 's/#.*//' "$1")
missing=""
for pkg in $packages; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
      grep -q "ok installed"; then
    missing="$missing $pkg"
  fi
done
[ -n "$missing" ] || exit 0

echo "install-packages: installing$missing"
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
  --no-install-recommends $missing >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*
