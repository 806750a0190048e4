"""The curiosity benchmark's fast mode: world, mind and learner stepped in one process, no ROS.

One arm of one seed (:func:`run_arm`) is a loop of ``steps`` agent steps:

1. the :class:`~pamiq_ros.minds.curiosity.CuriosityMind` acts on the world's frame (the same
   ``act`` the agent node calls), and its experience records go straight into the learner of
   :func:`~pamiq_ros.minds.curiosity.build_curiosity_learner` (the trainer node's);
2. the world (:class:`~pamiq_ros.sim.stepped.SteppedWorld`) applies the action for one agent
   period and returns the next frame and, for evaluation only, where the body is;
3. every ``train_every`` steps each trainer whose buffer holds enough samples runs
   ``gradient_steps`` times: a fixed schedule, the same for every arm, so all arms take the
   same number of gradient steps on the same number of environment steps (the trainer node's
   data-driven schedule would give a slower arm fewer);
4. every ``sync_every`` steps the learner's weights are copied into the mind's swappable
   models, as weight sync does across processes.

The arms (:data:`ARMS`) differ only in how actions are chosen and what PPO is rewarded with:

* ``curiosity``: the PPO policy, rewarded with the curiosity reward;
* ``uniform``: uniformly random actions (the mind's ``policy="random"``);
* ``matched``: random actions drawn from the per-dimension action frequencies of the
  ``curiosity`` run of the same seed (a fixed policy whose heads output those frequencies);
* ``zero_reward``: the PPO policy, trained with every reward replaced by 0 (what PPO's
  entropy bonus and its own dynamics do without curiosity).

Every arm trains all four models, PPO included, on its own experience. Figures per arm: cells
visited over time, action counts, the forward model's error against the copy baseline per
horizon and the encoder's health on a held-out trajectory at ``eval_points`` moments, and the
trained encoder's weights (for the linear probe, done by the caller).
"""

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pamiq_ros.bench.probe import VisitedCells, encoder_features
from pamiq_ros.core.actions import ACTION_DIMENSIONS, ACTION_SIZES, ActionChoice, ActionMapper
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS,
    JEPA,
    MODEL_NAMES,
    POLICY,
    RAW_REWARD,
    TEMPORAL,
    CuriosityDimensions,
    CuriosityMind,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models import health
from pamiq_ros.models.curiosity import CURIOSITY_REWARDS, DEFAULT_CURIOSITY_REWARD
from pamiq_ros.models.forward_dynamics import ForwardDynamicsTrainer
from pamiq_ros.models.jepa import build_jepa
from pamiq_ros.sim.stepped import SteppedWorld

ARMS = ("curiosity", "uniform", "matched", "zero_reward")
"""The arms, in the order a seed runs them (``matched`` needs ``curiosity``'s actions)."""

ARM_LABELS = {
    "curiosity": "curiosity PPO",
    "uniform": "uniform random",
    "matched": "random, PPO's action frequencies",
    "zero_reward": "PPO, zero reward",
}

WorldFactory = Callable[[int], SteppedWorld]
"""Builds a world for a seed."""

ProgressFunction = Callable[[str, int, int, int], None]
"""Called with ``(arm, seed, steps done, cells)`` now and then during an arm."""


@dataclass(frozen=True)
class FastSettings:
    """The schedule and sizes of a fast-mode arm (the same for every arm).

    Attributes:
        preset: Model size preset.
        steps: Environment (agent) steps per arm.
        dt: World time per step (s): the agent's period.
        train_every: Environment steps between training rounds (M).
        gradient_steps: Runs of each trainer per round (K); a run is one optimiser step for
            JEPA, the temporal encoder and the forward model, and PPO's epochs over its windows.
        sync_every: Environment steps between copies of the learner's weights into the mind.
        eval_points: Held-out evaluations over the run (the first before any training).
        cell_points: Coverage samples over the run.
        linear_speed: Walking speed of the action mapping (m/s, or the world's units).
        angular_speed: Turning speed of the action mapping (rad/s).
        reward: What the curiosity reward measures (the agent's ``curiosity_reward``: one of
            :data:`pamiq_ros.models.curiosity.CURIOSITY_REWARDS`).
        training: How every arm's learner trains (the trainer node's, from its parameters:
            :func:`pamiq_ros.nodes.trainer.curiosity_training`).
    """

    preset: str = "tiny"
    steps: int = 3000
    dt: float = 0.1
    train_every: int = 8
    gradient_steps: int = 1
    sync_every: int = 64
    eval_points: int = 6
    cell_points: int = 40
    linear_speed: float = 2.0
    angular_speed: float = 1.5
    reward: str = DEFAULT_CURIOSITY_REWARD
    training: CuriosityTraining = dataclasses.field(default_factory=CuriosityTraining)

    def __post_init__(self) -> None:
        for name in ("steps", "train_every", "gradient_steps", "sync_every", "eval_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.cell_points < 2:
            raise ValueError(f"cell_points must be at least 2, got {self.cell_points}")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        if self.reward not in CURIOSITY_REWARDS:
            raise ValueError(
                f"reward must be one of {list(CURIOSITY_REWARDS)}, got {self.reward!r}"
            )

    def checkpoints(self, count: int) -> list[int]:
        """``count`` step counts from 0 to :attr:`steps`, evenly spaced, both ends included."""
        return sorted({round(i * self.steps / (count - 1)) for i in range(count)})


@dataclass(frozen=True)
class HeldOutTrajectory:
    """A fixed stretch of experience the models are scored on, never trained on.

    Attributes:
        frames: ``(T + 1, H, W, 3)`` uint8: the frame before each action and the last one.
        actions: ``(T, 5)`` int64: the action taken after ``frames[t]``.
    """

    frames: npt.NDArray[np.uint8]
    actions: npt.NDArray[np.int64]


def random_walk(
    world: SteppedWorld,
    steps: int,
    seed: int,
    settings: FastSettings,
) -> tuple[HeldOutTrajectory, list[tuple[float, float] | None], list[dict[str, float]]]:
    """A uniformly random walk of ``steps`` actions from a reset of ``world`` with ``seed``.

    Episode ends reset the world and go on; the trajectory is one sequence all the same (a
    reset is a jump the models may mispredict, as in the arms' own experience).

    Returns:
        The frames and actions, the position and the info after each frame.
    """
    rng = np.random.default_rng(seed)
    mapper = ActionMapper(settings.linear_speed, settings.angular_speed)
    step = world.reset(seed)
    frames, actions = [step.frame], []
    positions, infos = [step.position], [dict(step.info)]
    for _ in range(steps):
        indices = [int(rng.integers(size)) for size in ACTION_SIZES]
        step = world.step(mapper.to_action(ActionChoice.from_indices(indices)), settings.dt)
        if step.episode_over:
            step = world.reset()
        actions.append(indices)
        frames.append(step.frame)
        positions.append(step.position)
        infos.append(dict(step.info))
    trajectory = HeldOutTrajectory(np.stack(frames), np.asarray(actions, dtype=np.int64))
    return trajectory, positions, infos


def imagine(
    model: torch.nn.Module,
    states: torch.Tensor,
    current: torch.Tensor,
    actions: torch.Tensor,
    previous: torch.Tensor,
) -> torch.Tensor:
    """The forward model's predictions ``(N, K, D)`` of the observations 1..K steps ahead.

    Args:
        model: The forward model.
        states: ``(N, H)`` world states after each current observation.
        current: ``(N, D)`` the current observations.
        actions: ``(N, K, 5)`` the actions actually taken from there.
        previous: ``(N, D)`` the observations one step before (the current one at the first).
    """
    return model(states, current, actions, previous).float()


def evaluate_held_out(
    models: Mapping[str, torch.nn.Module], trajectory: HeldOutTrajectory
) -> dict[str, Any]:
    """The forward model against copying, and the encoder's health, on a held-out trajectory.

    The frames are encoded with the JEPA encoder, run through the temporal encoder from a
    zero state, and from each state the forward model imagines the next K observations under
    the actions actually taken.

    Returns:
        ``copy_ratio`` (per horizon, model error / copy error), ``model_error`` and
        ``copy_error`` per horizon, ``feature_spread`` and ``effective_rank`` of the encoded
        frames.
    """
    encoder, world, forward_model = models[JEPA], models[TEMPORAL], models[FORWARD_DYNAMICS]
    training = {name: model.training for name, model in models.items()}
    for model in models.values():
        model.eval()
    try:
        with torch.inference_mode():
            obs = encoder.encode(trajectory.frames).flatten(1).float()  # type: ignore[operator]
            states, _ = world(obs[None])
            states = states[0].float()
            horizon = int(forward_model.horizon)  # type: ignore[arg-type]
            count = len(trajectory.actions) - horizon + 1
            if count < 2:
                raise ValueError(
                    f"the held-out trajectory needs more than {horizon} steps, "
                    f"has {len(trajectory.actions)}"
                )
            actions = torch.as_tensor(
                np.stack([trajectory.actions[t : t + horizon] for t in range(count)])
            )
            future = torch.stack([obs[t + 1 : t + 1 + horizon] for t in range(count)])
            previous = torch.cat([obs[:1], obs[: count - 1]])  # the walk's first has none
            predicted = imagine(forward_model, states[:count], obs[:count], actions, previous)
            ratio = health.copy_ratio(predicted, future, obs[:count])
            model_error = (predicted - future).pow(2).mean(dim=(0, 2))
            copy_error = (obs[:count, None] - future).pow(2).mean(dim=(0, 2))
            return {
                "copy_ratio": [float(value) for value in ratio],
                "model_error": [float(value) for value in model_error],
                "copy_error": [float(value) for value in copy_error],
                "feature_spread": health.feature_spread(obs),
                "effective_rank": health.effective_rank(obs),
            }
    finally:
        for name, model in models.items():
            model.train(training[name])


def matched_policy_weights(
    policy: torch.nn.Module, frequencies: Sequence[Sequence[float]]
) -> dict[str, torch.Tensor]:
    """Weights of ``policy`` that choose each dimension from ``frequencies``, whatever it sees.

    The last layer of the policy head gets zero weights and ``log(frequency)`` as biases, so
    each dimension's softmax is exactly its frequencies; the rest of the network is kept.

    Raises:
        ValueError: If the frequencies do not fit the action space or do not sum to 1.
    """
    if [len(row) for row in frequencies] != list(ACTION_SIZES):
        raise ValueError(
            f"frequencies must have {list(ACTION_SIZES)} entries per dimension, "
            f"got {[len(row) for row in frequencies]}"
        )
    for dimension, row in zip(ACTION_DIMENSIONS, frequencies, strict=True):
        if min(row) < 0 or not math.isclose(sum(row), 1.0, abs_tol=1e-6):
            raise ValueError(f"frequencies of {dimension.name} must sum to 1, got {list(row)}")
    last = policy.policy_head[-1]  # type: ignore[index]
    if not isinstance(last, torch.nn.Linear) or last.out_features != sum(ACTION_SIZES):
        raise ValueError("the policy's head does not end in one logit per action option")
    prefix = next(name for name, module in policy.named_modules() if module is last)
    weights = {key: value.detach().clone() for key, value in policy.state_dict().items()}
    weights[f"{prefix}.weight"].zero_()
    logits = np.log(np.maximum(np.concatenate([np.asarray(row) for row in frequencies]), 1e-9))
    weights[f"{prefix}.bias"] = torch.as_tensor(logits, dtype=weights[f"{prefix}.bias"].dtype)
    return weights


def action_frequencies(counts: Sequence[Sequence[int]]) -> list[list[float]]:
    """Per-dimension frequencies from per-dimension option counts.

    Raises:
        ValueError: If a dimension has no counts.
    """
    frequencies = []
    for dimension, row in zip(ACTION_DIMENSIONS, counts, strict=True):
        total = sum(row)
        if total <= 0:
            raise ValueError(f"no actions counted in dimension {dimension.name}")
        frequencies.append([count / total for count in row])
    return frequencies


def _zero_reward(record: ExperienceRecord) -> ExperienceRecord:
    """The record with its reward, scaled and raw (whichever PPO reads), set to 0."""
    tensors = dict(record.tensors)
    for key in ("reward", RAW_REWARD):
        if key in tensors:
            tensors[key] = np.zeros_like(tensors[key])
    return dataclasses.replace(record, tensors=tensors)


@dataclass
class _Counters:
    """Gradient runs per trainer and weight syncs of one arm."""

    trainer_runs: dict[str, int]
    syncs: int = 0
    version: int = 0


def run_arm(
    arm: str,
    seed: int,
    make_world: WorldFactory,
    settings: FastSettings,
    held_out: HeldOutTrajectory,
    matched_frequencies: Sequence[Sequence[float]] | None = None,
    progress: ProgressFunction | None = None,
    progress_every: int = 250,
) -> dict[str, Any]:
    """Runs one arm of one seed (see the module docstring) and measures it.

    Args:
        arm: One of :data:`ARMS`.
        seed: Seed of the world, the models' initial weights and every random draw.
        make_world: Builds the world.
        settings: The schedule.
        held_out: The trajectory the forward model and encoder are scored on.
        matched_frequencies: For ``matched``: per-dimension action frequencies to draw from.
        progress: Called every ``progress_every`` steps.
        progress_every: Steps between progress calls.

    Returns:
        Plain figures for JSON, and under ``"encoder_weights"`` the trained JEPA encoder's
        weights (for the probe; not JSON).

    Raises:
        ValueError: If the arm is unknown, or ``matched`` has no frequencies.
    """
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {list(ARMS)}, got {arm!r}")
    if arm == "matched" and matched_frequencies is None:
        raise ValueError("the matched arm needs the curiosity arm's action frequencies")
    started = time.perf_counter()
    mind = CuriosityMind(
        settings.preset, seed, "random" if arm == "uniform" else "ppo", reward=settings.reward
    )
    learner = build_curiosity_learner(settings.preset, seed, training=settings.training)
    counters = _Counters({trainer.name: 0 for trainer in learner.trainers})
    if matched_frequencies is not None and arm == "matched":
        policy = mind.models[POLICY].current()[0]
        mind.models[POLICY].prepare(matched_policy_weights(policy, matched_frequencies), 1)
        mind.swap_ready_weights()
    synced = [name for name in MODEL_NAMES if not (arm == "matched" and name == POLICY)]

    world = make_world(seed)
    mapper = ActionMapper(settings.linear_speed, settings.angular_speed)
    cells = VisitedCells(world.cell_size)
    counts = [[0] * size for size in ACTION_SIZES]
    eval_at = set(settings.checkpoints(settings.eval_points))
    cells_at = set(settings.checkpoints(settings.cell_points))
    evaluations: list[dict[str, Any]] = []
    cells_over_steps: list[dict[str, int]] = []
    episodes, goals, extrinsic = 0, 0, 0.0
    raw_rewards: list[float] = []
    regions: set[int] = set()  # rooms or floor regions entered, where the world names them
    step = world.reset(seed)
    if step.position is not None:
        cells.add(*step.position, time=0)
    if "region" in step.info:
        regions.add(int(step.info["region"]))
    timings = {"act": 0.0, "world": 0.0, "train": 0.0, "evaluate": 0.0}
    try:
        for number in range(settings.steps + 1):
            if number in eval_at:
                tick = time.perf_counter()
                evaluations.append(
                    {
                        "step": number,
                        **evaluate_held_out(learner.models, held_out),
                        "trainer_copy_ratio": trainer_held_out_ratios(learner),
                    }
                )
                timings["evaluate"] += time.perf_counter() - tick
            if number in cells_at:
                cells_over_steps.append({"step": number, "cells": cells.count})
            if progress is not None and number and number % progress_every == 0:
                progress(arm, seed, number, cells.count)
            if number == settings.steps:
                break
            tick = time.perf_counter()
            acted = mind.act(number, step.frame)
            for record in acted.records:
                if RAW_REWARD in record.tensors:
                    raw_rewards.append(float(record.tensors[RAW_REWARD]))
                learner.add(_zero_reward(record) if arm == "zero_reward" else record)
            timings["act"] += time.perf_counter() - tick
            for dimension, index in enumerate(acted.choice.indices()):
                counts[dimension][index] += 1
            tick = time.perf_counter()
            step = world.step(mapper.to_action(acted.choice), settings.dt)
            extrinsic += step.extrinsic_reward
            if step.position is not None:
                cells.add(*step.position, time=number + 1)
            if "region" in step.info:
                regions.add(int(step.info["region"]))
            if step.episode_over:
                episodes += 1
                goals += int(step.terminated and step.extrinsic_reward > 0)
                for record in mind.interrupt():
                    learner.add(_zero_reward(record) if arm == "zero_reward" else record)
                step = world.reset()
            timings["world"] += time.perf_counter() - tick
            tick = time.perf_counter()
            if (number + 1) % settings.train_every == 0:
                _train_round(learner, settings.gradient_steps, counters)
            if (number + 1) % settings.sync_every == 0:
                counters.version += 1
                for name in synced:
                    mind.models[name].prepare(learner.weights(name), counters.version)
                mind.swap_ready_weights()
                counters.syncs += 1
            timings["train"] += time.perf_counter() - tick
    finally:
        world.close()
    return {
        "arm": arm,
        "seed": seed,
        "world": world.name,
        "steps": settings.steps,
        "cells_visited": cells.count,
        "cells_over_steps": cells_over_steps,
        "visited_cells": sorted([i, j] for i, j in cells.cells),
        "cell_size": cells.cell_size,
        "regions_visited": sorted(regions),
        "action_counts": {
            dimension.name: dict(zip(dimension.options, row, strict=True))
            for dimension, row in zip(ACTION_DIMENSIONS, counts, strict=True)
        },
        "action_frequencies": action_frequencies(counts),
        "matched_frequencies": None
        if matched_frequencies is None
        else [list(row) for row in matched_frequencies],
        "held_out": evaluations,
        "trainer_runs": dict(counters.trainer_runs),
        "weight_syncs": counters.syncs,
        "curiosity_reward": _reward_summary(raw_rewards),
        "episodes_ended": episodes,
        "episodes_reaching_goal": goals,
        "extrinsic_return": extrinsic,
        "seconds": {name: round(value, 2) for name, value in timings.items()}
        | {"total": round(time.perf_counter() - started, 2)},
        "encoder_weights": learner.weights(JEPA),
    }


def trainer_held_out_ratios(learner: Any) -> list[float] | None:
    """The forward trainer's own figure per horizon, or None before it has one.

    Its error over copying on the newest ``held_out_steps`` of its buffer: steps it has not
    trained on, encoded as the agent saw them (the features its reward is computed on), where
    the held-out walk is re-encoded by the newest encoders the forward model has not seen.
    """
    trainer = next(t for t in learner.trainers if isinstance(t, ForwardDynamicsTrainer))
    figures = trainer.health(learner.models, learner.buffers)
    keys = [
        f"{trainer.name}/copy_ratio_h{k}"
        for k in range(1, learner.models[trainer.model_name].horizon + 1)
    ]
    if not all(key in figures for key in keys):
        return None
    return [float(figures[key]) for key in keys]


def _train_round(learner: Any, gradient_steps: int, counters: _Counters) -> None:
    """Runs each trainer whose buffer is large enough ``gradient_steps`` times."""
    for trainer in learner.trainers:
        if len(learner.buffers[trainer.buffer_name]) < trainer.min_buffer_size:
            continue
        for _ in range(gradient_steps):
            trainer.run(learner.models, learner.buffers)
            counters.trainer_runs[trainer.name] += 1


def _reward_summary(rewards: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean and the means of the first and last tenth of a run's curiosity rewards."""
    if not rewards:
        return {"count": 0, "mean": None, "first_10pct_mean": None, "last_10pct_mean": None}
    tenth = max(1, len(rewards) // 10)
    return {
        "count": len(rewards),
        "mean": float(np.mean(rewards)),
        "first_10pct_mean": float(np.mean(rewards[:tenth])),
        "last_10pct_mean": float(np.mean(rewards[-tenth:])),
    }


def encode_frames(
    preset: str,
    weights: Mapping[str, torch.Tensor] | None,
    seed: int,
    frames: npt.NDArray[np.uint8],
) -> npt.NDArray[np.float64]:
    """Features ``(N, obs_dim)`` of ``frames`` by a JEPA encoder: ``weights``, or seed's init."""
    encoder = build_jepa(CuriosityDimensions.of(preset).jepa, seed)
    if weights is not None:
        encoder.load_state_dict(dict(weights))
    encoder.eval()
    return encoder_features(encoder.encode, frames)
