"""Worlds stepped in one process, with no ROS: what the fast benchmarks drive.

A :class:`SteppedWorld` is a world the agent's mind can live in without a graph: the
benchmark loop asks it for the current first-person frame, hands it the action the mind chose
(the same :class:`~pamiq_ros.core.actions.Action` the agent node turns into ``cmd_vel`` and
``vrchat_input``), and advances it by one agent period. The simulated world
(:mod:`pamiq_ros.sim.world`) and Gymnasium environments (:mod:`pamiq_ros.sim.gym_env`) both
implement it, so a benchmark arm runs unchanged on either, and the ROS nodes that serve those
worlds (``sim_world``, ``gym_world``) wrap the same objects.

Ground truth for evaluation only (never for the agent): :attr:`WorldStep.position` is where
the body is, in the world's own units (metres in the sim world, cells in a grid world, map
units in ViZDoom), and :attr:`SteppedWorld.cell_size` is the grid cell, in those units, that
coverage is counted over. Extrinsic reward and episode ends are reported for evaluation too;
the curiosity agent is never shown them.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pamiq_ros.core.actions import Action

Frame = npt.NDArray[np.uint8]
"""A first-person view: ``(height, width, 3)`` RGB, uint8."""


@dataclass(frozen=True)
class WorldStep:
    """What one step of a world produced, for evaluation.

    Attributes:
        frame: The view after the step, ``(height, width, 3)`` RGB uint8.
        position: Ground-truth ``(x, y)`` of the body after the step, in the world's units;
            ``None`` where the world has none.
        extrinsic_reward: The environment's own reward for this step (0 where it has none).
        terminated: The episode ended inside the environment (goal reached, death).
        truncated: The episode was cut from outside (time limit).
        info: Further ground truth by name (yaw, room or region index, goal reached), plain
            floats only, so it can go to JSON and to a ROS message unchanged.
    """

    frame: Frame
    position: tuple[float, float] | None
    extrinsic_reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, float] = field(default_factory=dict)

    @property
    def episode_over(self) -> bool:
        """True when the world must be reset before the next step."""
        return self.terminated or self.truncated


class SteppedWorld(ABC):
    """A world advanced one agent period at a time by the agent's action.

    Attributes:
        name: A short name for reports (``sim``, ``vizdoom_my_way_home``, ...).
        cell_size: Side of the coverage grid's cells, in the units of ``position``.
    """

    name: str = "world"
    cell_size: float = 1.0

    @abstractmethod
    def reset(self, seed: int | None = None) -> WorldStep:
        """Starts a new episode (seeded when ``seed`` is given) and returns its first view."""

    @abstractmethod
    def step(self, action: Action, dt: float) -> WorldStep:
        """Applies ``action`` for ``dt`` seconds of world time and returns what followed.

        After a step whose :attr:`WorldStep.episode_over` is true, the caller resets the world
        before stepping again.
        """

    def close(self) -> None:  # noqa: B027 - most worlds hold nothing to release
        """Releases what the world holds (processes, windows); idempotent."""
