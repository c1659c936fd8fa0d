"""How often each search re-evaluated the same candidate, and what that did to the pick.

Reads the raw journals of a data-vs-hw run (default target/repro/data-vs-hw-cpu/runs)
and prints a Markdown table: per search, the trials, the distinct candidates, the
candidate picked by best single evaluation (what the search reports), how many times it
was evaluated, its best and mean validation accuracy, and the pick by mean instead.

    python3 docs/results/data-vs-hw/repeats.py [RUNS_DIR] > docs/results/data-vs-hw/repeats.md
"""
import collections
import csv
import glob
import os
import statistics
import sys

runs = sys.argv[1] if len(sys.argv) > 1 else "target/repro/data-vs-hw-cpu/runs"
print("| search | trials | distinct | pick (best single eval) | evals of pick | best val | mean val | pick by mean | its mean val |")
print("|---|---:|---:|---|---:|---:|---:|---|---:|")
for path in sorted(glob.glob(os.path.join(runs, "*", "*", "seed*", "trials.csv"))):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "complete" and r["val_accuracy"]]
    by = collections.defaultdict(list)
    for r in rows:
        by[f'{r["resolution"]}/{r["color"]} {r["arch"]}'].append(float(r["val_accuracy"]))
    if not by:
        continue
    pick, vals = max(by.items(), key=lambda kv: max(kv[1]))
    mpick, mvals = max(by.items(), key=lambda kv: statistics.mean(kv[1]))
    name = os.path.relpath(os.path.dirname(path), runs)
    print(f"| {name} | {len(rows)} | {len(by)} | {pick} | {len(vals)} | {100 * max(vals):.1f} | "
          f"{100 * statistics.mean(vals):.1f} | {mpick} | {100 * statistics.mean(mvals):.1f} |")
