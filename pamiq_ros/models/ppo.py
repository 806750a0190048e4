"""A recurrent policy/value network over the world state, trained with PPO.

The policy does not see frames: it reads the world model's state ``(H,)`` at each step and
keeps its own memory in a GRU. One categorical head per action dimension
(:data:`pamiq_ros.core.actions.ACTION_SIZES`) picks the action; a value head estimates the
discounted return. The log-probability of an action is the sum over its dimensions (the
dimensions are independent given the state), and so is the entropy.

Training data is one sample per agent step in a :class:`~pamiq_ros.core.buffers.SequentialBuffer`
(keys in :data:`SAMPLE_KEYS`): the state the agent saw, the action it took, that action's
log-probability and the value estimate at acting time, the reward that followed, whether the
episode ended after the step, and the GRU hidden state *before* the step. :class:`PPOTrainer`
cuts windows of consecutive steps out of it, starts each window from its stored hidden state,
computes advantages with :func:`compute_gae` (bootstrapping from the stored value of the step
after the window) and takes clipped-surrogate steps (:func:`ppo_loss`).

Presets (:data:`PRESETS`, parameter counts for the preset's own ``state_dim``):

- ``"tiny"`` (default; CPU, next to a 10 Hz agent): state 64, GRU 64 x 1, heads 64:
  34,190 parameters.
- ``"small"``: state 256, GRU 256 x 1, heads 256: 529,934 parameters.
- ``"base"`` (GPU): state 512, GRU 768 x 2, heads 768: 7,689,230 parameters.

No ROS import here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import DataBuffer
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.trainers import TorchTrainer

MODEL_NAME: Final = "policy"
"""The name the policy/value network is trained, announced and acted with under."""

SAMPLE_KEYS: Final[tuple[str, ...]] = (
    "state",
    "action",
    "log_prob",
    "value",
    "reward",
    "done",
    "hidden",
)
"""Keys of a per-step sample: ``state`` float ``(H,)``, ``action`` int ``(5,)``, ``log_prob``,
``value``, ``reward`` and ``done`` (0 or 1) scalars, ``hidden`` float ``(num_layers, hidden_size)``
(the GRU state before the step)."""


@dataclass(frozen=True)
class PolicyValueConfig:
    """Sizes of a :class:`PolicyValueNet`.

    Attributes:
        state_dim: Size H of the world state the policy reads.
        hidden_size: Size of the GRU's hidden state.
        num_layers: Stacked GRU layers.
        head_hidden: Width of the hidden layer of the policy and value heads.
    """

    state_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    head_hidden: int = 64

    def __post_init__(self) -> None:
        for name in ("state_dim", "hidden_size", "num_layers", "head_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"PolicyValueConfig.{name} must be a positive integer, got {value!r}"
                )


PRESETS: Final[dict[str, PolicyValueConfig]] = {
    "tiny": PolicyValueConfig(state_dim=64, hidden_size=64, num_layers=1, head_hidden=64),
    "small": PolicyValueConfig(state_dim=256, hidden_size=256, num_layers=1, head_hidden=256),
    "base": PolicyValueConfig(state_dim=512, hidden_size=768, num_layers=2, head_hidden=768),
}
"""Size presets; see the module docstring for their parameter counts."""


class PolicyValueNet(nn.Module):
    """GRU trunk over world states, one categorical head per action dimension, a value head.

    Hidden states have torch's GRU layout ``(num_layers, N, hidden_size)``; ``None`` means
    zeros (the start of an episode).
    """

    def __init__(
        self,
        config: PolicyValueConfig | None = None,
        action_sizes: Sequence[int] = ACTION_SIZES,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Creates the network.

        Args:
            config: Sizes; default the ``"tiny"`` preset.
            action_sizes: Options per action dimension.
            device: Where the parameters live (default CPU).
            dtype: Parameter dtype (default float32).

        Raises:
            ValueError: If an action dimension has fewer than 2 options.
        """
        super().__init__()
        self.config = config or PRESETS["tiny"]
        self.action_sizes: tuple[int, ...] = tuple(int(size) for size in action_sizes)
        if not self.action_sizes or min(self.action_sizes) < 2:
            raise ValueError(f"each action dimension needs 2 or more options, got {action_sizes}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        c = self.config
        self.trunk = nn.GRU(c.state_dim, c.hidden_size, c.num_layers, batch_first=True, **factory)
        self.policy_head = nn.Sequential(
            nn.Linear(c.hidden_size, c.head_hidden, **factory),
            nn.ELU(),
            nn.Linear(c.head_hidden, sum(self.action_sizes), **factory),
        )
        self.value_head = nn.Sequential(
            nn.Linear(c.hidden_size, c.head_hidden, **factory),
            nn.ELU(),
            nn.Linear(c.head_hidden, 1, **factory),
        )
        # Small last layers: the first policy is near uniform (explores evenly) and the first
        # values near zero (no made-up returns to unlearn).
        with torch.no_grad():
            for last in (self.policy_head[-1], self.value_head[-1]):
                assert isinstance(last, nn.Linear)
                last.weight.mul_(0.01)
                last.bias.zero_()

    def initial_hidden(self, batch_size: int = 1) -> torch.Tensor:
        """Zeros ``(num_layers, batch_size, hidden_size)`` on the parameters' device and dtype."""
        reference = next(self.parameters())
        return reference.new_zeros(self.config.num_layers, batch_size, self.config.hidden_size)

    @override
    def forward(
        self, states: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Runs the trunk over sequences.

        Args:
            states: ``(N, T, state_dim)``.
            hidden: ``(num_layers, N, hidden_size)`` or None for zeros.

        Returns:
            Logits ``(N, T, sum(action_sizes))`` (float32), values ``(N, T)`` (float32) and the
            hidden state after the last step.

        Raises:
            ValueError: If the shapes do not fit the network.
        """
        self._check_states(states, 3)
        if hidden is None:
            hidden = self.initial_hidden(states.shape[0])
        self._check_hidden(hidden, states.shape[0])
        features, new_hidden = self.trunk(states, hidden)
        logits = self.policy_head(features).float()
        values = self.value_head(features).squeeze(-1).float()
        return logits, values, new_hidden

    def act(
        self,
        state: torch.Tensor,
        hidden: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        greedy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Picks actions for one step; call it under ``torch.inference_mode()`` when acting.

        Args:
            state: ``(N, state_dim)``, the world state of this step.
            hidden: ``(num_layers, N, hidden_size)`` from the previous step, or None for zeros.
            generator: Random source of the draws (on the network's device); None: torch's.
            greedy: Take the most likely option of each dimension instead of sampling.

        Returns:
            Action indices ``(N, len(action_sizes))`` (int64), their log-probabilities ``(N,)``,
            values ``(N,)`` and the new hidden state.

        Raises:
            ValueError: If the shapes do not fit the network.
        """
        self._check_states(state, 2)
        logits, values, new_hidden = self(state.unsqueeze(1), hidden)
        actions = []
        log_prob = torch.zeros(state.shape[0], device=logits.device)
        for dim_logits in logits[:, 0].split(self.action_sizes, dim=-1):
            log_probs = torch.log_softmax(dim_logits, dim=-1)
            if greedy:
                choice = log_probs.argmax(dim=-1)
            else:
                choice = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
            actions.append(choice)
            log_prob = log_prob + log_probs.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        return torch.stack(actions, dim=-1), log_prob, values[:, 0], new_hidden

    def evaluate(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        h0: torch.Tensor | None = None,
        dones: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities of taken actions, entropies and values along sequences.

        Args:
            states: ``(N, T, state_dim)``.
            actions: Integer ``(N, T, len(action_sizes))``.
            h0: Hidden state before the first step, or None for zeros.
            dones: Optional ``(N, T)``; where step t ended an episode, the hidden state is
                reset to zeros before step t + 1 (as the agent does).

        Returns:
            ``(log_probs, entropy, values)``, each ``(N, T)`` float32; log-probabilities and
            entropies are summed over the action dimensions.

        Raises:
            ValueError: If the shapes do not fit.
        """
        self._check_states(states, 3)
        n, t = states.shape[:2]
        if tuple(actions.shape) != (n, t, len(self.action_sizes)):
            raise ValueError(
                f"actions must be ({n}, {t}, {len(self.action_sizes)}), got {tuple(actions.shape)}"
            )
        if dones is not None and tuple(dones.shape) != (n, t):
            raise ValueError(f"dones must be ({n}, {t}), got {tuple(dones.shape)}")
        if dones is None or not bool(dones[:, :-1].any()):
            # No reset inside the sequences (one after the last step changes nothing here):
            # one fused GRU call is much faster than stepping.
            logits, values, _ = self(states, h0)
        else:
            logits, values = self._run_with_resets(states, h0, dones)
        log_prob = torch.zeros(n, t, device=logits.device)
        entropy = torch.zeros(n, t, device=logits.device)
        for index, dim_logits in enumerate(logits.split(self.action_sizes, dim=-1)):
            log_probs = torch.log_softmax(dim_logits, dim=-1)
            chosen = actions[..., index].long().unsqueeze(-1)
            log_prob = log_prob + log_probs.gather(-1, chosen).squeeze(-1)
            entropy = entropy - (log_probs.exp() * log_probs).sum(-1)
        return log_prob, entropy, values

    def _run_with_resets(
        self, states: torch.Tensor, h0: torch.Tensor | None, dones: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.initial_hidden(states.shape[0]) if h0 is None else h0
        logits, values = [], []
        # Step by step: the hidden state must be cut where an episode ended.
        for step in range(states.shape[1]):
            step_logits, step_values, hidden = self(states[:, step : step + 1], hidden)
            logits.append(step_logits)
            values.append(step_values)
            keep = (1.0 - dones[:, step].to(hidden.dtype)).view(1, -1, 1)
            hidden = hidden * keep
        return torch.cat(logits, dim=1), torch.cat(values, dim=1)

    def _check_states(self, states: torch.Tensor, ndim: int) -> None:
        if states.ndim != ndim or states.shape[-1] != self.config.state_dim:
            layout = "(N, state_dim)" if ndim == 2 else "(N, T, state_dim)"
            raise ValueError(
                f"states must be {layout} with state_dim {self.config.state_dim}, "
                f"got {tuple(states.shape)}"
            )

    def _check_hidden(self, hidden: torch.Tensor, batch_size: int) -> None:
        expected = (self.config.num_layers, batch_size, self.config.hidden_size)
        if tuple(hidden.shape) != expected:
            raise ValueError(f"hidden must be {expected}, got {tuple(hidden.shape)}")


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters())


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor | float,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns along the last axis.

    With ``d_t`` = 1 when the episode ended after step t (then nothing is bootstrapped over it)::

        delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t        (V_T = last_value)
        A_t     = delta_t + gamma * lam * (1 - d_t) * A_{t+1}    (A_T = 0)
        R_t     = A_t + V_t

    Args:
        rewards: ``(..., T)``.
        values: ``(..., T)``, the value estimates of the steps.
        dones: ``(..., T)``, 0 or 1 (bool allowed).
        last_value: Value of the step after the last, ``(...)`` or a number.
        gamma: Discount in ``[0, 1]``.
        lam: GAE lambda in ``[0, 1]``.

    Returns:
        ``(advantages, returns)``, both ``(..., T)``, float, without gradient.

    Raises:
        ValueError: If shapes differ or gamma/lam are outside ``[0, 1]``.
    """
    if rewards.shape != values.shape or rewards.shape != dones.shape or rewards.ndim < 1:
        raise ValueError(
            "rewards, values and dones must have the same (..., T) shape, got "
            f"{tuple(rewards.shape)}, {tuple(values.shape)}, {tuple(dones.shape)}"
        )
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must be in [0, 1], got {gamma}, {lam}")
    rewards = rewards.detach().float()
    values = values.detach().float()
    not_done = 1.0 - dones.detach().float()
    next_value = torch.as_tensor(last_value, dtype=torch.float32, device=values.device)
    next_value = next_value.expand(values.shape[:-1]).clone()
    advantage = torch.zeros_like(next_value)
    advantages = torch.zeros_like(values)
    for step in range(values.shape[-1] - 1, -1, -1):
        delta = rewards[..., step] + gamma * not_done[..., step] * next_value - values[..., step]
        advantage = delta + gamma * lam * not_done[..., step] * advantage
        advantages[..., step] = advantage
        next_value = values[..., step]
    return advantages, advantages + values


def ppo_loss(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    new_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    *,
    clip: float = 0.2,
    value_coef: float = 0.5,
    entropy_coef: float = 0.01,
    normalize_advantages: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate loss with a value error and an entropy bonus.

    ``ratio = exp(new - old)``; ``policy = -mean(min(ratio * A, clip(ratio, 1 - c, 1 + c) * A))``;
    ``value = mean((V - R)^2)``; ``total = policy + value_coef * value - entropy_coef *
    mean(entropy)``.

    Args:
        new_log_probs: Log-probabilities of the taken actions under the trained policy.
        old_log_probs: Their log-probabilities when they were taken.
        advantages: Advantage estimates (no gradient flows into them).
        new_values: Value estimates of the trained network.
        returns: Value targets.
        entropy: Entropy of the trained policy at the steps.
        clip: The ratio's clip range c (positive).
        value_coef: Weight of the value error.
        entropy_coef: Weight of the entropy bonus.
        normalize_advantages: Standardise the advantages (zero mean, unit std) first.

    Returns:
        The total loss (a scalar with gradient) and its parts as floats: ``loss``,
        ``policy_loss``, ``value_loss``, ``entropy``, ``clip_fraction`` (share of ratios
        outside the clip range) and ``approx_kl`` (the low-variance, never negative estimate
        ``mean((ratio - 1) - log(ratio))`` of KL(old || new), as PAMIQ and CleanRL log it).

    Raises:
        ValueError: If shapes differ or ``clip`` is not positive.
    """
    shapes = {
        tuple(t.shape) for t in (new_log_probs, old_log_probs, advantages, new_values, returns)
    }
    if len(shapes) != 1 or tuple(entropy.shape) not in shapes:
        raise ValueError(f"ppo_loss inputs must share one shape, got {sorted(shapes)}")
    if not clip > 0:
        raise ValueError(f"clip must be positive, got {clip}")
    advantages = advantages.detach().float()
    if normalize_advantages and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    log_ratio = new_log_probs.float() - old_log_probs.detach().float()
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
    policy_loss = -torch.minimum(unclipped, clipped).mean()
    value_loss = (new_values.float() - returns.detach().float()).pow(2).mean()
    mean_entropy = entropy.float().mean()
    total = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
    with torch.no_grad():
        clip_fraction = ((ratio - 1.0).abs() > clip).float().mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
    parts = {
        "loss": float(total.detach()),
        "policy_loss": float(policy_loss.detach()),
        "value_loss": float(value_loss.detach()),
        "entropy": float(mean_entropy.detach()),
        "clip_fraction": float(clip_fraction),
        "approx_kl": float(approx_kl),
    }
    return total, parts


ADVANTAGES: Final = ("gae", "one_step")
"""Advantage estimators of :class:`PPOConfig` (``advantage``)."""


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of :class:`PPOTrainer`.

    Attributes:
        gamma: Discount of future rewards.
        lam: GAE lambda.
        clip: Clip range of the probability ratio.
        value_coef: Weight of the value error in the loss.
        entropy_coef: Weight of the entropy bonus.
        epochs: Passes over the run's sequences.
        minibatch: Sequences per optimizer step.
        lr: Adam's learning rate.
        sequence_length: Steps per sequence (truncated backpropagation through time).
        sequences_per_run: Sequences drawn from the buffer per run.
        max_grad_norm: Gradient norm clip; 0 disables it.
        normalize_advantages: Standardise advantages per minibatch.
        advantage: How advantages are estimated: ``"gae"`` (:func:`compute_gae`, returns
            bootstrapped over ``gamma`` and ``lam``) or ``"one_step"`` (PAMIQ's: ``A_t = r_t -
            V_t``, the value learns the next reward only; ``gamma`` and ``lam`` are unused).
    """

    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    epochs: int = 4
    minibatch: int = 8
    lr: float = 3e-4
    sequence_length: int = 16
    sequences_per_run: int = 16
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    advantage: str = "gae"

    def __post_init__(self) -> None:
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage must be one of {list(ADVANTAGES)}, got {self.advantage!r}")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ValueError(f"gamma and lam must be in [0, 1], got {self.gamma}, {self.lam}")
        if not self.clip > 0 or not self.lr > 0:
            raise ValueError(f"clip and lr must be positive, got {self.clip}, {self.lr}")
        if self.value_coef < 0 or self.entropy_coef < 0 or self.max_grad_norm < 0:
            raise ValueError(
                "value_coef, entropy_coef and max_grad_norm must not be negative, got "
                f"{self.value_coef}, {self.entropy_coef}, {self.max_grad_norm}"
            )
        for name in ("epochs", "minibatch", "sequence_length", "sequences_per_run"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PPOConfig.{name} must be a positive integer, got {value!r}")


class PPOTrainer(TorchTrainer[PolicyValueNet]):
    """Trains a :class:`PolicyValueNet` with PPO on windows of consecutive stored steps.

    Each run draws ``sequences_per_run`` windows of ``sequence_length + 1`` consecutive samples
    (uniformly, with replacement) from the buffer (oldest first, as ``get_data`` gives them).
    The first ``sequence_length`` steps are trained on, starting from the stored hidden state of
    the window's first step; the last one only lends its stored value to bootstrap GAE.
    Advantages use the values stored at acting time. Then ``epochs`` passes over the windows
    in shuffled minibatches of ``minibatch`` windows each take one Adam step.

    Metrics (``<name>/...``, default name ``"ppo"``): ``loss``, ``policy_loss``, ``value_loss``,
    ``entropy`` (means over the run's steps), ``value`` (mean stored value), ``reward`` (mean
    reward of the drawn steps), ``clip_fraction`` and ``approx_kl``.
    """

    def __init__(
        self,
        config: PPOConfig | None = None,
        *,
        model_name: str = MODEL_NAME,
        buffer_name: str = "policy_steps",
        min_buffer_size: int | None = None,
        min_new_samples: int = 64,
        seed: int = 0,
        autocast_dtype: torch.dtype | None = None,
        name: str = "ppo",
    ) -> None:
        """Creates the trainer.

        Args:
            config: Hyperparameters; default :class:`PPOConfig`'s.
            model_name: The model it trains.
            buffer_name: The buffer of per-step samples (:data:`SAMPLE_KEYS`).
            min_buffer_size: Steps the buffer must hold before the first run; default (and
                at least) ``sequence_length + 1``.
            min_new_samples: Steps that must arrive between runs.
            seed: Seed of the window draws and shuffles.
            autocast_dtype: Run the network under ``torch.autocast`` with this dtype (e.g.
                ``torch.bfloat16`` on a GPU); None: the parameters' dtype.
            name: The trainer's name, the metrics' prefix.

        Raises:
            ValueError: If a number is out of range.
        """
        self.config = config or PPOConfig()
        window = self.config.sequence_length + 1
        if min_buffer_size is not None and min_buffer_size < window:
            raise ValueError(
                f"min_buffer_size must be at least sequence_length + 1 = {window}, "
                f"got {min_buffer_size}"
            )
        super().__init__(
            name, buffer_name, min_buffer_size or window, min_new_samples,
            model_name=model_name, model_type=PolicyValueNet, seed=seed,
        )  # fmt: skip
        self.autocast_dtype = autocast_dtype

    @override
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        model, optimizer = self._ready()
        config = self.config
        batch = self._draw_windows(buffers[self.buffer_name].get_data(), model)
        length = config.sequence_length
        if config.advantage == "one_step":
            returns = batch["reward"][:, :length]
            advantages = returns - batch["value"][:, :length]
        else:
            advantages, returns = compute_gae(
                batch["reward"][:, :length],
                batch["value"][:, :length],
                batch["done"][:, :length],
                batch["value"][:, length],
                config.gamma,
                config.lam,
            )
        model.train()
        totals: dict[str, list[float]] = {}
        count = config.sequences_per_run
        for _ in range(config.epochs):
            order = torch.randperm(count, generator=self._generator)
            for start in range(0, count, config.minibatch):
                index = order[start : start + config.minibatch].to(advantages.device)
                with autocast(advantages.device, self.autocast_dtype):
                    log_probs, entropy, values = model.evaluate(
                        batch["state"][index, :length],
                        batch["action"][index, :length],
                        batch["hidden"][index].transpose(0, 1).contiguous(),
                        batch["done"][index, :length],
                    )
                loss, parts = ppo_loss(
                    log_probs,
                    batch["log_prob"][index, :length],
                    advantages[index],
                    values,
                    returns[index],
                    entropy,
                    clip=config.clip,
                    value_coef=config.value_coef,
                    entropy_coef=config.entropy_coef,
                    normalize_advantages=config.normalize_advantages,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                for key, value in parts.items():
                    totals.setdefault(key, []).append(value)
        metrics = {f"{self.name}/{key}": float(np.mean(values)) for key, values in totals.items()}
        metrics[f"{self.name}/value"] = float(batch["value"][:, :length].mean())
        metrics[f"{self.name}/reward"] = float(batch["reward"][:, :length].mean())
        return metrics, (self.model_name,)

    def _draw_windows(
        self, data: Mapping[str, np.ndarray], model: PolicyValueNet
    ) -> dict[str, torch.Tensor]:
        missing = set(SAMPLE_KEYS) - set(data)
        if missing:
            raise KeyError(f"trainer {self.name!r}: buffer samples lack {sorted(missing)}")
        window = self.config.sequence_length + 1
        size = len(data["reward"])
        if size < window:
            raise ValueError(f"trainer {self.name!r}: needs {window} steps, the buffer has {size}")
        starts = torch.randint(
            size - window + 1, (self.config.sequences_per_run,), generator=self._generator
        )
        rows = (starts.unsqueeze(1) + torch.arange(window)).numpy()
        reference = next(model.parameters())
        batch: dict[str, torch.Tensor] = {}
        for key in SAMPLE_KEYS:
            values = torch.from_numpy(np.ascontiguousarray(data[key][rows]))
            if key == "hidden":
                values = values[:, 0]  # only the window's first hidden state is used
            if key == "action":
                batch[key] = values.long().to(reference.device)
            elif key in ("state", "hidden"):
                batch[key] = values.to(reference.device, reference.dtype)
            else:
                batch[key] = values.to(reference.device, torch.float32)
        return batch

    @override
    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.config.lr)
