"""Merges two fast-mode curiosity benchmark runs of disjoint seeds into one report (10 seeds).

Usage: python merge.py FIRST.json SECOND.json OUT_DIR
The untrained-encoder and pixel probes are the same in both runs (same seeds and probe frames);
the first run's are kept, and the two are compared.
"""
import json
import sys
from pathlib import Path

from pamiq_ros.bench.curiosity_report import format_table, summarise, write_plots

first, second = (json.loads(Path(p).read_text()) for p in sys.argv[1:3])
out = Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
overlap = set(first["seeds"]) & set(second["seeds"])
assert not overlap, f"seeds in both runs: {overlap}"
for key in ("untrained", "pixels"):
    a, b = json.dumps(first["probe"][key], sort_keys=True), json.dumps(second["probe"][key], sort_keys=True)
    print(f"probe {key}: {'identical' if a == b else 'DIFFERENT'} in the two runs")
merged = dict(first)
merged["seeds"] = {**first["seeds"], **second["seeds"]}
merged["probe"] = dict(first["probe"])
merged["probe"]["trained"] = {
    arm: {**first["probe"]["trained"].get(arm, {}), **second["probe"]["trained"].get(arm, {})}
    for arm in set(first["probe"]["trained"]) | set(second["probe"]["trained"])
}
merged["settings"] = dict(first["settings"])
merged["settings"]["seeds"] = sorted(int(s) for s in merged["seeds"])
merged["merged_from"] = {
    "runs": [sys.argv[1], sys.argv[2]],
    "durations_s": [first["duration_s"], second["duration_s"]],
}
merged["summary"] = summarise(merged)
merged["plots"] = write_plots(merged, out)
(out / "curiosity_bench.json").write_text(json.dumps(merged, indent=1, default=str))
table = format_table(merged)
(out / "table.txt").write_text(table + "\n")
print(table)
