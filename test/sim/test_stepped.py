"""The simulated world as a SteppedWorld: what the fast benchmarks step without ROS."""

import numpy as np
import pytest

from pamiq_ros.core.actions import ActionChoice, ActionMapper, Move, Turn
from pamiq_ros.sim.stepped import NO_REGION, SimSteppedWorld, floor_region_index
from pamiq_ros.sim.world import default_layout

MAPPER = ActionMapper(linear_speed=2.0, angular_speed=1.5)
FORWARD = MAPPER.to_action(ActionChoice(move=Move.FORWARD))
TURN_LEFT = MAPPER.to_action(ActionChoice(turn=Turn.LEFT))


def test_reset_gives_the_start_pose_a_frame_of_the_asked_size_and_no_episode_end():
    world = SimSteppedWorld(seed=0, width=80, height=60)
    step = world.reset()
    assert step.frame.shape == (60, 80, 3) and step.frame.dtype == np.uint8
    assert step.position == (0.0, 0.0)
    assert step.info["yaw"] == 0.0 and step.info["time"] == 0.0
    assert step.info["region"] == 3.0  # the diagonal-striped square around the origin
    assert not step.episode_over and step.extrinsic_reward == 0.0
    assert world.name == "sim" and world.cell_size == 1.0


def test_moving_forward_changes_the_position_and_the_view():
    world = SimSteppedWorld(seed=0, width=80, height=60)
    first = world.reset()
    after = world.step(FORWARD, 0.5)
    assert after.position is not None
    assert after.position[0] == pytest.approx(1.0)  # 2 m/s for 0.5 s along +x (yaw 0)
    assert after.position[1] == pytest.approx(0.0)
    assert after.info["time"] == pytest.approx(0.5)
    assert not np.array_equal(first.frame, after.frame)


def test_turning_changes_the_yaw_but_not_the_position():
    world = SimSteppedWorld(seed=0)
    world.reset()
    after = world.step(TURN_LEFT, 1.0)
    assert after.position == pytest.approx((0.0, 0.0))
    assert after.info["yaw"] == pytest.approx(1.5)


def test_a_wall_stops_the_avatar():
    world = SimSteppedWorld(seed=0, width=40, height=30)
    world.reset()
    # Facing +x from the origin, the east wall is at x = 10: walk far more than 10 m.
    for _ in range(60):
        step = world.step(FORWARD, 0.5)
    assert step.position is not None
    assert step.position[0] == pytest.approx(10.0 - 0.3, abs=1e-6)  # wall minus the radius
    stopped = world.step(FORWARD, 0.5)
    assert stopped.position == pytest.approx(step.position)


def test_reset_with_another_seed_restarts_at_the_start_and_moves_the_pillars():
    world = SimSteppedWorld(seed=0, width=40, height=30)
    world.reset()
    world.step(FORWARD, 1.0)
    again = world.reset(seed=0)
    assert again.position == (0.0, 0.0) and again.info["time"] == 0.0
    other = world.reset(seed=5)
    assert other.position == (0.0, 0.0)
    pillars = [pillar.position(0.0) for pillar in world.layout.pillars]
    assert pillars != [pillar.position(0.0) for pillar in default_layout(0).pillars]


def test_floor_region_index_names_each_region_and_the_base_floor():
    layout = default_layout(0)
    assert floor_region_index(layout, 0.0, 0.0) == 3  # yellow diagonal square, third region
    assert floor_region_index(layout, -9.0, -7.0) == 1  # south-west stripes
    assert floor_region_index(layout, 9.0, 7.0) == 2  # north-east checker
    assert floor_region_index(layout, 4.0, -1.0) == NO_REGION
    assert floor_region_index(layout, -8.0, 5.0) == 4  # west green stripes
    assert floor_region_index(layout, 8.0, -5.0) == 5  # east violet checker
    assert floor_region_index(layout, 2.0, 0.0) == NO_REGION  # regions are half-open
