#!/bin/sh
# latency-impair [latency-inject FLAGS]: delays and drops every packet the
# network namespace it runs in sends, loopback excepted, until stopped: the
# compose testbed's sidecar in the agent's namespace (docker-compose.yml,
# profile "impair"), so the server sees a slower, lossy path to the agent.
# FLAGS are latency-inject's: --delay_ms, --jitter_ms, --loss_percent, ...
#
# latency-inject binds NFQUEUE $LATENCY_IMPAIR_QUEUE (7) first; only then
# does the OUTPUT rule send packets to it. On SIGTERM (docker stop) the rule
# goes first, so new packets pass at once, and the injector releases what it
# holds at its due time. If the injector dies, the rule goes too and the
# container exits with its status: a path is never left blackholed.
set -eu

QUEUE="${LATENCY_IMPAIR_QUEUE:-7}"

log() { echo "latency-impair: $*" >&2; }
rule() { iptables -w 5 "$1" OUTPUT ! -o lo -j NFQUEUE --queue-num "$QUEUE"; }
bound() { awk -v q="$QUEUE" '$1 == q { found = 1 } END { exit !found }' \
  /proc/net/netfilter/nfnetlink_queue 2>/dev/null; }

latency-inject --queue_num="$QUEUE" "$@" &
pid=$!

tries=0
until bound; do
  if ! kill -0 "$pid" 2>/dev/null || [ "$tries" -ge 100 ]; then
    log "latency-inject did not bind queue $QUEUE"
    kill "$pid" 2>/dev/null || true
    wait "$pid" || exit
    exit 1
  fi
  tries=$((tries + 1))
  sleep 0.1
done

ruled=false
unrule() {
  if $ruled; then
    rule -D || log "could not remove the NFQUEUE rule"
    ruled=false
  fi
}
stop() {
  unrule
  kill -TERM "$pid" 2>/dev/null || true
}
trap stop TERM INT

if ! rule -I; then
  log "could not add the NFQUEUE rule (the container needs cap_add NET_ADMIN)"
  stop
  wait "$pid" || true
  exit 1
fi
ruled=true
log "packets leaving this namespace (except on lo) go through queue $QUEUE: $*"

# A trapped signal interrupts wait while the injector still drains: wait on.
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do
  status=0
  wait "$pid" || status=$?
done
unrule
if [ "$status" -ne 0 ]; then log "latency-inject exited with status $status"; fi
exit "$status"
