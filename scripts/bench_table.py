#!/usr/bin/env python3
"""Turns benchmark JSON lines (bench_* --json, bench/torch/*.py --json) into a markdown table."""
import json
import os
import sys

rows = []
for path in sys.argv[1:]:
    if not os.path.exists(path):  # an unmatched shell glob
        continue
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
print("\n| bench | optimizer | variant | n | us/step | GB/s | copy GB/s | of copy |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    if "fraction_of_copy" not in r:
        continue
    print(f"| {r.get('bench')} | {r.get('optimizer')} | {r.get('variant', 'cutrain')} | {r['n']} "
          f"| {r['seconds_per_step'] * 1e6:.1f} | {r['gbps']:.0f} | {r['copy_gbps']:.0f} "
          f"| {100 * r['fraction_of_copy']:.1f}% |")
