"""Per-seed forward/copy ratio at k=1 over steps, two settings side by side; writes one PNG.

Usage: plot_over_steps.py CONTROL.jsonl VARIANT.jsonl STEPS_PER_POINT OUT.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def load(path: str) -> dict[int, dict]:
    """The JSON lines of one setting, by seed."""
    return {record["seed"]: record for record in map(json.loads, open(path))}


control, variant = load(sys.argv[1]), load(sys.argv[2])
every = int(sys.argv[3])
figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
measures = (("walk_k1", "held-out walk (newest encoders)"),
            ("trainer_k1", "trainer's newest steps (as the agent saw them)"))  # fmt: skip
for axis, (key, title) in zip(axes, measures, strict=True):
    for seed in sorted(set(control) & set(variant)):
        for records, style, label in ((control, "--", "2000"), (variant, "-", "6000")):
            values = records[seed][key]
            steps = [every * i for i, value in enumerate(values) if value is not None]
            axis.plot(steps, [v for v in values if v is not None], style, marker=".",
                      color=f"C{seed}", label=f"seed {seed}, {label}")  # fmt: skip
    axis.axhline(1.0, color="grey", linewidth=0.8)
    axis.set_title(title)
    axis.set_xlabel("agent steps")
    axis.set_ylabel("forward error / copy error, k = 1")
axes[0].legend(fontsize=7)
figure.suptitle("sequence_buffer_size 2000 (dashed) against 6000 (solid), curiosity arm")
figure.tight_layout()
figure.savefig(sys.argv[4], dpi=110)
