#!/usr/bin/env python3
"""Figures and verdicts for the namespace e2e tests.

Reads what the tests recorded: `ping` output, `latencyctl watch --output=json`
lines (one latency.v1.WatchResponse per line) and the HTTP gateway's JSON.
Each check prints one line of measured numbers and exits 1 when a bound does
not hold, so CI logs show the figures whether the test passes or not.
Medians are exact (from raw samples), never the server's histogram p50.

ping prints 10 ms and more with 0.1 ms resolution (1 ms to 10 ms: 0.01 ms),
too coarse for a 20 us bound. `tap` recovers ping's exact figures: it
records each echo reply's kernel receive stamp (the skb stamp ping reads
through SO_TIMESTAMP) and the send time ping wrote into the payload, so
receive - send is ping's own RTT before rounding; every value is checked
against the rounded one ping printed for that icmp_seq.
"""

import argparse
import calendar
import json
import os
import re
import signal
import socket
import struct
import sys
import time

PING_TIME = re.compile(r"icmp_seq=(\d+) .*time=([0-9.]+) ms")
PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")
KIND = {"icmp": "PROBE_KIND_ICMP", "grpc": "PROBE_KIND_GRPC"}


def median(values):
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise SystemExit("FAIL: no samples")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def median_error_ms(values):
    """Standard error of a sample's median, from its spread: 1.2533 sigma /
    sqrt(n), sigma estimated robustly as IQR / 1.349 (outliers left out)."""
    sigma = (quantile(values, 0.75) - quantile(values, 0.25)) / 1.349
    return 1.2533 * sigma / len(values) ** 0.5


def rfc3339_ns(text):
    """'2026-11-28T06:20:15.422497862Z' -> ns since the epoch (UTC)."""
    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((frac + "000000000")[:9])


def read_ping(path):
    """(per-reply RTTs in ms, transmitted, received). The RTTs are exact
    when the tap recorded them in PATH.tap (see tb_ping), else as printed."""
    rtts, sent, received = [], 0, 0
    with open(path) as f:
        for line in f:
            m = PING_TIME.search(line)
            if m:
                rtts.append(float(m.group(2)))
            m = PING_SUMMARY.search(line)
            if m:
                sent, received = int(m.group(1)), int(m.group(2))
    if os.path.exists(path + ".tap"):
        rtts = read_ping_exact(path, path + ".tap")
    return rtts, sent, received


def cmd_tap(a):
    """Prints 'id seq rtt_us' for every ICMP echo reply received on a.dev
    whose payload starts with a struct timeval (as ping's does)."""
    so_timestampns = 35  # SO_TIMESTAMPNS_OLD; the cmsg carries a timespec
    eth_p_ip = 0x0800
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(eth_p_ip))
    s.bind((a.dev, eth_p_ip))
    s.setsockopt(socket.SOL_SOCKET, so_timestampns, 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"tap: listening on {a.dev}", file=sys.stderr, flush=True)
    while True:
        data, ancillary, _, addr = s.recvmsg(4096, socket.CMSG_SPACE(16))
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 20 or data[9] != 1:
            continue
        icmp = data[(data[0] & 0x0F) * 4:]
        if len(icmp) < 24 or icmp[0] != 0:  # echo reply with a timeval
            continue
        rx_ns = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == so_timestampns:
                sec, nsec = struct.unpack("qq", value[:16])
                rx_ns = sec * 10**9 + nsec
        if rx_ns is None:
            continue
        ident, seq = struct.unpack("!HH", icmp[4:8])
        tv_sec, tv_usec = struct.unpack("qq", icmp[8:24])
        print(ident, seq, rx_ns // 1000 - (tv_sec * 10**6 + tv_usec), flush=True)


def ping_resolution_ms(rtt_ms):
    return 1.0 if rtt_ms >= 99.95 else 0.1 if rtt_ms >= 9.995 else 0.01 if rtt_ms >= 1 else 0.001


def read_ping_exact(ping_path, tap_path):
    """ping's RTTs in ms, exact from the tap, after checking each against
    the rounded figure ping printed for the same icmp_seq."""
    printed = {}
    with open(ping_path) as f:
        for line in f:
            m = PING_TIME.search(line)
            if m:
                printed[int(m.group(1))] = float(m.group(2))
    by_id = {}
    with open(tap_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and all(p.lstrip("-").isdigit() for p in parts):
                ident, seq, rtt_us = map(int, parts)
                by_id.setdefault(ident, {})[seq] = rtt_us / 1000
    best = max(by_id.values(), key=lambda seqs: len(seqs.keys() & printed.keys()),
               default={})
    exact = [best[seq] for seq in printed if seq in best]
    bad = [seq for seq in printed if seq in best and
           abs(best[seq] - printed[seq]) > ping_resolution_ms(printed[seq]) / 2 + 0.0015]
    if len(exact) < len(printed) or bad:
        raise SystemExit(f"FAIL: tap and ping disagree: {len(exact)}/{len(printed)} replies "
                         f"matched, {len(bad)} off by more than ping's rounding "
                         f"(e.g. icmp_seq {bad[:3]})")
    return exact


def read_watch(path, kind=None, since_ns=0):
    """Samples (dicts) of `kind` scheduled at or after since_ns, in order."""
    samples = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            s = json.loads(line)["sample"]
            if kind and s.get("kind") != KIND[kind]:
                continue
            s["scheduled_ns"] = rfc3339_ns(s["scheduled_time"])
            if s["scheduled_ns"] >= since_ns:
                samples.append(s)
    return samples


def ok(s):
    return s.get("result") == "SAMPLE_RESULT_OK"


def verdict(line, passed):
    print(f"{line}: {'ok' if passed else 'FAIL'}", flush=True)
    return 0 if passed else 1


def probe(summary, kind):
    for p in summary.get("probes", []):
        if p.get("kind") == KIND[kind]:
            return p
    return {}


def cmd_icmp_vs_ping(a):
    ping, sent, received = read_ping(a.ping)
    server = read_watch(a.watch, "icmp", a.since)
    rtts = [s["rtt_ms"] for s in server if ok(s)]
    kernel = sum(1 for s in server if s.get("timestamp_source") == "TIMESTAMP_SOURCE_KERNEL")
    if len(ping) < a.min_samples or len(rtts) < a.min_samples:
        return verdict(f"{a.label}: too few samples (ping {len(ping)}, server {len(rtts)}, "
                       f"need {a.min_samples})", False)
    pm, sm = median(ping), median(rtts)
    diff_us = (sm - pm) * 1000
    below_us = max(a.below_us, a.below_pct / 100 * pm * 1000)
    # Above: the injector holds and releases every packet from one thread, so
    # at long delays a probe queued behind ping's packet leaves tens of us
    # later (release lateness ~90 us mean at 10 ms here, e2e_inject): 0.5% of
    # the delay, at least above_us.
    above_us = max(a.above_us, a.above_pct / 100 * pm * 1000)
    # Ping and the server time different packets, so their medians differ by
    # sampling noise alone: three standard errors of the difference. With
    # the injector's spread at 2 ms (p5..p95 ~200 us) that is ~30 us; CI
    # once read +22.6 us there against a flat 20. Capped at 100 us: a run
    # whose spread is wider (one here read an IQR worth 785 us) still has to
    # keep the server within the below bound's width of ping. A user-space
    # stamp leak shows at 0 ms, where the spread keeps this bound at 20 us.
    noise_us = 3000 * (median_error_ms(ping) ** 2 + median_error_ms(rtts) ** 2) ** 0.5
    above_us = max(above_us, min(noise_us, 100))
    passed = -below_us <= diff_us <= above_us and kernel == len(server)
    floor = ""
    if a.floor_ms is not None:
        # No RTT can be shorter than the delay the injector holds each reply
        # for: a stamp taken from the wrong probe would read below it.
        passed = passed and sm >= a.floor_ms
        floor = f", at least the injected {a.floor_ms:g} ms"
    return verdict(
        f"{a.label}: ping median {pm:.3f} ms (n={len(ping)}, {sent - received} lost) | "
        f"server ICMP median {sm:.3f} ms (n={len(rtts)}, kernel stamps {kernel}/{len(server)}) | "
        f"server - ping = {diff_us:+.1f} us, allowed [-{below_us:.0f}, +{above_us:.0f}] us "
        f"(3 standard errors {noise_us:.0f} us){floor}",
        passed)


def cmd_grpc_vs_icmp(a):
    icmp = [s["rtt_ms"] for s in read_watch(a.watch_icmp, "icmp", a.since) if ok(s)]
    grpc = read_watch(a.watch_grpc, "grpc", a.since)
    net = [s["network_rtt_ms"] for s in grpc if ok(s)]
    full = [s["rtt_ms"] for s in grpc if ok(s)]
    agent = [s.get("agent_time_ms") or 0 for s in grpc if ok(s)]
    if len(icmp) < a.min_samples or len(net) < a.min_samples:
        return verdict(f"{a.label}: too few samples (icmp {len(icmp)}, grpc {len(net)})", False)
    im, nm = median(icmp), median(net)
    rel = (nm - im) / im * 100
    sources = [s.get("network_rtt_source", "") for s in grpc if ok(s)]
    wire = sum(1 for s in sources if s == "NETWORK_RTT_SOURCE_WIRE") / len(sources) * 100
    handler = median([r - t for r, t in zip(full, agent)])
    line = (f"{a.label}: gRPC network median {nm:.3f} ms (n={len(net)}, {wire:.0f}% wire-stamped; "
            f"rtt {median(full):.3f}, agent {median(agent) * 1000:.1f} us, rtt - agent "
            f"{handler:.3f} = {(handler - im) / im * 100:+.2f}%) vs ICMP median {im:.3f} ms: "
            f"{rel:+.2f}%")
    if a.pct is None:
        print(line, flush=True)
        return 0
    passed = abs(rel) <= a.pct
    line += f", allowed +-{a.pct}%"
    if a.min_wire_pct is not None:
        passed = passed and wire >= a.min_wire_pct
        line += f", at least {a.min_wire_pct:.0f}% wire-stamped"
    return verdict(line, passed)


def cmd_injector_hold(a):
    """The injector holds each packet for the delay from when it reached the
    queue (the kernel's stamp), not from when the injector got round to
    reading it: its summary says how much longer than asked it held them."""
    found = None
    with open(a.log) as f:
        for line in f:
            m = re.search(r"held past the delay since arrival by mean (-?[0-9.]+) us, "
                          r"max (-?[0-9.]+) us \(([0-9]+) of ([0-9]+) arrivals stamped", line)
            if m:
                found = m
    if found is None:
        return verdict(f"{a.label}: no injector summary in {a.log}", False)
    mean, most = float(found.group(1)), float(found.group(2))
    stamped, seen = int(found.group(3)), int(found.group(4))
    share = 100 * stamped / seen if seen else 0
    return verdict(f"{a.label}: injector held packets past the delay by mean {mean:.1f} us "
                   f"(max {most:.1f}), {share:.0f}% of arrivals stamped by the kernel; allowed "
                   f"{a.max_mean_us:.0f} us on mean, at least {a.min_stamped_pct:.0f}% stamped",
                   mean <= a.max_mean_us and share >= a.min_stamped_pct)


def cmd_ping_delay(a):
    """The injector checked against ping: median shift, spread, loss."""
    rtts, sent, received = read_ping(a.ping)
    base, _, _ = read_ping(a.base)
    if len(rtts) < a.min_samples or len(base) < a.min_samples:
        return verdict(f"{a.label}: too few ping replies ({len(rtts)}, base {len(base)})", False)
    shift = median(rtts) - median(base)
    lo, hi = quantile(rtts, 0.05), quantile(rtts, 0.95)
    lost = sent - received
    loss = lost / sent * 100 if sent else 0.0
    line = (f"{a.label}: ping median {median(rtts):.3f} ms, bare veth {median(base):.3f} ms, "
            f"shift {shift:.3f} ms (injected {a.delay_ms} ms, allowed -{a.below_ms}/+{a.slack_ms} ms) | "
            f"p5..p95 {lo:.3f}..{hi:.3f} ms | loss {lost}/{sent} = {loss:.2f}%")
    passed = a.delay_ms - a.below_ms <= shift <= a.delay_ms + a.slack_ms
    if a.spread_min_ms is not None:
        passed = passed and hi - lo >= a.spread_min_ms
        line += f" (spread at least {a.spread_min_ms} ms)"
    if a.within_ms is not None:
        floor, ceil = a.within_ms
        passed = passed and floor <= lo and hi <= ceil
        line += f" (p5..p95 within {floor}..{ceil} ms)"
    if a.loss is not None:
        passed = passed and abs(loss - a.loss) <= a.loss_tolerance
        line += f" (expected {a.loss} +- {a.loss_tolerance}%)"
    if a.injector_dropped is not None:
        passed = passed and a.injector_dropped == lost
        line += f" | injector dropped {a.injector_dropped}"
    return verdict(line, passed)


def cmd_loss(a):
    doc = json.load(open(a.stats))
    p = probe(doc, a.kind)
    sent, lost = int(p.get("sent", 0)), int(p.get("lost", 0))
    loss = p.get("loss_percent")
    line = (f"{a.label}: server {a.kind} sent {sent}, lost {lost}, loss_percent {loss} "
            f"(window {doc.get('window')}, failures {p.get('failures')}); "
            f"expected {a.expect} +- {a.tolerance}% over >= {a.min_sent}")
    passed = (loss is not None and sent >= a.min_sent
              and abs(loss - a.expect) <= a.tolerance)
    return verdict(line, passed)


def cmd_sent(a):
    """Prints a probe's `sent` from GetTargetStats JSON on stdin."""
    print(int(probe(json.load(sys.stdin), a.kind).get("sent", 0)))
    return 0


def cmd_shift(a):
    """The first target's ICMP median in `other` (a server that also probes
    a troubled target) against `base` (one that does not), same window:
    within pct% or slack_ms, whichever is larger; and, with max_lag_ms, no
    probe of it in `other` sent later than that (a stalled prober shows as
    send lag, which kernel-stamped RTTs do not carry)."""
    other_samples = read_watch(a.other, "icmp", a.since)
    base = [s["rtt_ms"] for s in read_watch(a.base, "icmp", a.since) if ok(s)]
    other = [s["rtt_ms"] for s in other_samples if ok(s)]
    ping, _, _ = read_ping(a.ping)
    if min(len(base), len(other), len(ping)) < a.min_samples:
        return verdict(f"{a.label}: too few samples ({len(base)}, {len(other)}, ping {len(ping)})",
                       False)
    bm, om = median(base), median(other)
    rel = (om - bm) / bm * 100
    allowed_ms = max(bm * a.pct / 100, a.slack_ms)
    lags = [s.get("send_lag_ms", 0) for s in other_samples]
    max_lag = max(lags) if lags else 0
    lag_ok = a.max_lag_ms is None or max_lag <= a.max_lag_ms
    return verdict(
        f"{a.label}: first target ICMP median {om:.3f} ms with the blackholed target (n={len(other)}) "
        f"vs {bm:.3f} ms without (n={len(base)}): {rel:+.2f}% ({(om - bm) * 1000:+.0f} us), "
        f"allowed +-{a.pct}% or +-{a.slack_ms * 1000:.0f} us | its largest send lag "
        f"{max_lag:.2f} ms (allowed {a.max_lag_ms}) | ping median {median(ping):.3f} ms",
        abs(om - bm) <= allowed_ms and lag_ok)


def cmd_restart(a):
    """Agent dead from kill_ns, serving again from up_ns, status ok seen at
    ok_ns; the snapshots are GetTargetStats JSON when down and ok were first
    seen. Counts probes."""
    down_doc = json.load(open(a.down_snapshot))
    ok_doc = json.load(open(a.ok_snapshot))
    grpc_down = probe(down_doc["target"], "grpc")
    icmp_down = probe(down_doc["target"], "icmp")
    grpc_ok = probe(ok_doc["target"], "grpc")
    icmp_ok = probe(ok_doc["target"], "icmp")
    failures_at_down = int(grpc_down.get("consecutive_failures", 0))

    after_kill = [s for s in read_watch(a.watch, "grpc", a.kill_ns) if s["scheduled_ns"] < a.up_ns]
    first_after_kill_ok = bool(after_kill) and ok(after_kill[0])
    after_up = read_watch(a.watch, "grpc", a.up_ns)
    first_ok = next((i + 1 for i, s in enumerate(after_up) if ok(s)), None)
    icmp = read_watch(a.watch, "icmp", a.kill_ns)
    icmp = [s for s in icmp if s["scheduled_ns"] <= a.ok_ns]
    icmp_failed = sum(1 for s in icmp if not ok(s))
    errors = sorted({s.get("error", "")[:60] for s in after_kill if not ok(s)})

    rc = 0
    rc |= verdict(f"agent killed: gRPC status '{grpc_down.get('status')}' after "
                  f"{failures_at_down} consecutive failed probes (at most 3); "
                  f"first probe after the kill {'succeeded' if first_after_kill_ok else 'failed'}; "
                  f"errors {errors}",
                  grpc_down.get("status") == "down" and 1 <= failures_at_down <= 3
                  and not first_after_kill_ok)
    rc |= verdict(f"agent restarted: first successful gRPC probe is probe {first_ok} scheduled "
                  f"after the agent served again (at most 3); then status '{grpc_ok.get('status')}'",
                  first_ok is not None and first_ok <= 3 and grpc_ok.get("status") == "ok")
    rc |= verdict(f"ICMP meanwhile: {len(icmp) - icmp_failed}/{len(icmp)} probes ok, status "
                  f"'{icmp_down.get('status')}' while gRPC was down, '{icmp_ok.get('status')}' after",
                  icmp_failed == 0 and len(icmp) > 0 and icmp_down.get("status") == "ok"
                  and icmp_ok.get("status") == "ok")
    return rc


def cmd_heal(a):
    """A blackhole from cut_ns to heal_ns: gRPC probes failed in it, and every
    probe scheduled from heal_ns + 2 intervals on succeeds. Counts probes."""
    grpc = read_watch(a.watch, "grpc", a.cut_ns)
    during = [s for s in grpc if s["scheduled_ns"] < a.heal_ns]
    after = [s for s in grpc if s["scheduled_ns"] >= a.heal_ns]
    bound_ns = a.heal_ns + 2 * a.interval_ms * 1_000_000
    due = [s for s in after if s["scheduled_ns"] >= bound_ns]
    failed_due = [s for s in due if not ok(s)]
    first_ok = next((s for s in after if ok(s)), None)
    first_ok_s = (f"{(first_ok['scheduled_ns'] - a.heal_ns) / 1e9:.2f} s"
                  if first_ok else "never")
    failed_during = sum(1 for s in during if not ok(s))
    rc = 0
    rc |= verdict(f"{a.label}: blackhole {(a.heal_ns - a.cut_ns) / 1e9:.1f} s: "
                  f"{failed_during}/{len(during)} gRPC probes in it failed",
                  len(during) > 0 and failed_during >= len(during) - 2)
    errors = sorted({s.get("error", "")[:60] for s in failed_due})
    rc |= verdict(f"{a.label}: after healing, the first successful probe was scheduled "
                  f"{first_ok_s} after it; probes scheduled 2 intervals or more after it: "
                  f"{len(due) - len(failed_due)}/{len(due)} ok {errors if errors else ''}",
                  len(due) >= a.min_samples and not failed_due)
    return rc


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--label", default="")
    common.add_argument("--since", type=int, default=0,
                        help="ignore samples scheduled before (ns since the epoch)")
    common.add_argument("--min_samples", type=int, default=50)

    def command(name, *args):
        parser = sub.add_parser(name, parents=[common])
        for arg in args:
            flag, _, kind = arg.partition(":")
            if kind == "str":
                parser.add_argument(flag, required=True)
            else:
                parser.add_argument(flag, type=int if kind == "int" else float,
                                    required=True)
        return parser

    s = sub.add_parser("tap")
    s.add_argument("--dev", required=True)

    s = command("icmp-vs-ping", "--ping:str", "--watch:str")
    s.add_argument("--above_us", type=float, default=20)
    s.add_argument("--above_pct", type=float, default=0.5)
    s.add_argument("--below_us", type=float, default=50)
    s.add_argument("--floor_ms", type=float, default=None,
                   help="the server median must be at least this (the injected delay)")
    s.add_argument("--below_pct", type=float, default=2)

    s = command("grpc-vs-icmp", "--watch_icmp:str", "--watch_grpc:str")
    s.add_argument("--pct", type=float)
    s.add_argument("--min_wire_pct", type=float, default=None,
                   help="at least this share of ok gRPC samples must be wire-stamped")

    s = command("ping-delay", "--ping:str", "--base:str", "--delay_ms:float")
    s.add_argument("--slack_ms", type=float, default=0.3, help="how far above")
    s.add_argument("--below_ms", type=float, default=0.02, help="how far below")
    s.add_argument("--spread_min_ms", type=float)
    s.add_argument("--within_ms", type=float, nargs=2)
    s.add_argument("--loss", type=float)
    s.add_argument("--loss_tolerance", type=float, default=3)
    s.add_argument("--injector_dropped", type=int)

    command("injector-hold", "--log:str", "--max_mean_us:float", "--min_stamped_pct:float")

    s = command("loss", "--stats:str", "--expect:float", "--tolerance:float",
                "--min_sent:int")
    s.add_argument("--kind", choices=KIND, default="icmp")

    s = command("sent")
    s.add_argument("--kind", choices=KIND, default="icmp")

    s = command("shift", "--base:str", "--other:str", "--ping:str", "--pct:float")
    s.add_argument("--slack_ms", type=float, default=0)
    s.add_argument("--max_lag_ms", type=float, default=None)

    command("restart", "--watch:str", "--kill_ns:int", "--up_ns:int", "--ok_ns:int",
            "--down_snapshot:str", "--ok_snapshot:str")

    command("heal", "--watch:str", "--cut_ns:int", "--heal_ns:int", "--interval_ms:int")

    a = p.parse_args()
    return globals()["cmd_" + a.cmd.replace("-", "_")](a)


if __name__ == "__main__":
    sys.exit(main())
