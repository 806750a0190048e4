import json, sys
from pamiq_ros.bench.statistics import bootstrap_ci
def load(path):
    return {r["seed"]: r for r in map(json.loads, open(path))}
base = load(sys.argv[1]); alt = load(sys.argv[2])
seeds = sorted(set(base) & set(alt))
out = {"seeds": seeds}
for key in ("walk_k1", "trainer_k1"):
    b = [base[s][key][-1] for s in seeds]; a = [alt[s][key][-1] for s in seeds]
    d = [x - y for x, y in zip(a, b)]
    ci = lambda v: (round(bootstrap_ci(v).estimate, 3), round(bootstrap_ci(v).low, 3), round(bootstrap_ci(v).high, 3))
    out[key] = {"default": b, "alt": a, "default_ci": ci(b), "alt_ci": ci(a), "paired": ci(d)}
    print(key, "default", b, ci(b), "| alt", a, ci(a), "| paired", ci(d))
json.dump(out, open(sys.argv[3], "w"), indent=1)
