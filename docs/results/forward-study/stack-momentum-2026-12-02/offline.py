"""Offline: the forward model trained on the first 75 % of a stack run's buffer, measured on the
rest (k = 1, error over copying's), as a function of optimiser steps.

Variants (all with the model as built since 2026-12-02, the momentum map M included):
- default: M frozen at zero and no previous observation: the model as it was before.
- momentum: everything trained at the forward model's rate 1e-4.
- momentum-only: only M trained (the GRU's change head stays at zero).
- momentum-fast: everything trained, M at 10x the rate (1e-3).

python offline.py RUN_FOLDER STEPS OUT.json VARIANTS (comma-separated)
"""
import glob
import json
import sys

import numpy as np
import torch

from pamiq_ros.models.forward_dynamics import ForwardDynamics, horizon_weights, window_starts

path = sorted(glob.glob(sys.argv[1] + "/runs/*/trainer/checkpoints/0*/buffers/forward_dynamics/data.npz"))[-1]
d = np.load(path)  # keys in the buffer's order: state, action, obs, done
state, act, obs, done = d["key_0"], d["key_1"].astype(int), d["key_2"], d["key_3"]
n = len(obs); K = 4; split = int(0.75 * n)


def run(kind: str, steps: int, seed: int) -> list[tuple[int, float]]:
    torch.manual_seed(seed)
    model = ForwardDynamics(state.shape[1], obs.shape[1])
    momentum = list(model.momentum.parameters())
    rest = [p for name, p in model.named_parameters() if not name.startswith("momentum")]
    if kind == "default":
        groups = [{"params": rest}]
    elif kind == "momentum-only":
        groups = [{"params": momentum}]
    elif kind == "momentum-fast":
        groups = [{"params": rest}, {"params": momentum, "lr": 1e-3}]
    else:
        groups = [{"params": rest + momentum}]
    opt = torch.optim.Adam(groups, lr=1e-4)
    use_previous = kind != "default"
    w = horizon_weights(K).float()
    train = window_starts(done, K, split, begin=1)
    test = window_starts(done, K, n, begin=split)

    def batch(starts):
        return (torch.as_tensor(state[starts]), torch.as_tensor(obs[starts]),
                torch.as_tensor(obs[starts - 1]) if use_previous else None,
                torch.as_tensor(act[starts[:, None] + np.arange(K)]),
                torch.as_tensor(obs[starts[:, None] + np.arange(K) + 1]))

    rng = np.random.default_rng(seed); curve = []
    for i in range(1, steps + 1):
        st, o, p, a, y = batch(train[rng.integers(len(train), size=32)])
        loss = (((model(st, o, a, p) - y) ** 2).mean(dim=(0, 2)) * w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
        if i % 400 == 0 or i == steps:
            with torch.no_grad():
                st, o, p, a, y = batch(test)
                pr = model(st, o, a, p)
                ratio = float(((pr[:, 0] - y[:, 0]) ** 2).mean() / ((o - y[:, 0]) ** 2).mean())
            curve.append((i, round(ratio, 3)))
    return curve


out = {"file": path, "steps_in_buffer": n, "trained_on": split, "curves": {}}
for kind in sys.argv[4].split(","):
    for seed in (0, 1):
        out["curves"][f"{kind}-{seed}"] = run(kind, int(sys.argv[2]), seed)
        print(kind, seed, out["curves"][f"{kind}-{seed}"], flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
