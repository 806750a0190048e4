"""The curiosity reward: how wrong the agent's live imaginations of *now* turned out.

The agent keeps up to K imagined trajectories alive, as PAMIQ does. Each step it starts a new
one from the world state and the observation, and advances every live one by one step with the
action it actually took (:meth:`RollingImagination.advance`). So the trajectory started ``k``
steps ago has been fed the ``k`` actions really taken since, and holds its prediction of the
observation now. When an observation arrives, the reward is the weighted mean squared error of
those predictions (:meth:`RollingImagination.observe`):

    reward_t = sum_k w_k * mse(prediction of o_t made at t - k, o_t) / sum_k w_k

over the horizons ``k`` that have a live trajectory (at the start, or after a gap, fewer than
K do), so the reward keeps the scale of one squared error. A trajectory is dropped once it has
predicted K steps.

With ``reward="error_over_copy"`` the reward is that error divided by the same weighted error of
copying ("nothing changes": each trajectory's start observation as its prediction), so it
measures how much worse than copying the imagination was, not how much the view changed:

    reward_t = sum_k w_k * mse(prediction made at t - k, o_t)
               / sum_k w_k * mse(o_{t-k}, o_t)

(1 for a model that only copies; capped at :data:`ERROR_OVER_COPY_CAP` for a view that did not
change at all).

The weights ``w_k`` are the forward model's training weights
(:func:`pamiq_ros.models.forward_dynamics.horizon_weights`), so the reward asks for exactly
what the model is taught. The world the agent sees makes the reward: while the stream is one
the forward model has learned, predictions are right and the reward is low; when it changes,
it rises until the model learns again. Pure tensor logic, no ROS import.
"""

import torch

from pamiq_ros.models.forward_dynamics import ForwardDynamics, Imagination, horizon_weights

CURIOSITY_REWARDS = ("error", "error_over_copy")
"""What the curiosity reward measures: the imagination's error, or that error over copying's."""

DEFAULT_CURIOSITY_REWARD = "error"
"""PAMIQ's reward, the default of every setting that chooses one."""

ERROR_OVER_COPY_CAP = 1000.0
"""Largest ``error_over_copy`` reward: where the view did not change, copying's error is 0 and
the ratio would be unbounded (the most seen in the benchmark's runs was under 10)."""


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


class RollingImagination:
    """The live imagined trajectories, advanced every step with the action taken.

    Use once per step, in this order: :meth:`observe` the new observation (returns its
    reward), then :meth:`advance` with the new world state, the observation and the chosen
    action. :meth:`reset` after a gap: the old trajectories no longer line up with the world.

    Attributes:
        horizon: ``K``, the steps each trajectory predicts.
        weights: ``(K,)`` float64, summing to 1; ``weights[k - 1]`` is ``w_k``.
    """

    def __init__(self, horizon: int, reward: str = DEFAULT_CURIOSITY_REWARD) -> None:
        """Creates an empty imagination of ``horizon`` steps.

        Args:
            horizon: Steps each trajectory predicts (K).
            reward: One of :data:`CURIOSITY_REWARDS` (see the module docstring).

        Raises:
            ValueError: If the horizon is below 1 or the reward is unknown.
        """
        if reward not in CURIOSITY_REWARDS:
            raise ValueError(f"reward must be one of {list(CURIOSITY_REWARDS)}, got {reward!r}")
        self.weights = horizon_weights(horizon)
        self.horizon = horizon
        self.reward = reward
        self._live: Imagination | None = None
        self._ages: list[int] = []  # per live trajectory, newest first: steps advanced
        self._starts: list[torch.Tensor] = []  # per live trajectory: the observation it began at
        self._previous: torch.Tensor | None = None  # the last observation, since the last gap

    @property
    def ages(self) -> tuple[int, ...]:
        """Steps each live trajectory was advanced, newest first (its horizon now)."""
        return tuple(self._ages)

    def predictions(self) -> torch.Tensor | None:
        """Each live trajectory's prediction of the next observation; None when none is live.

        ``(M, obs_dim)``, newest first (their horizons are :attr:`ages`).
        """
        return None if self._live is None else self._live.obs

    def observe(self, observation: torch.Tensor) -> float | None:
        """The reward of a new observation; None when no trajectory predicted it.

        Args:
            observation: ``(obs_dim,)``.

        Raises:
            ValueError: If its shape differs from the predictions'.
        """
        if self._live is None:
            return None
        weights = self.weights[[age - 1 for age in self._ages]]
        actual = observation.detach().to(self._live.obs.device, torch.float32)
        error = weighted_prediction_error(self._live.obs.float(), actual, weights)
        if self.reward == "error":
            return float(error)
        starts = torch.stack(self._starts).reshape(self._live.obs.shape)
        copy_error = weighted_prediction_error(starts, actual, weights)
        return min(float(error / (copy_error + 1e-12)), ERROR_OVER_COPY_CAP)

    def advance(
        self,
        model: ForwardDynamics,
        state: torch.Tensor,
        observation: torch.Tensor,
        action: torch.Tensor,
    ) -> None:
        """Starts a trajectory at ``(state, observation)``; advances all live ones with ``action``.

        The new trajectory starts from the change since the observation of the last call (none
        after a :meth:`reset`). The trajectories that already predicted K steps are dropped
        first.

        Call it under ``torch.inference_mode()`` when acting.

        Args:
            model: The forward model (the acting copy; its horizon should be ``K``).
            state: ``(1, state_dim)``, the world state after taking in ``observation``.
            observation: ``(1, obs_dim)``.
            action: ``(1, n_dims)`` integer action indices, the action taken now.
        """
        observation = observation.to(state.dtype)
        fresh = model.begin(state, observation, self._previous)
        self._previous = observation
        keep = [index for index, age in enumerate(self._ages) if age < self.horizon]
        if self._live is not None and keep:
            fresh = fresh.join(self._live.select(keep))
        ages = [0] + [self._ages[index] for index in keep]
        self._live = model.advance(fresh, action.expand(len(fresh), -1))
        self._ages = [age + 1 for age in ages]
        start = observation.detach().reshape(-1).float()
        self._starts = [start] + [self._starts[index] for index in keep]

    def reset(self) -> None:
        """Forgets every trajectory (after a gap)."""
        self._live = None
        self._ages = []
        self._starts = []
        self._previous = None
