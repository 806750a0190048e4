"""Per seed: this run (PAMIQ's PPO choices) against the default run of the same seeds
(../2026-12-02-sim-10-seeds/), by the benchmark's own bootstrap. Run from the repository root."""
import json
from pathlib import Path

from pamiq_ros.bench.statistics import bootstrap_ci

here = Path(__file__).parent
pamiq = json.loads((here / "curiosity_bench.json").read_text())
default = json.loads((here.parent / "2026-12-02-sim-10-seeds" / "curiosity_bench.json").read_text())


def figure(report, seed, arm, name):
    result = report["seeds"][seed]["arms"][arm]
    if name == "cells":
        return result["cells_visited"]
    if name == "walk":
        return result["held_out"][-1]["copy_ratio"][0]
    return result["held_out"][-1]["trainer_copy_ratio"][0]


def interval(values):
    ci = bootstrap_ci(values)
    return f"{ci.estimate:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


seeds = sorted(pamiq["seeds"], key=int)
rows = {}
for arm in ("curiosity", "matched", "zero_reward", "uniform"):
    for name in ("cells", "walk", "trainer"):
        diffs = [figure(pamiq, s, arm, name) - figure(default, s, arm, name) for s in seeds]
        rows[f"{arm} {name}"] = {"per_seed": diffs, "interval": interval(diffs)}
        print(f"{arm:<12} {name:<8} PAMIQ - default {interval(diffs)}  per seed "
              + " ".join(f"{d:+.3g}" for d in diffs))
turn_one_way = {
    s: max(pamiq["seeds"][s]["arms"]["curiosity"]["action_frequencies"][2]) for s in seeds
}
print("curiosity arm's most frequent turn option per seed:", turn_one_way)
(here / "compare.json").write_text(json.dumps({"rows": rows, "turn_top": turn_one_way}, indent=1))
