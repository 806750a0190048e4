"""Policies: what the agent does given what it sees. No ROS import here.

An observation is the newest camera frame as an ``(height, width, 3)`` uint8 RGB array, or
``None`` while no frame has arrived: the agent acts on schedule and never waits for frames.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from typing_extensions import override  # typing.override is Python 3.12+

from pamiq_ros.core.actions import ACTION_SIZES, ActionChoice

Observation: TypeAlias = npt.NDArray[np.uint8]
"""An ``(height, width, 3)`` uint8 RGB frame."""


class Policy(ABC):
    """Chooses an action for each step."""

    @abstractmethod
    def act(self, observation: Observation | None) -> ActionChoice:
        """Returns the action for this step.

        Args:
            observation: The newest frame, or None when no frame has arrived yet.
        """

    def state_dict(self) -> dict[str, Any]:
        """The policy's live state (random generator, recurrent state) as JSON-able values."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - stateless default
        """Restores what :meth:`state_dict` returned.

        Raises:
            ValueError: If ``state`` is not this policy's.
        """


class RandomPolicy(Policy):
    """Picks every dimension uniformly at random, ignoring the observation; reproducible."""

    def __init__(self, seed: int) -> None:
        """Creates the policy.

        Args:
            seed: Seed of the random generator; the same seed gives the same actions.
        """
        self._rng = np.random.default_rng(seed)

    @override
    def act(self, observation: Observation | None) -> ActionChoice:
        return ActionChoice.from_indices([int(self._rng.integers(size)) for size in ACTION_SIZES])

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state}

    @override
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self._rng.bit_generator.state = dict(state["rng"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a RandomPolicy state: {error}") from error
