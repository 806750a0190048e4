"""Mouse look: turning, tilting the view by cropping a taller render, and using what is in front."""

import math

import numpy as np
import pytest

from pamiq_ros.sim.mouse_look import USE_REACTION_S, MouseLook, thing_in_front
from pamiq_ros.sim.world import Pose, World


def look() -> MouseLook:
    return MouseLook(frame_height=120, focal_px=80.0, pitch_margin=60, radians_per_pixel=0.002)


def test_moving_right_turns_clockwise_and_moving_up_looks_up_within_limits():
    mouse = look()
    assert mouse.yaw_rate(500.0) == pytest.approx(-1.0)
    world = World()
    mouse.step(0.5, -200.0, False, world)  # up on the screen is negative y
    assert mouse.pitch == pytest.approx(0.2)
    mouse.step(10.0, -200.0, False, world)
    assert mouse.pitch == pytest.approx(math.atan2(60, 80))  # the margin's limit
    mouse.step(10.0, 200.0, False, world)
    assert mouse.pitch == pytest.approx(-math.atan2(60, 80))


def test_pitch_moves_the_window_cut_out_of_the_taller_render():
    mouse = look()
    assert mouse.render_height == 240
    rows = np.repeat(np.arange(240, dtype=np.uint8)[:, None, None], 4, axis=1).repeat(3, axis=2)
    level = mouse.crop(rows)
    assert level.shape == (120, 4, 3) and level[0, 0, 0] == 60
    mouse.pitch = math.atan2(30, 80)  # looking up: the window moves up 30 rows
    assert mouse.crop(rows)[0, 0, 0] == 30
    mouse.pitch = -mouse.max_pitch_rad
    assert mouse.crop(rows)[0, 0, 0] == 120


def test_a_click_uses_the_thing_in_front_once_per_press_and_it_reacts():
    world = World()
    world.pose = Pose(-2.0, 0.0, 0.0)  # facing the hum at the centre, 2 m ahead
    front = thing_in_front(world)
    assert front is not None and front.name == "hum"
    mouse = look()
    reaction = mouse.step(0.05, 0.0, True, world)
    assert reaction is not None and reaction.thing.name == "hum" and mouse.uses == 1
    assert mouse.step(0.05, 0.0, True, world) is None and mouse.uses == 1  # held: one use
    flat = np.full((240, 30, 3), 10, dtype=np.uint8)
    flashed = mouse.crop(flat)
    assert flashed[60, 15].max() > 100 and flashed[5, 5].max() == 10  # the centre flashes
    chirp = mouse.use_emitter(now=100.0, world_time=world.time)
    assert chirp is not None and chirp.timbre == "use" and chirp.position == (0.0, 0.0)
    world.time += USE_REACTION_S + 0.1
    mouse.step(0.05, 0.0, False, world)
    assert mouse.reaction is None and mouse.use_emitter(100.0, world.time) is None
    world.pose = Pose(-2.0, 0.0, math.pi)  # facing away: nothing to use
    assert mouse.step(0.05, 0.0, True, world) is None and mouse.uses == 1
