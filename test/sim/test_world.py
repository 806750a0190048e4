import math
import random
from dataclasses import replace

import numpy as np
import pytest

from pamiq_ros.sim.world import (
    AVATAR_RADIUS,
    EYE_HEIGHT,
    MotionCommand,
    Pillar,
    Pose,
    World,
    _closest_point,
    _segments_cross,
    default_layout,
)

DT = 0.05


def run(world: World, command: MotionCommand, seconds: float, dt: float = DT) -> None:
    for _ in range(round(seconds / dt)):
        world.step(dt, command)


def test_forward_at_yaw_zero_moves_along_x() -> None:
    world = World()
    run(world, MotionCommand(forward=1.0), 1.0)
    assert world.pose.x == pytest.approx(1.0, abs=1e-6)
    assert world.pose.y == pytest.approx(0.0, abs=1e-9)


def test_forward_follows_the_heading_and_left_is_positive_y() -> None:
    world = World()
    world.pose = Pose(0.0, 0.0, math.pi / 2)
    run(world, MotionCommand(forward=1.0), 1.0)
    assert world.pose.x == pytest.approx(0.0, abs=1e-6)
    assert world.pose.y == pytest.approx(1.0, abs=1e-6)

    world = World()
    run(world, MotionCommand(left=1.0), 1.0)
    assert world.pose.y == pytest.approx(1.0, abs=1e-6)  # REP-103: +y is left
    assert world.pose.x == pytest.approx(0.0, abs=1e-9)


def test_positive_yaw_rate_turns_counter_clockwise_and_wraps() -> None:
    world = World()
    run(world, MotionCommand(yaw_rate=1.0), 1.0)
    assert world.pose.yaw == pytest.approx(1.0, abs=1e-9)
    run(world, MotionCommand(yaw_rate=1.5), 2.0)  # 1 + 3 = 4 rad -> 4 - 2*pi
    assert world.pose.yaw == pytest.approx(4.0 - 2 * math.pi, abs=1e-9)
    assert -math.pi < world.pose.yaw <= math.pi


def test_speeds_are_clamped_to_running_and_turn_speed() -> None:
    world = World(walk_speed=2.0, turn_speed=1.5)
    assert world.max_linear_speed == 4.0
    run(world, MotionCommand(forward=100.0), 0.5)
    assert world.pose.x == pytest.approx(4.0 * 0.5, rel=1e-6)
    run(world, MotionCommand(yaw_rate=-100.0), 0.5)
    assert world.pose.yaw == pytest.approx(-1.5 * 0.5, abs=1e-9)

    world = World(walk_speed=2.0)
    run(world, MotionCommand(forward=10.0, left=10.0), 0.5)  # diagonal limited by its length
    assert math.hypot(world.pose.x, world.pose.y) == pytest.approx(2.0, rel=1e-3)


def test_walking_into_the_outer_wall_stops_at_the_wall() -> None:
    world = World()
    world.pose = Pose(8.0, 0.0, 0.0)  # facing the east wall at x = 10
    run(world, MotionCommand(forward=4.0), 3.0)
    assert world.pose.x == pytest.approx(10.0 - AVATAR_RADIUS, abs=1e-6)
    assert world.collisions > 0


def test_walking_diagonally_into_a_wall_slides_along_it() -> None:
    world = World()
    world.pose = Pose(9.0, 0.0, math.pi / 4)  # north-east into the east wall
    run(world, MotionCommand(forward=2.0), 1.0)
    assert world.pose.x == pytest.approx(10.0 - AVATAR_RADIUS, abs=1e-6)
    assert world.pose.y > 1.0  # kept the part of the motion along the wall


def test_a_long_step_does_not_pass_through_a_thin_interior_wall() -> None:
    world = World()
    world.pose = Pose(1.0, 5.0, 0.0)  # the orange spur is the segment x = 3, y in [2, 8]
    world.step(5.0, MotionCommand(forward=4.0))  # 20 m in one call
    assert world.pose.x == pytest.approx(3.0 - AVATAR_RADIUS, abs=1e-6)


def test_random_walks_never_cross_or_enter_a_wall() -> None:
    rng = random.Random(7)
    world = World(seed=3)
    walls = world.layout.walls
    for _ in range(3000):
        command = MotionCommand(
            forward=rng.uniform(-4.0, 4.0),
            left=rng.uniform(-4.0, 4.0),
            yaw_rate=rng.uniform(-1.5, 1.5),
        )
        before = world.pose
        world.step(rng.choice([0.01, 0.05, 0.2, 0.6]), command)
        after = world.pose
        for wall in walls:
            assert not _segments_cross(
                (before.x, before.y), (after.x, after.y), wall.start, wall.end
            )
            cx, cy = _closest_point(wall, after.x, after.y)
            assert math.hypot(after.x - cx, after.y - cy) >= AVATAR_RADIUS - 1e-6
    x_min, y_min, x_max, y_max = world.layout.bounds
    assert x_min < world.pose.x < x_max and y_min < world.pose.y < y_max


def test_the_avatar_cannot_walk_through_a_pillar() -> None:
    head_on = Pillar((255, 0, 0), radius=0.5, height=2.0, center=(3.0, 0.0))  # standing still
    world = World(layout=replace(default_layout(), pillars=(head_on,)))
    run(world, MotionCommand(forward=2.0), 3.0)
    assert world.pose.x == pytest.approx(3.0 - 0.5 - AVATAR_RADIUS, abs=1e-6)

    off_centre = replace(head_on, center=(3.0, 0.3))
    world = World(layout=replace(default_layout(), pillars=(off_centre,)))
    for _ in range(60):  # slides round its side, never through it
        world.step(DT, MotionCommand(forward=2.0))
        assert math.hypot(world.pose.x - 3.0, world.pose.y - 0.3) >= AVATAR_RADIUS + 0.5 - 1e-6
    assert world.pose.x > 3.0 and world.pose.y < 0.0


def test_a_moving_pillar_pushes_a_standing_avatar_aside() -> None:
    pillar = Pillar((255, 0, 0), 0.4, 2.0, center=(-2.0, 0.0), end=(2.0, 0.0), speed=1.0)
    world = World(layout=replace(default_layout(), pillars=(pillar,)))
    for _ in range(80):
        world.step(DT, MotionCommand())
        px, py = pillar.position(world.time)
        assert math.hypot(world.pose.x - px, world.pose.y - py) >= AVATAR_RADIUS + 0.4 - 1e-6
    assert world.pose != Pose()


def test_same_seed_and_commands_give_the_same_world() -> None:
    rng = random.Random(1)
    commands = [
        MotionCommand(
            rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-2, 2), jump=rng.random() < 0.05
        )
        for _ in range(400)
    ]
    worlds = [World(seed=5), World(seed=5)]
    for world in worlds:
        for command in commands:
            world.step(DT, command)
    assert worlds[0].pose == worlds[1].pose
    assert worlds[0].jump_height == worlds[1].jump_height
    assert worlds[0].pillar_positions() == worlds[1].pillar_positions()


def test_the_seed_changes_where_the_pillars_start() -> None:
    assert World(seed=0).pillar_positions() != World(seed=1).pillar_positions()
    assert default_layout(4) == default_layout(4)


def test_pillars_move_on_their_own_along_their_paths() -> None:
    world = World(seed=2)
    start = world.pillar_positions()
    trail = []
    for _ in range(100):
        world.step(0.1, MotionCommand())
        trail.append(world.pillar_positions())
    assert world.pose == Pose()  # standing still: only the pillars moved
    for index, pillar in enumerate(world.layout.pillars):
        positions = np.array([step[index] for step in trail])
        assert np.ptp(positions, axis=0).max() > 0.5, f"pillar {index} barely moved"
        if pillar.end is None:  # circle: constant distance from its centre
            radii = np.hypot(positions[:, 0] - pillar.center[0], positions[:, 1] - pillar.center[1])
            np.testing.assert_allclose(radii, pillar.path_radius, atol=1e-9)
        else:  # back and forth: on the segment, reaching both ends
            xs, ys = positions[:, 0], positions[:, 1]
            lo = np.minimum(pillar.center, pillar.end)
            hi = np.maximum(pillar.center, pillar.end)
            assert (xs >= lo[0] - 1e-9).all() and (xs <= hi[0] + 1e-9).all()
            assert (ys >= lo[1] - 1e-9).all() and (ys <= hi[1] + 1e-9).all()
    assert world.pillar_positions() != start


def test_jump_lifts_the_camera_for_a_moment_and_only_from_the_ground() -> None:
    world = World()
    world.step(DT, MotionCommand(jump=True))
    assert world.jump_height > 0.0
    heights = [world.jump_height]
    for _ in range(10):
        world.step(DT, MotionCommand(jump=True))  # held: no second jump in the air
        heights.append(world.jump_height)
    assert world.jumps == 1
    assert max(heights) == pytest.approx(0.52, abs=0.05)
    assert world.eye_height > EYE_HEIGHT
    run(world, MotionCommand(), 1.0)
    assert world.jump_height == 0.0
    assert world.eye_height == EYE_HEIGHT
    world.step(DT, MotionCommand(jump=True))
    assert world.jumps == 2


def test_invalid_steps_are_refused() -> None:
    world = World()
    with pytest.raises(ValueError, match="dt"):
        world.step(-0.1, MotionCommand())
    with pytest.raises(ValueError, match="finite"):
        world.step(0.1, MotionCommand(forward=float("nan")))
    with pytest.raises(ValueError, match="positive"):
        World(walk_speed=0.0)


def test_walls_and_floor_regions_have_distinct_colours_and_patterns() -> None:
    layout = default_layout()
    colors = [wall.color for wall in layout.walls]
    assert len(set(colors)) == len(colors)
    assert len(layout.walls) >= 4 + 3

    centres = [((r.x_min + r.x_max) / 2, (r.y_min + r.y_max) / 2) for r in layout.floor_regions]
    region_colors = {r.color_a for r in layout.floor_regions} | {layout.base_floor.color_a}
    assert len(region_colors) == len(layout.floor_regions) + 1
    for region, (cx, cy) in zip(layout.floor_regions, centres, strict=True):
        steps = (np.arange(3) - 1) * region.scale  # neighbouring squares or bands
        samples = layout.floor_colors(*np.meshgrid(cx + steps + 0.01, cy + steps + 0.01))
        seen = {tuple(int(v) for v in color) for color in samples.reshape(-1, 3)}
        assert seen == {region.color_a, region.color_b}, f"{region.pattern} not textured"
    grid = np.meshgrid(np.linspace(-9.9, 9.9, 200), np.linspace(-7.9, 7.9, 160))
    floor = layout.floor_colors(*grid)
    assert floor.shape == (160, 200, 3) and floor.dtype == np.uint8
    assert len(np.unique(floor.reshape(-1, 3), axis=0)) == 2 * len(region_colors)
