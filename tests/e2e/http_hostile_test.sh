#!/usr/bin/env bash
# The HTTP gateway under hostile and broken clients while a real Prometheus
# scrapes it every second (issue 13): for LOAD_S seconds,
#   - 200 slow-loris connections (from 127.0.0.2-5, 50 each, under the
#     per-client cap) send one header byte a second and reconnect whenever
#     the server cuts them off;
#   - 10,000 garbage requests (random bytes, a TLS hello, a header flood, a
#     bare newline storm) from 127.0.0.6 on 8 connections at a time;
#   - 100 more slow-loris from 127.0.0.7, over its per-client cap of 64;
# and meanwhile /healthz is timed with curl 5 times a second. Passes when
# Prometheus missed no scrape (`up` 1 at every one of them), every /healthz
# answered 200 within 100 ms, the gateway cut the slow-loris off at its
# request timeout and refused the over-cap ones, and afterwards `wrk` reads
# /metrics at >= 70% of the req/s it read before the attack (best of three
# 3 s runs each, both printed): whatever the attack left behind (connections,
# threads) must not slow the gateway. The absolute figure (>= 20k req/s on
# an idle machine) is a benchmark's (BENCHMARKS.md), not this test's: beside
# two busy loops it read 5k.
set -euo pipefail
# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
command -v prometheus >/dev/null || tb_missing prometheus
command -v wrk >/dev/null || tb_missing wrk
LOAD_S=${LOAD_S:-20}

tb_testbed agent
tb_start_server server --target="agent=$TB_AGENT_ADDR:$TB_AGENT_PORT" \
  --interval=100ms --timeout=1s --http_request_timeout=3s
tb_wait_status server agent grpc ok >/dev/null
port=$(tb_server_port server http)

tb_prometheus "$port"
# query EXPR: the values of EXPR's series, one a line.
query() { tb_promql "$1" | awk '{print $NF}'; }
deadline=$((SECONDS + 30))
until [ "$(query 'up{job="latency-pair"}' 2>/dev/null)" = 1 ]; do
  ((SECONDS < deadline)) || tb_fail "Prometheus never scraped the server"
  sleep 1
done
# metrics_rps: /metrics JSON requests a second, best of three wrk runs.
metrics_rps() {
  local best=0 rps
  for _ in 1 2 3; do
    rps=$(ip netns exec "$TB_SERVER_NS" wrk -t2 -c16 -d3s "http://127.0.0.1:$port/metrics" |
      awk '/^Requests\/sec/ {printf "%d", $2}')
    ((rps > best)) && best=$rps
  done
  echo "$best"
}
before=$(metrics_rps)
tb_log "before the attack: /metrics JSON at $before req/s (wrk -t2 -c16, best of 3)"
tb_log "Prometheus scrapes 127.0.0.1:$port every second; hostile load for $LOAD_S s"

# The attackers, in the server's namespace.
cat >"$TB_DIR/hostile.py" <<'PY'
import asyncio, os, random, sys, time

PORT, SECONDS_ = int(sys.argv[1]), float(sys.argv[2])
stats = {"loris_cut": 0, "loris_408": 0, "loris_refused": 0, "garbage": 0,
         "garbage_answered": 0}

def classify(data):
    if data.startswith(b"HTTP/1.1 503"):
        stats["loris_refused"] += 1
    elif data.startswith(b"HTTP/1.1 408"):
        stats["loris_408"] += 1

async def loris(source, stop):
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", PORT, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            # Over the cap, the 503 comes at once: read it before writing.
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.3)
                classify(data)
                continue
            except asyncio.TimeoutError:
                pass
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            while time.monotonic() < stop:
                writer.write(b"X")
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except asyncio.TimeoutError:
                    continue
                classify(data)
                break
        except (ConnectionError, OSError):
            pass
        finally:
            stats["loris_cut"] += 1
            writer.close()
            await asyncio.sleep(0.2)

GARBAGE = [
    lambda: os.urandom(random.randint(1, 2000)) + b"\r\n\r\n",
    lambda: bytes.fromhex("16030100a5010000a10303") + os.urandom(160) + b"\r\n\r\n",
    lambda: b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 500 + b"\r\n",
    lambda: b"\n" * 3000,
    lambda: b"GET /metrics?" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    lambda: b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
    lambda: b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]

async def garbage(count):
    for _ in range(count):
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", PORT, local_addr=("127.0.0.6", 0))
            writer.write(random.choice(GARBAGE)())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(256), 5.0)
            if data.startswith(b"HTTP/1.1 "):
                stats["garbage_answered"] += 1
            writer.close()
        except (OSError, asyncio.TimeoutError):
            pass
        stats["garbage"] += 1

async def main():
    stop = time.monotonic() + SECONDS_
    tasks = [loris(f"127.0.0.{2 + i // 50}", stop) for i in range(200)]
    tasks += [loris("127.0.0.7", stop) for _ in range(100)]
    tasks += [garbage(1250) for _ in range(8)]
    await asyncio.gather(*tasks)
    print(" ".join(f"{k}={v}" for k, v in stats.items()))

asyncio.run(main())
PY
ip netns exec "$TB_SERVER_NS" python3 "$TB_DIR/hostile.py" "$port" "$LOAD_S" \
  >"$TB_DIR/hostile.out" 2>&1 &
hostile=$!
start=$(date +%s)
# /healthz five times a second while the attack runs.
: >"$TB_DIR/healthz.times"
while kill -0 "$hostile" 2>/dev/null; do
  ip netns exec "$TB_SERVER_NS" curl -s -o /dev/null --max-time 2 \
    -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/healthz" \
    >>"$TB_DIR/healthz.times" || echo "000 2" >>"$TB_DIR/healthz.times"
  sleep 0.2
done
wait "$hostile" || tb_fail "the attack script failed: $(cat "$TB_DIR/hostile.out")"
end=$(date +%s)
tb_log "attack: $(cat "$TB_DIR/hostile.out")"
sleep 2 # the last scrape lands

rc=0
read -r n slow worst < <(python3 - "$TB_DIR/healthz.times" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in rows if r[0] != "200" or float(r[1]) >= 0.1]
print(len(rows), len(bad), max(float(r[1]) for r in rows))
PY
)
if [ "$slow" = 0 ] && [ "$n" -ge $((LOAD_S * 3)) ]; then
  tb_log "ok: $n /healthz answers during the attack, all 200 within 100 ms (slowest ${worst}s)"
else
  tb_note_failure "$slow of $n /healthz answers not 200 within 100 ms (slowest ${worst}s)"
  rc=1
fi

window=$((end - start))
scrapes=$(query "count_over_time(up{job=\"latency-pair\"}[${window}s])")
failed=$(query "count_over_time((up{job=\"latency-pair\"} == 0)[${window}s:1s])" || true)
slowest=$(query "max_over_time(scrape_duration_seconds{job=\"latency-pair\"}[${window}s])")
if [ "${scrapes:-0}" -ge $((window - 1)) ] && [ -z "$failed" ]; then
  tb_log "ok: Prometheus scraped $scrapes times in the ${window} s attack, none failed (slowest ${slowest}s)"
else
  tb_note_failure "Prometheus scraped ${scrapes:-0} times in ${window} s, failed: ${failed:-0}"
  rc=1
fi

python3 - "$TB_DIR/hostile.out" >"$TB_DIR/hostile-check.txt" <<'PY' || rc=1
import sys
stats = dict(kv.split("=") for kv in open(sys.argv[1]).read().split())
stats = {k: int(v) for k, v in stats.items()}
ok = True
# Every slow-loris is cut off at the 3 s request timeout, so each of the
# 200 reconnects several times; the 100 over the cap are refused.
if stats["loris_408"] < 200:
    print(f"FAIL: only {stats['loris_408']} slow-loris requests cut off with 408")
    ok = False
if stats["loris_refused"] < 36:
    print(f"FAIL: only {stats['loris_refused']} over-cap connections refused with 503")
    ok = False
if stats["garbage"] < 10000 or stats["garbage_answered"] < 9000:
    print(f"FAIL: garbage sent {stats['garbage']}, answered {stats['garbage_answered']}")
    ok = False
sys.exit(0 if ok else 1)
PY
cat "$TB_DIR/hostile-check.txt"
while read -r line; do TB_FAILURES+=("$line"); done < <(sed -n 's/^FAIL: //p' "$TB_DIR/hostile-check.txt")

best=$(metrics_rps)
if ((best * 10 >= before * 7)); then
  tb_log "ok: /metrics JSON at $best req/s afterwards, $before before (wrk -t2 -c16, best of 3)"
else
  tb_note_failure "/metrics JSON at $best req/s afterwards, want >= 70% of the $before before"
  rc=1
fi
[ "$rc" = 0 ] || exit 1
echo "PASS: no missed scrape, /healthz < 100 ms, slow-loris cut off, garbage answered, /metrics $best req/s"
