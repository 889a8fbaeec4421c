#!/usr/bin/env python3
"""Fails when a ctest run skipped a test that is not on the allow-list.

    scripts/check-skips.py ALLOWLIST JUNIT.xml...

Reads ctest's --output-junit files. A test counts as skipped when ctest did
not run it to a verdict: gtest's [  SKIPPED ] (SKIP_REGULAR_EXPRESSION),
SKIP_RETURN_CODE 77 (the e2e scripts without root), or DISABLED. Prints the
allow-list in use and every skip; exits 1 when any skip is not listed, so a
suite whose setup fails, or a machine that silently lacks a tool, turns CI
red instead of green.
"""
import sys
import xml.etree.ElementTree as ET


def read_allowlist(path):
    allowed = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, why = line.partition("#")
            if not why.strip():
                sys.exit(f"{path}: '{name.strip()}' needs a '# reason'")
            allowed[name.strip()] = why.strip()
    return allowed


def skipped_tests(junit_path):
    skipped = []
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        status = case.get("status", "")
        node = case.find("skipped")
        if status in ("notrun", "disabled") or node is not None:
            reason = node.get("message", "") if node is not None else status
            skipped.append((case.get("name"), reason or status))
    return skipped


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    allowed = read_allowlist(argv[1])
    skipped = []
    for path in argv[2:]:
        skipped += skipped_tests(path)
    unexpected = [(n, r) for n, r in skipped if n not in allowed]
    print(f"== skipped tests: {len(skipped)}, allowed by {argv[1]}:")
    for name, why in sorted(allowed.items()):
        print(f"  {name}  # {why}")
    for name, reason in skipped:
        mark = "allowed" if name in allowed else "NOT ALLOWED"
        print(f"  skipped: {name} ({reason}) {mark}")
    if unexpected:
        print(f"check-skips: {len(unexpected)} unexpected skip(s): "
                    + ", ".join(n for n, _ in unexpected), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
