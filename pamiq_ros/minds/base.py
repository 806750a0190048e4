"""The acting side of a mind: models the trainer keeps fresh, and one ``act`` per agent step.

The agent node owns the clock, the camera frames and the publishers; an :class:`ActingMind`
owns everything between a frame and an action: its models (each a
:class:`~pamiq_ros.core.swappable.SwappableModel` the node's weight subscriber fills), its live
recurrent state, and the experience records it wants sent to the trainer. It knows nothing of
ROS, so it runs and is tested without a graph.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pamiq_ros.core.actions import Choice
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.policy import Observation
from pamiq_ros.core.swappable import SwappableModel


@dataclass(frozen=True)
class ActingStep:
    """What one step produced.

    Attributes:
        choice: The action to take now (an ``ActionChoice``, or a ``VRChatChoice`` in the
            ``vrchat`` action space).
        records: Experience records ready for the trainer (possibly of earlier steps: a
            record waits for the reward that followed its action).
    """

    choice: Choice
    records: tuple[ExperienceRecord, ...] = ()


class ActingMind(ABC):
    """Chooses each step's action with models whose weights are swapped in between steps.

    Threading: :meth:`act`, :meth:`swap_ready_weights` and :meth:`interrupt` run on the acting
    thread only; :meth:`state_dict` and :meth:`figures` may be called from another thread and
    must only read.
    """

    def __init__(self, models: Mapping[str, SwappableModel], acting_model: str) -> None:
        """Creates the mind.

        Args:
            models: The models by the names their weights are announced under.
            acting_model: The model whose version experience records carry (for policy lag).
        """
        if acting_model not in models:
            raise ValueError(f"acting model {acting_model!r} is not among {sorted(models)}")
        self._models = dict(models)
        self.acting_model = acting_model

    @property
    def models(self) -> Mapping[str, SwappableModel]:
        """The swappable models by name (the weight subscriber fills them)."""
        return self._models

    @property
    def version(self) -> int:
        """The acting model's weight version."""
        return self._models[self.acting_model].version

    def swap_ready_weights(self) -> list[tuple[str, int]]:
        """Swaps in every prepared version; returns ``(model, version)`` of each swap."""
        swapped = []
        for name, model in self._models.items():
            version = model.swap_if_ready()
            if version is not None:
                swapped.append((name, version))
        return swapped

    @abstractmethod
    def act(self, step: int, observation: Observation | None) -> ActingStep:
        """Chooses the action of step ``step``.

        Args:
            step: The agent's step counter (increasing, continued across resumes).
            observation: The newest frame, or None while no frame has arrived.
        """

    def interrupt(self) -> tuple[ExperienceRecord, ...]:
        """Acting stops for a while (pause): closes what waits and returns records to send."""
        return ()

    def state_dict(self) -> dict[str, Any]:
        """The live state (random generators, recurrent state) as JSON-able values."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - stateless default
        """Restores what :meth:`state_dict` returned.

        Raises:
            ValueError: If ``state`` does not fit this mind (the message says what).
        """

    def figures(self) -> dict[str, float]:
        """Recent figures for progress reports (e.g. reward, value); empty if none."""
        return {}
