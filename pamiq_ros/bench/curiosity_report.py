"""The curiosity benchmark's conclusions: statistics over seeds, targets, table and PNG plots.

Everything here reads the plain report the fast mode builds (per seed, per arm figures, and
the probes) and adds nothing measured: :func:`summarise` computes the intervals and the
targets, :func:`format_table` prints them, :func:`write_plots` draws them.

Targets (each MET only when its whole 95 % interval clears the bar):

* ``exploration``: curiosity's cells visited minus the matched-random arm's, paired by seed;
* ``prediction``: the forward model's error over the copy baseline's at k = 1, at the end of
  the curiosity arm, on the held-out trajectory: below 1;
* ``representation``: the curiosity arm's trained encoder's pose-probe R^2 minus the mean
  R^2 of the untrained encoders, per seed: above 0.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pamiq_ros.bench.curiosity_fast import ARM_LABELS, ARMS
from pamiq_ros.bench.statistics import Interval, bootstrap_ci, curve_band, paired_differences
from pamiq_ros.core.actions import ACTION_DIMENSIONS

PLOT_FILES = {
    "cells": "cells_vs_steps.png",
    "paired": "paired_delta_cells.png",
    "actions": "action_marginals.png",
    "copy_ratio": "copy_ratio_over_time.png",
    "probe": "probe_r2.png",
    "health": "jepa_health.png",
    "coverage": "coverage_maps.png",
}
"""Plot name -> file name in the report's folder."""

COMPARISONS = (("curiosity", "matched"), ("curiosity", "uniform"), ("curiosity", "zero_reward"))
"""Paired differences of cells visited that the report gives (first minus second)."""

_COLORS = {
    "curiosity": "tab:red",
    "uniform": "tab:gray",
    "matched": "tab:blue",
    "zero_reward": "tab:green",
}


def _by_seed(seeds: Mapping[str, Mapping[str, Any]], arm: str, key: str) -> dict[int, float]:
    return {
        int(seed): float(entry["arms"][arm][key])
        for seed, entry in seeds.items()
        if arm in entry["arms"]
    }


def _final_ratio(result: Mapping[str, Any], horizon: int) -> float:
    return float(result["held_out"][-1]["copy_ratio"][horizon - 1])


def summarise(report: Mapping[str, Any]) -> dict[str, Any]:
    """Intervals over seeds for every figure, the paired differences and the targets.

    Args:
        report: The fast mode's report (``seeds`` and ``probe`` filled in).
    """
    seeds = report["seeds"]
    arms = [arm for arm in ARMS if any(arm in entry["arms"] for entry in seeds.values())]
    summary: dict[str, Any] = {"arms": {}, "paired_cells": {}, "targets": {}}
    probe = report["probe"]
    untrained = probe["untrained"]
    untrained_pose = float(np.mean([entry["pose_r2_mean"] for entry in untrained.values()]))
    untrained_region = _mean_or_none([entry["region_r2_mean"] for entry in untrained.values()])
    for arm in arms:
        results = {int(s): e["arms"][arm] for s, e in seeds.items() if arm in e["arms"]}
        horizons = len(next(iter(results.values()))["held_out"][-1]["copy_ratio"])
        trained = {int(s): probe["trained"][arm][s] for s in probe["trained"].get(arm, {})}
        pose_delta = {s: t["pose_r2_mean"] - untrained_pose for s, t in trained.items()}
        entry: dict[str, Any] = {
            "cells": bootstrap_ci([r["cells_visited"] for r in results.values()]).as_dict(),
            "copy_ratio_end": [
                bootstrap_ci([_final_ratio(r, k) for r in results.values()]).as_dict()
                for k in range(1, horizons + 1)
            ],
            "trainer_copy_ratio_end": _interval_or_none(
                [
                    r["held_out"][-1]["trainer_copy_ratio"][0]
                    for r in results.values()
                    if r["held_out"][-1].get("trainer_copy_ratio")
                ]
            ),
            "feature_spread_end": bootstrap_ci(
                [r["held_out"][-1]["feature_spread"] for r in results.values()]
            ).as_dict(),
            "effective_rank_end": bootstrap_ci(
                [r["held_out"][-1]["effective_rank"] for r in results.values()]
            ).as_dict(),
            "probe_pose_r2": _interval_or_none([t["pose_r2_mean"] for t in trained.values()]),
            "probe_pose_r2_minus_untrained": _interval_or_none(list(pose_delta.values())),
            "probe_region_r2": _interval_or_none(
                [t["region_r2_mean"] for t in trained.values() if t["region_r2_mean"] is not None]
            ),
            "probe_region_accuracy": _interval_or_none(
                [
                    t["region_accuracy_mean"]
                    for t in trained.values()
                    if t["region_accuracy_mean"] is not None
                ]
            ),
        }
        regions = [len(r["regions_visited"]) for r in results.values() if r.get("regions_visited")]
        entry["regions_visited"] = _interval_or_none(regions)
        entry["goal_fraction"] = _interval_or_none(
            [
                r["episodes_reaching_goal"] / r["episodes_ended"]
                for r in results.values()
                if r.get("episodes_ended")
            ]
        )
        summary["arms"][arm] = entry
    for first, second in COMPARISONS:
        if first in arms and second in arms:
            differences = paired_differences(
                _by_seed(seeds, first, "cells_visited"), _by_seed(seeds, second, "cells_visited")
            )
            summary["paired_cells"][f"{first}-{second}"] = {
                "per_seed": {str(seed): value for seed, value in differences.items()},
                **bootstrap_ci(list(differences.values())).as_dict(),
            }
    summary["untrained_probe"] = {
        "pose_r2_mean": untrained_pose,
        "region_r2_mean": untrained_region,
        "pose_r2_per_encoder": {k: v["pose_r2_mean"] for k, v in untrained.items()},
    }
    summary["pixels_probe"] = {
        "pose_r2_mean": probe["pixels"]["pose_r2_mean"],
        "region_r2_mean": probe["pixels"]["region_r2_mean"],
    }
    summary["targets"] = _targets(summary)
    return summary


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def _interval_or_none(values: Sequence[float]) -> dict[str, float | int] | None:
    return bootstrap_ci(values).as_dict() if values else None


def _interval(figures: Mapping[str, Any] | None) -> Interval | None:
    if figures is None:
        return None
    return Interval(
        float(figures["estimate"]),
        float(figures["low"]),
        float(figures["high"]),
        int(figures["samples"]),
        float(figures["confidence"]),
    )


def _targets(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The three targets, each with its interval, the bar and MET or MISSED."""
    targets: dict[str, dict[str, Any]] = {}
    paired = _interval(summary["paired_cells"].get("curiosity-matched"))
    targets["exploration"] = {
        "what": "cells visited, curiosity minus matched random (paired by seed)",
        "bar": "95 % CI above 0",
        "interval": None if paired is None else paired.as_dict(),
        "met": paired is not None and paired.above_zero,
    }
    curiosity = summary["arms"].get("curiosity")
    ratio = _interval(curiosity["copy_ratio_end"][0]) if curiosity else None
    targets["prediction"] = {
        "what": "forward-model / copy error at k=1, end of the curiosity arm (held out)",
        "bar": "95 % CI below 1",
        "interval": None if ratio is None else ratio.as_dict(),
        "met": ratio is not None and ratio.below(1.0),
    }
    probe = _interval(curiosity["probe_pose_r2_minus_untrained"]) if curiosity else None
    targets["representation"] = {
        "what": "pose-probe R^2, curiosity's trained encoder minus untrained encoders",
        "bar": "95 % CI above 0",
        "interval": None if probe is None else probe.as_dict(),
        "met": probe is not None and probe.above_zero,
    }
    return targets


def _cell(figures: Mapping[str, Any] | None, digits: int = 3) -> str:
    if figures is None:
        return "-"
    estimate, low, high = figures["estimate"], figures["low"], figures["high"]
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def format_table(report: Mapping[str, Any]) -> str:
    """The summary as text: one row per arm, the paired differences, and the targets."""
    summary = report["summary"]
    header = (
        f"{'arm':<12} {'cells (95% CI)':<24} {'FD/copy k=1 end':<24} "
        f"{'probe pose R2':<24} {'probe region R2':<24} {'eff. rank end':<22}"
    )
    lines = [header, "-" * len(header)]
    for arm, entry in summary["arms"].items():
        lines.append(
            f"{arm:<12} {_cell(entry['cells'], 1):<24} {_cell(entry['copy_ratio_end'][0]):<24} "
            f"{_cell(entry['probe_pose_r2']):<24} {_cell(entry['probe_region_r2']):<24} "
            f"{_cell(entry['effective_rank_end'], 2):<22}"
        )
    untrained, pixels = summary["untrained_probe"], summary["pixels_probe"]
    lines.append(
        f"{'untrained':<12} {'':<24} {'':<24} {untrained['pose_r2_mean']:<24.3f} "
        f"{_fmt(untrained['region_r2_mean']):<24}"
    )
    lines.append(
        f"{'pixels':<12} {'':<24} {'':<24} {pixels['pose_r2_mean']:<24.3f} "
        f"{_fmt(pixels['region_r2_mean']):<24}"
    )
    secondary = [
        f"{arm:<12} regions visited {_cell(entry.get('regions_visited'), 1):<22} "
        f"goal fraction of ended episodes {_cell(entry.get('goal_fraction'))}"
        for arm, entry in summary["arms"].items()
        if entry.get("regions_visited") or entry.get("goal_fraction")
    ]
    if secondary:
        lines += ["", *secondary]
    lines.append("")
    for name, entry in summary["paired_cells"].items():
        lines.append(f"paired cells {name:<24} {_cell(entry, 1)}")
    lines.append("")
    lines += [
        f"FD/copy k=1 end, trainer's held-out steps  {arm:<12} "
        f"{_cell(entry.get('trainer_copy_ratio_end'))}"
        for arm, entry in summary["arms"].items()
    ]
    lines.append("")
    for name, target in summary["targets"].items():
        verdict = "MET" if target["met"] else "MISSED"
        lines.append(
            f"target {name:<15} {verdict:<7} {_cell(target['interval'])}  "
            f"({target['what']}; bar: {target['bar']})"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# --- plots ----------------------------------------------------------------------------------------


def write_plots(report: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    """Draws every plot of :data:`PLOT_FILES` into ``out_dir``; returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds, summary = report["seeds"], report["summary"]
    arms = list(summary["arms"])
    paths = {name: out_dir / file for name, file in PLOT_FILES.items()}

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for arm in arms:
        curves = [e["arms"][arm]["cells_over_steps"] for e in seeds.values() if arm in e["arms"]]
        steps = [point["step"] for point in curves[0]]
        band = curve_band([[point["cells"] for point in curve] for curve in curves])
        axes.plot(steps, band["mean"], color=_COLORS[arm], label=ARM_LABELS[arm])
        axes.fill_between(steps, band["low"], band["high"], color=_COLORS[arm], alpha=0.2)
    axes.set_xlabel("environment steps")
    axes.set_ylabel("cells visited")
    axes.set_title(f"Coverage, mean and 95 % bootstrap CI over {len(seeds)} seeds")
    axes.legend()
    _save(figure, paths["cells"])

    figure, axes = plt.subplots(figsize=(7, 4))
    names = list(summary["paired_cells"])
    for index, name in enumerate(names):
        entry = summary["paired_cells"][name]
        values = list(entry["per_seed"].values())
        axes.scatter([index] * len(values), values, color="black", s=12, zorder=3)
        axes.errorbar(
            index,
            entry["estimate"],
            yerr=[[entry["estimate"] - entry["low"]], [entry["high"] - entry["estimate"]]],
            fmt="o",
            color="tab:red",
            capsize=6,
            markersize=8,
        )
    axes.axhline(0.0, color="gray", linewidth=1)
    axes.set_xticks(range(len(names)), [name.replace("-", "\nminus ") for name in names])
    axes.set_ylabel("Δ cells visited (paired by seed)")
    axes.set_title("Paired differences: dots are seeds, bars 95 % CI")
    _save(figure, paths["paired"])

    figure, grid = plt.subplots(1, len(ACTION_DIMENSIONS), figsize=(14, 3.8))
    width = 0.8 / max(1, len(arms))
    for column, (axes, dimension) in enumerate(zip(grid, ACTION_DIMENSIONS, strict=True)):
        for offset, arm in enumerate(arms):
            rows = [
                e["arms"][arm]["action_frequencies"][column]
                for e in seeds.values()
                if arm in e["arms"]
            ]
            mean = np.mean(rows, axis=0)
            positions = np.arange(dimension.size) + (offset - (len(arms) - 1) / 2) * width
            axes.bar(positions, mean, width, color=_COLORS[arm], label=ARM_LABELS[arm])
        axes.set_xticks(range(dimension.size), dimension.options)
        axes.set_title(dimension.name)
        axes.set_ylim(0, 1)
    grid[0].set_ylabel("frequency (mean over seeds)")
    grid[-1].legend(fontsize=7)
    _save(figure, paths["actions"])

    first = next(iter(seeds.values()))["arms"][arms[0]]["held_out"]
    horizons = len(first[-1]["copy_ratio"])
    figure, grid = plt.subplots(1, horizons, figsize=(3.6 * horizons, 3.6), squeeze=False)
    for k in range(horizons):
        axes = grid[0][k]
        for arm in arms:
            runs = [e["arms"][arm]["held_out"] for e in seeds.values() if arm in e["arms"]]
            steps = [point["step"] for point in runs[0]]
            band = curve_band([[point["copy_ratio"][k] for point in run] for run in runs])
            axes.plot(steps, band["mean"], color=_COLORS[arm], label=ARM_LABELS[arm])
            axes.fill_between(steps, band["low"], band["high"], color=_COLORS[arm], alpha=0.2)
            # dotted: the trainer's own held-out steps, mean over the seeds that have a figure
            dotted_steps, dotted_means = [], []
            for index, step in enumerate(steps):
                figures = [
                    run[index]["trainer_copy_ratio"][k]
                    for run in runs
                    if run[index].get("trainer_copy_ratio")
                ]
                if figures:
                    dotted_steps.append(step)
                    dotted_means.append(float(np.mean(figures)))
            axes.plot(dotted_steps, dotted_means, color=_COLORS[arm], linestyle=":")
        axes.axhline(1.0, color="black", linewidth=1, linestyle="--")
        axes.set_title(f"k = {k + 1}")
        axes.set_xlabel("environment steps")
        low, high = axes.get_ylim()
        if low > 0 and high / low > 20:  # an untrained model far off the copy baseline
            axes.set_yscale("log")
    grid[0][0].set_ylabel("forward-model error / copy error (held out)")
    grid[0][0].annotate(
        "solid: held-out walk, newest encoders; dotted: trainer's newest steps",
        (0.0, -0.28), xycoords="axes fraction", fontsize=7,
    )  # fmt: skip
    grid[0][-1].legend(fontsize=7)
    _save(figure, paths["copy_ratio"])

    probe = report["probe"]
    panels = [("pose_r2", "pose probe R²")]
    if probe["pixels"]["region_r2"] is not None:
        panels += [
            ("region_r2", "region probe R² (one-hot)"),
            ("region_accuracy", "region accuracy"),
        ]
    figure, grid = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for axes, (key, title) in zip(grid[0], panels, strict=True):
        groups = {"pixels\n(splits)": list(probe["pixels"][key])}
        groups["untrained\n(encoders)"] = [
            float(np.mean(entry[key])) for entry in probe["untrained"].values()
        ]
        for arm in arms:
            groups[f"{arm}\n(seeds)"] = [
                float(np.mean(entry[key])) for entry in probe["trained"].get(arm, {}).values()
            ]
        box_positions = list(range(1, len(groups) + 1))
        axes.boxplot(list(groups.values()), showfliers=False)
        for position, values in zip(box_positions, groups.values(), strict=True):
            axes.scatter([position] * len(values), values, s=10, color="black", zorder=3)
        axes.set_xticks(box_positions, list(groups), fontsize=7)
        axes.set_title(title)
    grid[0][0].set_ylabel(f"held out, mean over {len(probe['pixels']['pose_r2'])} splits")
    figure.suptitle("Linear probes: pixels, untrained encoders, each arm's trained encoders")
    _save(figure, paths["probe"])

    figure, grid = plt.subplots(1, 2, figsize=(10, 4))
    for axes, key, title in (
        (grid[0], "feature_spread", "feature spread"),
        (grid[1], "effective_rank", "effective rank"),
    ):
        for arm in arms:
            runs = [e["arms"][arm]["held_out"] for e in seeds.values() if arm in e["arms"]]
            steps = [point["step"] for point in runs[0]]
            band = curve_band([[point[key] for point in run] for run in runs])
            axes.plot(steps, band["mean"], color=_COLORS[arm], label=ARM_LABELS[arm])
            axes.fill_between(steps, band["low"], band["high"], color=_COLORS[arm], alpha=0.2)
        axes.set_title(f"JEPA {title} (held-out frames)")
        axes.set_xlabel("environment steps")
    grid[1].legend(fontsize=7)
    _save(figure, paths["health"])

    _plot_coverage_maps(plt, seeds, arms, paths["coverage"])
    return {name: str(path) for name, path in paths.items()}


def coverage_counts(seeds: Mapping[str, Mapping[str, Any]], arm: str) -> dict[tuple[int, int], int]:
    """For one arm: each grid cell that any seed visited, and by how many seeds."""
    counts: dict[tuple[int, int], int] = {}
    for entry in seeds.values():
        for i, j in entry["arms"].get(arm, {}).get("visited_cells", []):
            counts[(i, j)] = counts.get((i, j), 0) + 1
    return counts


def _plot_coverage_maps(
    plt: Any, seeds: Mapping[str, Any], arms: Sequence[str], path: Path
) -> None:
    """One panel per arm: the world's grid, each cell shaded by how many seeds entered it."""
    maps = {arm: coverage_counts(seeds, arm) for arm in arms}
    cells = [cell for counts in maps.values() for cell in counts] or [(0, 0)]
    low_i, high_i = min(c[0] for c in cells), max(c[0] for c in cells)
    low_j, high_j = min(c[1] for c in cells), max(c[1] for c in cells)
    figure, grid = plt.subplots(1, len(arms), figsize=(3.6 * len(arms), 3.8), squeeze=False)
    for axes, arm in zip(grid[0], arms, strict=True):
        image = np.zeros((high_j - low_j + 1, high_i - low_i + 1))
        for (i, j), count in maps[arm].items():
            image[j - low_j, i - low_i] = count
        shown = axes.imshow(
            image,
            origin="lower",
            extent=(low_i - 0.5, high_i + 0.5, low_j - 0.5, high_j + 0.5),
            cmap="viridis",
            vmin=0,
            vmax=max(1, len(seeds)),
        )
        axes.set_title(f"{ARM_LABELS[arm]}\n{len(maps[arm])} cells in all", fontsize=9)
        axes.set_xlabel("cell x")
    grid[0][0].set_ylabel("cell y")
    figure.colorbar(shown, ax=list(grid[0]), shrink=0.8, label="seeds that entered the cell")
    figure.suptitle("Coverage maps: cells entered, over all seeds")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
