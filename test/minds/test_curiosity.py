"""The curiosity mind: one acting step's pipeline, its records, its state, and its learner."""

import itertools
import math

import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import (
    ACTION_SIZES,
    RELEASED_MOUSE,
    VRCHAT_ACTION_SIZES,
    ActionChoice,
    ActionMapper,
    VRChatActionMapper,
    VRChatChoice,
)
from pamiq_ros.core.buffers import RandomReplacementBuffer, SequentialBuffer
from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS,
    FORWARD_DYNAMICS_BUFFER,
    FRAMES_BUFFER,
    JEPA,
    MODEL_NAMES,
    POLICY,
    POLICY_BUFFER,
    TEMPORAL,
    TEMPORAL_BUFFER,
    CuriosityDimensions,
    CuriosityMind,
    CuriosityTraining,
    RewardScale,
    build_curiosity_learner,
)
from pamiq_ros.models.curiosity import weighted_prediction_error
from pamiq_ros.models.forward_dynamics import ForwardDynamics, horizon_weights
from pamiq_ros.models.ppo import PPOConfig


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(count)]


def run(
    mind: CuriosityMind, observations: list[np.ndarray], first_step: int = 1
) -> list[ExperienceRecord]:
    records: list[ExperienceRecord] = []
    for offset, observation in enumerate(observations):
        records.extend(mind.act(first_step + offset, observation).records)
    return records


def test_dimensions_tie_the_models_together() -> None:
    dims = CuriosityDimensions.of("tiny")
    assert dims.obs_dim == dims.jepa.pool_size**2 * dims.jepa.dim
    assert dims.policy.state_dim == dims.temporal.hidden_dim
    shapes = dims.record_shapes()
    assert shapes["obs"] == (dims.obs_dim,) and shapes["log_prob"] == ()
    with pytest.raises(ValueError, match="preset must be one of"):
        CuriosityDimensions.of("huge")


def test_the_same_seed_builds_the_same_weights_and_another_seed_others() -> None:
    dims = CuriosityDimensions.of("tiny")
    for name in MODEL_NAMES:
        first, again, other = (dims.build(name, seed) for seed in (3, 3, 4))
        for key, value in first.state_dict().items():
            assert torch.equal(value, again.state_dict()[key]), (name, key)
        assert any(
            not torch.equal(value, other.state_dict()[key])
            for key, value in first.state_dict().items()
            if value.is_floating_point()
        ), name


def test_a_record_waits_for_the_reward_of_its_action_and_carries_the_states_before() -> None:
    mind = CuriosityMind(seed=1)
    shapes = CuriosityDimensions.of("tiny").record_shapes()
    first = mind.act(1, frames(1)[0])
    assert first.records == ()  # its reward comes with the next observation
    records = run(mind, frames(3, seed=2), first_step=2)
    assert [record.step for record in records] == [1, 2, 3]
    for record in records:
        assert record.model_name == POLICY
        for name, shape in shapes.items():
            assert record.tensors[name].shape == shape, name
            assert record.tensors[name].dtype == np.float32
        assert record.tensors["done"] == 0.0
        assert math.isfinite(float(record.tensors["raw_reward"]))
    # The first step starts from zero states; each later step from the state the one before
    # reached.
    assert not records[0].tensors["temporal_hidden"].any()
    for before, after in itertools.pairwise(records):
        np.testing.assert_array_equal(after.tensors["temporal_hidden"], before.tensors["state"])
    assert records[1].tensors["policy_hidden"].any()
    np.testing.assert_array_equal(records[0].action, first.choice.indices())


def test_the_reward_is_the_forward_models_error_on_the_new_observation() -> None:
    mind = CuriosityMind(seed=0)
    fd, _ = mind.models[FORWARD_DYNAMICS].current()
    assert isinstance(fd, ForwardDynamics)
    torch.nn.init.normal_(fd.change.weight, std=0.1)  # as if trained: it predicts change
    observations = frames(3, seed=5)
    mind.act(1, observations[0])
    (first,) = mind.act(2, observations[1]).records
    (second,) = mind.act(3, observations[2]).records
    encoder, _ = mind.models[JEPA].current()
    with torch.inference_mode():
        obs = [encoder.encode(frame[None]).flatten(1) for frame in observations]  # type: ignore[operator]
        states = [torch.as_tensor(r.tensors["state"])[None] for r in (first, second)]
        actions = torch.as_tensor(np.stack([first.action, second.action]))[None]
        # Step 2's reward: the trajectory started at step 1, advanced with step 1's action.
        one_step = fd(states[0], obs[0], actions[:, :1])[:, -1]
        # Step 3's: that trajectory advanced again with the action taken at step 2, and the
        # one started at step 2, weighted as the forward model is trained.
        two_steps = fd(states[0], obs[0], actions)[:, -1]
        fresh = fd(states[1], obs[1], actions[:, 1:])[:, -1]
    assert float(first.tensors["raw_reward"]) == pytest.approx(
        float(weighted_prediction_error(one_step, obs[1][0], torch.ones(1))), rel=1e-4
    )
    weights = horizon_weights(CuriosityDimensions.of("tiny").horizon)[:2]
    expected = weighted_prediction_error(torch.cat([fresh, two_steps]), obs[2][0], weights)
    assert float(second.tensors["raw_reward"]) == pytest.approx(float(expected), rel=1e-4)


def test_a_fresh_mind_is_rewarded_by_the_change_it_sees() -> None:
    mind = CuriosityMind(seed=0)  # its forward model predicts "nothing changes"
    observations = frames(2, seed=5)
    mind.act(1, observations[0])
    (record,) = mind.act(2, observations[1]).records
    encoder, _ = mind.models[JEPA].current()
    with torch.inference_mode():
        before, after = (encoder.encode(f[None]).flatten(1)[0] for f in observations)  # type: ignore[operator]
    change = float((after - before).square().mean())
    assert float(record.tensors["raw_reward"]) == pytest.approx(change, rel=1e-4)
    # The same frame again: the trajectory started at step 2 copied it (error 0); the one
    # started at step 1 still holds the first frame.
    (again,) = mind.act(3, observations[1]).records
    w1, w2 = horizon_weights(CuriosityDimensions.of("tiny").horizon)[:2].tolist()
    assert float(again.tensors["raw_reward"]) == pytest.approx(w2 * change / (w1 + w2), rel=1e-4)


def test_no_frame_ends_the_episode_and_restarts_the_policys_memory() -> None:
    mind = CuriosityMind()
    run(mind, frames(3))
    idle = mind.act(4, None)
    assert idle.choice.label() == "stop"
    (record,) = idle.records
    assert record.step == 3 and record.tensors["done"] == 1.0
    assert mind.act(5, None).records == ()  # nothing waits any more
    mind.act(6, frames(1)[0])
    (after,) = mind.act(7, frames(1)[0]).records
    assert not after.tensors["policy_hidden"].any()


def test_the_random_policy_draws_uniformly_and_says_so_in_the_log_prob() -> None:
    mind = CuriosityMind(policy="random", seed=2)
    records = run(mind, frames(60))
    actions = np.stack([record.action for record in records])
    for dimension, size in enumerate(ACTION_SIZES):
        assert set(actions[:, dimension]) == set(range(size))
    expected = -math.log(math.prod(ACTION_SIZES))
    assert all(float(r.tensors["log_prob"]) == pytest.approx(expected) for r in records)
    with pytest.raises(ValueError, match="policy must be one of"):
        CuriosityMind(policy="greedy")


def test_a_restored_state_continues_exactly_where_the_saved_one_was() -> None:
    original = CuriosityMind(seed=4)
    run(original, frames(5))
    state = original.state_dict()
    copy = CuriosityMind(seed=99)
    copy.load_state_dict(state)
    later = frames(4, seed=8)
    ours = [original.act(10 + i, frame).choice for i, frame in enumerate(later)]
    theirs = [copy.act(10 + i, frame).choice for i, frame in enumerate(later)]
    assert ours == theirs


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing() -> None:
    mind = CuriosityMind()
    run(mind, frames(3))
    good = mind.state_dict()
    wrong_shape = {**good, "temporal_hidden": [[0.0] * 5]}
    with pytest.raises(ValueError, match="temporal hidden state has shape"):
        mind.load_state_dict(wrong_shape)
    with pytest.raises(ValueError, match="NaN"):
        mind.load_state_dict({**good, "policy_hidden": [[[math.nan] * 64]]})
    with pytest.raises(ValueError, match="preset"):
        mind.load_state_dict({**good, "preset": "base"})
    with pytest.raises(ValueError, match="action space 'vrchat'"):
        mind.load_state_dict({**good, "action_space": "vrchat"})
    with pytest.raises(ValueError, match="not a curiosity mind state"):
        mind.load_state_dict({"preset": "tiny"})
    assert mind.state_dict() == good


def test_reward_scale_centres_and_scales_after_warm_up() -> None:
    scale = RewardScale(decay=0.9, warmup=3)
    assert [scale(1.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    steady = [scale(1.0 + 0.01 * (i % 2)) for i in range(50)]
    assert abs(steady[-1]) < 2.0
    usual = max(abs(value) for value in steady[-10:])
    assert scale(5.0) > 2 * usual  # a surprise far above the usual scores far above it
    restored = RewardScale(decay=0.9, warmup=3)
    restored.load_state_dict(scale.state_dict())
    assert restored(1.0) == scale(1.0)
    with pytest.raises(ValueError, match="reward scale state"):
        restored.load_state_dict({"count": 1, "mean": math.inf, "square": 0.0})


def test_the_learner_trains_every_model_from_the_minds_records() -> None:
    mind = CuriosityMind(seed=0)
    training = CuriosityTraining(
        buffer_size=200, policy_buffer_size=64, batch_size=4, sequence_batch_size=2,
        sequence_length=4, min_buffer_size=8, min_new_samples=4, held_out_steps=8,
        ppo_min_new_samples=8,
        ppo_config=PPOConfig(sequence_length=4, sequences_per_run=4, minibatch=2, epochs=1),
    )  # fmt: skip
    learner = build_curiosity_learner(seed=0, training=training)
    for record in run(mind, frames(40)):
        learner.add(record)
    assert set(learner.buffer_sizes().values()) == {39}
    trained: set[str] = set()
    metrics: dict[str, float] = {}
    for _ in range(8):
        result = learner.train_next()
        if result is None:
            break
        trained.update(result.updated_models)
        metrics.update(result.metrics)
    assert trained == set(MODEL_NAMES)
    for name in ("jepa/loss", "temporal/loss", "forward_dynamics/loss", "ppo/loss", "ppo/value"):
        assert math.isfinite(metrics[name]), name
    assert all(learner.versions[name] >= 1 for name in MODEL_NAMES)
    assert TEMPORAL in learner.models


def test_the_learner_refuses_records_of_another_mind_or_preset_and_stores_nothing() -> None:
    learner = build_curiosity_learner()
    (good,) = run(CuriosityMind(), frames(2))
    plain = ExperienceRecord(good.step, good.observation, good.action, POLICY, 0)
    with pytest.raises(ExperienceError, match="missing"):
        learner.add(plain)
    tensors = {**good.tensors, "obs": np.zeros(7, dtype=np.float32)}
    bad = ExperienceRecord(good.step, good.observation, good.action, POLICY, 0, tensors)
    with pytest.raises(ExperienceError, match="same preset"):
        learner.add(bad)
    assert set(learner.buffer_sizes().values()) == {0}
    learner.add(good)
    assert set(learner.buffer_sizes().values()) == {1}


def small_training(**options: object) -> CuriosityTraining:
    defaults: dict[str, object] = {
        "buffer_size": 200, "sequence_buffer_size": 200, "policy_buffer_size": 64,
        "batch_size": 4, "sequence_batch_size": 2, "sequence_length": 4,
        "min_buffer_size": 8, "min_new_samples": 4, "held_out_steps": 8, "ppo_min_new_samples": 8,
        "jepa_reference_frames": 8,
        "ppo_config": PPOConfig(sequence_length=4, sequences_per_run=4, minibatch=2, epochs=1),
    }  # fmt: skip
    return CuriosityTraining(**{**defaults, **options})  # type: ignore[arg-type]


def test_acting_and_learning_in_one_process_with_health_figures() -> None:
    """The in-process use the benchmarks make: act, add records, train, swap the weights in."""
    mind = CuriosityMind(seed=0)
    learner = build_curiosity_learner(seed=0, training=small_training())
    assert learner.health().figures == {}  # nothing trained on or held out yet
    for step, frame in enumerate(frames(40), start=1):
        for record in mind.act(step, frame).records:
            learner.add(record)
        result = learner.train_next()
        if result is not None:
            for name in result.updated_models:
                mind.models[name].prepare(learner.weights(name), learner.versions[name])
        mind.swap_ready_weights()
    assert all(mind.models[name].version >= 1 for name in MODEL_NAMES)
    report = learner.health()
    assert report.errors == {}
    horizon = CuriosityDimensions.of("tiny").horizon
    expected = {f"forward_dynamics/copy_ratio_h{k}" for k in range(1, horizon + 1)} | {
        "forward_dynamics/copy_ratio", "jepa/feature_spread", "jepa/effective_rank",
        "jepa/cka_to_start", "jepa/drift_from_start",
    }  # fmt: skip
    assert expected <= set(report.figures), sorted(report.figures)
    assert all(math.isfinite(value) for value in report.figures.values())


def test_frames_survive_about_twelve_hours_by_default_and_the_setting_is_used() -> None:
    frames_buffer = build_curiosity_learner().buffers[FRAMES_BUFFER]
    assert isinstance(frames_buffer, RandomReplacementBuffer)
    assert frames_buffer.expected_survival_length == pytest.approx(12 * 3600 * 10)
    assert frames_buffer.replace_probability == pytest.approx(2000 / 432_000)
    short = build_curiosity_learner(training=small_training(frame_survival_steps=400))
    buffer = short.buffers[FRAMES_BUFFER]
    assert isinstance(buffer, RandomReplacementBuffer)
    assert buffer.replace_probability == pytest.approx(0.5)
    with pytest.raises(ValueError, match="the forward model would never train"):
        build_curiosity_learner(training=small_training(held_out_steps=195))
    with pytest.raises(ValueError, match="expected_survival_length"):
        build_curiosity_learner(training=small_training(frame_survival_steps=100))


def test_the_sequence_buffers_keep_their_own_number_of_newest_steps() -> None:
    learner = build_curiosity_learner(
        training=small_training(buffer_size=50, sequence_buffer_size=120)
    )
    sizes = {name: buffer.max_size for name, buffer in learner.buffers.items()}
    assert sizes[FRAMES_BUFFER] == 50
    assert sizes[TEMPORAL_BUFFER] == sizes[FORWARD_DYNAMICS_BUFFER] == 120
    assert isinstance(learner.buffers[FORWARD_DYNAMICS_BUFFER], SequentialBuffer)
    # The forward model's check is against its own buffer, not the frames'.
    with pytest.raises(ValueError, match=r"sequence_buffer_size \(120\)"):
        build_curiosity_learner(
            training=small_training(buffer_size=500, sequence_buffer_size=120, held_out_steps=115)
        )


def test_ppo_learns_from_normalised_or_raw_rewards_as_set() -> None:
    mind = CuriosityMind(seed=3)
    records = [*run(mind, frames(20)), *mind.interrupt()]  # the last one ends the episode
    for normalize, key in ((True, "reward"), (False, "raw_reward")):
        learner = build_curiosity_learner(training=small_training(normalize_rewards=normalize))
        for record in records:
            learner.add(record)
        stored = learner.buffers[POLICY_BUFFER].get_data()["reward"]
        sent = [float(record.tensors.get(key, record.tensors["reward"])) for record in records]
        np.testing.assert_array_equal(stored, np.array(sent, dtype=np.float32))
        dones = learner.buffers[FORWARD_DYNAMICS_BUFFER].get_data()["done"]
        assert dones.tolist() == [0.0] * 19 + [1.0]


def test_per_agent_buffers_train_every_model_from_two_interleaved_agents() -> None:
    learner = build_curiosity_learner(seed=0, training=small_training(buffer_sharing="per_agent"))
    streams = [run(CuriosityMind(seed=seed), frames(22, seed)) for seed in (0, 1)]
    for pair in zip(*streams, strict=True):  # as a fleet's records arrive: alternating
        for agent_id, record in zip(("/a/agent", "/b/agent"), pair, strict=True):
            learner.add(record, agent_id)
    sizes = learner.agent_buffer_sizes()
    assert sorted(sizes) == ["/a/agent", "/b/agent"]
    assert all(set(per_buffer.values()) == {21} for per_buffer in sizes.values())
    trained: set[str] = set()
    for _ in range(8):
        result = learner.train_next()
        if result is None:
            break
        trained.update(result.updated_models)
    assert trained == set(MODEL_NAMES)
    drawn = learner.buffers[POLICY_BUFFER].get_data()["state"]  # one agent's steps, in order
    assert any(
        np.array_equal(drawn, np.stack([record.tensors["state"] for record in stream]))
        for stream in streams
    )


def test_a_vrchat_space_mind_chooses_nine_heads_that_map_to_motion_and_mouse() -> None:
    mind = CuriosityMind(seed=0, action_space="vrchat")
    policy = mind.models[POLICY].current()[0]
    dynamics = mind.models[FORWARD_DYNAMICS].current()[0]
    assert isinstance(policy, torch.nn.Module) and isinstance(dynamics, ForwardDynamics)
    assert policy.action_sizes == dynamics.action_sizes == VRCHAT_ACTION_SIZES
    steps = [mind.act(step, frame) for step, frame in enumerate(frames(4), start=1)]
    assert all(isinstance(step.choice, VRChatChoice) for step in steps)
    records = [record for step in steps for record in step.records]
    assert [r.action.tolist() for r in records] == [list(s.choice.indices()) for s in steps[:3]]
    mapper = VRChatActionMapper(ActionMapper(2.0, 1.5), mouse_speed=100.0)
    for step in steps:
        choice = step.choice
        assert isinstance(choice, VRChatChoice)
        body, mouse = mapper.to_actions(choice)
        assert body.motion.ccw_radps == 0.0, "the mouse's x turns in this space"
        assert body.motion.forward_mps == {0: 0.0, 1: 2.0, 2: -2.0}[choice.move] * (
            2.0 if choice.run else 1.0
        )
        assert mouse.velocity_x == {0: 0.0, 1: 100.0, 2: -100.0}[choice.look_x]
        assert mouse.velocity_y == {0: 0.0, 1: 100.0, 2: -100.0}[choice.look_y]
        assert (mouse.left, mouse.right, mouse.middle) == (
            choice.left_button == 1, choice.right_button == 1, choice.middle_button == 1,
        )  # fmt: skip
    idle = mind.act(5, None).choice
    assert idle == VRChatChoice() and mapper.to_actions(idle)[1] == RELEASED_MOUSE
    assert isinstance(CuriosityMind(seed=0).act(1, frames(1)[0]).choice, ActionChoice)


def test_a_random_vrchat_policy_draws_every_option_of_the_nine_heads() -> None:
    records = run(CuriosityMind(policy="random", seed=2, action_space="vrchat"), frames(30))
    actions = np.stack([record.action for record in records])
    for dimension, size in enumerate(VRCHAT_ACTION_SIZES):
        assert set(actions[:, dimension]) == set(range(size))
    expected = -math.log(math.prod(VRCHAT_ACTION_SIZES))
    assert all(float(r.tensors["log_prob"]) == pytest.approx(expected) for r in records)
    with pytest.raises(ValueError, match="action_space must be one of"):
        CuriosityMind(action_space="gamepad")


def test_a_learner_refuses_records_of_the_other_action_space_and_stores_nothing() -> None:
    nine = build_curiosity_learner(action_space="vrchat")
    assert nine.models[POLICY].action_sizes == VRCHAT_ACTION_SIZES
    with pytest.raises(ExperienceError, match="same action_space"):
        nine.add(run(CuriosityMind(), frames(2))[0])
    five = build_curiosity_learner()
    with pytest.raises(ExperienceError, match="same action_space"):
        five.add(run(CuriosityMind(action_space="vrchat"), frames(2))[0])
    assert set(nine.buffer_sizes().values()) == set(five.buffer_sizes().values()) == {0}
