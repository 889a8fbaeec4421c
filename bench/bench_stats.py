#!/usr/bin/env python3
"""Figures for the bench/run_*.sh scripts.

Reads what the scripts recorded (ping and fping output, blackbox_exporter
scrapes, `latencyctl watch --output=json` lines, Prometheus text) and prints
plain numbers for the shell to put in its markdown tables. Medians and
percentiles are exact, from raw samples. ping's RTTs come from
tests/e2e/e2e_check.py (exact from its tap when the file PATH.tap exists).

  bench_stats.py blackbox --url URL --count N --interval_s S >OUT
  bench_stats.py summary --ping|--fping|--blackbox|--watch FILE [...]
  bench_stats.py prom --file FILE METRIC[,LABEL=VALUE...][:max] ...
  bench_stats.py compare --kind K --base FILE:SINCE... --load FILE:SINCE...
"""

import argparse
import math
import os
import random
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "e2e"))
import e2e_check  # noqa: E402  (read_ping, read_watch, ok, median)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)')


def percentile(values, q):
    """Nearest-rank percentile: the smallest value with at least q of the
    samples at or below it."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def parse_prom(text):
    """[(name, {label: value}, float)] from Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            pass
    return out


def cmd_blackbox(a):
    """Scrapes blackbox_exporter's /probe COUNT times, one every INTERVAL_S
    on a fixed timetable; prints 'rtt_ms duration_ms success' per scrape."""
    start = time.monotonic()
    for i in range(a.count):
        delay = start + i * a.interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            with urllib.request.urlopen(a.url, timeout=5) as r:
                metrics = parse_prom(r.read().decode())
        except OSError as e:
            print(f"# scrape failed: {e}", flush=True)
            continue
        rtt = duration = None
        success = 0
        for name, labels, value in metrics:
            if name == "probe_icmp_duration_seconds" and labels.get("phase") == "rtt":
                rtt = value * 1000
            elif name == "probe_duration_seconds":
                duration = value * 1000
            elif name == "probe_success":
                success = int(value)
        print(f"{rtt} {duration} {success}", flush=True)
    return 0


def read_fping(path):
    """RTTs in ms from `fping -C N -q` (stderr: 'ADDR : 0.05 0.04 - ...')."""
    rtts = []
    with open(path) as f:
        for line in f:
            if " : " in line:
                for field in line.split(" : ", 1)[1].split():
                    if field != "-":
                        rtts.append(float(field))
    return rtts


def read_blackbox(path, column):
    rtts = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "1" and parts[column] != "None":
                rtts.append(float(parts[column]))
    return rtts


def cmd_summary(a):
    """Prints 'n median_ms p99_ms' (median and p99 '-' when no samples)."""
    if a.ping:
        rtts, _, _ = e2e_check.read_ping(a.ping)
    elif a.fping:
        rtts = read_fping(a.fping)
    elif a.blackbox:
        rtts = read_blackbox(a.blackbox, 1 if a.duration else 0)
    else:
        field = "network_rtt_ms" if a.network else "rtt_ms"
        rtts = [s[field] for s in e2e_check.read_watch(a.watch, a.kind, a.since)
                if e2e_check.ok(s)]
    if not rtts:
        print("0 - -")
        return 1
    print(f"{len(rtts)} {e2e_check.median(rtts):.4f} {percentile(rtts, 0.99):.4f}")
    return 0


def pooled_rtts(specs, kind):
    """OK RTTs of several watch files, each FILE:SINCE (its own window)."""
    rtts = []
    for spec in specs:
        path, since = spec.rsplit(":", 1)
        rtts += [s["rtt_ms"] for s in e2e_check.read_watch(path, kind, int(since))
                 if e2e_check.ok(s)]
    return rtts


def cmd_compare(a):
    """Prints 'n_base median_base n_load median_load change_pct lo_pct hi_pct':
    the load windows' pooled median against the base windows', as a change in
    percent, with a 95% bootstrap interval (each pool resampled on its own,
    2,000 times, fixed seed). '-' for what cannot be computed."""
    base = pooled_rtts(a.base, a.kind)
    load = pooled_rtts(a.load, a.kind)
    if not base or not load:
        print(f"{len(base)} - {len(load)} - - - -")
        return 1
    mb, ml = e2e_check.median(base), e2e_check.median(load)
    rng = random.Random(1)
    changes = sorted(
        (e2e_check.median(rng.choices(load, k=len(load))) /
         e2e_check.median(rng.choices(base, k=len(base))) - 1) * 100
        for _ in range(2000))
    print(f"{len(base)} {mb:.4f} {len(load)} {ml:.4f} {(ml / mb - 1) * 100:.1f} "
          f"{percentile(changes, 0.025):.1f} {percentile(changes, 0.975):.1f}")
    return 0


def cmd_prom(a):
    """Aggregates metrics from a Prometheus text file, parsed once. Each
    QUERY is METRIC[,LABEL=VALUE...][:max] (default: the sum over matching
    samples); prints one value per query on one line, '-' when absent."""
    with open(a.file) as f:
        metrics = parse_prom(f.read())
    results = []
    for query in a.query:
        query, _, agg = query.partition(":")
        metric, *pairs = query.split(",")
        want = dict(kv.split("=", 1) for kv in pairs)
        values = [v for name, labels, v in metrics if name == metric and
                  all(labels.get(k) == v for k, v in want.items())]
        if not values:
            results.append("-")
        else:
            results.append(f"{max(values) if agg == 'max' else sum(values):.9g}")
    print(" ".join(results))
    return 0


def cmd_minute_lag(a):
    """Prints 'max_in max_out p99_out n_in n_out' (ms): the send lag of the
    watched samples scheduled in seconds [FROM, TO) of their minute (the
    history write's moment) against the rest ('-' when none)."""
    inside, outside = [], []
    for s in e2e_check.read_watch(a.watch, a.kind, a.since):
        lag = s.get("send_lag_ms")
        stamp = s.get("scheduled_time", "")
        m = re.search(r":(\d\d)(?:\.\d+)?Z$", stamp)
        if lag is None or not m:
            continue
        (inside if a.from_s <= int(m.group(1)) < a.to_s else outside).append(lag)
    fmt = lambda v: f"{v:.2f}"
    print(" ".join([fmt(max(inside)) if inside else "-",
                    fmt(max(outside)) if outside else "-",
                    fmt(percentile(outside, 0.99)) if outside else "-",
                    str(len(inside)), str(len(outside))]))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("blackbox")
    s.add_argument("--url", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--interval_s", type=float, default=0.1)

    s = sub.add_parser("summary")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--ping")
    g.add_argument("--fping")
    g.add_argument("--blackbox")
    g.add_argument("--watch")
    s.add_argument("--duration", action="store_true",
                   help="blackbox: probe_duration_seconds instead of the rtt phase")
    s.add_argument("--kind", choices=["icmp", "grpc"])
    s.add_argument("--network", action="store_true", help="watch: network_rtt_ms")
    s.add_argument("--since", type=int, default=0)

    s = sub.add_parser("minute_lag")
    s.add_argument("--watch", required=True)
    s.add_argument("--kind", choices=["icmp", "grpc"])
    s.add_argument("--since", type=int, default=0)
    s.add_argument("--from_s", type=int, required=True)
    s.add_argument("--to_s", type=int, required=True)

    s = sub.add_parser("compare")
    s.add_argument("--kind", choices=["icmp", "grpc"], required=True)
    s.add_argument("--base", nargs="+", required=True, metavar="FILE:SINCE")
    s.add_argument("--load", nargs="+", required=True, metavar="FILE:SINCE")

    s = sub.add_parser("prom")
    s.add_argument("--file", required=True)
    s.add_argument("query", nargs="+")

    a = p.parse_args()
    return globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
