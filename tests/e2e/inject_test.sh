#!/usr/bin/env bash
# latency-inject checked against ping on the two-namespace testbed: a fixed
# delay shifts ping's median by that much, jitter spreads it (±2 ms uniform:
# the median of 200 replies has a standard error of about 0.14 ms, hence the
# wider bounds), and loss drops the share asked for (ping's lost count
# equals the injector's drop count).
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"

tb_testbed bare
out=$TB_DIR

tb_ping "$out/ping-bare.txt" 200 0.02

# PHASE (a function: inject, ping, check), and once more when its check
# fails while the injector reports having released a packet over 1 ms late:
# a realtime thread that waited that long means the machine stalled (a CI
# run's jitter phase read p95 9.1 ms with the injector 2.7 ms late at most),
# so ping measured the machine, not the shaping. The second verdict stands.
measure() {
  local phase=$1 queue late
  "$phase" && return 0
  queue=$(tb_queue_num)
  tb_inject_off
  late=$(sed -nE 's/.*release late by mean [0-9.]+ us, max ([0-9.]+) us.*/\1/p' \
    "$out/inject-q$queue.log" | tail -n 1)
  if ! python3 -c 'import sys; sys.exit(float(sys.argv[1] or 0) <= 1000)' "$late"; then
    return 1
  fi
  tb_log "the injector released a packet $late us late: the machine stalled; measuring $phase once more"
  TB_FAILURES=()
  "$phase"
}

# Slack above the delay: the injector releases late by ~0.1 ms, and ping,
# which stamps in userspace, wakes from a multi-ms sleep more slowly on this
# VM than from a bare-veth one (shifts of 0.24-0.42 ms above 5 ms seen).
delay_phase() {
  tb_inject --delay_ms=5
  tb_ping "$out/ping-delay.txt" 200 0.02
  tb_check ping-delay --label "delay 5 ms" --ping "$out/ping-delay.txt" \
    --base "$out/ping-bare.txt" --delay_ms 5 --slack_ms 0.5
}
measure delay_phase

jitter_phase() {
  tb_inject --delay_ms=5 --jitter_ms=2
  tb_ping "$out/ping-jitter.txt" 200 0.02
  tb_check ping-delay --label "delay 5 ms, jitter 2 ms uniform" \
    --ping "$out/ping-jitter.txt" --base "$out/ping-bare.txt" --delay_ms 5 --slack_ms 0.6 --below_ms 0.5 \
    --spread_min_ms 2.5 --within_ms 2.9 7.5
}
measure jitter_phase

tb_inject --loss_percent=10
tb_ping "$out/ping-loss.txt" 1000 0.005 || true # exits 1 when replies are lost
queue=$(tb_queue_num)
tb_inject_off
dropped=$(sed -nE 's/.*packets, ([0-9]+) dropped.*/\1/p' "$out/inject-q$queue.log")
# No delay here: the shift only says how much warmer a 200 Hz ping keeps
# the path than the bare baseline's (it has read 22 us below it), so the
# lower bound is looser than for the delay phases.
tb_check ping-delay --label "loss 10%" --ping "$out/ping-loss.txt" \
  --base "$out/ping-bare.txt" --delay_ms 0 --below_ms 0.1 --slack_ms 0.3 --loss 10 \
  --loss_tolerance 3 --injector_dropped "$dropped"
echo "PASS: latency-inject delay, jitter and loss agree with ping"
