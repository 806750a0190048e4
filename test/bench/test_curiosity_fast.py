"""The curiosity benchmark's fast mode: arms, schedule, held-out scores, probes and report."""

import json
import sys
import types

import cv2
import numpy as np
import pytest
import torch

from pamiq_ros.bench import curiosity
from pamiq_ros.bench.curiosity_fast import (
    ARMS,
    FastSettings,
    action_frequencies,
    evaluate_held_out,
    matched_policy_weights,
    random_walk,
    run_arm,
    trainer_held_out_ratios,
)
from pamiq_ros.bench.curiosity_report import PLOT_FILES, coverage_counts
from pamiq_ros.bench.probe import linear_probe, region_probe, repeated_probe
from pamiq_ros.core.actions import ACTION_SIZES, Action, ActionMapper
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS,
    JEPA,
    POLICY,
    CuriosityDimensions,
    CuriosityMind,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models.ppo import PolicyValueNet, PPOConfig
from pamiq_ros.sim.stepped import SimSteppedWorld, SteppedWorld, WorldStep


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread, as the benchmark's workers use: many threads crawl on a loaded 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FREQUENCIES = [[0.1, 0.7, 0.2], [0.6, 0.2, 0.2], [0.2, 0.3, 0.5], [0.9, 0.1], [0.25, 0.75]]


def small_world(seed: int) -> SimSteppedWorld:
    return SimSteppedWorld(seed, width=64, height=48)


def test_matched_policy_draws_each_dimension_from_the_given_frequencies_whatever_it_sees():
    policy = CuriosityDimensions.of("tiny").build(POLICY, seed=0)
    assert isinstance(policy, PolicyValueNet)
    policy.load_state_dict(matched_policy_weights(policy, FREQUENCIES))
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(4000, policy.config.state_dim, generator=generator) * 3.0
    with torch.inference_mode():
        actions, log_prob, _, _ = policy.act(states, None, generator)
    counts = [
        np.bincount(actions[:, d].numpy(), minlength=size).tolist()
        for d, size in enumerate(ACTION_SIZES)
    ]
    for row, expected in zip(action_frequencies(counts), FREQUENCIES, strict=True):
        assert row == pytest.approx(expected, abs=0.03)
    first = actions[0].tolist()
    expected_log_prob = sum(np.log(FREQUENCIES[d][i]) for d, i in enumerate(first))
    assert float(log_prob[0]) == pytest.approx(expected_log_prob, abs=1e-4)


def test_matched_policy_weights_refuse_frequencies_that_do_not_fit():
    policy = CuriosityDimensions.of("tiny").build(POLICY, seed=0)
    with pytest.raises(ValueError, match="entries per dimension"):
        matched_policy_weights(policy, FREQUENCIES[:4])
    with pytest.raises(ValueError, match="sum to 1"):
        matched_policy_weights(policy, [[0.5, 0.4, 0.4], *FREQUENCIES[1:]])


def test_action_frequencies_normalise_counts_per_dimension():
    counts = [[2, 6, 2], [1, 0, 0], [0, 0, 4], [3, 1], [0, 5]]
    assert action_frequencies(counts) == [
        [0.2, 0.6, 0.2], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.75, 0.25], [0.0, 1.0],
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no actions"):
        action_frequencies([[0, 0, 0], *counts[1:]])


def test_random_walk_is_reproducible_and_records_what_the_world_reports():
    settings = FastSettings()
    trajectory, positions, infos = random_walk(small_world(0), 30, seed=4, settings=settings)
    assert trajectory.frames.shape == (31, 48, 64, 3)
    assert trajectory.actions.shape == (30, len(ACTION_SIZES))
    assert len(positions) == len(infos) == 31 and "region" in infos[-1]
    assert positions[-1] != positions[0]
    again, _, _ = random_walk(small_world(0), 30, seed=4, settings=settings)
    assert np.array_equal(again.frames, trajectory.frames)
    assert np.array_equal(again.actions, trajectory.actions)


def test_held_out_scores_compare_the_forward_model_with_copying_per_horizon():
    trajectory, _, _ = random_walk(small_world(0), 24, seed=1, settings=FastSettings())
    learner = build_curiosity_learner("tiny", seed=0)
    scores = evaluate_held_out(learner.models, trajectory)
    horizon = CuriosityDimensions.of("tiny").horizon
    assert len(scores["copy_ratio"]) == len(scores["model_error"]) == horizon
    for ratio, model, copy in zip(
        scores["copy_ratio"], scores["model_error"], scores["copy_error"], strict=True
    ):
        assert ratio == pytest.approx(model / copy, rel=1e-5)
    assert scores["feature_spread"] > 0 and scores["effective_rank"] > 1
    assert all(model.training for model in learner.models.values())  # left as it found them
    # A forward model that always answers "what it sees now" scores exactly the copy error.
    with pytest.raises(ValueError, match="more than"):
        short, _, _ = random_walk(small_world(0), 3, seed=1, settings=FastSettings())
        evaluate_held_out(learner.models, short)


def test_an_arm_takes_the_scheduled_steps_and_trains_every_model_the_same_number_of_times():
    settings = FastSettings(steps=90, train_every=10, sync_every=30, eval_points=2, cell_points=4)
    trajectory, _, _ = random_walk(small_world(99), 12, seed=99, settings=settings)
    results = {}
    for arm in ("curiosity", "zero_reward"):
        results[arm] = run_arm(arm, 0, small_world, settings, trajectory)
    results["matched"] = run_arm(
        "matched", 0, small_world, settings, trajectory, matched_frequencies=FREQUENCIES
    )
    for result in results.values():
        counts = result["action_counts"]
        assert sum(counts["move"].values()) == 90
        assert result["trainer_runs"] == results["curiosity"]["trainer_runs"]
        assert result["weight_syncs"] == 3
        assert [point["step"] for point in result["held_out"]] == [0, 90]
        # 90 steps are fewer than the forward trainer's held-out steps: no figure of its own
        assert [point["trainer_copy_ratio"] for point in result["held_out"]] == [None, None]
        assert [point["step"] for point in result["cells_over_steps"]] == [0, 30, 60, 90]
        assert set(result["encoder_weights"]) == set(
            CuriosityDimensions.of("tiny").build(JEPA).state_dict()
        )
    # Rounds come after steps 10, 20, .., 90, when the buffers hold one record fewer than the
    # steps taken (a record waits for the next step's reward); a trainer runs once its buffer
    # holds its min_buffer_size.
    learner = build_curiosity_learner("tiny", seed=0)
    expected = {
        trainer.name: sum(1 for step in range(10, 91, 10) if step - 1 >= trainer.min_buffer_size)
        for trainer in learner.trainers
    }
    assert results["curiosity"]["trainer_runs"] == expected
    assert expected["jepa"] == 3  # so the schedule is exercised, not only skipped
    assert results["curiosity"]["curiosity_reward"]["count"] > 80
    assert results["matched"]["matched_frequencies"] == FREQUENCIES
    with pytest.raises(ValueError, match="frequencies"):
        run_arm("matched", 0, small_world, settings, trajectory)
    with pytest.raises(ValueError, match="arm must be one of"):
        run_arm("greedy", 0, small_world, settings, trajectory)


def test_an_arm_trains_as_its_settings_say():
    training = CuriosityTraining(held_out_steps=8, min_buffer_size=16)
    settings = FastSettings(
        steps=90, train_every=10, sync_every=30, eval_points=2, cell_points=4, training=training
    )
    trajectory, _, _ = random_walk(small_world(99), 12, seed=99, settings=settings)
    result = run_arm("curiosity", 0, small_world, settings, trajectory)
    # With the defaults neither happens in 90 steps (the test above): the forward model keeps
    # 8 steps aside and trains from 16, so it has a held-out figure of its own at the end
    assert result["held_out"][0]["trainer_copy_ratio"] is None
    assert (
        len(result["held_out"][-1]["trainer_copy_ratio"]) == CuriosityDimensions.of("tiny").horizon
    )
    assert result["trainer_runs"]["forward_dynamics"] == 7


def test_an_arm_is_rewarded_as_its_settings_say():
    settings = FastSettings(steps=30, eval_points=2, cell_points=2, reward="error_over_copy")
    trajectory, _, _ = random_walk(small_world(99), 6, seed=99, settings=settings)
    result = run_arm("curiosity", 0, small_world, settings, trajectory)
    # 30 steps: the forward model has not trained, so it copies, and its error over copying's is 1
    reward = result["curiosity_reward"]
    assert reward["count"] == 29 and reward["mean"] == pytest.approx(1.0)
    assert run_arm(
        "curiosity",
        0,
        small_world,
        FastSettings(steps=30, eval_points=2, cell_points=2),
        trajectory,
    )["curiosity_reward"]["mean"] != pytest.approx(1.0)
    with pytest.raises(ValueError, match="reward must be one of"):
        FastSettings(reward="novelty")


def test_trainer_parameters_become_the_trainer_nodes_training_or_are_refused_with_the_reason():
    assert curiosity.training_from_parameters([]) == CuriosityTraining()
    training = curiosity.training_from_parameters(
        [
            "ppo_advantage=one_step",
            "normalize_rewards=false",
            "ppo_entropy_coef=0",
            "held_out_steps=30",
        ]
    )
    assert training == CuriosityTraining(
        held_out_steps=30,
        normalize_rewards=False,
        ppo_config=PPOConfig(advantage="one_step", entropy_coef=0.0),
    )
    for assignment, message in [
        ("ppo_clip", "NAME=VALUE"),
        ("=0.1", "NAME=VALUE"),
        ("ppo_clip=[0.1]", "one number, word or bool"),
        ("device=cuda", "device: not a trainer parameter that changes the training"),
        ("ppo_epochs=two", "ppo_epochs.*must be int"),
        ("ppo_gamma=1.5", "gamma"),
        ("ppo_advantage=td", "ppo_advantage must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            curiosity.training_from_parameters([assignment])


def test_a_bad_trainer_parameter_stops_the_benchmark_before_it_starts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        curiosity.main(["--quick", "--trainer-param", "ppo_gamma=2", "--out", str(tmp_path)])
    assert "ppo_gamma" in capsys.readouterr().err
    assert not (tmp_path / "curiosity_bench.json").exists()


def test_region_probe_reads_a_label_that_the_features_carry():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=300)
    features = np.eye(4)[labels] + 0.05 * rng.normal(size=(300, 4))
    result = region_probe(features, labels)
    assert result.accuracy == 1.0 and result.r2 > 0.9
    noise = region_probe(rng.normal(size=(300, 8)), labels)
    assert noise.accuracy < 0.45 and noise.r2 < 0.05
    with pytest.raises(ValueError, match="single value"):
        region_probe(features, np.zeros(300, dtype=int))


def test_repeated_probe_scores_every_split():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 6))
    pose = features[:, :2] @ np.array([[1.0, 0.5], [0.2, -1.0]])
    labels = (features[:, 0] > 0).astype(int)
    result = repeated_probe(features, pose, ("x", "y"), labels, range(4))
    assert len(result["pose_r2"]) == 4 and len(result["region_r2"]) == 4
    assert result["pose_r2_mean"] > 0.99 and result["region_accuracy_mean"] > 0.8
    assert set(result["pose_r2_by_target"]) == {"x", "y"}
    for split in range(4):  # one fit per split gives what the two probes give apart
        alone = linear_probe(features, pose, ("x", "y"), seed=split)
        assert result["pose_r2"][split] == pytest.approx(alone.mean_r2, abs=1e-12)
        region = region_probe(features, labels, seed=split)
        assert result["region_r2"][split] == pytest.approx(region.r2, abs=1e-12)
        assert result["region_accuracy"][split] == region.accuracy
    without = repeated_probe(features, pose, ("x", "y"), None, range(2))
    assert without["region_r2"] is None and without["region_accuracy_mean"] is None


def test_an_unknown_world_is_refused_with_the_worlds_there_are(capsys):
    with pytest.raises(SystemExit):
        curiosity.main(["--world", "no_such_world", "--quick"])
    assert "no_such_world" in capsys.readouterr().err


def _png_has_content(path):
    image = cv2.imread(str(path))
    assert image is not None, path
    height, width, _ = image.shape
    assert height > 200 and width > 300, (path, image.shape)
    assert float(image.std()) > 5.0, path  # not blank
    return image


@pytest.mark.timeout(600)  # about 30 s on an idle 2-core CPU; far more when it is shared
def test_quick_fast_mode_writes_every_figure_to_json_and_png(tmp_path, capsys):
    out = tmp_path / "bench"
    arguments = ["--quick", "--out", str(out), "--trainer-param", "ppo_clip=0.1"]
    arguments += ["--reward", "error_over_copy"]
    assert curiosity.main(arguments) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "curiosity_bench.json").read_text())
    assert report["mode"] == "fast" and report["settings"]["world"] == "sim"
    assert report["settings"]["trainer_parameters"] == {"ppo_clip": 0.1}
    assert report["settings"]["reward"] == "error_over_copy"
    assert report["settings"]["training"]["ppo_config"]["clip"] == 0.1
    assert "ppo_clip" in printed
    assert set(report["seeds"]) == {"0", "1"}
    for entry in report["seeds"].values():
        assert list(entry["arms"]) == list(ARMS)
        runs = {arm: result["trainer_runs"] for arm, result in entry["arms"].items()}
        assert len({json.dumps(value, sort_keys=True) for value in runs.values()}) == 1, runs
        assert all(result["steps"] == 80 for result in entry["arms"].values())
        assert "encoder_weights" not in entry["arms"]["curiosity"]
        matched = entry["arms"]["matched"]
        assert matched["matched_frequencies"] == entry["arms"]["curiosity"]["action_frequencies"]
    summary = report["summary"]
    assert set(summary["arms"]) == set(ARMS)
    assert set(summary["paired_cells"]) == {
        "curiosity-matched", "curiosity-uniform", "curiosity-zero_reward",
    }  # fmt: skip
    for name, pair in summary["paired_cells"].items():
        first, second = name.split("-")
        expected = [
            report["seeds"][s]["arms"][first]["cells_visited"]
            - report["seeds"][s]["arms"][second]["cells_visited"]
            for s in ("0", "1")
        ]
        assert list(pair["per_seed"].values()) == expected
        assert pair["low"] <= pair["estimate"] <= pair["high"]
    targets = summary["targets"]
    assert set(targets) == {"exploration", "prediction", "representation"}
    for name, target in targets.items():
        verdict = "MET" if target["met"] else "MISSED"
        assert f"target {name}" in printed and verdict in printed
    assert targets["exploration"]["interval"] == {
        key: summary["paired_cells"]["curiosity-matched"][key]
        for key in ("estimate", "low", "high", "samples", "confidence")
    }
    probe = report["probe"]
    assert len(probe["untrained"]) == 2 and len(probe["pixels"]["pose_r2"]) == 3
    assert set(probe["trained"]) == set(ARMS) and set(probe["trained"]["curiosity"]) == {"0", "1"}
    assert len(probe["pixels"]["region_r2"]) == 3
    assert set(report["plots"]) == set(PLOT_FILES)
    for file in PLOT_FILES.values():
        _png_has_content(out / file)
    for entry in report["seeds"].values():
        for result in entry["arms"].values():
            assert len(result["visited_cells"]) == result["cells_visited"]
            assert result["regions_visited"], "the sim world names its floor regions"
    for entry in summary["arms"].values():
        low, high = entry["regions_visited"]["low"], entry["regions_visited"]["high"]
        assert 1 <= low <= high
    assert "regions visited" in printed


def test_coverage_counts_count_seeds_per_cell():
    seeds = {
        "0": {"arms": {"curiosity": {"visited_cells": [[0, 0], [1, 0]]}}},
        "1": {"arms": {"curiosity": {"visited_cells": [[1, 0], [2, -1]]}, "uniform": {}}},
    }
    assert coverage_counts(seeds, "curiosity") == {(0, 0): 1, (1, 0): 2, (2, -1): 1}
    assert coverage_counts(seeds, "uniform") == {}


class CorridorWorld(SteppedWorld):
    """A small world that is not the sim: a 1-D corridor of coloured cells, ends at x = 6."""

    name = "corridor"
    cell_size = 1.0

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.x = 0.0

    def _view(self) -> WorldStep:
        frame = np.zeros((24, 32, 3), dtype=np.uint8)
        frame[:, :, 0] = int(self.x * 40) % 256
        frame[:, : int(self.x * 5) + 1, 1] = 200
        region = float(self.x >= 3.0)
        return WorldStep(frame, (self.x, 0.0), info={"region": region})

    def reset(self, seed: int | None = None) -> WorldStep:
        self.x = 0.0
        return self._view()

    def step(self, action: Action, dt: float) -> WorldStep:
        self.x = min(6.0, max(0.0, self.x + action.motion.forward_mps * dt))
        view = self._view()
        if self.x >= 6.0:
            return WorldStep(view.frame, view.position, 1.0, terminated=True, info=view.info)
        return view


def test_a_gymnasium_world_is_found_by_name_and_probed_by_a_random_walk(monkeypatch):
    # Until pamiq_ros.sim.gym_env is merged, a module of the same shape stands in for it.
    module = types.ModuleType(curiosity.GYM_MODULE)
    module.GYM_WORLDS = {"corridor": "spec"}  # type: ignore[attr-defined]
    module.make_world = lambda name, seed=None: CorridorWorld(seed or 0)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, curiosity.GYM_MODULE, module)
    world = curiosity.make_world("corridor", 3)
    assert isinstance(world, CorridorWorld) and world.seed == 3
    with pytest.raises(ValueError, match=r"no world 'maze'; worlds are \['sim', 'corridor'\]"):
        curiosity.make_world("maze", 0)
    probe = curiosity.probe_set("corridor", 40, seed=0)
    assert probe.source == "seeded random walk"
    assert probe.pose_names == ("x", "y") and probe.pose.shape == (40, 2)
    assert probe.frames.shape == (40, 24, 32, 3)
    assert probe.regions is not None and set(probe.regions.tolist()) <= {0, 1}


def test_episode_ends_reset_the_world_and_are_counted(monkeypatch):
    settings = FastSettings(steps=40, train_every=10, sync_every=20, eval_points=2, cell_points=2)
    trajectory, _, _ = random_walk(CorridorWorld(), 12, seed=0, settings=settings)
    result = run_arm("matched", 0, CorridorWorld, settings, trajectory, [
        [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0], [1.0, 0.0],
    ])  # fmt: skip
    # Always forward at 2 m/s for 0.1 s: the end (x = 6) every 30 steps.
    assert result["episodes_ended"] == 1 and result["episodes_reaching_goal"] == 1
    assert result["extrinsic_return"] == 1.0
    assert result["cells_visited"] == 7  # x = 0 .. 6
    assert result["action_frequencies"][0] == [0.0, 1.0, 0.0]


def test_the_trainers_own_figure_appears_once_the_forward_model_has_trained():
    training = CuriosityTraining(held_out_steps=12, min_buffer_size=8)
    learner = build_curiosity_learner("tiny", seed=0, training=training)
    mind = CuriosityMind("tiny", 0, "random")
    world = small_world(3)
    mapper = ActionMapper(2.0, 1.5)
    step = world.reset(3)
    for number in range(40):
        acted = mind.act(number, step.frame)
        for record in acted.records:
            learner.add(record)
        step = world.step(mapper.to_action(acted.choice), 0.1)
    # a fresh forward model predicts no change: exactly the copy baseline
    assert trainer_held_out_ratios(learner) == pytest.approx([1.0] * 4)
    trainer = next(t for t in learner.trainers if t.name == FORWARD_DYNAMICS)
    trainer.run(learner.models, learner.buffers)
    ratios = trainer_held_out_ratios(learner)
    assert ratios is not None and len(ratios) == learner.models[FORWARD_DYNAMICS].horizon
    # one optimiser step from the copy baseline: finite, near 1, and not exactly 1 any more
    assert all(np.isfinite(ratios)) and all(0.5 < value < 2.0 for value in ratios), ratios
    assert ratios != [1.0] * len(ratios), ratios
