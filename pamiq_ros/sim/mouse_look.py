"""Mouse look and "use" for the simulated world: what VRChat does with a mouse in desktop mode.

No ROS here. Horizontal pointer velocity turns the avatar (yaw), vertical velocity tilts the
view (pitch, looking up and down); a left click uses the thing in front.

Pitch without a new renderer: the world is rendered ``pitch_margin`` rows taller at the top and
the bottom (same focal length, so the same horizontal field of view), and the output window is
cut out of it, shifted by ``focal * tan(pitch)`` rows. That is a camera tilt as a vertical image
shift, exact at the image centre and close elsewhere for the angles allowed
(``max_pitch_rad``, where the shift reaches the margin).

A use finds the nearest pillar or placed sound source within ``USE_RANGE_M`` and
``USE_CONE_RAD`` of the view's centre (or within ``REACH_M``, whatever the direction); it
reacts for ``USE_REACTION_S``: the centre of the view flashes in the thing's colour and a chirp
plays where it is (:mod:`pamiq_ros.sim.sound`).
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pamiq_ros.sim.sound import PLACED_SOURCES, Emitter
from pamiq_ros.sim.world import Color, Point, World

USE_RANGE_M = 4.0
"""Farthest a thing can be used from (m)."""
USE_CONE_RAD = math.radians(20.0)
"""Largest angle between the view's centre and a usable thing."""
REACH_M = 1.0
"""A thing this close is used whatever the direction (the avatar stands at it)."""
USE_REACTION_S = 0.5
"""How long a used thing reacts (s)."""
PLACED_COLOR: Color = (255, 255, 255)
"""The flash colour of a placed sound source (it has no body to take a colour from)."""


@dataclass(frozen=True)
class Usable:
    """A thing a click can use: its name, where it is and its colour."""

    name: str
    position: Point
    color: Color


@dataclass(frozen=True)
class UseReaction:
    """A use in progress: what was used and when (s of world time)."""

    thing: Usable
    started_at: float


def usable_things(world: World) -> list[Usable]:
    """The pillars (where they are now) and the placed sound sources."""
    pillars = [
        Usable(f"pillar{index}", position, pillar.color)
        for index, (pillar, position) in enumerate(
            zip(world.layout.pillars, world.pillar_positions(), strict=True)
        )
    ]
    placed = [Usable(timbre, position, PLACED_COLOR) for timbre, position in PLACED_SOURCES]
    return pillars + placed


def thing_in_front(world: World) -> Usable | None:
    """The nearest usable thing within range and cone of the avatar's heading, or None."""
    pose = world.pose
    best: tuple[float, Usable] | None = None
    for thing in usable_things(world):
        dx, dy = thing.position[0] - pose.x, thing.position[1] - pose.y
        distance = math.hypot(dx, dy)
        if distance > USE_RANGE_M:
            continue
        bearing = math.remainder(math.atan2(dy, dx) - pose.yaw, 2.0 * math.pi)
        if (abs(bearing) <= USE_CONE_RAD or distance <= REACH_M) and (
            best is None or distance < best[0]
        ):
            best = (distance, thing)
    return None if best is None else best[1]


class MouseLook:
    """Pitch state, the taller render's crop, and uses with their reactions.

    Args:
        frame_height: Output frame height (px).
        focal_px: The renderer's focal length (px): half the width over tan(half the FOV).
        pitch_margin: Extra rows rendered above and below (px).
        radians_per_pixel: Turn per pixel of pointer motion (VRChat's mouse sensitivity).
    """

    def __init__(
        self,
        frame_height: int,
        focal_px: float,
        pitch_margin: int,
        radians_per_pixel: float = 0.002,
    ) -> None:
        if pitch_margin < 0 or focal_px <= 0 or radians_per_pixel <= 0:
            raise ValueError(
                "pitch_margin must be >= 0, focal_px and radians_per_pixel positive, got "
                f"{pitch_margin}, {focal_px}, {radians_per_pixel}"
            )
        self.frame_height = frame_height
        self.focal_px = focal_px
        self.pitch_margin = pitch_margin
        self.radians_per_pixel = radians_per_pixel
        self.max_pitch_rad = math.atan2(pitch_margin, focal_px)
        self.pitch = 0.0
        """Radians, positive looking up."""
        self.reaction: UseReaction | None = None
        self.uses = 0
        self._left_was_down = False

    @property
    def render_height(self) -> int:
        """Rows to render: the frame plus a margin above and below."""
        return self.frame_height + 2 * self.pitch_margin

    def yaw_rate(self, velocity_x: float) -> float:
        """Turn rate (rad/s, counter-clockwise) for the pointer moving right at ``velocity_x``."""
        return -velocity_x * self.radians_per_pixel

    def step(self, dt: float, velocity_y: float, left: bool, world: World) -> UseReaction | None:
        """Tilts by the pointer's vertical velocity (down looks down); a left press uses.

        Returns:
            The new reaction if this step's click used something.
        """
        self.pitch -= velocity_y * self.radians_per_pixel * dt
        self.pitch = max(-self.max_pitch_rad, min(self.max_pitch_rad, self.pitch))
        pressed = left and not self._left_was_down
        self._left_was_down = left
        if self.reaction is not None and world.time - self.reaction.started_at > USE_REACTION_S:
            self.reaction = None
        if not pressed:
            return None
        thing = thing_in_front(world)
        if thing is None:
            return None
        self.uses += 1
        self.reaction = UseReaction(thing, world.time)
        return self.reaction

    def crop(self, tall_frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The output window of a frame rendered :attr:`render_height` tall, at the pitch now."""
        shift = round(self.focal_px * math.tan(self.pitch))
        top = max(0, min(2 * self.pitch_margin, self.pitch_margin - shift))
        frame = np.ascontiguousarray(tall_frame[top : top + self.frame_height])
        if self.reaction is not None:
            height, width = frame.shape[:2]
            centre = frame[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3]
            colour = np.array(self.reaction.thing.color, dtype=np.float32)
            centre[...] = (0.4 * centre + 0.6 * colour).astype(np.uint8)
        return frame

    def use_emitter(self, now: float, world_time: float) -> Emitter | None:
        """The chirp of the reaction in progress (started on the clock of ``now``), or None."""
        if self.reaction is None:
            return None
        started = now - (world_time - self.reaction.started_at)
        return Emitter("use", self.reaction.thing.position, 1.5, started_at=started)
