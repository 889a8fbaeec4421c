#!/usr/bin/env bash
# README's whole-process memory per target, measured: bench/run_scale.sh
# with one ICMP target, 2,000 ICMP targets and 1 ICMP + 200 gRPC targets
# (RSS 10 s after start, before any scrape; ~50 s, under /tmp/e2e.lock),
# then tests/readme/memory_claims.py holds README's "about X KB per ICMP
# target and Y KB per gRPC target" to it (within 30%).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/netns.sh
source "$here/netns.sh"
tb_require
rss_file=$(mktemp)
trap 'rm -f "$rss_file"' EXIT
RUNS="1:0 2000:0 1:200" WARMUP=10 WINDOW=2 RSS_OUT="$rss_file" \
  bash "$here/../../bench/run_scale.sh" | grep '^|'
python3 "$here/../readme/memory_claims.py" rss "$here/../../README.md" "$rss_file"
