"""The PAMIQ curiosity mind: it is rewarded for what its imagination got wrong.

It sees (I-JEPA), remembers (temporal encoder), imagines (forward dynamics) and acts
(recurrent PPO).

One agent step, in order (:meth:`CuriosityMind.act`):

1. encode the frame with the JEPA target encoder into ``obs`` (pooled tokens, flattened);
2. score ``obs`` against the live imagined trajectories' predictions of *now* (each started
   within the last K steps and advanced with the actions taken since): that is the curiosity
   reward of the previous step's action (:mod:`pamiq_ros.models.curiosity`), and it completes
   the previous step's experience record, which is sent then;
3. advance the world state ``h`` with the temporal encoder (the state *before* is kept with
   the record: training windows start from stored states);
4. the policy reads ``h`` with its own recurrent state (also kept from before the step) and
   chooses the action, its log-probability and the value;
5. the forward model starts a new imagined trajectory from ``(h, obs)`` and advances every
   live one with the chosen action.

The trainer side (:func:`build_curiosity_learner`) keeps one buffer and one trainer per model:
frames for JEPA (random replacement with a long expected survival, as PAMIQ), sequences of
``(obs, hidden)`` for the temporal encoder, ``(state, action, obs, done)`` for the forward model
and PPO's per-step samples for the policy. Each model's weights
are versioned and synced on their own. Sizes come from one preset name shared by all models
(:data:`PRESET_NAMES`). No ROS import here.
"""

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.actions import CHOICES, action_sizes
from pamiq_ros.core.agent_buffers import arrange_buffers
from pamiq_ros.core.buffers import DataBuffer, RandomReplacementBuffer, SequentialBuffer
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.policy import Observation
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.core.trainers import Trainer
from pamiq_ros.minds.base import ActingMind, ActingStep
from pamiq_ros.models import audio_jepa, forward_dynamics, jepa, ppo, temporal
from pamiq_ros.models.curiosity import DEFAULT_CURIOSITY_REWARD, RollingImagination

PRESET_NAMES = ("tiny", "small", "base")
"""Size presets; each names the same-named preset of every model. "tiny" runs on a 2-core CPU
next to the trainer at 10 Hz; "small" and "base" are for a GPU."""

JEPA, TEMPORAL, FORWARD_DYNAMICS, POLICY = (
    jepa.MODEL_NAME, temporal.MODEL_NAME, forward_dynamics.MODEL_NAME, ppo.MODEL_NAME,
)  # fmt: skip
MODEL_NAMES = (JEPA, TEMPORAL, FORWARD_DYNAMICS, POLICY)
AUDIO_JEPA = audio_jepa.MODEL_NAME
"""The fifth model, with ``modalities`` "image+audio"."""
AUDIO_BUFFER = "audio_windows"
AUDIO_BUFFER_SIZE = 256
"""Windows the trainer keeps for the audio JEPA (1 s of 16 kHz stereo is 128 KB each)."""
Hearing = Callable[[], npt.NDArray[np.float32]]
"""Returns the newest audio window, ``(window_samples, channels)`` float32 (an ``AudioWindow``'s
``latest``)."""

FRAMES_BUFFER, TEMPORAL_BUFFER, FORWARD_DYNAMICS_BUFFER, POLICY_BUFFER = (
    "frames", "temporal", "forward_dynamics", "policy_steps",
)  # fmt: skip

POLICIES = ("ppo", "random")
"""How the acting mind chooses: with the trained policy, or uniformly at random (a baseline
that still feeds and trains the world models the same way)."""


ModelT = TypeVar("ModelT", bound=nn.Module)

RAW_REWARD = "raw_reward"
"""Record tensor of the reward before :class:`RewardScale` (absent on done steps)."""

RECENT_STEPS = 50
"""Steps over which :meth:`CuriosityMind.figures` averages reward and value."""


@dataclass(frozen=True)
class CuriosityDimensions:
    """The sizes of one preset, and the models built from them.

    Attributes:
        preset: The preset name.
        jepa: The image encoder's sizes.
        temporal: The temporal encoder's sizes.
        forward_dynamics: The forward model's sizes (its ``horizon`` is the reward's K).
        policy: The policy's sizes (``state_dim`` = the temporal encoder's ``hidden_dim``).
        modalities: ``image`` (default, light) or ``image+audio``: the audio JEPA's pooled
            tokens are fused after the image's (:func:`temporal.fuse_observations`), and the
            temporal encoder and forward model are sized for the fused observation.
        audio: The audio encoder's sizes (the same-named preset).
        action_space: ``motion`` (default: 5 heads) or ``vrchat`` (9 heads, with the mouse;
            :data:`pamiq_ros.core.actions.ACTION_SPACES`): sizes the policy's heads and the
            forward model's action embeddings.
    """

    preset: str
    jepa: jepa.JepaConfig
    temporal: temporal.TemporalConfig
    forward_dynamics: forward_dynamics.ForwardDynamicsConfig
    policy: ppo.PolicyValueConfig
    modalities: str = "image"
    audio: audio_jepa.AudioJepaConfig = field(default_factory=audio_jepa.AudioJepaConfig)
    action_space: str = "motion"

    def __post_init__(self) -> None:
        temporal.modality_dims(self.modalities, 1, 1)  # refuses an unknown modalities value
        action_sizes(self.action_space)  # refuses an unknown action space

    @property
    def action_sizes(self) -> tuple[int, ...]:
        """Options per action head of the action space."""
        return action_sizes(self.action_space)

    @property
    def hears(self) -> bool:
        """Whether the observation includes the audio tokens."""
        return self.modalities != "image"

    def model_names(self) -> tuple[str, ...]:
        """The models of these dimensions: the four, and the audio JEPA when it hears."""
        return (*MODEL_NAMES, AUDIO_JEPA) if self.hears else MODEL_NAMES

    @classmethod
    def of(
        cls, preset: str, modalities: str = "image", action_space: str = "motion"
    ) -> "CuriosityDimensions":
        """The dimensions of a preset.

        Raises:
            ValueError: If ``preset`` is not one of :data:`PRESET_NAMES`, or the modalities or
                action space is unknown.
        """
        if preset not in PRESET_NAMES:
            raise ValueError(f"preset must be one of {list(PRESET_NAMES)}, got {preset!r}")
        world = temporal.PRESETS[preset]
        return cls(
            preset=preset,
            jepa=jepa.PRESETS[preset],
            temporal=world,
            forward_dynamics=forward_dynamics.PRESETS[preset],
            policy=replace(ppo.PRESETS[preset], state_dim=world.hidden_dim),
            modalities=modalities,
            audio=audio_jepa.PRESETS[preset],
            action_space=action_space,
        )

    @property
    def obs_dim(self) -> int:
        """Size of one encoded observation (pooled tokens x token width, fused over modalities)."""
        image = self.jepa.pool_size**2 * self.jepa.dim
        audio = self.audio.pool_tokens * self.audio.dim
        return sum(temporal.modality_dims(self.modalities, image, audio))

    @property
    def horizon(self) -> int:
        """Steps the forward model imagines ahead (K)."""
        return self.forward_dynamics.horizon

    def record_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each tensor of an experience record."""
        return {
            "obs": (self.obs_dim,),
            "temporal_hidden": (self.temporal.hidden_dim,),
            "state": (self.temporal.hidden_dim,),
            "policy_hidden": (self.policy.num_layers, self.policy.hidden_size),
            "log_prob": (),
            "value": (),
            "reward": (),
            "done": (),
            **({audio_jepa.AUDIO_KEY: self.audio_window_shape} if self.hears else {}),
        }

    @property
    def audio_window_shape(self) -> tuple[int, int]:
        """``(window_samples, channels)`` of the audio window the mind hears."""
        return (self.audio.window_samples, self.audio.channels)

    def build(self, name: str, seed: int = 0, device: torch.device | str = "cpu") -> nn.Module:
        """Model ``name`` with the initial weights of ``seed`` (the trainer's version 0).

        Each model draws from its own seed offset, and torch's global generator is left as it
        was, so agent and trainer build equal models from the same seed.

        Raises:
            KeyError: If ``name`` is not one of :data:`MODEL_NAMES`.
        """
        if name == JEPA:
            return jepa.build_jepa(self.jepa, seed, device)
        if name == AUDIO_JEPA and self.hears:
            return audio_jepa.build_audio_jepa(self.audio, seed + 4).to(device)
        offsets = {TEMPORAL: 1, FORWARD_DYNAMICS: 2, POLICY: 3}
        if name not in offsets:
            raise KeyError(f"no curiosity model {name!r}; models are {list(MODEL_NAMES)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + offsets[name])
            model: nn.Module
            if name == TEMPORAL:
                model = temporal.TemporalEncoder(self.obs_dim, self.temporal)
            elif name == FORWARD_DYNAMICS:
                model = forward_dynamics.ForwardDynamics(
                    self.temporal.hidden_dim, self.obs_dim, self.forward_dynamics,
                    self.action_sizes,
                )  # fmt: skip
            else:
                model = ppo.PolicyValueNet(self.policy, self.action_sizes)
        return model.to(device).eval()


@dataclass
class _Pending:
    """A step's record waiting for the reward that follows its action."""

    step: int
    observation: Observation
    action: npt.NDArray[np.int64]
    version: int
    tensors: dict[str, npt.NDArray[np.float32]]


class RewardScale:
    """Centres and scales rewards by their running mean and standard deviation.

    The curiosity reward's scale changes as the world models learn (large at first, small
    later), and PPO's value targets would follow it; centred and scaled, rewards stay near unit
    size and say "more surprising than usual" or "less". Exponential moving moments with
    bias correction; the first ``warmup`` rewards give 0 while the moments settle.
    """

    def __init__(self, decay: float = 0.99, warmup: int = 10) -> None:
        """Creates the scale with no history."""
        self.decay = decay
        self.warmup = warmup
        self._count = 0
        self._mean = 0.0
        self._square = 0.0

    def __call__(self, reward: float) -> float:
        """Updates the moments with ``reward`` and returns it centred and scaled."""
        self._count += 1
        self._mean = self.decay * self._mean + (1 - self.decay) * reward
        self._square = self.decay * self._square + (1 - self.decay) * reward * reward
        if self._count <= self.warmup:
            return 0.0
        correction = 1 - self.decay**self._count
        mean = self._mean / correction
        variance = max(self._square / correction - mean * mean, 0.0)
        return (reward - mean) / math.sqrt(variance + 1e-8)

    def state_dict(self) -> dict[str, float]:
        """The moments, JSON-able."""
        return {"count": self._count, "mean": self._mean, "square": self._square}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`'s moments.

        Raises:
            ValueError: If they are missing or not finite.
        """
        try:
            count, mean, square = int(state["count"]), float(state["mean"]), float(state["square"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"reward scale state is not usable: {error}") from error
        if count < 0 or not (math.isfinite(mean) and math.isfinite(square)):
            raise ValueError(f"reward scale state is not usable: {dict(state)}")
        self._count, self._mean, self._square = count, mean, square


class CuriosityMind(ActingMind):
    """The acting side of the curiosity agent (see the module docstring for one step)."""

    def __init__(
        self,
        preset: str = "tiny",
        seed: int = 0,
        policy: str = "ppo",
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        modalities: str = "image",
        hearing: Hearing | None = None,
        action_space: str = "motion",
        reward: str = DEFAULT_CURIOSITY_REWARD,
    ) -> None:
        """Builds the acting copies of the four models (version 0 of ``seed``).

        Args:
            preset: Size preset (:data:`PRESET_NAMES`).
            seed: Seed of the initial weights and of the action draws.
            policy: "ppo" (act with the trained policy) or "random" (see :data:`POLICIES`).
            device: Where the models run.
            dtype: Compute dtype (bfloat16 runs under autocast); None: float32.
            modalities: "image", or "image+audio" (then the audio JEPA is a fifth model).
            hearing: With "image+audio": returns the newest audio window at each step.
            action_space: "motion" (choices are ``ActionChoice``) or "vrchat" (9 heads:
                ``VRChatChoice``, with the mouse).
            reward: What the curiosity reward measures, one of
                :data:`~pamiq_ros.models.curiosity.CURIOSITY_REWARDS`: the
                imagination's error, or that error over copying's
                (:mod:`pamiq_ros.models.curiosity`).

        Raises:
            ValueError: If the preset, policy, modalities or action space is unknown, or it
                hears without ``hearing``, or the reward is unknown.
        """
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
        self.dimensions = dims = CuriosityDimensions.of(preset, modalities, action_space)
        self._choice = CHOICES[action_space]
        if dims.hears and hearing is None:
            raise ValueError(f"modalities {modalities!r} needs a hearing function")
        self._hearing = hearing
        self._device = torch.device(device)
        self._dtype = dtype
        super().__init__(
            {
                name: SwappableModel(name, partial(dims.build, name, seed, self._device))
                for name in dims.model_names()
            },
            POLICY,
        )
        self.policy_kind = policy
        self._generator = torch.Generator(self._device).manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        self._imagination = RollingImagination(dims.horizon, reward)
        self._temporal_hidden = torch.zeros(1, dims.temporal.hidden_dim, device=self._device)
        self._policy_hidden = torch.zeros(
            dims.policy.num_layers, 1, dims.policy.hidden_size, device=self._device
        )
        self._pending: _Pending | None = None
        self._reward_scale = RewardScale()
        self._rewards: deque[float] = deque(maxlen=RECENT_STEPS)
        self._values: deque[float] = deque(maxlen=RECENT_STEPS)
        # log-probability of any one action under uniformly random choice
        self._uniform_log_prob = -float(np.log(dims.action_sizes).sum())

    @override
    def act(self, step: int, observation: Observation | None) -> ActingStep:
        if observation is None:
            # Nothing to see: stand still, and end the episode (no reward crosses the gap).
            return ActingStep(self._choice(), self.interrupt())
        encoder = self._current(JEPA, jepa.JepaEncoder)
        world = self._current(TEMPORAL, temporal.TemporalEncoder)
        dynamics = self._current(FORWARD_DYNAMICS, forward_dynamics.ForwardDynamics)
        policy = self._current(POLICY, ppo.PolicyValueNet)
        with torch.inference_mode(), autocast(self._device, self._dtype):
            obs = encoder.encode(observation[None], self._dtype).flatten(1).float()
            window = self._hearing() if self._hearing is not None else None
            if window is not None:
                hearing = self._current(AUDIO_JEPA, audio_jepa.AudioJepaEncoder)
                heard = hearing.encode(window, self._dtype)
                obs = temporal.fuse_observations([obs, heard])
            reward = self._imagination.observe(obs[0])
            records = self._complete(0.0 if reward is None else reward, done=False)
            temporal_before = self._temporal_hidden
            state = world.step(obs, temporal_before).float()
            policy_before = self._policy_hidden
            action, log_prob, value, self._policy_hidden = policy.act(
                state, policy_before, self._generator
            )
            if self.policy_kind == "random":
                draws = [int(self._rng.integers(size)) for size in self.dimensions.action_sizes]
                action = torch.tensor([draws], device=self._device)
                log_prob = torch.full_like(log_prob, self._uniform_log_prob)
            self._imagination.advance(dynamics, state, obs, action)
            self._temporal_hidden = state
        indices = action[0].cpu().numpy().astype(np.int64)
        value_now = float(value[0])
        self._values.append(value_now)
        self._pending = _Pending(
            step=step,
            observation=observation,
            action=indices,
            version=self.models[POLICY].version,
            tensors={
                "obs": _array(obs[0]),
                "temporal_hidden": _array(temporal_before[0]),
                "state": _array(state[0]),
                "policy_hidden": _array(policy_before[:, 0]),
                "log_prob": _array(log_prob[0]),
                "value": np.array(value_now, dtype=np.float32),
                **({audio_jepa.AUDIO_KEY: window} if window is not None else {}),
            },
        )
        return ActingStep(self._choice.from_indices(indices.tolist()), records)

    def _current(self, name: str, kind: type[ModelT]) -> ModelT:
        model = self.models[name].current()[0]
        if not isinstance(model, kind):
            raise TypeError(f"model {name!r} is a {type(model).__name__}, not a {kind.__name__}")
        return model

    def _complete(self, reward: float, *, done: bool) -> tuple[ExperienceRecord, ...]:
        pending, self._pending = self._pending, None
        if pending is None:
            return ()
        tensors = dict(pending.tensors)
        if not done:
            self._rewards.append(reward)
            tensors[RAW_REWARD] = np.array(reward, dtype=np.float32)
            reward = self._reward_scale(reward)
        tensors["reward"] = np.array(reward, dtype=np.float32)
        tensors["done"] = np.array(float(done), dtype=np.float32)
        record = ExperienceRecord(
            step=pending.step,
            observation=pending.observation,
            action=pending.action,
            model_name=POLICY,
            weight_version=pending.version,
            tensors=tensors,
        )
        return (record,)

    @override
    def interrupt(self) -> tuple[ExperienceRecord, ...]:
        # The step after a gap starts a new episode: the policy's memory restarts with it, as
        # PPO's training does after a done step; old imaginations no longer line up.
        records = self._complete(0.0, done=True)
        if records:
            self._policy_hidden = torch.zeros_like(self._policy_hidden)
            self._imagination.reset()
        return records

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "preset": self.dimensions.preset,
            "action_space": self.dimensions.action_space,
            "temporal_hidden": self._temporal_hidden.cpu().tolist(),
            "policy_hidden": self._policy_hidden.cpu().tolist(),
            "generator": self._generator.get_state().tolist(),
            "rng": self._rng.bit_generator.state,
            "reward_scale": self._reward_scale.state_dict(),
        }

    @override
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            if state["preset"] != self.dimensions.preset:
                raise ValueError(
                    f"saved with preset {state['preset']!r}, this mind is "
                    f"{self.dimensions.preset!r}"
                )
            space = state.get("action_space", "motion")  # states saved before it was kept
            if space != self.dimensions.action_space:
                raise ValueError(
                    f"saved in action space {space!r}, this mind acts in "
                    f"{self.dimensions.action_space!r}"
                )
            temporal_hidden = _tensor(state["temporal_hidden"], self._temporal_hidden, "temporal")
            policy_hidden = _tensor(state["policy_hidden"], self._policy_hidden, "policy")
            generator = torch.tensor(state["generator"], dtype=torch.uint8)
            rng = np.random.default_rng()
            rng.bit_generator.state = dict(state["rng"])
            probe = torch.Generator(self._device)
            probe.set_state(generator)
            scale = RewardScale()
            scale.load_state_dict(state["reward_scale"])
        except (KeyError, TypeError, RuntimeError) as error:
            raise ValueError(f"not a curiosity mind state: {error}") from error
        self._temporal_hidden, self._policy_hidden = temporal_hidden, policy_hidden
        self._generator, self._rng, self._reward_scale = probe, rng, scale
        self._pending = None
        # Imagined trajectories are not saved: after a restart the world has moved on.
        self._imagination.reset()

    @override
    def figures(self) -> dict[str, float]:
        rewards, values = list(self._rewards), list(self._values)
        return {
            "reward": float(np.mean(rewards)) if rewards else math.nan,
            "value": float(np.mean(values)) if values else math.nan,
        }


def _array(tensor: torch.Tensor) -> npt.NDArray[np.float32]:
    return tensor.detach().float().cpu().numpy().astype(np.float32, copy=True)


def _tensor(values: Sequence[Any], like: torch.Tensor, name: str) -> torch.Tensor:
    tensor = torch.tensor(values, dtype=like.dtype, device=like.device)
    if tensor.shape != like.shape:
        raise ValueError(
            f"{name} hidden state has shape {tuple(tensor.shape)}, expected {tuple(like.shape)}"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} hidden state holds NaN or Inf")
    return tensor


@dataclass(frozen=True)
class CuriosityTraining:
    """How the trainer trains the curiosity models.

    Attributes:
        buffer_size: Frames the JEPA frame buffer keeps.
        sequence_buffer_size: Newest steps the temporal encoder's and the forward model's
            buffers keep (their training windows are consecutive steps, so they forget the
            oldest first); default 10 min at 10 Hz, three times the frames: forgetting in
            these two buffers made the forward model worse on places it had left (README,
            "Why the forward model does not beat copying yet").
        frame_survival_steps: Agent steps a stored frame survives on average once the frames
            buffer is full (random replacement with probability ``buffer_size / this``);
            default 12 h at 10 Hz, as PAMIQ. ``buffer_size`` replaces on every new frame.
        policy_buffer_size: Steps PPO's buffer keeps; small, so PPO trains on recent behaviour.
        batch_size: Frames (JEPA) and steps (forward dynamics) per gradient step.
        sequence_batch_size: Windows per temporal-encoder gradient step.
        sequence_length: Steps per temporal-encoder training window.
        steps_per_run: Gradient steps per run of the JEPA, temporal and forward trainers.
        jepa_learning_rate: AdamW's learning rate for JEPA.
        jepa_ema_momentum: The JEPA target encoder's fixed EMA momentum, in ``[0, 1)``.
        jepa_reference_frames: Frames kept aside (the first the JEPA trainer saw) to measure
            collapse and drift on.
        world_learning_rate: Adam's learning rate for the temporal encoder.
        forward_learning_rate: Adam's learning rate for the forward model; PAMIQ's 1e-4: a faster
            one fits the training windows better and predicts held-out steps worse (README,
            "Why the forward model does not beat copying yet").
        forward_steps_per_run: Gradient steps per forward-model run: a step is cheap, and the
            reward is only as good as the forward model (PAMIQ trains it hardest too).
        min_buffer_size: Samples a world-model buffer needs before its first run (the forward
            model's: besides its held-out ones).
        min_new_samples: New samples a world model needs between runs.
        held_out_steps: Newest forward-model samples kept out of training, to measure its
            error against the copy baseline on unseen steps.
        ppo_config: PPO's hyperparameters.
        ppo_min_new_samples: New steps PPO needs between runs.
        normalize_rewards: PPO learns from the rewards centred and scaled by their running
            moments (the agent's :class:`RewardScale`); False: the raw rewards, as PAMIQ.
        buffer_sharing: ``shared`` (one buffer of each kind for all agents) or ``per_agent``
            (each agent's own, see :mod:`pamiq_ros.core.agent_buffers`).
    """

    buffer_size: int = 2000
    sequence_buffer_size: int = 6000
    frame_survival_steps: int = 12 * 60 * 60 * 10
    policy_buffer_size: int = 256
    batch_size: int = 32
    sequence_batch_size: int = 16
    sequence_length: int = 16
    steps_per_run: int = 2
    jepa_learning_rate: float = 5e-4
    jepa_ema_momentum: float = jepa.DEFAULT_EMA_MOMENTUM
    jepa_reference_frames: int = 64
    world_learning_rate: float = 3e-4
    forward_learning_rate: float = 1e-4
    forward_steps_per_run: int = 8
    min_buffer_size: int = 64
    min_new_samples: int = 8
    held_out_steps: int = 200
    ppo_config: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)
    ppo_min_new_samples: int = 64
    normalize_rewards: bool = True
    buffer_sharing: str = "shared"


def build_curiosity_learner(
    preset: str = "tiny",
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    training: CuriosityTraining | None = None,
    modalities: str = "image",
    action_space: str = "motion",
) -> Learner:
    """The trainer's learner: the four models, a buffer and a trainer each, and the route.

    The route checks each record's tensors against the preset's shapes and its action against
    the action space, so a record from an agent of another preset or action space is refused
    with the reason instead of reaching a buffer.

    Raises:
        ValueError: If the preset, modalities or action space is unknown or a training number
            is out of range.
    """
    dims = CuriosityDimensions.of(preset, modalities, action_space)
    options = training or CuriosityTraining()
    forward_needs = options.held_out_steps + max(options.min_buffer_size, 2 * dims.horizon + 1)
    if forward_needs > options.sequence_buffer_size:
        raise ValueError(
            f"the forward model would never train: held_out_steps ({options.held_out_steps}) "
            f"plus the steps it trains on ({forward_needs - options.held_out_steps}) exceed "
            f"sequence_buffer_size ({options.sequence_buffer_size})"
        )
    models = {name: dims.build(name, seed, device).train() for name in dims.model_names()}
    makers: dict[str, Callable[[], DataBuffer]] = {
        FRAMES_BUFFER: partial(
            RandomReplacementBuffer,
            [jepa.FRAME_KEY],
            options.buffer_size,
            expected_survival_length=options.frame_survival_steps,
            seed=seed,
        ),
        TEMPORAL_BUFFER: partial(
            SequentialBuffer, [temporal.OBS_KEY, temporal.HIDDEN_KEY], options.sequence_buffer_size
        ),
        FORWARD_DYNAMICS_BUFFER: partial(
            SequentialBuffer, forward_dynamics.SAMPLE_KEYS, options.sequence_buffer_size
        ),
        POLICY_BUFFER: partial(SequentialBuffer, ppo.SAMPLE_KEYS, options.policy_buffer_size),
    }
    ppo_window = options.ppo_config.sequence_length + 1  # PPO's first run waits for 4 windows
    trainers: list[Trainer] = [
        jepa.JepaTrainer(
            buffer_name=FRAMES_BUFFER, batch_size=options.batch_size,
            steps_per_run=options.steps_per_run, learning_rate=options.jepa_learning_rate,
            min_buffer_size=options.min_buffer_size, min_new_samples=options.min_new_samples,
            momentum=options.jepa_ema_momentum, reference_frames=options.jepa_reference_frames,
            seed=seed, dtype=dtype or torch.float32,
        ),
        temporal.TemporalTrainer(
            buffer_name=TEMPORAL_BUFFER, sequence_length=options.sequence_length,
            batch_size=options.sequence_batch_size, steps_per_run=options.steps_per_run,
            learning_rate=options.world_learning_rate,
            min_buffer_size=max(options.min_buffer_size, options.sequence_length + 1),
            min_new_samples=options.min_new_samples, autocast_dtype=dtype, seed=seed + 1,
        ),
        forward_dynamics.ForwardDynamicsTrainer(
            buffer_name=FORWARD_DYNAMICS_BUFFER, batch_size=options.batch_size,
            steps_per_run=options.forward_steps_per_run,
            learning_rate=options.forward_learning_rate,
            min_buffer_size=forward_needs,
            min_new_samples=options.min_new_samples, held_out_steps=options.held_out_steps,
            autocast_dtype=dtype, seed=seed + 2,
        ),
        ppo.PPOTrainer(
            options.ppo_config, buffer_name=POLICY_BUFFER,
            min_buffer_size=min(options.policy_buffer_size, 4 * ppo_window),
            min_new_samples=options.ppo_min_new_samples, seed=seed + 3, autocast_dtype=dtype,
        ),
    ]  # fmt: skip
    if dims.hears:  # its buffer is small: a window is 128 KB
        makers[AUDIO_BUFFER] = partial(
            RandomReplacementBuffer, [audio_jepa.AUDIO_KEY], AUDIO_BUFFER_SIZE, seed=seed + 4
        )
        trainers.append(
            audio_jepa.AudioJepaTrainer(  # a window costs about 4 frames' compute: 1/4 batch
                AUDIO_BUFFER, batch_size=max(2, options.batch_size // 4),
                min_buffer_size=options.min_buffer_size, steps_per_run=options.steps_per_run,
                learning_rate=options.jepa_learning_rate, momentum=options.jepa_ema_momentum,
                min_new_samples=options.min_new_samples, seed=seed + 4,
            )
        )  # fmt: skip
    needs = {trainer.buffer_name: trainer.min_buffer_size for trainer in trainers}
    buffers = arrange_buffers(makers, options.buffer_sharing, needs, seed)
    shapes = dims.record_shapes()
    image_size = dims.jepa.image_size
    reward_key = "reward" if options.normalize_rewards else RAW_REWARD

    def route(record: ExperienceRecord) -> dict[str, dict[str, np.ndarray]]:
        tensors = _checked_tensors(record, shapes)
        if np.shape(record.action) != (len(dims.action_sizes),):
            raise ValueError(
                f"the action has shape {np.shape(record.action)}, action space "
                f"{dims.action_space!r} has {len(dims.action_sizes)} heads (agent and trainer "
                "must use the same action_space)"
            )
        scalars = {key: tensors[key].reshape(()) for key in ("log_prob", "value")}
        # A done step's reward is 0 either way (no reward crosses a gap).
        reward = tensors.get(reward_key, tensors["reward"]).reshape(())
        heard = (
            {AUDIO_BUFFER: {audio_jepa.AUDIO_KEY: tensors[audio_jepa.AUDIO_KEY]}}
            if dims.hears
            else {}
        )
        return {
            **heard,
            FRAMES_BUFFER: {jepa.FRAME_KEY: jepa.square_frame(record.observation, image_size)},
            TEMPORAL_BUFFER: {
                temporal.OBS_KEY: tensors["obs"],
                temporal.HIDDEN_KEY: tensors["temporal_hidden"],
            },
            FORWARD_DYNAMICS_BUFFER: {
                forward_dynamics.STATE_KEY: tensors["state"],
                forward_dynamics.ACTION_KEY: record.action,
                forward_dynamics.OBS_KEY: tensors["obs"],
                forward_dynamics.DONE_KEY: tensors["done"].reshape(()),
            },
            POLICY_BUFFER: {
                "state": tensors["state"],
                "action": record.action,
                "hidden": tensors["policy_hidden"],
                "done": tensors["done"].reshape(()),
                "reward": reward,
                **scalars,
            },
        }

    return Learner(models, buffers, trainers, route)


def _checked_tensors(
    record: ExperienceRecord, shapes: Mapping[str, tuple[int, ...]]
) -> Mapping[str, npt.NDArray[np.float32]]:
    missing = [name for name in shapes if name not in record.tensors]
    if missing:
        raise ValueError(
            f"a curiosity record needs tensors {list(shapes)}; missing {missing} "
            "(is the agent running another mind?)"
        )
    for name, shape in shapes.items():
        actual = tuple(record.tensors[name].shape)
        if actual != shape:
            raise ValueError(
                f"tensor {name!r} has shape {actual}, this preset needs {shape} "
                "(agent and trainer must use the same preset)"
            )
    return record.tensors
