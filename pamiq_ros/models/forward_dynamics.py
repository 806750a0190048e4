"""Forward dynamics: from the world state and an action, imagine the next K observations.

The model embeds the action (one embedding per dimension of
:data:`~pamiq_ros.core.actions.ACTION_SIZES`, concatenated), maps the world state ``h`` to an
*imagined* state, and advances that state K times with a GRU cell fed the action; after each
advance a head predicts the observation at that horizon. The result ``(N, K, obs_dim)`` holds,
at index ``k - 1``, the prediction for the observation ``k`` steps ahead.

By default the same (current) action drives every imagined step: the agent only knows the
action it is about to take, so the prediction for ``k > 1`` is the expected observation after
taking it, whatever the policy does next. A plan of one action per step, ``(N, K, n_dims)``,
is accepted too.

Per-step samples of the trainer's :class:`~pamiq_ros.core.buffers.SequentialBuffer`, added
once per step in order:

- ``"state"``: ``(hidden_dim,)`` float, the world state after taking in ``obs_t`` (the state
  the action was chosen from);
- ``"action"``: ``(n_dims,)`` int, the action indices taken at step ``t``;
- ``"obs"``: ``(obs_dim,)`` float, the observation of step ``t``.

The targets of step ``t`` are ``obs_{t+1} .. obs_{t+K}``. No ROS import here.
"""

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

MODEL_NAME = "forward_dynamics"
"""The name the forward dynamics model is trained and announced under."""

STATE_KEY = "state"
"""Buffer key of the world state the action was chosen from, ``(hidden_dim,)``."""

ACTION_KEY = "action"
"""Buffer key of the action indices, ``(n_dims,)``."""

OBS_KEY = "obs"
"""Buffer key of the step's flattened observation tokens, ``(obs_dim,)``."""


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

- ``"tiny"`` (default): 0.13 M at obs_dim 256, hidden 128 (0.16 M at obs_dim 512).
- ``"small"``: 1.41 M at obs_dim 1024, hidden 384.
- ``"base"`` (GPU): 7.8 M at obs_dim 2048, hidden 1024.
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
    action_in = len(action_sizes) * e
    state_in = state_dim * z + z
    cell = 3 * z * (action_in + z) + 6 * z
    head = z * d + d + d * obs_dim + obs_dim
    return embeddings + state_in + cell + head


class ForwardDynamics(nn.Module):
    """Imagines the next ``horizon`` observations from a world state and an action.

    Attributes:
        state_dim: Size of the world state ``h``.
        obs_dim: Size of a flattened observation.
        horizon: Steps imagined (``K``).
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
        self.action_embeddings = nn.ModuleList(
            nn.Embedding(size, config.action_embed_dim, **factory) for size in self.action_sizes
        )
        self.state_in = nn.Linear(state_dim, config.imagined_dim, **factory)
        self.cell = nn.GRUCell(
            len(self.action_sizes) * config.action_embed_dim, config.imagined_dim, **factory
        )
        self.head = nn.Sequential(
            nn.Linear(config.imagined_dim, config.head_dim, **factory),
            nn.GELU(),
            nn.Linear(config.head_dim, obs_dim, **factory),
        )

    @override
    def forward(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicts the observations 1..K steps ahead.

        Args:
            state: ``(N, state_dim)`` world states.
            actions: ``(N, n_dims)`` integer action indices, used for every imagined step, or
                ``(N, K, n_dims)``, one action per imagined step.

        Returns:
            ``(N, K, obs_dim)``: index ``k - 1`` is the prediction ``k`` steps ahead.

        Raises:
            ValueError: If a shape does not fit or an action index is out of range.
        """
        if state.dim() != 2 or state.shape[1] != self.state_dim:
            raise ValueError(f"state must be (N, {self.state_dim}), got {tuple(state.shape)}")
        batch, n_dims = state.shape[0], len(self.action_sizes)
        given_shape = tuple(actions.shape)
        if actions.dim() == 2:
            actions = actions.unsqueeze(1).expand(-1, self.horizon, -1)
        if tuple(actions.shape) != (batch, self.horizon, n_dims):
            raise ValueError(
                f"actions must be ({batch}, {n_dims}) or ({batch}, {self.horizon}, {n_dims}), "
                f"got {given_shape}"
            )
        if actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(f"actions must be integer indices, got dtype {actions.dtype}")
        sizes = torch.as_tensor(self.action_sizes, device=actions.device)
        if bool(((actions < 0) | (actions >= sizes)).any()):
            raise ValueError(f"action indices out of range for sizes {self.action_sizes}")
        embedded = torch.cat(
            [embedding(actions[..., i]) for i, embedding in enumerate(self.action_embeddings)],
            dim=-1,
        )
        imagined = torch.tanh(self.state_in(state))
        predictions = []
        for k in range(self.horizon):
            imagined = self.cell(embedded[:, k], imagined)
            predictions.append(self.head(imagined))
        return torch.stack(predictions, dim=1)


class ForwardDynamicsTrainer(TorchTrainer[ForwardDynamics]):
    """Teaches a :class:`ForwardDynamics` model the observations that follow a state and action.

    Each optimiser step draws ``batch_size`` steps ``t`` that have K later samples in the
    buffer and minimises the mean squared error between ``model(state_t, action_t)`` and
    ``obs_{t+1..t+K}``. Metrics: ``{name}/loss`` and ``{name}/loss_h{k}`` per horizon.
    """

    def __init__(
        self,
        name: str = MODEL_NAME,
        buffer_name: str = MODEL_NAME,
        model_name: str = MODEL_NAME,
        *,
        batch_size: int = 32,
        steps_per_run: int = 1,
        learning_rate: float = 3e-4,
        min_buffer_size: int = 16,
        min_new_samples: int = 8,
        autocast_dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> None:
        """Creates the trainer.

        Args:
            name: Trainer name (metrics are prefixed with it).
            buffer_name: The sequential buffer of ``{"state", "action", "obs"}`` samples.
            model_name: The :class:`ForwardDynamics` model it trains.
            batch_size: Steps per optimiser step.
            steps_per_run: Optimiser steps per run.
            learning_rate: Adam's learning rate.
            min_buffer_size: Samples needed before the first run (at least ``K + 1`` are
                needed in any case).
            min_new_samples: New samples needed between runs.
            autocast_dtype: E.g. ``torch.bfloat16`` to train under autocast; None: full precision.
            seed: Seed of the step sampler.

        Raises:
            ValueError: If a number is out of range.
        """
        super().__init__(
            name, buffer_name, min_buffer_size, min_new_samples,
            model_name=model_name, model_type=ForwardDynamics, seed=seed,
        )  # fmt: skip
        if batch_size < 1 or steps_per_run < 1:
            raise ValueError(
                f"batch_size and steps_per_run must be at least 1, got {batch_size}, "
                f"{steps_per_run}"
            )
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.batch_size = batch_size
        self.steps_per_run = steps_per_run
        self.learning_rate = learning_rate
        self.autocast_dtype = autocast_dtype

    @override
    def check_model(self, model: ForwardDynamics) -> None:
        if self.min_buffer_size <= model.horizon:
            raise ValueError(
                f"trainer {self.name!r}: min_buffer_size {self.min_buffer_size} must exceed "
                f"the model's horizon {model.horizon}"
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
        states_all, actions_all, obs_all = data[STATE_KEY], data[ACTION_KEY], data[OBS_KEY]
        horizon = model.horizon
        if len(obs_all) <= horizon:
            raise ValueError(
                f"trainer {self.name!r} needs more than {horizon} consecutive samples, "
                f"the buffer holds {len(obs_all)}"
            )
        weight = model.state_in.weight
        device, dtype = weight.device, weight.dtype
        model.train()
        losses, per_horizon = [], []
        for _ in range(self.steps_per_run):
            steps = torch.randint(
                len(obs_all) - horizon, (self.batch_size,), generator=self._generator
            ).numpy()
            future = steps[:, None] + np.arange(1, horizon + 1)[None, :]
            state = torch.as_tensor(states_all[steps], device=device, dtype=dtype)
            actions = torch.as_tensor(actions_all[steps], device=device, dtype=torch.long)
            targets = torch.as_tensor(obs_all[future], device=device, dtype=dtype)
            with autocast(device, self.autocast_dtype):
                predicted = model(state, actions)
                errors = (predicted.float() - targets.float()).square().mean(dim=(0, 2))
                loss = errors.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            per_horizon.append(errors.detach().cpu().numpy())
        metrics = {f"{self.name}/loss": float(np.mean(losses))}
        for k, value in enumerate(np.mean(per_horizon, axis=0), start=1):
            metrics[f"{self.name}/loss_h{k}"] = float(value)
        return metrics, (self.model_name,)
