import json, sys
from pathlib import Path
from pamiq_ros.bench.statistics import bootstrap_ci
base = json.load(open("docs/results/forward-study/exploration-2026-12-01/buffer_6000.json"))
walk2000 = base["walk"]["buffer_2000"]; tr2000 = base["trainer"]["buffer_2000"]
out = {"what": "curiosity arm, 6000 steps, fast mode, default settings except ONE world-model buffer enlarged to 6000 (forward: the forward model's sequential buffer; temporal: the temporal encoder's; frames: JEPA's random-replacement frame buffer), against the default buffer_size 2000 and against all three at 6000 (buffer_6000.json); same seeds 0-4, paired; k = 1 at the end", "default_2000": {"walk": walk2000, "trainer": tr2000}, "all_6000": {"walk": base["walk"]["buffer_6000"], "trainer": base["trainer"]["buffer_6000"]}, "runs": {}}
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
for which in ("forward", "temporal", "frames", "forward+temporal"):
    runs = sorted((r for r in rows if r["which"] == which), key=lambda r: r["seed"])
    walk = [r["walk_k1"][-1] for r in runs]; tr = [r["trainer_k1"][-1] for r in runs]
    def ci(v):
        i = bootstrap_ci(v); return [round(i.estimate, 3), round(i.low, 3), round(i.high, 3)]
    out[which] = {"walk": walk, "trainer": tr, "walk_mean": ci(walk), "trainer_mean": ci(tr),
        "walk_paired_vs_default": ci([a - b for a, b in zip(walk, walk2000)]),
        "trainer_paired_vs_default": ci([a - b for a, b in zip(tr, tr2000)])}
    out["runs"][which] = runs
    print(which, out[which]["walk"], out[which]["walk_mean"], "paired", out[which]["walk_paired_vs_default"], "| trainer", out[which]["trainer_mean"], out[which]["trainer_paired_vs_default"])
Path("docs/results/forward-study/exploration-2026-12-01/one_buffer_6000.json").write_text(json.dumps(out, indent=1))
