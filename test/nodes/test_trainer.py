"""The trainer node's settings and reporting helpers (the node itself runs in the e2e tests)."""

import math

import numpy as np
import pytest

from pamiq_ros.core.actions import VRCHAT_ACTION_SIZES
from pamiq_ros.core.agent_buffers import PerAgentBuffer
from pamiq_ros.core.buffers import RandomReplacementBuffer
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS,
    FRAMES_BUFFER,
    POLICY,
    CuriosityMind,
    CuriosityTraining,
)
from pamiq_ros.models.forward_dynamics import ForwardDynamicsTrainer
from pamiq_ros.models.jepa import JepaTrainer
from pamiq_ros.models.ppo import PPOTrainer
from pamiq_ros.nodes.trainer import (
    CURIOSITY_TRAINING_PARAMETERS,
    TrainerSettings,
    build_learner,
    curiosity_training,
    reward_statistics,
)
from test.models.conftest import one_torch_thread


def test_reward_statistics_of_the_recent_rewards():
    assert reward_statistics([]) == {}
    rewards = list(np.linspace(0.0, 1.0, 101))
    figures = reward_statistics(rewards)
    assert figures["reward/mean"] == pytest.approx(0.5)
    assert figures["reward/std"] == pytest.approx(float(np.std(rewards)))
    assert figures["reward/p05"] == pytest.approx(0.05)
    assert figures["reward/p50"] == pytest.approx(0.5)
    assert figures["reward/p95"] == pytest.approx(0.95)


def test_pamiqs_choices_and_the_never_ending_settings_reach_the_learner():
    settings = TrainerSettings(
        jepa_ema_momentum=0.99, frame_survival_steps=4000, held_out_steps=30,
        forward_steps_per_run=3, forward_learning_rate=2e-3, ppo_clip=0.1, ppo_entropy_coef=0.0,
        ppo_advantage="one_step",
    )  # fmt: skip
    learner = build_learner(settings)
    trainers = {type(trainer): trainer for trainer in learner.trainers}
    jepa = trainers[JepaTrainer]
    assert isinstance(jepa, JepaTrainer) and jepa.momentum == 0.99
    forward = trainers[ForwardDynamicsTrainer]
    assert isinstance(forward, ForwardDynamicsTrainer)
    assert (forward.held_out_steps, forward.steps_per_run) == (30, 3)
    assert forward.learning_rate == 2e-3
    ppo = trainers[PPOTrainer]
    assert isinstance(ppo, PPOTrainer)
    config = ppo.config
    assert (config.clip, config.entropy_coef, config.advantage) == (0.1, 0.0, "one_step")
    frames = learner.buffers[FRAMES_BUFFER]
    assert isinstance(frames, RandomReplacementBuffer)
    assert frames.expected_survival_length == pytest.approx(4000)
    assert learner.buffer_sharing == "shared"


OTHER_WORDS = {"ppo_advantage": "one_step", "buffer_sharing": "per_agent"}
"""A second allowed value of each word-valued training parameter."""


def _another_value(name: str):
    value = getattr(TrainerSettings(), name)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2  # inside every range: rates, coefficients, gamma, lambda, momentum
    return OTHER_WORDS[name]


def test_every_training_parameter_changes_the_training_and_the_defaults_agree():
    assert curiosity_training(TrainerSettings()) == CuriosityTraining()
    assert "ppo_advantage" in CURIOSITY_TRAINING_PARAMETERS
    assert "normalize_rewards" in CURIOSITY_TRAINING_PARAMETERS
    assert "device" not in CURIOSITY_TRAINING_PARAMETERS
    for name in CURIOSITY_TRAINING_PARAMETERS:
        changed = curiosity_training(TrainerSettings(**{name: _another_value(name)}))
        assert changed != CuriosityTraining(), f"{name} does not reach the training"


def test_per_agent_buffer_sharing_reaches_the_learner():
    learner = build_learner(TrainerSettings(buffer_sharing="per_agent"))
    assert learner.buffer_sharing == "per_agent"
    assert all(isinstance(buffer, PerAgentBuffer) for buffer in learner.buffers.values())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jepa_ema_momentum": 1.0}, r"\[0, 1\)"),
        ({"ppo_advantage": "td"}, "ppo_advantage must be one of"),
        ({"health_period_runs": -1}, "health_period_runs"),
        ({"niceness": 20}, "niceness"),
        ({"min_run_interval": math.inf}, "min_run_interval"),
        ({"frame_survival_steps": 0}, "frame_survival_steps"),
        ({"buffer_sharing": "pooled"}, "buffer_sharing must be one of"),
        ({"action_space": "gamepad"}, "action_space must be one of"),
        ({"mind": "autoencoder", "action_space": "vrchat"}, "motion action space only"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(values, message):
    with pytest.raises(ValueError, match=message):
        TrainerSettings(**values)


@pytest.mark.usefixtures(one_torch_thread.__name__)
def test_a_vrchat_space_learner_trains_its_nine_heads_on_the_vrchat_minds_records():
    settings = TrainerSettings(
        action_space="vrchat", buffer_size=200, policy_buffer_size=64, batch_size=4,
        sequence_length=4, min_buffer_size=8, min_new_samples=4, held_out_steps=8,
        ppo_min_new_samples=8, ppo_sequence_length=4, ppo_sequences_per_run=4, ppo_minibatch=2,
        ppo_epochs=1,
    )  # fmt: skip
    learner = build_learner(settings)
    mind = CuriosityMind(action_space="vrchat")
    rng = np.random.default_rng(0)
    for step in range(1, 31):
        frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        for record in mind.act(step, frame).records:
            learner.add(record)
    trained: set[str] = set()
    metrics: dict[str, float] = {}
    while (result := learner.train_next()) is not None:
        trained.update(result.updated_models)
        metrics.update(result.metrics)
    assert {FORWARD_DYNAMICS, POLICY} <= trained
    assert math.isfinite(metrics["forward_dynamics/loss"]) and math.isfinite(metrics["ppo/loss"])
    assert learner.models[POLICY].action_sizes == VRCHAT_ACTION_SIZES
    for name in (FORWARD_DYNAMICS, POLICY):  # the trained weights fit the agent's models
        mind.models[name].current()[0].load_state_dict(learner.models[name].state_dict())
