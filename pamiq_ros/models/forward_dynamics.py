"""Forward dynamics: from the world state, the observation and the actions, imagine what follows.

An *imagination* starts at step ``t`` from the world state ``h_t`` (mapped to an imagined
state), the observation ``o_t`` and the change that led to it, ``o_t - o_{t-1}`` (zero at an
episode's first step), and is advanced one step per action: each step a GRU cell takes the
action's embedding (one per dimension of :data:`~pamiq_ros.core.actions.ACTION_SIZES`,
concatenated) and the observation it last predicted, and the *change* of the observation is
predicted, so ``o_hat_{t+k} = o_hat_{t+k-1} + delta_k`` with ``o_hat_t = o_t``, where
``delta_k = head(GRU state) + M delta_{k-1}`` and ``delta_0 = o_t - o_{t-1}``. ``M`` (the
*momentum*, a linear map of the last change) carries motion on: on the stack's own experience the
previous change is the one part of the next that generalises from minutes of steps (a ridge map
of it predicts held-out steps at 0.86-0.89 of copying's error, the action alone at 1.0 and worse;
``docs/results/forward-study/stack-momentum-2026-12-02``). PAMIQ's forward model reaches the past
observations through its own recurrent state carried along the real trajectory; this is the
one-step part of that. The head's last layer and ``M`` start at zero: a fresh model predicts
"nothing changes" (the copy baseline) and learning starts from there; its reward then measures
surprise, not its own underfitting.

Imaginations roll, as in PAMIQ: the agent advances every live imagination each step with the
action it actually took (:class:`pamiq_ros.models.curiosity.RollingImagination`), so the
prediction for ``t + k`` made at ``t`` is refined at ``t + 1 ..`` with the real actions.
Training replays the same: from stored ``(h_t, o_t)`` and ``o_{t-1}`` it advances K steps with
the stored actions ``a_t .. a_{t+K-1}`` and its own predictions, against ``o_{t+1} .. o_{t+K}``,
with the reward's horizon weights (:func:`horizon_weights`, the one home of them).

Per-step samples of the trainer's :class:`~pamiq_ros.core.buffers.SequentialBuffer`, added
once per step in order:

- ``"state"``: ``(hidden_dim,)`` float, the world state after taking in ``obs_t`` (the state
  the action was chosen from);
- ``"action"``: ``(n_dims,)`` int, the action indices taken at step ``t``;
- ``"obs"``: ``(obs_dim,)`` float, the observation of step ``t``;
- ``"done"``: ``()`` float, 1 when the episode ended after step ``t`` (no window crosses it).

A window at ``t`` also reads ``obs_{t-1}`` for the change that led to ``o_t``
(:func:`previous_observations`), unless ``t`` starts an episode.

No ROS import here.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import DataBuffer
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.trainers import TorchTrainer
from pamiq_ros.models.health import copy_ratio

MODEL_NAME = "forward_dynamics"
"""The name the forward dynamics model is trained and announced under."""

STATE_KEY = "state"
"""Buffer key of the world state the action was chosen from, ``(hidden_dim,)``."""

ACTION_KEY = "action"
"""Buffer key of the action indices, ``(n_dims,)``."""

OBS_KEY = "obs"
"""Buffer key of the step's flattened observation tokens, ``(obs_dim,)``."""

DONE_KEY = "done"
"""Buffer key of the episode-end flag of the step, ``()`` (1: the episode ended after it)."""

SAMPLE_KEYS = (STATE_KEY, ACTION_KEY, OBS_KEY, DONE_KEY)
"""The keys of a forward-dynamics sample."""


def horizon_weights(horizon: int) -> torch.Tensor:
    """Weights ``w_1 .. w_K`` of the horizons, summing to 1, for training and reward alike.

    PAMIQ's exponential average: ``w_k`` proportional to ``exp(-(k - 1) / K)``, so the nearest
    prediction counts most and the farthest still ``1/e`` as much.

    Raises:
        ValueError: If ``horizon`` is below 1.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {horizon!r}")
    weights = torch.exp(-torch.arange(horizon, dtype=torch.float64) / horizon)
    return weights / weights.sum()


@dataclass(frozen=True)
class ForwardDynamicsConfig:
    """Sizes of a :class:`ForwardDynamics` model.

    Attributes:
        horizon: Steps imagined ahead (``K``).
        imagined_dim: Size of the imagined state.
        action_embed_dim: Embedding size per action dimension.
        head_dim: Width of the hidden layer of the observation head.
    """

    horizon: int
    imagined_dim: int
    action_embed_dim: int
    head_dim: int

    def __post_init__(self) -> None:
        for name in ("horizon", "imagined_dim", "action_embed_dim", "head_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"ForwardDynamicsConfig.{name} must be a positive int, got {value!r}"
                )


PRESETS: dict[str, ForwardDynamicsConfig] = {
    "tiny": ForwardDynamicsConfig(horizon=4, imagined_dim=128, action_embed_dim=8, head_dim=128),
    "small": ForwardDynamicsConfig(horizon=8, imagined_dim=384, action_embed_dim=16, head_dim=512),
    "base": ForwardDynamicsConfig(horizon=8, imagined_dim=1024, action_embed_dim=32, head_dim=1024),
}
"""Size presets. Parameters (they grow with ``obs_dim`` and ``hidden_dim``; see
:func:`parameter_count`), with the temporal preset of the same name:

- ``"tiny"`` (default): 0.39 M at obs_dim 384, hidden 128 (the tiny JEPA and temporal sizes;
  0.15 M of it the momentum map).
- ``"small"``: 2.61 M at obs_dim 768, hidden 384.
- ``"base"`` (GPU): 14.4 M at obs_dim 1536, hidden 1024.
"""


def parameter_count(
    state_dim: int,
    obs_dim: int,
    config: ForwardDynamicsConfig,
    action_sizes: Sequence[int] = ACTION_SIZES,
) -> int:
    """Number of parameters of a :class:`ForwardDynamics` with these sizes (no allocation)."""
    z, e, d = config.imagined_dim, config.action_embed_dim, config.head_dim
    embeddings = sum(action_sizes) * e
    cell_in = len(action_sizes) * e + z
    state_in = state_dim * z + z
    obs_in = 2 * obs_dim + obs_dim * z + z  # layer norm + linear
    cell = 3 * z * (cell_in + z) + 6 * z
    head = z * d + d + d * obs_dim + obs_dim
    momentum = obs_dim * obs_dim
    return embeddings + state_in + obs_in + cell + head + momentum


@dataclass(frozen=True)
class Imagination:
    """A batch of imagined trajectories, each where its last advance left it.

    Attributes:
        state: ``(N, imagined_dim)``, the imagined states.
        obs: ``(N, obs_dim)``, the observations they predict now (the real one at the start).
        change: ``(N, obs_dim)``, the change that led to ``obs``: the observed one at the start,
            then the last predicted one.
    """

    state: torch.Tensor
    obs: torch.Tensor
    change: torch.Tensor

    def select(self, keep: Sequence[int]) -> "Imagination":
        """The imaginations at the indices ``keep``."""
        return Imagination(self.state[keep], self.obs[keep], self.change[keep])

    def join(self, other: "Imagination") -> "Imagination":
        """These imaginations followed by ``other``'s (moved to these ones' device and dtype)."""
        return Imagination(
            torch.cat([self.state, other.state.to(self.state)]),
            torch.cat([self.obs, other.obs.to(self.obs)]),
            torch.cat([self.change, other.change.to(self.change)]),
        )

    def __len__(self) -> int:
        return self.state.shape[0]


class ForwardDynamics(nn.Module):
    """Imagines the observations that follow a world state, an observation and actions.

    Attributes:
        state_dim: Size of the world state ``h``.
        obs_dim: Size of a flattened observation.
        horizon: Steps imagined (``K``) in training and in the agent's reward.
        action_sizes: Options per action dimension.
    """

    def __init__(
        self,
        state_dim: int,
        obs_dim: int,
        config: ForwardDynamicsConfig = PRESETS["tiny"],
        action_sizes: Sequence[int] = ACTION_SIZES,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Creates the model with fresh weights (from torch's global generator).

        The head's last layer is zero, so the fresh model predicts no change at all.

        Args:
            state_dim: Size of the world state (the temporal encoder's ``hidden_dim``).
            obs_dim: Size of a flattened observation.
            config: Sizes and horizon; default the ``"tiny"`` preset.
            action_sizes: Options per action dimension; default the agent's.
            device: Where the parameters live (default CPU).
            dtype: Parameter dtype (default float32).

        Raises:
            ValueError: If a size is below 1.
        """
        super().__init__()
        for name, value in (("state_dim", state_dim), ("obs_dim", obs_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not action_sizes or any(size < 1 for size in action_sizes):
            raise ValueError(f"action_sizes must be positive, got {tuple(action_sizes)}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.state_dim = state_dim
        self.obs_dim = obs_dim
        self.horizon = config.horizon
        self.config = config
        self.action_sizes = tuple(int(size) for size in action_sizes)
        z = config.imagined_dim
        self.action_embeddings = nn.ModuleList(
            nn.Embedding(size, config.action_embed_dim, **factory) for size in self.action_sizes
        )
        self.state_in = nn.Linear(state_dim, z, **factory)
        self.obs_in = nn.Sequential(
            nn.LayerNorm(obs_dim, **factory), nn.Linear(obs_dim, z, **factory)
        )
        self.cell = nn.GRUCell(len(self.action_sizes) * config.action_embed_dim + z, z, **factory)
        self.head = nn.Sequential(nn.Linear(z, config.head_dim, **factory), nn.GELU())
        # The change of the observation, and the momentum (the last change carried on); both
        # zero at first, so a fresh model copies.
        self.change = nn.Linear(config.head_dim, obs_dim, **factory)
        nn.init.zeros_(self.change.weight)
        nn.init.zeros_(self.change.bias)
        self.momentum = nn.Linear(obs_dim, obs_dim, bias=False, **factory)
        nn.init.zeros_(self.momentum.weight)

    def begin(
        self, state: torch.Tensor, obs: torch.Tensor, previous: torch.Tensor | None = None
    ) -> Imagination:
        """Starts imaginations from world states ``(N, state_dim)`` and observations.

        Args:
            state: ``(N, state_dim)``.
            obs: ``(N, obs_dim)``, the observations at those states.
            previous: ``(N, obs_dim)``, the observations one step before; None (or ``obs``
                itself, at an episode's first step): no change led to ``obs``.

        Raises:
            ValueError: If a shape does not fit.
        """
        if state.dim() != 2 or state.shape[1] != self.state_dim:
            raise ValueError(f"state must be (N, {self.state_dim}), got {tuple(state.shape)}")
        if tuple(obs.shape) != (state.shape[0], self.obs_dim):
            raise ValueError(
                f"obs must be ({state.shape[0]}, {self.obs_dim}), got {tuple(obs.shape)}"
            )
        if previous is not None and previous.shape != obs.shape:
            raise ValueError(
                f"previous must be {tuple(obs.shape)} like obs, got {tuple(previous.shape)}"
            )
        change = torch.zeros_like(obs) if previous is None else obs - previous.to(obs)
        return Imagination(torch.tanh(self.state_in(state)), obs, change)

    def advance(self, imagination: Imagination, actions: torch.Tensor) -> Imagination:
        """Advances each imagination by one step with its action ``(N, n_dims)``.

        The returned imagination's ``obs`` is the prediction of the observation after the action.

        Raises:
            ValueError: If the actions' shape or range does not fit.
        """
        embedded = self._embed(actions, (len(imagination), len(self.action_sizes)))
        cell_in = torch.cat([embedded, self.obs_in(imagination.obs)], dim=-1)
        state = self.cell(cell_in, imagination.state)
        change = self.change(self.head(state)) + self.momentum(imagination.change)
        return Imagination(state, imagination.obs + change, change)

    @override
    def forward(
        self,
        state: torch.Tensor,
        obs: torch.Tensor,
        actions: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Imagines ``T`` steps from ``(state, obs)`` with one action per step.

        Args:
            state: ``(N, state_dim)`` world states.
            obs: ``(N, obs_dim)`` the observations at those states.
            actions: ``(N, T, n_dims)`` integer action indices, taken one per step.
            previous: ``(N, obs_dim)`` the observations one step before (see :meth:`begin`).

        Returns:
            ``(N, T, obs_dim)``: index ``k - 1`` is the prediction ``k`` steps ahead.

        Raises:
            ValueError: If a shape does not fit or an action index is out of range.
        """
        if actions.dim() != 3 or actions.shape[0] != state.shape[0] or actions.shape[1] < 1:
            raise ValueError(
                f"actions must be ({state.shape[0]}, T, {len(self.action_sizes)}), "
                f"got {tuple(actions.shape)}"
            )
        imagination = self.begin(state, obs, previous)
        predictions = []
        for step in range(actions.shape[1]):
            imagination = self.advance(imagination, actions[:, step])
            predictions.append(imagination.obs)
        return torch.stack(predictions, dim=1)

    def _embed(self, actions: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        if tuple(actions.shape) != shape:
            raise ValueError(f"actions must be {shape}, got {tuple(actions.shape)}")
        if actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(f"actions must be integer indices, got dtype {actions.dtype}")
        sizes = torch.as_tensor(self.action_sizes, device=actions.device)
        if bool(((actions < 0) | (actions >= sizes)).any()):
            raise ValueError(f"action indices out of range for sizes {self.action_sizes}")
        return torch.cat(
            [embedding(actions[:, i]) for i, embedding in enumerate(self.action_embeddings)],
            dim=-1,
        )


def previous_observations(data: Mapping[str, np.ndarray], starts: np.ndarray) -> np.ndarray:
    """``obs_{t-1}`` for each window start ``t``, or ``obs_t`` where ``t`` starts an episode.

    A start is an episode's first step when it is the buffer's first sample or the step
    before it ended an episode (``done``); then no change led to ``obs_t``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    obs, dones = data[OBS_KEY], np.asarray(data[DONE_KEY], dtype=np.float64).reshape(-1)
    before = np.maximum(starts - 1, 0)
    first = (starts == 0) | (dones[before] > 0.5)
    return np.where(first[:, None], obs[starts], obs[before])


def window_starts(dones: np.ndarray, horizon: int, end: int, begin: int = 0) -> np.ndarray:
    """Window starts whose targets stay in one episode.

    Steps ``t`` in ``[begin, end - horizon)`` with no ``done`` among steps
    ``t .. t+horizon-1`` (so the targets ``t+1 .. t+horizon`` follow ``t`` without a gap).

    Args:
        dones: ``(n,)`` the buffer's done flags, oldest first.
        horizon: Steps each window predicts.
        end: One past the last step a window may use as a target.
        begin: The first allowed start.
    """
    flags = np.asarray(dones, dtype=np.float64).reshape(-1)[:end] > 0.5
    starts = np.arange(begin, max(begin, end - horizon))
    if not len(starts):
        return starts
    # done count among steps [t, t + horizon): a cumulative sum answers each in O(1)
    counts = np.concatenate([[0], np.cumsum(flags)])
    crossing = counts[starts + horizon] - counts[starts]
    return starts[crossing == 0]


class ForwardDynamicsTrainer(TorchTrainer[ForwardDynamics]):
    """Teaches a :class:`ForwardDynamics` model the observations that follow the actions taken.

    Each optimiser step draws ``batch_size`` steps ``t`` whose K-step window stays in one
    episode and lies before the newest ``held_out_steps`` samples, imagines K steps from the
    stored ``(state_t, obs_t)`` with the stored actions ``a_t .. a_{t+K-1}``, and minimises the
    horizon-weighted (:func:`horizon_weights`) mean squared error against
    ``obs_{t+1} .. obs_{t+K}``. Metrics: ``{name}/loss`` and ``{name}/loss_h{k}`` per horizon.

    The newest ``held_out_steps`` samples are never trained on while they are newest: their
    windows measure the model on data it has not seen (:meth:`health`): per horizon, its error
    over the error of predicting "nothing changes" (``{name}/copy_ratio_h{k}``, below 1 means it
    predicts) and its own error (``{name}/held_out_error_h{k}``).
    """

    def __init__(
        self,
        name: str = MODEL_NAME,
        buffer_name: str = MODEL_NAME,
        model_name: str = MODEL_NAME,
        *,
        batch_size: int = 32,
        steps_per_run: int = 1,
        learning_rate: float = 1e-4,
        min_buffer_size: int | None = None,
        min_new_samples: int = 8,
        held_out_steps: int = 64,
        autocast_dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> None:
        """Creates the trainer.

        Args:
            name: Trainer name (metrics are prefixed with it).
            buffer_name: The sequential buffer of :data:`SAMPLE_KEYS` samples.
            model_name: The :class:`ForwardDynamics` model it trains.
            batch_size: Windows per optimiser step.
            steps_per_run: Optimiser steps per run.
            learning_rate: Adam's learning rate.
            min_buffer_size: Samples needed before the first run; default (and at least)
                ``held_out_steps + 2 * K + 1``, checked when the model is known.
            min_new_samples: New samples needed between runs.
            held_out_steps: Newest samples kept out of training to measure the model on;
                at least ``K + 1``.
            autocast_dtype: E.g. ``torch.bfloat16`` to train under autocast; None: full precision.
            seed: Seed of the step sampler.

        Raises:
            ValueError: If a number is out of range.
        """
        super().__init__(
            name, buffer_name, min_buffer_size or 1, min_new_samples,
            model_name=model_name, model_type=ForwardDynamics, seed=seed,
        )  # fmt: skip
        self._min_buffer_given = min_buffer_size
        if batch_size < 1 or steps_per_run < 1 or held_out_steps < 2:
            raise ValueError(
                f"batch_size and steps_per_run must be at least 1 and held_out_steps at least 2, "
                f"got {batch_size}, {steps_per_run}, {held_out_steps}"
            )
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.batch_size = batch_size
        self.steps_per_run = steps_per_run
        self.learning_rate = learning_rate
        self.held_out_steps = held_out_steps
        self.autocast_dtype = autocast_dtype

    def needed_samples(self, horizon: int) -> int:
        """Samples a buffer needs for one training window before the held-out ones."""
        return self.held_out_steps + 2 * horizon + 1

    @override
    def check_model(self, model: ForwardDynamics) -> None:
        if self.held_out_steps <= model.horizon:
            raise ValueError(
                f"trainer {self.name!r}: held_out_steps {self.held_out_steps} must exceed the "
                f"model's horizon {model.horizon}"
            )
        needed = self.needed_samples(model.horizon)
        if self._min_buffer_given is None:
            self.min_buffer_size = needed
        elif self._min_buffer_given < needed:
            raise ValueError(
                f"trainer {self.name!r}: min_buffer_size {self._min_buffer_given} must be at "
                f"least held_out_steps + 2 * horizon + 1 = {needed}"
            )

    @override
    def make_optimizer(self, model: ForwardDynamics) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.learning_rate)

    @override
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        model, optimizer = self._ready()
        data = buffers[self.buffer_name].get_data()
        horizon = model.horizon
        size = len(data[OBS_KEY])
        starts = window_starts(data[DONE_KEY], horizon, size - self.held_out_steps)
        if not len(starts):
            raise ValueError(
                f"trainer {self.name!r}: no {horizon}-step window within one episode before the "
                f"newest {self.held_out_steps} of {size} samples"
            )
        weights = horizon_weights(horizon)
        model.train()
        losses, per_horizon = [], []
        for _ in range(self.steps_per_run):
            chosen = torch.randint(len(starts), (self.batch_size,), generator=self._generator)
            state, obs, previous, actions, targets = self._windows(
                model, data, starts[chosen.numpy()]
            )
            with autocast(state.device, self.autocast_dtype):
                predicted = model(state, obs, actions, previous)
                errors = (predicted.float() - targets.float()).square().mean(dim=(0, 2))
                loss = (errors * weights.to(errors)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            per_horizon.append(errors.detach().cpu().numpy())
        metrics = {f"{self.name}/loss": float(np.mean(losses))}
        for k, value in enumerate(np.mean(per_horizon, axis=0), start=1):
            metrics[f"{self.name}/loss_h{k}"] = float(value)
        return metrics, (self.model_name,)

    @override
    def health(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> dict[str, float]:
        if self._model is None:
            return {}  # not set up: there is no model to measure
        model = self._model
        data = buffers[self.buffer_name].get_data()
        size = len(data[OBS_KEY])
        horizon = model.horizon
        if size < self.held_out_steps:
            return {}
        starts = window_starts(data[DONE_KEY], horizon, size, begin=size - self.held_out_steps)
        if not len(starts):
            return {}
        state, obs, previous, actions, targets = self._windows(model, data, starts)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), autocast(state.device, self.autocast_dtype):
                predicted = model(state, obs, actions, previous).float()
        finally:
            model.train(was_training)
        ratios = copy_ratio(predicted, targets.float(), obs.float())
        errors = (predicted - targets.float()).square().mean(dim=(0, 2))
        figures = {}
        for k in range(1, horizon + 1):
            figures[f"{self.name}/copy_ratio_h{k}"] = float(ratios[k - 1])
            figures[f"{self.name}/held_out_error_h{k}"] = float(errors[k - 1])
        weights = horizon_weights(horizon).to(ratios)
        figures[f"{self.name}/copy_ratio"] = float((ratios * weights).sum())
        return {key: value for key, value in figures.items() if math.isfinite(value)}

    def _windows(
        self, model: ForwardDynamics, data: Mapping[str, np.ndarray], starts: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(state_t, obs_t, obs_{t-1}, a_t .. a_{t+K-1}, obs_{t+1} .. obs_{t+K})`` per start."""
        weight = model.state_in.weight
        device, dtype = weight.device, weight.dtype
        steps = np.arange(model.horizon)[None, :]
        state = torch.as_tensor(data[STATE_KEY][starts], device=device, dtype=dtype)
        obs = torch.as_tensor(data[OBS_KEY][starts], device=device, dtype=dtype)
        previous = torch.as_tensor(previous_observations(data, starts), device=device, dtype=dtype)
        actions = torch.as_tensor(
            data[ACTION_KEY][starts[:, None] + steps], device=device, dtype=torch.long
        )
        targets = torch.as_tensor(
            data[OBS_KEY][starts[:, None] + steps + 1], device=device, dtype=dtype
        )
        return state, obs, previous, actions, targets
