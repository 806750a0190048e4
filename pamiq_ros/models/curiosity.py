"""The curiosity reward: how wrong the agent's recent imaginations of *now* turned out.

Each step the forward dynamics model imagines the next K observations; this module keeps the
imaginations of the last K steps. When an observation arrives, every imagination made ``k``
steps ago holds a prediction for it (its index ``k - 1``), and the reward is their weighted
mean squared error:

    reward_t = sum_k w_k * mse(prediction_{t-k}[k - 1], obs_t) / sum_k w_k

over the horizons ``k`` for which a prediction exists (at the start, or after a step without
one, fewer than K do), so the reward keeps the scale of one squared error.

Weighting: by default ``w_k`` is proportional to ``1 / k`` and normalised to sum 1 over the K
horizons. Near predictions are made from fresher knowledge and depend less on what the policy
did in between, so their surprise says more about the world being unknown than about the
policy's later choices; far horizons still count, so surprises that take a few steps to show
(walking into a new room) are rewarded too. Custom weights may be given (non-negative, not all
zero); they are normalised the same way.

The world the agent sees makes the reward: while the stream is one the forward model has
learned, predictions are right and the reward is low; when it changes, it rises until the
model learns again. Pure tensor logic, no ROS import.
"""

from collections import deque
from collections.abc import Sequence

import torch


def default_weights(horizon: int) -> torch.Tensor:
    """``w_k`` proportional to ``1 / k`` for ``k = 1..horizon``, summing to 1.

    Raises:
        ValueError: If ``horizon`` is below 1.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {horizon!r}")
    weights = 1.0 / torch.arange(1, horizon + 1, dtype=torch.float64)
    return weights / weights.sum()


def weighted_prediction_error(
    predictions: torch.Tensor, actual: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``sum_k w_k * mse(predictions[k], actual) / sum_k w_k`` (the reward's formula).

    Args:
        predictions: ``(M, *obs_shape)``, one prediction of ``actual`` per horizon used.
        actual: ``(*obs_shape)``, the observation.
        weights: ``(M,)`` non-negative weights of those horizons, not all zero.

    Returns:
        A scalar float64 tensor.

    Raises:
        ValueError: If the shapes do not fit or the weights sum to zero.
    """
    if predictions.dim() < 1 or tuple(predictions.shape[1:]) != tuple(actual.shape):
        raise ValueError(
            f"predictions {tuple(predictions.shape)} must be (M, *{tuple(actual.shape)})"
        )
    if tuple(weights.shape) != (predictions.shape[0],):
        raise ValueError(f"weights {tuple(weights.shape)} must be ({predictions.shape[0]},)")
    total = weights.sum()
    if not total > 0:
        raise ValueError("the weights of the available horizons sum to zero")
    errors = (predictions.double() - actual.double().unsqueeze(0)).square()
    per_horizon = errors.reshape(predictions.shape[0], -1).mean(dim=1)
    return (weights.double() * per_horizon).sum() / total.double()


class CuriosityReward:
    """Keeps the last K imaginations and scores each new observation against them.

    Use once per step, in this order: :meth:`observe` the new observation (returns its
    reward), then :meth:`remember` what the forward model imagines from the new state and the
    chosen action (or None when no imagination was made this step, so later steps still line
    up).

    Attributes:
        horizon: ``K``.
        weights: ``(K,)`` float64, summing to 1; ``weights[k - 1]`` is ``w_k``.
    """

    def __init__(self, horizon: int, weights: Sequence[float] | torch.Tensor | None = None) -> None:
        """Creates an empty memory.

        Args:
            horizon: ``K``, the number of steps each imagination covers.
            weights: ``w_1..w_K``, non-negative, not all zero (normalised to sum 1);
                default ``1 / k`` normalised.

        Raises:
            ValueError: If the horizon or the weights are not usable.
        """
        base = default_weights(horizon)
        if weights is None:
            self.weights = base
        else:
            given = torch.as_tensor(weights, dtype=torch.float64).flatten()
            if given.shape != (horizon,):
                raise ValueError(f"weights must have {horizon} values, got {given.numel()}")
            if not bool(torch.isfinite(given).all()) or bool((given < 0).any()):
                raise ValueError(f"weights must be finite and non-negative, got {given.tolist()}")
            if not given.sum() > 0:
                raise ValueError("weights must not all be zero")
            self.weights = given / given.sum()
        self.horizon = horizon
        # Newest first: _memory[j - 1] was remembered j steps before the next observation.
        self._memory: deque[torch.Tensor | None] = deque(maxlen=horizon)

    def reset(self) -> None:
        """Forgets every imagination (e.g. after a teleport or a long pause)."""
        self._memory.clear()

    def available_horizons(self) -> list[int]:
        """The horizons ``k`` with a prediction for the next observation."""
        return [j for j, entry in enumerate(self._memory, start=1) if entry is not None]

    def observe(self, observation: torch.Tensor) -> float | None:
        """The reward of a new observation; None when no prediction of it exists.

        Args:
            observation: ``(obs_dim,)`` (or any shape equal to one prediction's).

        Raises:
            ValueError: If its shape differs from the remembered predictions'.
        """
        horizons = self.available_horizons()
        if not horizons:
            return None
        predictions = []
        for k in horizons:
            entry = self._memory[k - 1]
            assert entry is not None  # available_horizons only lists stored entries
            predictions.append(entry[k - 1])
        weights = self.weights[[k - 1 for k in horizons]]
        actual = observation.detach().to("cpu", torch.float32)
        return float(weighted_prediction_error(torch.stack(predictions), actual, weights))

    def remember(self, predictions: torch.Tensor | None) -> None:
        """Stores this step's imagination ``(K, *obs_shape)`` (a copy on the CPU), or None.

        Raises:
            ValueError: If the predictions do not cover ``horizon`` steps.
        """
        if predictions is not None:
            if predictions.dim() < 2 or predictions.shape[0] != self.horizon:
                raise ValueError(
                    f"predictions must be ({self.horizon}, obs_dim), got {tuple(predictions.shape)}"
                )
            predictions = predictions.detach().to("cpu", torch.float32, copy=True)
        self._memory.appendleft(predictions)
