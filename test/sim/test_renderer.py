import math
import time

import numpy as np
import numpy.typing as npt
import pytest

from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import EYE_HEIGHT, Color, MotionCommand, Pose, World, default_layout

LAYOUT = default_layout()
FAR_BEHIND = (-9.5, -7.5)  # a spot out of view when facing +x from the middle of the room


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(LAYOUT, 160, 120)


def nearest(color: npt.NDArray[np.floating], palette: list[Color]) -> Color:
    distances = [np.linalg.norm(np.asarray(c, dtype=float) - color) for c in palette]
    return palette[int(np.argmin(distances))]


def difference(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize(("width", "height"), [(160, 120), (96, 72), (33, 17)])
def test_frames_have_the_configured_shape_and_dtype(width: int, height: int) -> None:
    world = World()
    frame = Renderer(world.layout, width, height).render(world)
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8
    assert frame.flags.c_contiguous


def test_different_poses_give_visibly_different_images(renderer: Renderer) -> None:
    poses = [
        Pose(0, 0, 0),
        Pose(0, 0, math.pi / 2),
        Pose(0, 0, math.pi),
        Pose(-6, -5, 0.7),
        Pose(1.0, 0, 0),
        Pose(0, 0, 0.2),
    ]
    frames = [renderer.render_view(pose) for pose in poses]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert difference(frames[i], frames[j]) > 3.0, (poses[i], poses[j])
    assert np.array_equal(frames[0], renderer.render_view(Pose(0, 0, 0)))  # deterministic


@pytest.mark.parametrize(
    ("pose", "wall_index"),
    [
        (Pose(8.0, 0.0, 0.0), 1),  # east wall, yellow
        (Pose(0.0, 6.0, math.pi / 2), 2),  # north wall, blue
        (Pose(0.0, -6.0, -math.pi / 2), 0),  # south wall, red
        (Pose(-8.0, 0.0, math.pi), 3),  # west wall, green
        (Pose(1.0, 5.0, 0.0), 5),  # the orange interior spur at x = 3
    ],
)
def test_the_wall_ahead_shows_its_own_colour(
    renderer: Renderer, pose: Pose, wall_index: int
) -> None:
    frame = renderer.render_view(pose)
    centre = frame[50:70, 70:90].reshape(-1, 3).astype(float)
    wall_colors = [wall.color for wall in LAYOUT.walls]

    # Compared by chromaticity, as shading and distance change the brightness.
    def chromaticity(color: object) -> npt.NDArray[np.float64]:
        values = np.asarray(color, dtype=float)
        return values / values.sum()

    seen = chromaticity(np.median(centre, axis=0))
    distances = [np.linalg.norm(chromaticity(color) - seen) for color in wall_colors]
    assert int(np.argmin(distances)) == wall_index
    # Bricks: mortar lines make the wall textured, not flat.
    assert centre.std(axis=0).max() > 5.0


def test_sky_above_and_floor_below(renderer: Renderer) -> None:
    frame = renderer.render_view(Pose(0.0, 0.0, 0.0)).astype(int)
    top, bottom = frame[0], frame[-1]
    assert (top[:, 2] > top[:, 0]).all()  # blue sky
    floor_colors = {LAYOUT.base_floor.color_a, LAYOUT.base_floor.color_b}
    assert {nearest(pixel, list(floor_colors)) for pixel in bottom} == floor_colors


@pytest.mark.parametrize("region_index", range(len(LAYOUT.floor_regions)))
def test_each_floor_region_shows_its_own_colours_and_texture(
    renderer: Renderer, region_index: int
) -> None:
    region = LAYOUT.floor_regions[region_index]
    centre_x = (region.x_min + region.x_max) / 2
    centre_y = (region.y_min + region.y_max) / 2
    # Stand 1 m before the centre facing +x: the bottom rows see the floor around the centre.
    frame = renderer.render_view(Pose(centre_x - 1.0, centre_y, 0.0))
    bottom = frame[-12:, 50:110].reshape(-1, 3).astype(float)
    palette = [LAYOUT.base_floor.color_a, LAYOUT.base_floor.color_b]
    for other in LAYOUT.floor_regions:
        palette += [other.color_a, other.color_b]
    seen = {nearest(pixel, palette) for pixel in bottom}
    assert seen == {region.color_a, region.color_b}


def test_pillars_are_drawn_in_front_of_walls_and_hidden_behind_them(renderer: Renderer) -> None:
    out_of_view = [FAR_BEHIND] * len(LAYOUT.pillars)
    pose = Pose(0.0, 5.0, 0.0)  # facing the orange spur (x = 3) 3 m ahead
    no_pillars = renderer.render_view(pose)
    assert np.array_equal(renderer.render_view(pose, EYE_HEIGHT, out_of_view), no_pillars)

    in_front = list(out_of_view)
    in_front[0] = (1.5, 5.0)  # the magenta pillar between the camera and the wall
    frame = renderer.render_view(pose, EYE_HEIGHT, in_front)
    centre = np.median(frame[55:65, 75:85].reshape(-1, 3).astype(float), axis=0)
    magenta = LAYOUT.pillars[0].color
    assert nearest(centre, [magenta, LAYOUT.walls[5].color]) == magenta

    behind = list(out_of_view)
    behind[0] = (5.0, 5.0)  # the same pillar on the far side of the wall
    assert np.array_equal(renderer.render_view(pose, EYE_HEIGHT, behind), no_pillars)


def test_a_nearer_pillar_covers_a_farther_one(renderer: Renderer) -> None:
    positions = [FAR_BEHIND] * len(LAYOUT.pillars)
    positions[0] = (5.0, 0.0)  # magenta, far
    positions[2] = (2.0, 0.0)  # orange, near, same bearing
    frame = renderer.render_view(Pose(0.0, 0.0, 0.0), EYE_HEIGHT, positions)
    centre = np.median(frame[55:65, 78:82].reshape(-1, 3).astype(float), axis=0)
    colors = [LAYOUT.pillars[0].color, LAYOUT.pillars[2].color]
    assert nearest(centre, colors) == LAYOUT.pillars[2].color


def test_render_follows_the_worlds_moving_pillars(renderer: Renderer) -> None:
    world = World(seed=0)  # facing +x: the cyan pillar shuttles across the view at x = 6.5
    first = renderer.render(world)
    for _ in range(10):
        world.step(0.1, MotionCommand())
    assert world.pose == Pose()
    assert difference(first, renderer.render(world)) > 0.2


def test_a_jump_raises_the_camera(renderer: Renderer) -> None:
    standing = renderer.render_view(Pose(), EYE_HEIGHT)
    jumping = renderer.render_view(Pose(), EYE_HEIGHT + 0.5)
    assert difference(standing, jumping) > 3.0

    # Higher up, the far wall's top drops in the image: more sky rows above the east wall.
    def sky_rows(frame: npt.NDArray[np.uint8]) -> int:
        column = frame[:, 80].astype(int)
        is_sky = column[:, 2] - column[:, 0] >= 50  # the sky is blue; the east wall yellow
        return int(np.argmin(is_sky))

    assert sky_rows(jumping) > sky_rows(standing)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Renderer(LAYOUT, 1, 120)
    with pytest.raises(ValueError, match="fov"):
        Renderer(LAYOUT, 160, 120, fov_deg=180.0)
    with pytest.raises(ValueError, match="pillar positions"):
        Renderer(LAYOUT, 16, 12).render_view(Pose(), EYE_HEIGHT, [(0.0, 0.0)])


def test_160x120_renders_in_a_few_milliseconds(renderer: Renderer) -> None:
    world = World()
    renderer.render(world)  # warm-up
    frames = 40
    start = time.perf_counter()
    for index in range(frames):
        world.pose = Pose(0.0, 0.0, index * 0.1)
        renderer.render(world)
    per_frame = (time.perf_counter() - start) / frames
    # About 2-3 ms here; the bound is loose so a busy machine does not fail it, yet a
    # per-pixel Python loop (hundreds of ms) would.
    assert per_frame < 0.03, f"{per_frame * 1e3:.1f} ms per frame"


@pytest.mark.parametrize(("width", "height"), [(160, 120), (33, 17), (320, 240)])
def test_the_same_state_gives_the_same_image_as_the_reference_renderer(
    width: int, height: int
) -> None:
    from test.support.reference_renderer import ReferenceRenderer

    world = World(seed=3)
    fast, reference = (
        Renderer(world.layout, width, height),
        ReferenceRenderer(world.layout, width, height),
    )
    rng = np.random.default_rng(width)
    for case in range(12):
        pose = Pose(rng.uniform(-9.5, 9.5), rng.uniform(-7.5, 7.5), rng.uniform(-4.0, 4.0))
        eye = float(rng.uniform(0.0, 3.2))  # clipped to the walls' height inside
        pillars = (
            world.pillar_positions()
            if case % 3 == 0
            else [(rng.uniform(-9, 9), rng.uniform(-7, 7)) for _ in world.layout.pillars]
        )
        expected = reference.render_view(pose, eye, pillars)
        assert np.array_equal(fast.render_view(pose, eye, pillars), expected), (pose, eye)
