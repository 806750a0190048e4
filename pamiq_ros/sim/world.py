"""A small 2-D top-down world with an avatar: walls, textured floor regions and moving pillars.

No ROS here. Coordinates follow REP-103: metres, ``x`` forward at yaw 0, ``y`` to the left,
yaw counter-clockwise in radians. The world is what the renderer draws and what VRChat input
(or a robot's ``cmd_vel``) drives; :meth:`World.step` integrates the avatar's motion with
collision against walls and pillars, and an optional jump that lifts the camera for a moment.

Everything is deterministic given the seed and the sequence of ``step`` calls: the seed only
chooses where the moving pillars start on their paths.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Color = tuple[int, int, int]
"""An RGB colour, each channel 0..255."""

Point = tuple[float, float]

FloorPattern = Literal["checker", "stripes_x", "stripes_y", "diagonal", "solid"]

AVATAR_RADIUS = 0.3
"""The avatar's collision radius (m)."""
EYE_HEIGHT = 1.6
"""Camera height above the floor when standing (m)."""
WALL_HEIGHT = 3.0
"""Height of every wall (m)."""
JUMP_SPEED = 3.2
"""Upward speed at take-off (m/s): a jump peaks about 0.52 m up and lasts about 0.65 s."""
GRAVITY = 9.81
"""Downward acceleration during a jump (m/s^2)."""
_MAX_SUBSTEP = 0.25 * AVATAR_RADIUS  # shorter than the radius, so no step can skip a wall
_RESOLVE_PASSES = 4


@dataclass(frozen=True)
class Pose:
    """The avatar's pose on the floor: position (m) and yaw (rad, CCW, 0 along +x)."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0


@dataclass(frozen=True)
class MotionCommand:
    """What the avatar is asked to do for one step, in the avatar's own frame.

    Attributes:
        forward: Forward speed (m/s); negative walks backwards.
        left: Sideways speed to the left (m/s); negative strafes right.
        yaw_rate: Turn rate (rad/s), counter-clockwise (left) positive.
        jump: Start a jump now (ignored while already in the air).
    """

    forward: float = 0.0
    left: float = 0.0
    yaw_rate: float = 0.0
    jump: bool = False


@dataclass(frozen=True)
class Wall:
    """A wall segment from ``start`` to ``end``, :data:`WALL_HEIGHT` high, in one colour."""

    start: Point
    end: Point
    color: Color

    @property
    def length(self) -> float:
        """The wall's length (m)."""
        return math.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1])


@dataclass(frozen=True)
class FloorRegion:
    """An axis-aligned rectangle of floor with a two-colour pattern.

    Attributes:
        x_min, y_min, x_max, y_max: The rectangle (m).
        color_a, color_b: The pattern's two colours.
        pattern: ``checker``, ``stripes_x`` (bands across x), ``stripes_y``, ``diagonal``
            or ``solid`` (``color_a`` only).
        scale: Size of one square or band (m).
    """

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    color_a: Color
    color_b: Color
    pattern: FloorPattern = "checker"
    scale: float = 1.0


@dataclass(frozen=True)
class Pillar:
    """A round pillar that moves on its own, either around a circle or back and forth.

    Attributes:
        color: Its colour.
        radius: Its radius (m).
        height: Its height (m).
        center: Centre of the circular path, or one end of the back-and-forth path.
        path_radius: Radius of the circular path (m); 0 for a back-and-forth path.
        angular_speed: Angular speed on the circle (rad/s, CCW positive).
        end: The other end of a back-and-forth path (unused on a circle).
        speed: Speed along a back-and-forth path (m/s).
        phase: Where it starts: an angle (rad) on a circle, a fraction of a round trip (0..1)
            on a back-and-forth path.
    """

    color: Color
    radius: float
    height: float
    center: Point
    path_radius: float = 0.0
    angular_speed: float = 0.0
    end: Point | None = None
    speed: float = 0.0
    phase: float = 0.0

    def position(self, time: float) -> Point:
        """Where the pillar is at ``time`` seconds of world time."""
        if self.end is None:
            angle = self.phase + self.angular_speed * time
            return (
                self.center[0] + self.path_radius * math.cos(angle),
                self.center[1] + self.path_radius * math.sin(angle),
            )
        length = math.hypot(self.end[0] - self.center[0], self.end[1] - self.center[1])
        if length == 0.0 or self.speed == 0.0:
            return self.center
        round_trip = 2.0 * length / self.speed
        cycle = (self.phase + time / round_trip) % 1.0
        fraction = 2.0 * cycle if cycle < 0.5 else 2.0 * (1.0 - cycle)
        return (
            self.center[0] + fraction * (self.end[0] - self.center[0]),
            self.center[1] + fraction * (self.end[1] - self.center[1]),
        )


@dataclass(frozen=True)
class WorldLayout:
    """Everything static about a world, plus the paths of its moving pillars.

    Attributes:
        bounds: ``(x_min, y_min, x_max, y_max)`` of the outer walls (m).
        walls: Outer and interior walls.
        base_floor: The floor outside every region (its rectangle is ignored).
        floor_regions: Regions drawn over the base floor; a later one wins where they overlap.
        pillars: The moving pillars.
        start: The avatar's starting pose.
    """

    bounds: tuple[float, float, float, float]
    walls: tuple[Wall, ...]
    base_floor: FloorRegion
    floor_regions: tuple[FloorRegion, ...]
    pillars: tuple[Pillar, ...]
    start: Pose = field(default_factory=Pose)

    def floor_colors(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """The floor's colour at each point ``(x, y)``: an array of shape ``x.shape + (3,)``."""
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        colors = _pattern_colors(self.base_floor, xs, ys)
        for region in self.floor_regions:
            inside = (
                (xs >= region.x_min)
                & (xs < region.x_max)
                & (ys >= region.y_min)
                & (ys < region.y_max)
            )
            if inside.any():
                colors[inside] = _pattern_colors(region, xs[inside], ys[inside])
        return colors


def _pattern_colors(
    region: FloorRegion, xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]
) -> npt.NDArray[np.uint8]:
    u = xs / region.scale
    v = ys / region.scale
    if region.pattern == "checker":
        use_b = (np.floor(u) + np.floor(v)) % 2 == 1
    elif region.pattern == "stripes_x":
        use_b = np.floor(u) % 2 == 1
    elif region.pattern == "stripes_y":
        use_b = np.floor(v) % 2 == 1
    elif region.pattern == "diagonal":
        use_b = np.floor(u + v) % 2 == 1
    else:
        use_b = np.zeros(xs.shape, dtype=bool)
    colors = np.empty((*xs.shape, 3), dtype=np.uint8)
    colors[...] = np.array(region.color_a, dtype=np.uint8)
    colors[use_b] = np.array(region.color_b, dtype=np.uint8)
    return colors


def default_layout(seed: int = 0) -> WorldLayout:
    """The project's world: a 20 m x 16 m room split by four interior walls.

    The avatar starts at the origin facing +x, with about 6 m free ahead. The seed chooses
    where each pillar starts on its path (and nothing else), so layouts with the same seed
    are identical.
    """
    rng = random.Random(seed)
    x_min, y_min, x_max, y_max = -10.0, -8.0, 10.0, 8.0
    walls = (
        # Outer boundary, one colour per side.
        Wall((x_min, y_min), (x_max, y_min), (200, 60, 60)),  # south, red
        Wall((x_max, y_min), (x_max, y_max), (230, 200, 70)),  # east, yellow
        Wall((x_max, y_max), (x_min, y_max), (70, 110, 210)),  # north, blue
        Wall((x_min, y_max), (x_min, y_min), (80, 180, 90)),  # west, green
        # Interior walls.
        Wall((-3.0, y_min), (-3.0, -2.0), (170, 90, 200)),  # violet spur from the south
        Wall((3.0, y_max), (3.0, 2.0), (240, 140, 40)),  # orange spur from the north
        Wall((x_min, 3.0), (-6.0, 3.0), (90, 200, 200)),  # teal shelf on the west
        Wall((6.0, -3.0), (x_max, -3.0), (150, 110, 70)),  # brown shelf on the east
    )
    base_floor = FloorRegion(x_min, y_min, x_max, y_max, (120, 120, 120), (95, 95, 95), "checker")
    floor_regions = (
        FloorRegion(-10.0, -8.0, -3.0, -2.0, (200, 80, 60), (240, 170, 110), "stripes_x", 0.5),
        FloorRegion(3.0, 2.0, 10.0, 8.0, (50, 70, 170), (150, 180, 240), "checker", 0.5),
        FloorRegion(-2.0, -2.0, 2.0, 2.0, (230, 210, 60), (250, 250, 235), "diagonal", 0.4),
        FloorRegion(-10.0, 3.0, -6.0, 8.0, (40, 140, 60), (150, 220, 130), "stripes_y", 0.5),
        FloorRegion(6.0, -8.0, 10.0, -3.0, (120, 50, 140), (200, 150, 220), "checker", 1.0),
    )
    pillars = (
        Pillar(
            (230, 40, 200),
            0.4,
            2.2,
            center=(-5.5, 0.0),
            path_radius=2.0,
            angular_speed=0.5,
            phase=rng.uniform(0.0, 2.0 * math.pi),
        ),
        Pillar(
            (40, 220, 230),
            0.35,
            2.0,
            center=(6.5, -1.5),
            end=(6.5, 1.5),
            speed=0.8,
            phase=rng.random(),
        ),
        Pillar(
            (250, 150, 30),
            0.4,
            2.4,
            center=(0.0, 5.0),
            path_radius=1.5,
            angular_speed=-0.7,
            phase=rng.uniform(0.0, 2.0 * math.pi),
        ),
        Pillar(
            (245, 245, 245),
            0.3,
            1.8,
            center=(-8.0, -5.5),
            end=(-4.5, -5.5),
            speed=1.0,
            phase=rng.random(),
        ),
    )
    return WorldLayout((x_min, y_min, x_max, y_max), walls, base_floor, floor_regions, pillars)


class World:
    """The simulated world's state: the avatar, the moving pillars and world time.

    Args:
        seed: Chooses where the moving pillars start (see :func:`default_layout`).
        walk_speed: Walking speed (m/s); running, the fastest the avatar can go, is twice it.
        turn_speed: The fastest the avatar can turn (rad/s).
        layout: The world to use; :func:`default_layout` of ``seed`` if None.
    """

    def __init__(
        self,
        seed: int = 0,
        walk_speed: float = 2.0,
        turn_speed: float = 1.5,
        layout: WorldLayout | None = None,
    ) -> None:
        if walk_speed <= 0 or turn_speed <= 0:
            raise ValueError(
                f"walk_speed and turn_speed must be positive, got {walk_speed}, {turn_speed}"
            )
        self.layout = layout if layout is not None else default_layout(seed)
        self.walk_speed = walk_speed
        self.turn_speed = turn_speed
        self.pose = self.layout.start
        self.jump_height = 0.0
        """Height of the avatar's feet above the floor (m); positive during a jump."""
        self.time = 0.0
        """World time (s): the sum of every ``dt`` stepped."""
        self.jumps = 0
        """Jumps started so far."""
        self.collisions = 0
        """Steps in which a wall or pillar stopped part of the avatar's motion."""
        self._vertical_speed = 0.0
        self._walls = self.layout.walls

    @property
    def max_linear_speed(self) -> float:
        """The fastest the avatar moves (m/s): running."""
        return 2.0 * self.walk_speed

    @property
    def on_ground(self) -> bool:
        """True unless the avatar is in the middle of a jump."""
        return self.jump_height <= 0.0 and self._vertical_speed <= 0.0

    @property
    def eye_height(self) -> float:
        """Camera height above the floor now (m), jump included."""
        return EYE_HEIGHT + self.jump_height

    def pillar_positions(self) -> list[Point]:
        """Where each pillar is now."""
        return [pillar.position(self.time) for pillar in self.layout.pillars]

    def step(self, dt: float, command: MotionCommand) -> None:
        """Advances the world by ``dt`` seconds with the avatar following ``command``.

        Speeds are clamped to :attr:`max_linear_speed` (the length of the forward+left
        velocity) and :attr:`turn_speed`. The avatar never passes through a wall: it slides
        along walls and pillars, and stops where sliding is not possible.

        Raises:
            ValueError: If ``dt`` is negative or any command value is not finite.
        """
        if not dt >= 0.0 or not math.isfinite(dt):
            raise ValueError(f"dt must be a finite non-negative number of seconds, got {dt}")
        values = (command.forward, command.left, command.yaw_rate)
        if not all(math.isfinite(value) for value in values):
            raise ValueError(f"motion command values must be finite, got {command}")
        forward, left = _clamp_norm(command.forward, command.left, self.max_linear_speed)
        yaw_rate = max(-self.turn_speed, min(self.turn_speed, command.yaw_rate))

        if command.jump and self.on_ground:
            self._vertical_speed = JUMP_SPEED
            self.jumps += 1
        self._step_jump(dt)

        # Turn, then move along the heading halfway through the turn (midpoint rule).
        yaw_mid = self.pose.yaw + 0.5 * yaw_rate * dt
        cos_mid, sin_mid = math.cos(yaw_mid), math.sin(yaw_mid)
        dx = (forward * cos_mid - left * sin_mid) * dt
        dy = (forward * sin_mid + left * cos_mid) * dt
        end_time = self.time + dt
        pillars = [pillar.position(end_time) for pillar in self.layout.pillars]
        x, y, blocked = self._move(self.pose.x, self.pose.y, dx, dy, pillars)
        if blocked:
            self.collisions += 1
        self.pose = Pose(x, y, _wrap_angle(self.pose.yaw + yaw_rate * dt))
        self.time = end_time

    def _step_jump(self, dt: float) -> None:
        if self.on_ground:
            return
        self.jump_height += self._vertical_speed * dt - 0.5 * GRAVITY * dt * dt
        self._vertical_speed -= GRAVITY * dt
        if self.jump_height <= 0.0:
            self.jump_height = 0.0
            self._vertical_speed = 0.0

    def _move(
        self, x: float, y: float, dx: float, dy: float, pillars: Sequence[Point]
    ) -> tuple[float, float, bool]:
        distance = math.hypot(dx, dy)
        substeps = max(1, math.ceil(distance / _MAX_SUBSTEP))
        blocked = False
        # Resolving even when not moving lets a pillar push the avatar aside.
        for _ in range(substeps):
            wanted_x, wanted_y = x + dx / substeps, y + dy / substeps
            new_x, new_y = self._resolve(wanted_x, wanted_y, pillars)
            if self._crosses_wall(x, y, new_x, new_y):
                new_x, new_y = x, y  # the last guard: never end up behind a wall
            if abs(new_x - wanted_x) > 1e-9 or abs(new_y - wanted_y) > 1e-9:
                blocked = True
            x, y = new_x, new_y
        return x, y, blocked and distance > 0.0

    def _resolve(self, x: float, y: float, pillars: Sequence[Point]) -> tuple[float, float]:
        """Pushes the avatar's circle out of pillars, then walls (walls win)."""
        for _ in range(_RESOLVE_PASSES):
            moved = False
            for pillar, (px, py) in zip(self.layout.pillars, pillars, strict=True):
                x, y, pushed = _push_out_of_point(x, y, px, py, AVATAR_RADIUS + pillar.radius)
                moved |= pushed
            for wall in self._walls:
                cx, cy = _closest_point(wall, x, y)
                x, y, pushed = _push_out_of_point(x, y, cx, cy, AVATAR_RADIUS, wall)
                moved |= pushed
            if not moved:
                break
        return x, y

    def _crosses_wall(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        return any(_segments_cross((x0, y0), (x1, y1), w.start, w.end) for w in self._walls)


def _clamp_norm(a: float, b: float, limit: float) -> tuple[float, float]:
    norm = math.hypot(a, b)
    if norm <= limit:
        return a, b
    return a * limit / norm, b * limit / norm


def _wrap_angle(angle: float) -> float:
    wrapped = math.remainder(angle, 2.0 * math.pi)
    return math.pi if wrapped == -math.pi else wrapped


def _closest_point(wall: Wall, x: float, y: float) -> Point:
    ax, ay = wall.start
    ex, ey = wall.end[0] - ax, wall.end[1] - ay
    length_sq = ex * ex + ey * ey
    s = 0.0 if length_sq == 0.0 else ((x - ax) * ex + (y - ay) * ey) / length_sq
    s = max(0.0, min(1.0, s))
    return ax + s * ex, ay + s * ey


def _push_out_of_point(
    x: float, y: float, cx: float, cy: float, min_distance: float, wall: Wall | None = None
) -> tuple[float, float, bool]:
    dx, dy = x - cx, y - cy
    distance = math.hypot(dx, dy)
    if distance >= min_distance:
        return x, y, False
    if distance < 1e-9:
        # Exactly on the obstacle: leave along the wall's normal, or any fixed direction.
        if wall is not None:
            ex, ey = wall.end[0] - wall.start[0], wall.end[1] - wall.start[1]
            norm = math.hypot(ex, ey) or 1.0
            dx, dy, distance = -ey / norm, ex / norm, 1.0
        else:
            dx, dy, distance = 1.0, 0.0, 1.0
    scale = min_distance / distance
    return cx + dx * scale, cy + dy * scale, True


def _segments_cross(p0: Point, p1: Point, q0: Point, q1: Point) -> bool:
    """True if segment p0-p1 properly crosses q0-q1 (touching does not count)."""

    def orientation(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1 = orientation(q0, q1, p0)
    d2 = orientation(q0, q1, p1)
    d3 = orientation(p0, p1, q0)
    d4 = orientation(p0, p1, q1)
    return d1 * d2 < 0.0 and d3 * d4 < 0.0
