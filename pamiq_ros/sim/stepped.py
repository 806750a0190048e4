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
from typing_extensions import override

from pamiq_ros.core.actions import Action
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import MotionCommand, World, WorldLayout

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


NO_REGION = 0
"""Floor-region index of the base floor (outside every region of the layout)."""


def floor_region_index(layout: WorldLayout, x: float, y: float) -> int:
    """Which floor region ``(x, y)`` lies in: ``i + 1`` for ``layout.floor_regions[i]``.

    A later region wins where regions overlap, as in drawing; :data:`NO_REGION` (0) outside
    every region.
    """
    index = NO_REGION
    for number, region in enumerate(layout.floor_regions, start=1):
        if region.x_min <= x < region.x_max and region.y_min <= y < region.y_max:
            index = number
    return index


class SimSteppedWorld(SteppedWorld):
    """The simulated world (:mod:`pamiq_ros.sim.world`) seen through its renderer.

    The same world and renderer the ``sim_world`` node serves, stepped directly: an action's
    motion becomes the avatar's :class:`~pamiq_ros.sim.world.MotionCommand` (velocities as the
    OSC actuator would ask for them, jump as a button edge). The world never ends an episode.
    ``info`` holds ``yaw`` (rad), ``region`` (:func:`floor_region_index`) and ``time`` (s).

    Args:
        seed: The world's seed (where the moving pillars start); :meth:`reset` may change it.
        width: Frame width (px).
        height: Frame height (px).
        walk_speed: Walking speed (m/s), as the ``sim_world`` node's parameter.
        turn_speed: Fastest turn (rad/s), as the ``sim_world`` node's parameter.
    """

    name = "sim"
    cell_size = 1.0

    def __init__(
        self,
        seed: int = 0,
        width: int = 160,
        height: int = 120,
        walk_speed: float = 2.0,
        turn_speed: float = 1.5,
    ) -> None:
        self._size = (width, height)
        self._speeds = (walk_speed, turn_speed)
        self._seed = seed
        self.world = World(seed, walk_speed, turn_speed)
        self.renderer = Renderer(self.world.layout, width, height)

    @property
    def layout(self) -> WorldLayout:
        """The world's layout (walls, floor regions, pillars)."""
        return self.world.layout

    @override
    def reset(self, seed: int | None = None) -> WorldStep:
        if seed is not None and seed != self._seed:
            self._seed = seed
            self.world = World(seed, *self._speeds)
            self.renderer = Renderer(self.world.layout, *self._size)
        else:
            self.world = World(self._seed, *self._speeds, layout=self.world.layout)
        return self._observe()

    @override
    def step(self, action: Action, dt: float) -> WorldStep:
        motion = action.motion
        self.world.step(
            dt,
            MotionCommand(
                forward=motion.forward_mps,
                left=motion.left_mps,
                yaw_rate=motion.ccw_radps,
                jump=action.buttons.jump,
            ),
        )
        return self._observe()

    def _observe(self) -> WorldStep:
        pose = self.world.pose
        return WorldStep(
            frame=self.renderer.render(self.world),
            position=(pose.x, pose.y),
            info={
                "yaw": pose.yaw,
                "region": float(floor_region_index(self.layout, pose.x, pose.y)),
                "time": self.world.time,
            },
        )
