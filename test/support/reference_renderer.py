"""The renderer's drawing as it was before it drew through a palette (commit 3c5a9ac).

The test checks that the faster renderer gives the same image for the same state. This keeps
the old drawing (per-pixel float colours, clipped at the end) unchanged over the renderer's
geometry (rays, wall casting, sky gradient, constants), which the palette change left as it was.
"""

import math

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from pamiq_ros.sim.renderer import (
    _BRICK_HEIGHT,
    _BRICK_LENGTH,
    _LIGHT,
    _MORTAR,
    _TEXELS_PER_METRE,
    Renderer,
    _haze,
)
from pamiq_ros.sim.world import EYE_HEIGHT, WALL_HEIGHT, Point, Pose, WorldLayout


class ReferenceRenderer(Renderer):
    """The old per-pixel drawing over the same geometry."""

    def __init__(
        self, layout: WorldLayout, width: int = 160, height: int = 120, fov_deg: float = 90.0
    ) -> None:
        super().__init__(layout, width, height, fov_deg)
        self._floor_rows = np.nonzero(self._slope < 0.0)[0]
        self._sky = self._sky_gradient()
        self._floor_texture, _ = self._bake_floor_colors()

    @override
    def render_view(
        self,
        pose: Pose,
        eye_height: float = EYE_HEIGHT,
        pillar_positions: list[Point] | None = None,
    ) -> npt.NDArray[np.uint8]:
        """The old drawing of the view from ``pose`` (see the base class)."""
        eye = float(np.clip(eye_height, 0.05, WALL_HEIGHT - 0.05))
        origin, rays = self._view_rays(pose)
        depth, wall_index, along = self._cast_walls(origin, rays)
        image = np.empty((self.height, self.width, 3), dtype=np.float32)
        image[:] = self._sky[:, None, :]
        self._old_draw_floor(image, origin, rays, eye)
        self._old_draw_walls(image, depth, wall_index, along, eye)
        if pillar_positions:
            self._old_draw_pillars(image, origin, rays, eye, depth, pillar_positions)
        return np.clip(image, 0.0, 255.0).astype(np.uint8)

    def _old_draw_floor(
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

    def _old_draw_walls(
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

    def _old_draw_pillars(
        self,
        image: npt.NDArray[np.float32],
        origin: npt.NDArray[np.float32],
        rays: npt.NDArray[np.float32],
        eye: float,
        wall_depth: npt.NDArray[np.float32],
        positions: list[Point],
    ) -> None:
        for index, t, visible in self._pillar_hits(origin, rays, wall_depth, positions):
            pillar, center = self.layout.pillars[index], np.asarray(positions[index], np.float32)
            heights = eye + self._slope[:, None] * t[None, :]
            covered = visible[None, :] & (heights >= 0.0) & (heights <= pillar.height)
            hit_points = origin + t[:, None] * rays - center  # (W, 2) from the axis
            normals = hit_points / pillar.radius
            light = 0.45 + 0.55 * np.clip(normals @ _LIGHT, 0.0, 1.0)  # (W,)
            # Horizontal bands, so a pillar's height and distance read at a glance.
            bands = np.where((heights / 0.4) % 2.0 < 1.0, 1.0, 0.75)
            colors = self._pillar_color[index][None, None, :] * (light[None, :] * bands)[..., None]
            colors = _haze(colors.astype(np.float32), t[None, :])
            image[covered] = colors[covered]

    def _bake_floor_colors(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        x_min, y_min, x_max, y_max = self.layout.bounds
        columns = math.ceil((x_max - x_min) * _TEXELS_PER_METRE)
        rows = math.ceil((y_max - y_min) * _TEXELS_PER_METRE)
        xs = x_min + (np.arange(columns) + 0.5) / _TEXELS_PER_METRE
        ys = y_min + (np.arange(rows) + 0.5) / _TEXELS_PER_METRE
        grid_x, grid_y = np.meshgrid(xs, ys)
        texture = self.layout.floor_colors(grid_x, grid_y).astype(np.float32)
        return texture, np.array([x_min, y_min], dtype=np.float32)
