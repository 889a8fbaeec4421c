#!/usr/bin/env python3
"""Holds README's memory-per-target figures to what is measured.

  memory_claims.py series README SERIES_MEMORY_BINARY
      README's statistics figures (KB per ICMP/gRPC series, steady and
      every-RTT-in-another-bucket, and MB in the worst case) against
      bench/series_memory's table: each within 10% (SERIES_TOLERANCE; the
      figures are rounded, and series_memory runs on a fake clock, so its
      figures do not move with the machine).
  memory_claims.py rss README RSS_FILE
      README's whole-process figures (KB per ICMP / gRPC target) against
      bench/run_scale.sh's RSS_OUT lines "ICMP GRPC WARM_RSS_KB": a run with
      N ICMP targets (no gRPC) and one with 1 ICMP + G gRPC targets, each
      less the RSS of the latest 1:0 run before it and divided by the N - 1
      or G targets it adds
      (the "warm RSS KB per target" column run_scale.sh prints). Within 30%
      (RSS_TOLERANCE): on the shared 2-core machine, under a load of 4,
      four rounds spread by less than 3% (1 ICMP 21.2-21.3 MB, 7.5-7.6 KB
      per ICMP target, 54.0-55.2 KB per gRPC target; BENCHMARKS.md, "Memory
      per target, whole process"), and 1 MB of noise in one run's RSS moves
      the figures by 0.5 KB and 5 KB; 30% fails a README that is plainly
      wrong, not one that is rounded.
Exits 1 with the figures when a claim does not hold, or cannot be found.
"""
import re
import subprocess
import sys

SERIES_TOLERANCE = 0.10
RSS_TOLERANCE = 0.30
NUM = r"(\d+(?:\.\d+)?)"


def readme_text(path):
    # One line per paragraph, so claims can be matched across line breaks.
    return re.sub(r"\s+", " ", open(path, encoding="utf-8").read())


def claim(text, pattern, what):
    match = re.search(pattern, text)
    if not match:
        sys.exit(f"FAIL: README no longer states {what} (pattern {pattern!r})")
    return [float(g) for g in match.groups()]


def check(name, measured, printed, tolerance, unit="KB"):
    low, high = 1 - tolerance, 1 + tolerance
    ok = low * printed <= measured <= high * printed
    print(f"{'ok' if ok else 'FAIL'}: {name}: measured {measured:.1f} {unit}, "
          f"README {printed:g} {unit} (allowed {low:g}x..{high:g}x)")
    return ok


def series(readme, binary):
    text = readme_text(readme)
    icmp, grpc, icmp_spread, grpc_spread, worst = claim(
        text,
        rf"about {NUM} KB per ICMP series at 1 Hz with steady latency "
        rf"\(5 ms ± 2%; ≈{NUM} KB for gRPC.*?about {NUM} KB \(gRPC {NUM} KB\) "
        rf"when every RTT lands in a different histogram bucket, and {NUM} MB "
        r"in the worst case",
        "the per-series statistics figures")
    table = subprocess.run([binary], check=True, capture_output=True,
                           text=True).stdout
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[1] in ("ICMP", "gRPC"):
            try:
                rows[(cells[0], cells[1])] = float(cells[2])
            except ValueError:
                pass
    steady = "steady 5 ms +- 2%"
    spread = "every RTT in another bucket (1 us..10 s)"
    worst_case = "worst case: every bucket in every slot (peak over 1 h 10 min)"
    if (worst_case, "gRPC") not in rows:
        sys.exit(f"FAIL: series_memory printed no row for {worst_case}")
    ok = check(f"gRPC series, {worst_case}", rows[(worst_case, "gRPC")] / 1024,
               worst, SERIES_TOLERANCE, "MB")
    for (scenario, kind), printed in (((steady, "ICMP"), icmp),
                                      ((steady, "gRPC"), grpc),
                                      ((spread, "ICMP"), icmp_spread),
                                      ((spread, "gRPC"), grpc_spread)):
        if (scenario, kind) not in rows:
            sys.exit(f"FAIL: series_memory printed no row for {scenario}, {kind}")
        ok &= check(f"{kind} series, {scenario}", rows[(scenario, kind)],
                    printed, SERIES_TOLERANCE)
    return ok


def rss(readme, rss_file):
    text = readme_text(readme)
    icmp, grpc = claim(
        text,
        rf"about {NUM} KB per ICMP target and {NUM} KB per gRPC target",
        "the whole-process figures per target")
    runs = [tuple(int(v) for v in line.split()) for line in open(rss_file)
            if line.strip()]
    # Each run against the latest 1:0 run before it, as run_scale.sh does.
    icmp_runs, grpc_runs, base = [], [], None
    for i, g, kb in runs:
        if i == 1 and g == 0:
            base = kb
        elif base is not None and g == 0:
            icmp_runs.append((i, (kb - base) / (i - 1)))
        elif base is not None and i == 1:
            grpc_runs.append((g, (kb - base) / g))
    if not icmp_runs or not grpc_runs:
        sys.exit(f"FAIL: want a 1:0 run, then an N:0 run and a 1:G run, "
                 f"got {runs}")
    ok = True
    for n, per_target in icmp_runs:
        ok &= check(f"RSS per ICMP target ({n} targets)", per_target, icmp,
                    RSS_TOLERANCE)
    for g, per_target in grpc_runs:
        ok &= check(f"RSS per gRPC target ({g} targets)", per_target, grpc,
                    RSS_TOLERANCE)
    return ok


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("series", "rss"):
        sys.exit(__doc__)
    mode, readme, source = sys.argv[1:]
    ok = series(readme, source) if mode == "series" else rss(readme, source)
    sys.exit(0 if ok else 1)


main()
