"""The renderer as it was before it drew through a palette (commit 3c5a9ac), kept as a reference.

The test checks that the faster renderer gives the same image for the same state; this copy is
the old code unchanged but for this docstring (per-pixel float colours, clipped at the end).
"""

import math

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
        self._floor_rows = np.nonzero(self._slope < 0.0)[0]
        self._sky = self._sky_gradient()

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

        self._floor_texture, self._floor_origin = self._bake_floor()
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
        cos_yaw, sin_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
        forward = np.array([cos_yaw, sin_yaw], dtype=np.float32)
        right = np.array([sin_yaw, -cos_yaw], dtype=np.float32)
        origin = np.array([pose.x, pose.y], dtype=np.float32)
        # Ray directions with unit forward component, so ray parameters are forward depths.
        rays = forward[None, :] + self._right_offset[:, None] * right[None, :]  # (W, 2)

        depth, wall_index, along = self._cast_walls(origin, rays)
        image = np.empty((self.height, self.width, 3), dtype=np.float32)
        image[:] = self._sky[:, None, :]
        self._draw_floor(image, origin, rays, eye)
        self._draw_walls(image, depth, wall_index, along, eye)
        if pillar_positions:
            self._draw_pillars(image, origin, rays, eye, depth, pillar_positions)
        return np.clip(image, 0.0, 255.0).astype(np.uint8)

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
        image: npt.NDArray[np.float32],
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        eye: float,
    ) -> None:
        rows = self._floor_rows
        floor_depth = eye / -self._slope[rows]  # (R,)
        points = origin + floor_depth[:, None, None] * rays[None, :, :]  # (R, W, 2)
        texel = np.floor((points - self._floor_origin) * np.float32(_TEXELS_PER_METRE)).astype(
            np.intp
        )
        texture = self._floor_texture
        ix = np.clip(texel[..., 0], 0, texture.shape[1] - 1)
        iy = np.clip(texel[..., 1], 0, texture.shape[0] - 1)
        colors = texture[iy, ix]  # (R, W, 3)
        image[rows] = _haze(colors, floor_depth[:, None])

    def _draw_walls(
        self,
        image: npt.NDArray[np.float32],
        depth: npt.NDArray[np.float32],
        wall_index: npt.NDArray[np.intp],
        along: npt.NDArray[np.float32],
        eye: float,
    ) -> None:
        heights = eye + self._slope[:, None] * depth[None, :]  # (H, W) height seen on the wall
        on_wall = (heights >= 0.0) & (heights <= WALL_HEIGHT)
        # Bricks: mortar lines between courses and staggered joints within each course.
        course = heights / _BRICK_HEIGHT
        course_index = np.floor(course)
        stagger = (course_index % 2.0) * 0.5
        brick = along[None, :] / _BRICK_LENGTH + stagger
        joint = brick % 1.0
        mortar = ((course % 1.0) < _MORTAR) | (joint < _MORTAR * _BRICK_HEIGHT / _BRICK_LENGTH)
        # A slight per-brick variation so flat walls still show texture at a distance.
        variation = 0.9 + 0.1 * np.cos(course_index * 1.7 + np.floor(brick) * 2.3)
        brightness = np.where(mortar, 0.55, variation) * self._wall_light[wall_index][None, :]
        colors = self._wall_color[wall_index][None, :, :] * brightness[..., None]
        colors = _haze(colors, depth[None, :])
        image[on_wall] = colors[on_wall]

    def _draw_pillars(
        self,
        image: npt.NDArray[np.float32],
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        eye: float,
        wall_depth: npt.NDArray[np.float32],
        positions: list[Point],
    ) -> None:
        centers = np.asarray(positions, dtype=np.float32).reshape(-1, 2)
        pillars = self.layout.pillars
        if len(centers) != len(pillars):
            raise ValueError(f"expected {len(pillars)} pillar positions, got {len(centers)}")
        ray_sq = np.einsum("wk,wk->w", rays, rays)  # (W,)
        distances = np.linalg.norm(centers - origin, axis=1)
        # Far to near, so nearer pillars paint over farther ones.
        for index in np.argsort(-distances):
            pillar = pillars[index]
            offset = origin - centers[index]
            c = float(offset @ offset) - pillar.radius**2
            if c <= 0.0:
                continue  # the camera is inside this pillar: nothing sensible to draw
            b = rays @ offset  # (W,)
            discriminant = b * b - ray_sq * c
            visible = discriminant >= 0.0
            if not visible.any():
                continue
            t = (-b - np.sqrt(np.maximum(discriminant, 0.0))) / ray_sq  # nearest hit depth
            visible &= (t > 0.0) & (t < wall_depth)
            if not visible.any():
                continue
            heights = eye + self._slope[:, None] * t[None, :]
            covered = visible[None, :] & (heights >= 0.0) & (heights <= pillar.height)
            hit_points = origin + t[:, None] * rays - centers[index]  # (W, 2) from the axis
            normals = hit_points / pillar.radius
            light = 0.45 + 0.55 * np.clip(normals @ _LIGHT, 0.0, 1.0)  # (W,)
            # Horizontal bands, so a pillar's height and distance read at a glance.
            bands = np.where((heights / 0.4) % 2.0 < 1.0, 1.0, 0.75)
            colors = self._pillar_color[index][None, None, :] * (light[None, :] * bands)[..., None]
            colors = _haze(colors.astype(np.float32), t[None, :])
            image[covered] = colors[covered]

    def _sky_gradient(self) -> npt.NDArray[np.float32]:
        # Rows above the horizon blend from haze-blue at the horizon to deeper blue above.
        elevation = np.clip(self._slope / max(float(self._slope.max()), 1e-6), 0.0, 1.0)
        return (
            _SKY_HORIZON[None, :] * (1.0 - elevation[:, None])
            + _SKY_ZENITH[None, :] * elevation[:, None]
        ).astype(np.float32)

    def _bake_floor(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        x_min, y_min, x_max, y_max = self.layout.bounds
        columns = math.ceil((x_max - x_min) * _TEXELS_PER_METRE)
        rows = math.ceil((y_max - y_min) * _TEXELS_PER_METRE)
        xs = x_min + (np.arange(columns) + 0.5) / _TEXELS_PER_METRE
        ys = y_min + (np.arange(rows) + 0.5) / _TEXELS_PER_METRE
        grid_x, grid_y = np.meshgrid(xs, ys)
        texture = self.layout.floor_colors(grid_x, grid_y).astype(np.float32)
        return texture, np.array([x_min, y_min], dtype=np.float32)


def _haze(
    colors: npt.NDArray[np.float32], depth: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Blends ``colors`` toward the haze colour with distance ``depth`` (broadcast)."""
    keep = np.exp(-np.asarray(depth, dtype=np.float32) / np.float32(_HAZE_DISTANCE))[..., None]
    return colors * keep + _HAZE_COLOR * (1.0 - keep)
