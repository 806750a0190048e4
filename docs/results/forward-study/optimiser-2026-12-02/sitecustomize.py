"""Experiment patch for the forward model's optimiser (FWD_PATCH=kind:value); not project code."""
import os

_patch = os.environ.get("FWD_PATCH", "")
if _patch:
    import torch
    from pamiq_ros.models import forward_dynamics as _fd

    kind, _, value = _patch.partition(":")

    def _make_optimizer(self, model):
        momentum = list(model.momentum.parameters())
        ids = {id(p) for p in momentum}
        rest = [p for p in model.parameters() if id(p) not in ids]
        lr = self.learning_rate
        if kind == "head_lr":
            return torch.optim.Adam([{"params": momentum, "lr": lr}, {"params": rest, "lr": lr * float(value)}])
        if kind == "momentum_only":
            return torch.optim.Adam([{"params": momentum, "lr": lr}, {"params": rest, "lr": 0.0}])
        if kind == "wd":
            return torch.optim.AdamW([{"params": momentum, "weight_decay": 0.0}, {"params": rest, "weight_decay": float(value)}], lr=lr)
        raise ValueError(_patch)

    _fd.ForwardDynamicsTrainer.make_optimizer = _make_optimizer
    print(f"[FWD_PATCH {_patch}]", flush=True)
