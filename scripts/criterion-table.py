#!/usr/bin/env python3
"""Print criterion's median estimates under target/criterion as a table:
one row per benchmark function, one column per parameter (e.g. server count).

Usage: scripts/criterion-table.py GROUP   (e.g. pick)
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
group = sys.argv[1] if len(sys.argv) > 1 else ""
rows, cols = {}, []
for est in sorted(root.glob(f"{group}/**/new/estimates.json")):
    rel = est.relative_to(root).parts[:-2]
    name, param = (rel[1], rel[2]) if len(rel) >= 3 else (rel[0], "")
    ns = json.loads(est.read_text())["median"]["point_estimate"]
    rows.setdefault(name, {})[param] = ns
    if param not in cols:
        cols.append(param)
cols.sort(key=lambda c: (len(c), c))


def fmt(ns):
    return f"{ns:.0f} ns" if ns < 10_000 else f"{ns / 1000:.1f} us" if ns < 10_000_000 else f"{ns / 1e6:.2f} ms"


print("| scheduler | " + " | ".join(cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for name, vals in rows.items():
    print(f"| {name} | " + " | ".join(fmt(vals[c]) if c in vals else "-" for c in cols) + " |")
