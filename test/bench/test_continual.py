"""The continual-learning lab: time functions on hand-made curves, and a tiny lab run."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pamiq_ros.bench.continual import (
    METRICS,
    LabConfig,
    bootstrap_mean,
    fit_to_budget,
    forgetting_time,
    plasticity_time,
    read_labeled_bag,
    render_test_set,
    run_lab,
    smooth,
    write_labeled_bag,
)
from pamiq_ros.io.bags import BagError


def test_plasticity_time_finds_50_and_90_percent_of_the_gain():
    steps = [100, 110, 120, 130, 140, 150]
    values = [0.0, 0.2, 0.5, 0.8, 0.95, 1.0]  # gains 1.0 over the phase
    assert plasticity_time(steps, values, 0.5) == 20
    assert plasticity_time(steps, values, 0.9) == 40
    # The gain is measured to the mean of the tail: a last spike does not move the target.
    assert plasticity_time(steps[:5], [0.0, 0.5, 0.5, 0.5, 1.5], 0.5, tail=3) == 10


def test_plasticity_time_is_none_without_gain():
    assert plasticity_time([0, 1, 2], [0.5, 0.4, 0.3], 0.5) is None
    assert plasticity_time([0, 1, 2], [0.5, 0.5, 0.5], 0.5) is None


def test_forgetting_time_counts_loss_of_the_earlier_gain():
    steps = [0, 10, 20, 30, 40]
    values = [0.8, 0.7, 0.5, 0.4, 0.3]  # the experience had gained 0.6 before the switch
    assert forgetting_time(steps, values, gain=0.6, fraction=0.5) == 20  # 0.8 - 0.3 = 0.5
    assert forgetting_time(steps, values, gain=0.6, fraction=0.9) is None  # 0.26 never reached
    assert forgetting_time(steps, values, gain=0.0, fraction=0.5) is None  # nothing to lose
    assert forgetting_time(steps[:3], [0.8, 0.9, 1.0], gain=0.6, fraction=0.5) is None


def test_time_functions_refuse_bad_input():
    with pytest.raises(ValueError):
        plasticity_time([0, 1], [0.0], 0.5)
    with pytest.raises(ValueError):
        forgetting_time([0, 1], [0.0, 1.0], 1.0, 0.0)


def test_smooth_and_bootstrap():
    assert smooth([0.0, 3.0, 6.0], 2) == [0.0, 1.5, 4.5]
    stats = bootstrap_mean([1.0, 2.0, 3.0, None])  # type: ignore[list-item]
    assert stats["mean"] == 2.0 and stats["n"] == 3
    low, high = stats["low"], stats["high"]
    assert low is not None and high is not None and 1.0 <= low <= 2.0 <= high <= 3.0
    assert bootstrap_mean([])["mean"] is None


def test_fit_to_budget_scales_the_phases_down():
    config = LabConfig(phases=(("A", 400), ("B", 400)), budget_minutes=1.0)
    costs = {size: {"train_step_s": 0.1, "evaluation_s": 0.5} for size in config.sizes}
    fitted, scale = fit_to_budget(config, costs)
    assert scale < 1.0 and fitted.total_steps < config.total_steps
    same, one = fit_to_budget(replace(config, budget_minutes=10_000.0), costs)
    assert one == 1.0 and same == replace(config, budget_minutes=10_000.0)


def test_test_sets_come_back_from_their_bags(tmp_path: Path):
    frames, poses = render_test_set("B", 6, seed=3, width=32, height=24)
    write_labeled_bag(tmp_path / "b", frames, poses, ["B"] * 6)
    data, labels = read_labeled_bag(tmp_path / "b")
    assert np.array_equal(data.frames, frames) and labels == ["B"] * 6
    assert np.allclose(data.pose[:, 0], poses[:, 0]) and np.allclose(
        data.pose[:, 2], np.cos(poses[:, 2])
    )
    with pytest.raises(BagError):
        read_labeled_bag(tmp_path / "missing")


def test_a_quick_lab_run_writes_every_figure(tmp_path: Path, capsys):
    config = LabConfig(
        sizes=("S",),
        survivals=("short", "long"),
        seeds=(0, 1),
        phases=(("A", 6), ("B", 6), ("A", 4)),
        eval_every=2,
        test_frames=30,
        buffer_size=16,
        batch_size=4,
        frame_width=32,
        frame_height=24,
    )
    run_lab(config, tmp_path)
    report = json.loads((tmp_path / "continual.json").read_text())
    for key in ("config", "costs", "machine", "model_sizes", "survival_settings", "summary",
                "runs", "iid", "plots", "seconds", "scaled_by"):  # fmt: skip
        assert key in report, key
    assert set(report["summary"]) == {"S/short", "S/long"}
    cell = report["summary"]["S/short"]
    assert [phase["experience"] for phase in cell["phases"]] == ["A", "B", "A"]
    assert set(cell["phases"][1]["plasticity"]["pose_r2"]) == {"50%", "90%"}
    assert set(cell["phases"][1]["forgetting"]["A"]["pose_r2"]) == {"50%", "90%"}
    assert set(cell["iid_reference"]) == {"A", "B"}
    assert set(cell["final"]["B"]) == set(METRICS)
    assert len(cell["cka_at_phase_end"]) == 3
    assert cell["cka_at_phase_end"][0]["A"]["mean"] <= 1.0 + 1e-9
    assert len(report["runs"]) == 4 and len(report["iid"]) == 2
    run = report["runs"][0]
    assert run["switch_steps"] == [0, 6, 12]
    assert set(run["curves"]["A"]) == set(METRICS)
    assert len(run["curves"]["B"]["pose_r2"]) == len(run["steps"])
    assert all(Path(path).stat().st_size > 0 for path in report["plots"])
    assert (tmp_path / "test_sets" / "A" / "metadata.yaml").is_file()
    assert "forget 50%" in capsys.readouterr().out


def test_time_statistics_count_no_gain_and_censored_runs_apart():
    from pamiq_ros.bench.continual import _time_stats

    entries: list[dict[str, float | None]] = [
        {"50%": 20.0, "gain": 0.3},
        {"50%": 40.0, "gain": 0.2},
        {"50%": None, "gain": 0.1},  # had a gain, never reached the threshold
        {"50%": None, "gain": -0.1},  # nothing to time
    ]
    stats = _time_stats(entries, "50%")
    assert stats["mean"] == 30.0 and stats["n"] == 2
    assert stats["censored"] == 1 and stats["no_gain"] == 1
