"""The temporal encoder: a GRU over encoded frames whose state is the agent's world state.

Each step's observation is the image encoder's tokens ``(n_tokens, token_dim)`` flattened to
``obs_dim = n_tokens * token_dim``; with ``modalities`` "image+audio" the audio encoder's tokens
follow them (:func:`fuse_observations`), and ``obs_dim`` is the sum. The encoder folds the
observations into a hidden state ``h`` (the *world state* the policy and the forward dynamics
read) and is trained to predict the next step's observation from it, so ``h`` has to carry
what the past says about the future.

Acting uses :meth:`TemporalEncoder.step` once per step. Training (:class:`TemporalTrainer`)
replays stored sequences, and starts each one from the hidden state the agent actually held
when it took in the sequence's first observation (stored with it), instead of from zeros: the
model then learns from the states it really meets while acting ("stored-state" recurrent
training). Stored states grow stale as the weights change; ``burn_in`` steps, replayed without
loss, let the current weights refresh the state before the loss counts.

Per-step samples of the trainer's :class:`~pamiq_ros.core.buffers.SequentialBuffer`:

- ``"obs"``: ``(obs_dim,)`` float, the observation of step ``t``;
- ``"hidden"``: ``(hidden_dim,)`` float, the state *before* taking in ``obs_t`` (the state
  after step ``t - 1``, zeros at the start), so ``forward(obs[t:t+L], hidden[t])`` replays
  what the agent computed.

Samples must be added once per step, in order; the buffer's neighbours are then consecutive
steps. (Episode boundaries are not marked: the world is one long stream.) No ROS import here.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.buffers import DataBuffer
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.trainers import TorchTrainer

MODEL_NAME = "temporal"
"""The name the temporal encoder is trained and announced under."""

OBS_KEY = "obs"
"""Buffer key of a step's flattened observation tokens, ``(obs_dim,)``."""

HIDDEN_KEY = "hidden"
"""Buffer key of the hidden state held before the step's observation, ``(hidden_dim,)``."""


@dataclass(frozen=True)
class TemporalConfig:
    """Sizes of a :class:`TemporalEncoder`.

    Attributes:
        hidden_dim: Size of the GRU state ``H`` (the world state).
        input_dim: Size the observation is projected to before the GRU.
        head_dim: Width of the hidden layer of the next-observation head.
    """

    hidden_dim: int
    input_dim: int
    head_dim: int

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "input_dim", "head_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TemporalConfig.{name} must be a positive int, got {value!r}")


PRESETS: dict[str, TemporalConfig] = {
    "tiny": TemporalConfig(hidden_dim=128, input_dim=128, head_dim=128),
    "small": TemporalConfig(hidden_dim=384, input_dim=384, head_dim=512),
    "base": TemporalConfig(hidden_dim=1024, input_dim=1024, head_dim=1024),
}
"""Size presets. Parameters (they grow with ``obs_dim``; see :func:`parameter_count`):

- ``"tiny"`` (default): 0.18 M at obs_dim 256 (4 tokens x 64), 0.25 M at obs_dim 512;
  an acting step costs well under a millisecond on one CPU core.
- ``"small"``: 2.0 M at obs_dim 1024 (4 tokens x 256).
- ``"base"`` (GPU): 11.5 M at obs_dim 2048 (4 tokens x 512).
"""


MODALITIES = ("image", "image+audio")
"""What the world state is built from: the image tokens alone (the default, light), or the image
and the audio tokens fused by :func:`fuse_observations`."""


def modality_dims(modalities: str, image_dim: int, audio_dim: int) -> tuple[int, ...]:
    """Sizes of the flattened parts of an observation of ``modalities``, in fusion order.

    Raises:
        ValueError: If ``modalities`` is not one of :data:`MODALITIES`.
    """
    if modalities not in MODALITIES:
        raise ValueError(f"modalities must be one of {list(MODALITIES)}, got {modalities!r}")
    return (image_dim,) if modalities == "image" else (image_dim, audio_dim)


def fuse_observations(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat observation from each modality's tokens: ``(N, T_m, D_m)`` or ``(N, T_m * D_m)``.

    The first part (the image) is kept as it is, so an image-only observation is exactly what it
    was before fusion existed. Every further part is scaled by ``sqrt(size_0 / size_m)``: the
    encoders end in a layer norm, so their features have similar per-element scales, and the
    scale then gives each modality about the same share of a squared distance over the whole
    observation. That is what keeps the curiosity reward (the forward model's squared error
    over the observation) meaning "surprise about the world" rather than "surprise about
    whichever modality has more numbers".

    Raises:
        ValueError: If there are no parts or their batch sizes differ.
    """
    if not parts:
        raise ValueError("fuse_observations needs at least one part")
    flat = [part.flatten(1) for part in parts]
    batch = flat[0].shape[0]
    if any(part.shape[0] != batch for part in flat):
        raise ValueError(f"parts have different batch sizes: {[p.shape[0] for p in flat]}")
    reference = flat[0].shape[1]
    scaled = [flat[0]] + [part * math.sqrt(reference / part.shape[1]) for part in flat[1:]]
    return torch.cat(scaled, dim=1)


def parameter_count(obs_dim: int, config: TemporalConfig) -> int:
    """Number of parameters of a :class:`TemporalEncoder` with these sizes (no allocation)."""
    h, i, d = config.hidden_dim, config.input_dim, config.head_dim
    projection = obs_dim * i + i + 2 * i  # linear + layer norm
    gru = 3 * h * (i + h) + 6 * h
    head = h * d + d + d * obs_dim + obs_dim
    return projection + gru + head


class TemporalEncoder(nn.Module):
    """GRU world-state model over flattened observation tokens.

    ``obs -> Linear -> LayerNorm -> GELU -> GRU -> h``; the head ``h -> Linear -> GELU ->
    Linear`` predicts the next observation.

    Attributes:
        obs_dim: Size of a flattened observation.
        hidden_dim: Size of the world state.
    """

    def __init__(
        self,
        obs_dim: int,
        config: TemporalConfig = PRESETS["tiny"],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Creates the model with fresh weights (from torch's global generator).

        Args:
            obs_dim: Size of a flattened observation (``n_tokens * token_dim``).
            config: Sizes; default the ``"tiny"`` preset.
            device: Where the parameters live (default CPU).
            dtype: Parameter dtype (default float32).

        Raises:
            ValueError: If ``obs_dim`` is below 1.
        """
        super().__init__()
        if isinstance(obs_dim, bool) or not isinstance(obs_dim, int) or obs_dim < 1:
            raise ValueError(f"obs_dim must be a positive int, got {obs_dim!r}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.obs_dim = obs_dim
        self.hidden_dim = config.hidden_dim
        self.config = config
        self.projection = nn.Sequential(
            nn.Linear(obs_dim, config.input_dim, **factory),
            nn.LayerNorm(config.input_dim, **factory),
            nn.GELU(),
        )
        self.gru = nn.GRU(config.input_dim, config.hidden_dim, batch_first=True, **factory)
        self.head = nn.Sequential(
            nn.Linear(config.hidden_dim, config.head_dim, **factory),
            nn.GELU(),
            nn.Linear(config.head_dim, obs_dim, **factory),
        )

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        """Zeros of shape ``(batch_size, hidden_dim)`` on the model's device and dtype."""
        weight = next(self.parameters())
        return torch.zeros(batch_size, self.hidden_dim, device=weight.device, dtype=weight.dtype)

    @override
    def forward(
        self, obs_seq: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the GRU over a sequence of observations.

        Args:
            obs_seq: ``(N, T, obs_dim)`` observations.
            h0: ``(N, hidden_dim)`` state before the first observation; zeros if None.

        Returns:
            ``states`` ``(N, T, hidden_dim)`` (the state after each observation) and
            ``predicted_next_obs`` ``(N, T, obs_dim)`` (from each state, the next observation).

        Raises:
            ValueError: If a shape does not fit.
        """
        if obs_seq.dim() != 3 or obs_seq.shape[-1] != self.obs_dim:
            raise ValueError(f"obs_seq must be (N, T, {self.obs_dim}), got {tuple(obs_seq.shape)}")
        batch = obs_seq.shape[0]
        if h0 is None:
            h0 = self.initial_state(batch)
        self._check_state(h0, batch, "h0")
        states, _ = self.gru(self.projection(obs_seq), h0.unsqueeze(0).contiguous())
        return states, self.head(states)

    def step(self, obs: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """Takes in one observation per batch row; returns the new state ``(N, hidden_dim)``.

        Args:
            obs: ``(N, obs_dim)`` observations.
            h: ``(N, hidden_dim)`` current state; zeros if None.

        Raises:
            ValueError: If a shape does not fit.
        """
        if obs.dim() != 2 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must be (N, {self.obs_dim}), got {tuple(obs.shape)}")
        states, _ = self.forward(obs.unsqueeze(1), h)
        return states[:, -1]

    def predict_next(self, h: torch.Tensor) -> torch.Tensor:
        """The next observation ``(N, obs_dim)`` predicted from states ``(N, hidden_dim)``."""
        return self.head(h)

    def _check_state(self, h: torch.Tensor, batch: int, name: str) -> None:
        if tuple(h.shape) != (batch, self.hidden_dim):
            raise ValueError(f"{name} must be ({batch}, {self.hidden_dim}), got {tuple(h.shape)}")


class TemporalTrainer(TorchTrainer[TemporalEncoder]):
    """Teaches a :class:`TemporalEncoder` to predict the next observation.

    Each optimiser step takes ``batch_size`` windows of ``burn_in + sequence_length + 1``
    consecutive steps from the buffer, starts the GRU from the window's first stored
    ``hidden``, replays ``burn_in`` steps without gradient, then minimises the mean squared
    error between the predicted and actual next observations over ``sequence_length`` steps.
    Metrics: ``{name}/loss``.
    """

    def __init__(
        self,
        name: str = MODEL_NAME,
        buffer_name: str = MODEL_NAME,
        model_name: str = MODEL_NAME,
        *,
        sequence_length: int = 16,
        burn_in: int = 0,
        batch_size: int = 16,
        steps_per_run: int = 1,
        learning_rate: float = 3e-4,
        min_buffer_size: int | None = None,
        min_new_samples: int = 16,
        autocast_dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> None:
        """Creates the trainer.

        Args:
            name: Trainer name (metrics are prefixed with it).
            buffer_name: The sequential buffer of ``{"obs", "hidden"}`` samples.
            model_name: The :class:`TemporalEncoder` it trains.
            sequence_length: Steps per window that count in the loss.
            burn_in: Steps replayed before them without loss, to refresh stale stored states.
            batch_size: Windows per optimiser step.
            steps_per_run: Optimiser steps per run.
            learning_rate: Adam's learning rate.
            min_buffer_size: Samples needed before the first run; default one window.
            min_new_samples: New samples needed between runs.
            autocast_dtype: E.g. ``torch.bfloat16`` to train under autocast; None: full precision.
            seed: Seed of the window sampler.

        Raises:
            ValueError: If a number is out of range.
        """
        window = burn_in + sequence_length + 1
        super().__init__(
            name,
            buffer_name,
            window if min_buffer_size is None else min_buffer_size,
            min_new_samples,
            model_name=model_name,
            model_type=TemporalEncoder,
            seed=seed,
        )
        if sequence_length < 1 or burn_in < 0 or batch_size < 1 or steps_per_run < 1:
            raise ValueError(
                "sequence_length, batch_size and steps_per_run must be at least 1 and burn_in "
                f"not negative, got {sequence_length}, {batch_size}, {steps_per_run}, {burn_in}"
            )
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.sequence_length = sequence_length
        self.burn_in = burn_in
        self.batch_size = batch_size
        self.steps_per_run = steps_per_run
        self.learning_rate = learning_rate
        self.autocast_dtype = autocast_dtype

    @property
    def window(self) -> int:
        """Consecutive samples one training window needs."""
        return self.burn_in + self.sequence_length + 1

    @override
    def make_optimizer(self, model: TemporalEncoder) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.learning_rate)

    @override
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        model, optimizer = self._ready()
        data = buffers[self.buffer_name].get_data()
        obs_all, hidden_all = data[OBS_KEY], data[HIDDEN_KEY]
        if len(obs_all) < self.window:
            raise ValueError(
                f"trainer {self.name!r} needs {self.window} consecutive samples, "
                f"the buffer holds {len(obs_all)}"
            )
        weight = next(model.parameters())
        device, dtype = weight.device, weight.dtype
        model.train()
        losses = []
        for _ in range(self.steps_per_run):
            starts = torch.randint(
                len(obs_all) - self.window + 1, (self.batch_size,), generator=self._generator
            ).numpy()
            offsets = starts[:, None] + np.arange(self.window)[None, :]
            obs = torch.as_tensor(obs_all[offsets], device=device, dtype=dtype)
            h0 = torch.as_tensor(hidden_all[starts], device=device, dtype=dtype)
            with autocast(device, self.autocast_dtype):
                if self.burn_in:
                    with torch.no_grad():
                        burnt, _ = model(obs[:, : self.burn_in], h0)
                    h0 = burnt[:, -1].detach()
                inputs = obs[:, self.burn_in : -1]
                targets = obs[:, self.burn_in + 1 :]
                _, predicted = model(inputs, h0)
                loss = nn.functional.mse_loss(predicted.float(), targets.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        return {f"{self.name}/loss": float(np.mean(losses))}, (self.model_name,)
