"""The curiosity benchmark's measures and plumbing, without running a stack."""

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import save_file
from torch.utils.tensorboard import SummaryWriter

from pamiq_ros.bench.curiosity_stack import (
    ENCODER_FILE,
    TRAINER_STORE,
    PoseRecord,
    ProbeData,
    ScalarPoint,
    area_sample_times,
    arm_config,
    check_config,
    encoder_probe,
    main,
    newest_checkpoint,
    paired_cells,
    read_scalars,
    scalar_tags,
    summarise_series,
)
from pamiq_ros.bench.probe import (
    PROBE_TARGETS,
    VisitedCells,
    linear_probe,
    r2_scores,
    render_probe_dataset,
    sample_poses,
    split_indices,
)
from pamiq_ros.core.checkpoint import CheckpointStore
from pamiq_ros.models.jepa import build_jepa
from pamiq_ros.sim.world import AVATAR_RADIUS, default_layout

CONFIG = Path(__file__).resolve().parents[2] / "config" / "sim.yaml"

# --- visited area -------------------------------------------------------------------------------


def test_visited_cells_counts_distinct_cells_of_the_grid_and_when_each_was_entered():
    cells = VisitedCells(cell_size=1.0)
    assert cells.add(0.2, 0.3, time=0.0)
    assert not cells.add(0.9, 0.9, time=1.0)  # same cell
    assert cells.add(-0.1, 0.5, time=2.0)  # x < 0 is the next cell, not the same one
    assert cells.add(5.5, -3.2, time=3.0)
    assert not cells.add(math.nan, 1.0, time=4.0)
    assert cells.count == 3 and cells.area == 3.0 and cells.positions == 4
    assert cells.cells == {(0, 0), (-1, 0), (5, -4)}
    assert cells.counts_over_time([0.0, 1.5, 2.0, 10.0]) == [
        (0.0, 1),
        (1.5, 1),
        (2.0, 2),
        (10.0, 3),
    ]


def test_visited_cells_area_follows_the_cell_size():
    cells = VisitedCells(cell_size=0.5)
    for x in np.arange(0.0, 2.0, 0.1):  # a 2 m walk along x: four half-metre cells
        cells.add(float(x), 0.1)
    assert cells.count == 4 and cells.area == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cell_size"):
        VisitedCells(0.0)


def test_a_pose_record_counts_cells_by_agent_steps_and_stops_at_its_steps():
    record = PoseRecord(VisitedCells(1.0), max_steps=3)
    record.add(0.5, 0.5)  # before the first step
    record.count_step()
    record.add(1.5, 0.5)
    record.count_step()
    record.count_step()
    record.add(1.5, 2.5)
    record.count_step()
    record.add(5.5, 5.5)  # after the last step counted: ignored
    assert record.steps == 4 and record.messages == 3 and record.first_pose_step == 0
    assert record.cells.counts_over_time([0, 1, 3]) == [(0, 1), (1, 2), (3, 3)]
    assert record.distance_m == pytest.approx(1.0 + 2.0)


def test_paired_cells_pair_the_stack_arms_by_seed():
    seeds = {
        "0": {"arms": {"curiosity": {"cells_visited": 30}, "uniform": {"cells_visited": 25}}},
        "1": {"arms": {"curiosity": {"cells_visited": 40}, "uniform": {"cells_visited": 41}}},
        "2": {"arms": {"curiosity": {"cells_visited": 50}}},
    }
    paired = paired_cells(seeds)
    assert paired is not None
    assert paired["per_seed"] == {"0": 5.0, "1": -1.0} and paired["estimate"] == 2.0
    assert paired["low"] == -1.0 and paired["high"] == 5.0
    assert paired_cells({"0": {"arms": {"curiosity": {"cells_visited": 1}}}}) is None


def test_area_sample_times_end_at_the_run_length():
    assert area_sample_times(90.0, 30.0) == [30.0, 60.0, 90.0]
    assert area_sample_times(100.0, 30.0) == [30.0, 60.0, 90.0, 100.0]
    assert area_sample_times(10.0, 30.0) == [10.0]


# --- ridge probe --------------------------------------------------------------------------------


def test_r2_is_one_for_a_perfect_fit_zero_for_the_mean_and_negative_when_worse():
    actual = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 9.0]])
    assert r2_scores(actual, actual).tolist() == [1.0, 1.0]
    assert r2_scores(np.tile(actual.mean(axis=0), (3, 1)), actual) == pytest.approx([0.0, 0.0])
    assert (r2_scores(actual[::-1], actual) < 0).all()


def test_linear_probe_recovers_a_linear_target_nearly_perfectly():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(600, 40))
    targets = features @ rng.normal(size=(40, 4)) + 0.01 * rng.normal(size=(600, 4))
    result = linear_probe(features, targets)
    assert result.train_samples == 420 and result.test_samples == 180 and result.features == 40
    assert set(result.r2) == set(PROBE_TARGETS)
    assert min(result.r2.values()) > 0.99, result.r2


def test_linear_probe_finds_nothing_in_noise():
    rng = np.random.default_rng(4)
    result = linear_probe(rng.normal(size=(600, 384)), rng.normal(size=(600, 4)))
    # Cross-validated ridge falls back to the mean: R^2 near 0, never a spurious fit.
    assert max(result.r2.values()) < 0.05, result.r2
    assert result.mean_r2 > -0.1, result.r2


def test_linear_probe_refuses_mismatched_or_non_finite_input():
    with pytest.raises(ValueError, match="features"):
        linear_probe(np.zeros((10, 3)), np.zeros((9, 4)))
    with pytest.raises(ValueError, match="finite"):
        linear_probe(np.full((10, 3), np.nan), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="fewer than 2"):
        split_indices(3)


# --- probe dataset ------------------------------------------------------------------------------


def test_probe_poses_are_inside_the_room_clear_of_walls_and_reproducible():
    layout = default_layout(0)
    poses = sample_poses(layout, 300, seed=5)
    x_min, y_min, x_max, y_max = layout.bounds
    assert (poses.x > x_min + AVATAR_RADIUS).all() and (poses.x < x_max - AVATAR_RADIUS).all()
    assert (poses.y > y_min + AVATAR_RADIUS).all() and (poses.y < y_max - AVATAR_RADIUS).all()
    # Interior wall at x = -3 from y = -8 to -2: nothing stands on it.
    on_wall = (np.abs(poses.x + 3.0) < AVATAR_RADIUS) & (poses.y < -2.0)
    assert not on_wall.any()
    targets = poses.targets()
    assert targets.shape == (300, 4)
    assert np.allclose(targets[:, 2] ** 2 + targets[:, 3] ** 2, 1.0)
    assert np.array_equal(sample_poses(layout, 300, seed=5).x, poses.x)
    assert not np.array_equal(sample_poses(layout, 300, seed=6).x, poses.x)


def test_probe_frames_are_the_cameras_size_and_differ_with_the_pose():
    frames, poses = render_probe_dataset(6, seed=1, width=40, height=30)
    assert frames.shape == (6, 30, 40, 3) and frames.dtype == np.uint8
    assert len(poses.x) == 6
    assert len({frame.tobytes() for frame in frames}) == 6
    again, _ = render_probe_dataset(6, seed=1, width=40, height=30)
    assert np.array_equal(frames, again)


def test_encoder_probe_loads_the_checkpointed_encoder(tmp_path):
    frames, poses = render_probe_dataset(40, seed=2, width=64, height=48)
    data = ProbeData(frames, poses, seed=0)
    checkpoint = tmp_path / "000001"
    (checkpoint / "models").mkdir(parents=True)
    trained = build_jepa("tiny", seed=7)
    save_file(
        {k: v.contiguous() for k, v in trained.state_dict().items()}, str(checkpoint / ENCODER_FILE)
    )
    loaded = encoder_probe(data, "tiny", 0, checkpoint)
    assert loaded.r2 == encoder_probe(data, "tiny", 7, None).r2
    assert loaded.r2 != encoder_probe(data, "tiny", 0, None).r2
    with pytest.raises(RuntimeError, match="does not load"):
        encoder_probe(data, "small", 0, checkpoint)


# --- run folder: TensorBoard and checkpoints ----------------------------------------------------


def test_scalars_are_read_back_from_the_trainers_tensorboard_events(tmp_path):
    log_dir = tmp_path / "trainer" / "tensorboard"
    started = time.time()
    writer = SummaryWriter(log_dir=str(log_dir))
    for step in range(1, 21):
        writer.add_scalar("forward_dynamics/loss", 1.0 / step, step)
        writer.add_scalar("jepa/loss", 2.0, step)
    writer.close()
    points = read_scalars(log_dir, "forward_dynamics/loss", started)
    assert [point.step for point in points] == list(range(1, 21))
    assert points[0].value == pytest.approx(1.0) and points[-1].value == pytest.approx(0.05)
    assert all(0.0 <= point.time_s < 60.0 for point in points)
    assert read_scalars(log_dir, "no/such_tag") == []
    assert read_scalars(tmp_path / "missing", "forward_dynamics/loss") == []
    assert scalar_tags(log_dir) == ["forward_dynamics/loss", "jepa/loss"]


def test_a_series_is_summarised_by_its_first_and_last_tenth_and_downsampled():
    points = [ScalarPoint(float(i), i, float(100 - i)) for i in range(100)]
    summary = summarise_series(points, max_points=11)
    assert summary["count"] == 100
    assert summary["first_10pct_mean"] == pytest.approx(np.mean(range(91, 101)))
    assert summary["last_10pct_mean"] == pytest.approx(np.mean(range(1, 11)))
    steps = [point["step"] for point in summary["series"]]
    assert len(steps) == 11 and steps[0] == 0 and steps[-1] == 99
    assert summarise_series([])["first_10pct_mean"] is None
    single = summarise_series([ScalarPoint(0.0, 1, 3.0)])
    assert single["first_10pct_mean"] == single["last_10pct_mean"] == 3.0


def test_newest_checkpoint_is_the_newest_complete_one_with_the_encoder(tmp_path):
    assert newest_checkpoint(tmp_path) is None
    store = CheckpointStore(tmp_path / TRAINER_STORE, keep_last=5)

    def with_encoder(folder: Path) -> None:
        (folder / "models").mkdir()
        (folder / ENCODER_FILE).write_bytes(b"weights")

    first = store.save(with_encoder, "periodic")
    second = store.save(with_encoder, "shutdown")
    assert newest_checkpoint(tmp_path) == second

    def without_encoder(folder: Path) -> None:
        (folder / "learner.json").write_text("{}")

    store.save(without_encoder)
    assert newest_checkpoint(tmp_path) == second
    (second / "manifest.json").unlink()  # incomplete: skipped
    assert newest_checkpoint(tmp_path) == first


# --- configs ------------------------------------------------------------------------------------


def test_arm_config_moves_every_port_and_applies_the_arms_overrides():
    base = yaml.safe_load(CONFIG.read_text())
    document = arm_config(base, 45001, 45002, {"agent": {"policy": "random", "seed": 3}})
    parameters = {node: section["ros__parameters"] for node, section in document.items()}
    assert parameters["sim_world"]["osc_port"] == 45001
    assert parameters["osc_actuator"]["port"] == 45001
    assert parameters["sim_world"]["video_port"] == 45002
    assert parameters["camera_sensor"]["source"] == "http://127.0.0.1:45002/stream.mjpg"
    assert parameters["agent"]["policy"] == "random" and parameters["agent"]["seed"] == 3
    assert base["sim_world"]["ros__parameters"]["osc_port"] == 9000  # the original is untouched
    with pytest.raises(ValueError, match="no 'robot_base' node"):
        arm_config(base, 1, 2, {"robot_base": {"seed": 1}})


def test_a_config_without_the_agents_policy_parameter_is_refused_with_the_reason(tmp_path, capsys):
    document = yaml.safe_load(CONFIG.read_text())
    document["agent"]["ros__parameters"].pop("policy", None)
    with pytest.raises(ValueError, match="'policy'"):
        check_config(document, CONFIG)
    del document["trainer"]
    with pytest.raises(ValueError, match="no trainer section"):
        check_config(document, CONFIG)
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["--config", str(path), "--out", str(tmp_path / "out"), "--steps", "10"]) == 2
    assert "no trainer section" in capsys.readouterr().err


@pytest.mark.e2e
def test_stack_mode_runs_both_arms_for_the_same_agent_steps(spawn, domain_id, tmp_path):
    out = tmp_path / "stack"
    command = [sys.executable, "-m", "pamiq_ros.bench.curiosity", "--mode", "stack",
               "--steps", "40", "--area-interval", "20", "--probe-samples", "40",
               "--out", str(out), "--domain-id", str(domain_id)]  # fmt: skip
    bench = spawn("bench", command)
    status = bench.popen.wait(timeout=170)
    output = bench.output()
    assert status == 0, output
    report = json.loads((out / "curiosity_bench.json").read_text())
    assert report["mode"] == "stack" and report["settings"]["steps"] == 40
    arms = report["seeds"]["0"]["arms"]
    assert set(arms) == {"curiosity", "uniform"}
    for arm, result in arms.items():
        assert result["policy"] == {"curiosity": "ppo", "uniform": "random"}[arm]
        assert result["agent_steps"] >= 40, result  # stopped once 40 steps were counted
        assert [point["step"] for point in result["cells_over_steps"]] == [20, 40]
        assert result["cells_visited"] >= result["cells_over_steps"][0]["cells"] >= 1
    paired = report["paired_cells_curiosity_minus_uniform"]
    expected = arms["curiosity"]["cells_visited"] - arms["uniform"]["cells_visited"]
    assert paired["per_seed"] == {"0": expected}
    assert "paired cells, curiosity minus uniform" in output
