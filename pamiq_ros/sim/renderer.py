"""First-person RGB frames of a :class:`~pamiq_ros.sim.world.World` by vectorised ray casting.

One ray per image column finds the nearest wall (its depth, which wall, and where along it);
per pixel, the row's vertical slope then says whether the pixel sees that wall, the sky above
it, or the floor in front of it. The floor is a texture baked once from the layout and looked
up at the floor point each pixel sees. Pillars are cylinders intersected per column and drawn
only where they are nearer than the wall. Distances are depths along the view direction, so
walls do not bow (no fish-eye), and everything fades into a light haze with distance.

Drawing computes the few colours each part needs (per row, per column and brick course, per
column and pillar band) and per pixel only an index into them; one lookup makes the frame.
No ROS here. 640x480 renders in about 10 ms on one core with NumPy.
"""

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from pamiq_ros.sim.world import EYE_HEIGHT, WALL_HEIGHT, Point, Pose, World, WorldLayout

_FAR = 1.0e3  # depth (m) of a column that sees no wall (cannot happen inside closed walls)
_HAZE_COLOR = np.array([200.0, 210.0, 225.0], dtype=np.float32)
_HAZE_DISTANCE = 30.0  # m: a wall this far is about 63 % haze
_SKY_HORIZON = np.array([185.0, 215.0, 245.0], dtype=np.float32)
_SKY_ZENITH = np.array([60.0, 115.0, 200.0], dtype=np.float32)
_LIGHT = np.array([0.6, 0.8], dtype=np.float32)  # horizontal direction light comes from
_BRICK_HEIGHT = 0.5  # m
_BRICK_LENGTH = 1.0  # m
_MORTAR = 0.06  # fraction of a brick that is mortar
_TEXELS_PER_METRE = 20.0


class Renderer:
    """Renders first-person views of one world layout.

    Args:
        layout: The world to draw (walls, floor, pillars).
        width: Image width (px).
        height: Image height (px).
        fov_deg: Horizontal field of view (degrees); pixels are square.
    """

    def __init__(
        self, layout: WorldLayout, width: int = 160, height: int = 120, fov_deg: float = 90.0
    ) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"frame size must be at least 2x2, got {width}x{height}")
        if not 10.0 <= fov_deg <= 170.0:
            raise ValueError(f"fov_deg must be in [10, 170], got {fov_deg}")
        self.layout = layout
        self.width = width
        self.height = height
        half_width = math.tan(math.radians(fov_deg) / 2.0)
        focal = (width / 2.0) / half_width  # px
        # Per column: offset of the ray to the right, per unit of forward depth.
        self._right_offset = (
            ((np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0) * half_width
        ).astype(np.float32)
        # Per row: height gained per unit of forward depth (positive above the horizon).
        self._slope = (height / 2.0 - (np.arange(height, dtype=np.float32) + 0.5)) / focal
        self._slope = self._slope.astype(np.float32)
        # Rows below the horizon see the floor where no wall is nearer; the rest see the sky.
        self._floor_start = int(np.count_nonzero(self._slope >= 0.0))
        self._sky_colors = self._sky_gradient()[: self._floor_start]
        self._courses = int(WALL_HEIGHT // _BRICK_HEIGHT) + 1  # a top course at exactly 3 m

        walls = layout.walls
        self._wall_start = np.array([w.start for w in walls], dtype=np.float32)  # (N, 2)
        self._wall_vector = np.array(
            [(w.end[0] - w.start[0], w.end[1] - w.start[1]) for w in walls], dtype=np.float32
        )
        self._wall_length = np.array([w.length for w in walls], dtype=np.float32)
        self._wall_color = np.array([w.color for w in walls], dtype=np.float32)
        normals = np.stack([-self._wall_vector[:, 1], self._wall_vector[:, 0]], axis=1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
        # Faces lit by how squarely they face the light; either side of a wall alike.
        self._wall_light = (0.65 + 0.35 * np.abs(normals @ _LIGHT)).astype(np.float32)

        self._floor_texels, self._floor_palette, self._floor_origin = self._bake_floor()
        self._pillar_color = np.array([p.color for p in layout.pillars], dtype=np.float32)

    def render(self, world: World) -> npt.NDArray[np.uint8]:
        """The avatar's view of ``world`` now: an ``(height, width, 3)`` RGB uint8 image."""
        return self.render_view(world.pose, world.eye_height, world.pillar_positions())

    def render_view(
        self,
        pose: Pose,
        eye_height: float = EYE_HEIGHT,
        pillar_positions: list[Point] | None = None,
    ) -> npt.NDArray[np.uint8]:
        """The view from ``pose`` with the camera ``eye_height`` above the floor.

        Args:
            pose: Camera position and yaw.
            eye_height: Camera height (m), between the floor and the top of the walls.
            pillar_positions: Where each of the layout's pillars is; none drawn if None.

        Returns:
            An ``(height, width, 3)`` RGB uint8 image.
        """
        eye = float(np.clip(eye_height, 0.05, WALL_HEIGHT - 0.05))
        origin, rays = self._view_rays(pose)
        depth, wall_index, along = self._cast_walls(origin, rays)
        palette = _Palette(self._sky_colors)
        keys = np.empty((self.height, self.width), dtype=np.int32)
        keys[: self._floor_start] = np.arange(self._floor_start, dtype=np.int32)[:, None]
        self._draw_floor(keys, palette, origin, rays, eye)
        self._draw_walls(keys, palette, depth, wall_index, along, eye)
        if pillar_positions:
            self._draw_pillars(keys, palette, origin, rays, eye, depth, pillar_positions)
        return palette.paint(keys)

    def _view_rays(self, pose: Pose) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The camera's position ``(2,)`` and one ray per column ``(W, 2)``.

        Rays have a unit forward component, so ray parameters are forward depths.
        """
        cos_yaw, sin_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
        forward = np.array([cos_yaw, sin_yaw], dtype=np.float32)
        right = np.array([sin_yaw, -cos_yaw], dtype=np.float32)
        origin = np.array([pose.x, pose.y], dtype=np.float32)
        return origin, forward[None, :] + self._right_offset[:, None] * right[None, :]

    def _cast_walls(
        self, origin: npt.NDArray[np.float32], rays: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        # Solve origin + t * ray = start + s * vector for every (column, wall) pair.
        to_start = self._wall_start - origin  # (N, 2)
        vec = self._wall_vector
        denominator = rays[:, 0:1] * vec[None, :, 1] - rays[:, 1:2] * vec[None, :, 0]  # (W, N)
        cross_start_vec = to_start[:, 0] * vec[:, 1] - to_start[:, 1] * vec[:, 0]  # (N,)
        cross_start_ray = to_start[None, :, 0] * rays[:, 1:2] - to_start[None, :, 1] * rays[:, 0:1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = cross_start_vec[None, :] / denominator
            s = cross_start_ray / denominator
        hit = (np.abs(denominator) > 1e-9) & (t > 1e-4) & (s >= 0.0) & (s <= 1.0)
        t = np.where(hit, t, np.float32(_FAR))
        wall_index = np.argmin(t, axis=1)
        columns = np.arange(self.width)
        depth = t[columns, wall_index].astype(np.float32)
        along = (s[columns, wall_index] * self._wall_length[wall_index]).astype(np.float32)
        return depth, wall_index, np.nan_to_num(along)

    def _draw_floor(
        self,
        keys: npt.NDArray[np.int32],
        palette: "_Palette",
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        eye: float,
    ) -> None:
        floor_depth = eye / -self._slope[self._floor_start :]  # (R,)
        texture = self._floor_texels
        texel = []
        for axis, size in ((0, texture.shape[1]), (1, texture.shape[0])):
            # The floor point each pixel sees, in texels; truncation equals floor here, as
            # everything below 0 is clipped to texel 0 either way.
            point = floor_depth[:, None] * rays[None, :, axis]  # (R, W)
            point += origin[axis]
            point -= self._floor_origin[axis]
            point *= np.float32(_TEXELS_PER_METRE)
            index = point.astype(np.int32)
            texel.append(np.clip(index, 0, size - 1, out=index))
        flat = texel[1] * np.int32(texture.shape[1]) + texel[0]
        # Each floor colour, hazed by each row's distance: (R, colours, 3).
        colors = _haze(self._floor_palette[None, :, :], floor_depth[:, None])
        first = palette.add(colors.reshape(-1, 3))
        rows = np.arange(len(floor_depth), dtype=np.int32)[:, None] * len(self._floor_palette)
        keys[self._floor_start :] = texture.ravel()[flat] + (rows + first)

    def _draw_walls(
        self,
        keys: npt.NDArray[np.int32],
        palette: "_Palette",
        depth: npt.NDArray[np.float32],
        wall_index: npt.NDArray[np.intp],
        along: npt.NDArray[np.float32],
        eye: float,
    ) -> None:
        # Per column, one colour per brick course and one for mortar, as the brick pattern is
        # a function of the course and of where along its wall the column looks.
        course_index = np.arange(self._courses, dtype=np.float32)[None, :]  # (1, C)
        stagger = (course_index % 2.0) * 0.5
        brick = along[:, None] / _BRICK_LENGTH + stagger  # (W, C)
        joint = (brick % 1.0) < _MORTAR * _BRICK_HEIGHT / _BRICK_LENGTH
        variation = 0.9 + 0.1 * np.cos(course_index * 1.7 + np.floor(brick) * 2.3)
        brightness = np.empty((self.width, self._courses + 1), dtype=np.float32)
        brightness[:, 0] = np.float32(0.55)
        brightness[:, 1:] = np.where(joint, np.float32(0.55), variation)
        brightness *= self._wall_light[wall_index][:, None]
        colors = self._wall_color[wall_index][:, None, :] * brightness[..., None]  # (W, C+1, 3)
        colors = _haze(colors, depth[:, None])
        first = palette.add(colors.reshape(-1, 3))

        heights = eye + self._slope[:, None] * depth[None, :]  # (H, W) height seen on the wall
        on_wall = (heights >= 0.0) & (heights <= WALL_HEIGHT)
        course = heights / _BRICK_HEIGHT
        whole = np.floor(course)
        # Mortar between courses; the exact remainder for heights >= 0, all that is drawn.
        mortar = (course - whole) < _MORTAR
        np.clip(whole, 0.0, self._courses - 1, out=whole)
        wall_keys = whole.astype(np.int32)
        wall_keys += 1
        wall_keys[mortar] = 0
        wall_keys += (np.arange(self.width, dtype=np.int32) * (self._courses + 1) + first)[None, :]
        np.copyto(keys, wall_keys, where=on_wall)

    def _draw_pillars(
        self,
        keys: npt.NDArray[np.int32],
        palette: "_Palette",
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        eye: float,
        wall_depth: npt.NDArray[np.float32],
        positions: list[Point],
    ) -> None:
        for index, t, visible in self._pillar_hits(origin, rays, wall_depth, positions):
            pillar, center = self.layout.pillars[index], positions[index]
            seen = np.flatnonzero(visible)
            # Only the columns from the first to the last that see the pillar.
            span = slice(int(seen[0]), int(seen[-1]) + 1)
            t, visible = t[span], visible[span]
            hit_points = origin + t[:, None] * rays[span] - np.asarray(center, dtype=np.float32)
            normals = hit_points / pillar.radius
            light = 0.45 + 0.55 * np.clip(normals @ _LIGHT, 0.0, 1.0)  # (w,)
            # Horizontal bands, so a pillar's height and distance read at a glance: per column
            # one colour for the light bands, one for the dark.
            shade = light.astype(np.float64)[:, None] * np.array([1.0, 0.75])  # (w, 2)
            colors = self._pillar_color[index][None, None, :] * shade[..., None]
            colors = _haze(colors.astype(np.float32), t[:, None])
            first = palette.add(colors.reshape(-1, 3))
            heights = eye + self._slope[:, None] * t[None, :]  # (H, w)
            covered = visible[None, :] & (heights >= 0.0) & (heights <= pillar.height)
            dark = ((heights / 0.4) % 2.0 >= 1.0).astype(np.int32)
            dark += (np.arange(len(t), dtype=np.int32) * 2 + first)[None, :]
            np.copyto(keys[:, span], dark, where=covered)

    def _pillar_hits(
        self,
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        wall_depth: npt.NDArray[np.float32],
        positions: list[Point],
    ) -> Iterator[tuple[int, npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
        """Far to near (nearer ones paint over), each pillar some column sees before its wall.

        Yields:
            The pillar's index, per column the depth of its nearest hit, and which columns see
            it.

        Raises:
            ValueError: If there is not one position per pillar of the layout.
        """
        centers = np.asarray(positions, dtype=np.float32).reshape(-1, 2)
        pillars = self.layout.pillars
        if len(centers) != len(pillars):
            raise ValueError(f"expected {len(pillars)} pillar positions, got {len(centers)}")
        ray_sq = np.einsum("wk,wk->w", rays, rays)  # (W,)
        distances = np.linalg.norm(centers - origin, axis=1)
        for index in np.argsort(-distances):
            offset = origin - centers[index]
            c = float(offset @ offset) - pillars[index].radius ** 2
            if c <= 0.0:
                continue  # the camera is inside this pillar: nothing sensible to draw
            b = rays @ offset  # (W,)
            discriminant = b * b - ray_sq * c
            visible = discriminant >= 0.0
            if not visible.any():
                continue
            t = (-b - np.sqrt(np.maximum(discriminant, 0.0))) / ray_sq  # nearest hit depth
            visible &= (t > 0.0) & (t < wall_depth)
            if visible.any():
                yield int(index), t, visible

    def _sky_gradient(self) -> npt.NDArray[np.float32]:
        # Rows above the horizon blend from haze-blue at the horizon to deeper blue above.
        elevation = np.clip(self._slope / max(float(self._slope.max()), 1e-6), 0.0, 1.0)
        return (
            _SKY_HORIZON[None, :] * (1.0 - elevation[:, None])
            + _SKY_ZENITH[None, :] * elevation[:, None]
        ).astype(np.float32)

    def _bake_floor(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The floor as texels holding an index into its few colours, those colours, its origin."""
        x_min, y_min, x_max, y_max = self.layout.bounds
        columns = math.ceil((x_max - x_min) * _TEXELS_PER_METRE)
        rows = math.ceil((y_max - y_min) * _TEXELS_PER_METRE)
        xs = x_min + (np.arange(columns) + 0.5) / _TEXELS_PER_METRE
        ys = y_min + (np.arange(rows) + 0.5) / _TEXELS_PER_METRE
        grid_x, grid_y = np.meshgrid(xs, ys)
        texture = self.layout.floor_colors(grid_x, grid_y)
        colors, texels = np.unique(texture.reshape(-1, 3), axis=0, return_inverse=True)
        return (
            texels.reshape(rows, columns).astype(np.int32),
            colors.astype(np.float32),
            np.array([x_min, y_min], dtype=np.float32),
        )


class _Palette:
    """The colours of one frame, gathered as each part is drawn; pixels hold indices into it.

    Every pixel's colour is a function of a few numbers (its row for the sky; its row and floor
    colour; its column and brick course; its column and pillar band), so each part computes
    those few colours and writes only their indices per pixel, and the frame is one lookup.
    """

    def __init__(self, first: npt.NDArray[np.float32]) -> None:
        self._parts = [first]
        self._size = len(first)

    def add(self, colors: npt.NDArray[np.float32]) -> int:
        """Appends ``(N, 3)`` colours; returns the index of the first."""
        first = self._size
        self._parts.append(colors)
        self._size += len(colors)
        return first

    def paint(self, keys: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
        """The ``(H, W, 3)`` RGB image whose pixels are the colours at ``keys``."""
        colors = np.clip(np.concatenate(self._parts), 0.0, 255.0).astype(np.uint8)
        return np.take(colors, keys, axis=0)


def _haze(
    colors: npt.NDArray[np.float32], depth: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Blends ``colors`` toward the haze colour with distance ``depth`` (broadcast)."""
    keep = np.exp(-np.asarray(depth, dtype=np.float32) / np.float32(_HAZE_DISTANCE))[..., None]
    return colors * keep + _HAZE_COLOR * (1.0 - keep)
