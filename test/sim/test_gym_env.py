"""GymWorld on the shipped worlds and on Gymnasium's own: frames, actions, episodes, faults."""

import math
import os
import signal
import time
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import psutil  # type: ignore[import-untyped]
import pytest

from pamiq_ros.core.actions import Action, ActionChoice, ActionMapper, Motion, VRChatButtons
from pamiq_ros.sim.gym_env import (
    GYM_WORLDS,
    ActionMapping,
    GymWorld,
    GymWorldError,
    GymWorldSpec,
    make_world,
    parse_action_rules,
)
from test.support.gym_envs import RAISING_ID, RAISING_MESSAGE

MAPPER = ActionMapper()
FORWARD = MAPPER.to_action(ActionChoice(move=1))
TURN_LEFT = MAPPER.to_action(ActionChoice(turn=1))
TURN_RIGHT = MAPPER.to_action(ActionChoice(turn=2))
STOP = MAPPER.to_action(ActionChoice())
JUMP = MAPPER.to_action(ActionChoice(jump=1))


@pytest.fixture(params=sorted(GYM_WORLDS))
def shipped(request: pytest.FixtureRequest) -> Iterator[GymWorld]:
    world = make_world(request.param)
    yield world
    world.close()


def test_shipped_worlds_give_rgb_frames_of_their_size(shipped: GymWorld) -> None:
    spec = shipped.spec
    first = shipped.reset(seed=0)
    steps = [first] + [shipped.step(action, 0.1) for action in (FORWARD, TURN_LEFT, STOP)]
    expected = {"vizdoom_my_way_home": (120, 160, 3), "minigrid_four_rooms": (64, 64, 3)}
    for step in steps:
        assert step.frame.shape == expected[spec.name]
        assert step.frame.dtype == np.uint8
        assert step.frame.flags.c_contiguous
        assert step.position is not None
        assert step.frame.std() > 0  # a picture, not a blank
    assert not np.array_equal(steps[0].frame, steps[2].frame)  # turning changes the view


def test_forward_moves_and_turns_turn_in_both_shipped_worlds(shipped: GymWorld) -> None:
    start = shipped.reset(seed=0)
    assert start.position is not None
    moved = start
    for _ in range(3):
        moved = shipped.step(FORWARD, 0.1)
    assert moved.position is not None
    assert math.dist(start.position, moved.position) > 0.5 * shipped.cell_size
    before = moved.info["yaw"]
    turned = shipped.step(TURN_LEFT, 0.1)
    # A turn stays on the spot (Doom's momentum may still carry the body a little).
    assert turned.position == pytest.approx(moved.position, abs=shipped.cell_size / 2)
    assert turned.info["yaw"] != pytest.approx(before)


def test_standing_still_keeps_the_position(shipped: GymWorld) -> None:
    start = shipped.reset(seed=1)
    for _ in range(3):
        still = shipped.step(STOP, 0.1)
    assert still.position == pytest.approx(start.position)


def test_seeds_repeat_episodes_and_differ_between_them() -> None:
    world = make_world("minigrid_four_rooms")
    try:
        first = world.reset(seed=3)
        again = world.reset(seed=3)
        other = world.reset(seed=4)
    finally:
        world.close()
    assert np.array_equal(first.frame, again.frame) and first.position == again.position
    assert (other.position, other.info["yaw"]) != (first.position, first.info["yaw"])
    seeded = make_world("minigrid_four_rooms", seed=3)  # the seed of the first plain reset
    plain = make_world("minigrid_four_rooms")
    try:
        by_constructor = [seeded.reset().position for _ in range(3)]
        by_reset = [plain.reset(seed=3).position, plain.reset().position, plain.reset().position]
    finally:
        seeded.close()
        plain.close()
    assert by_constructor == by_reset and by_constructor[0] == first.position


def test_four_rooms_reports_the_room_as_region_by_quadrant() -> None:
    world = make_world("minigrid_four_rooms")
    try:
        rooms = set()
        for seed in range(12):
            step = world.reset(seed=seed)
            assert step.position is not None
            x, y = step.position
            assert step.info["region"] == 1 + int(x >= 9) + 2 * int(y >= 9)
            rooms.add(step.info["region"])
    finally:
        world.close()
    assert rooms <= {1.0, 2.0, 3.0, 4.0} and len(rooms) > 1


def test_multiroom_reports_the_room_the_agent_is_in() -> None:
    world = GymWorld(
        GymWorldSpec(
            name="multiroom",
            env_id="minigrid:MiniGrid-MultiRoom-N2-S4-v0",
            wrappers=(("minigrid.wrappers:RGBImgPartialObsWrapper", {"tile_size": 4}),),
            frame_key="image",
            action_rules=GYM_WORLDS["minigrid_four_rooms"].action_rules,
        )
    )
    try:
        for seed in range(3):
            assert world.reset(seed=seed).info["region"] == 1.0  # it starts in the first room
    finally:
        world.close()


def test_minigrid_goal_ends_the_episode_with_goal_counted() -> None:
    # Empty-5x5: the agent starts at (1, 1) facing +x; the goal is at (3, 3).
    spec = GymWorldSpec(
        name="empty",
        env_id="minigrid:MiniGrid-Empty-5x5-v0",
        wrappers=(("minigrid.wrappers:RGBImgPartialObsWrapper", {"tile_size": 4}),),
        frame_key="image",
        action_rules=GYM_WORLDS["minigrid_four_rooms"].action_rules,
        default_action="6",
        terminal_reward_is_goal=True,
    )
    world = GymWorld(spec)
    try:
        world.reset(seed=0)
        steps = [world.step(action, 0.1) for action in (FORWARD, FORWARD, TURN_RIGHT, FORWARD)]
        assert not any(step.episode_over for step in steps)
        assert steps[-1].position == (3.0, 2.0)
        last = world.step(FORWARD, 0.1)
        assert last.terminated and not last.truncated
        assert last.extrinsic_reward > 0 and last.info["goal"] == 1.0
        assert world.reset(seed=1).position == (1.0, 1.0)
    finally:
        world.close()


def test_minigrid_time_limit_truncates_without_goal() -> None:
    world = make_world("minigrid_four_rooms", env_kwargs={"max_steps": 4})
    try:
        world.reset(seed=0)
        steps = [world.step(STOP, 0.1) for _ in range(4)]
    finally:
        world.close()
    assert [step.episode_over for step in steps] == [False, False, False, True]
    assert steps[-1].truncated and not steps[-1].terminated and steps[-1].info["goal"] == 0.0


def test_vizdoom_time_out_truncates_and_reset_starts_again() -> None:
    # 20 tics at 4 tics a step: the fifth step reaches the scenario's time-out.
    world = make_world(
        "vizdoom_my_way_home",
        env_kwargs={**GYM_WORLDS["vizdoom_my_way_home"].env_kwargs, "episode_timeout": 20},
    )
    try:
        first = world.reset(seed=0)
        steps = [world.step(FORWARD, 0.1) for _ in range(5)]
        assert [step.episode_over for step in steps][-1] and not steps[0].episode_over
        last = steps[-1]
        assert last.truncated and not last.terminated and last.info["goal"] == 0.0
        assert last.frame.std() > 0  # the last view, not the engine's empty terminal screen
        assert last.position is not None
        again = world.reset(seed=0)
        assert again.position == pytest.approx(first.position)
        assert not world.step(STOP, 0.1).episode_over
    finally:
        world.close()


# --- the action mapping --------------------------------------------------------------------


def action(
    forward: float = 0.0, left: float = 0.0, ccw: float = 0.0, jump: bool = False, run: bool = False
) -> Action:
    return Action(Motion(forward, left, ccw), VRChatButtons(jump, run))


def test_discrete_rules_pick_the_first_that_holds_else_the_default() -> None:
    rules = GYM_WORLDS["minigrid_four_rooms"].action_rules
    mapping = ActionMapping(rules, "6", gym.spaces.Discrete(7))
    assert mapping(action(forward=2.0, ccw=1.5)) == 2  # forward wins over a turn
    assert mapping(action(ccw=1.5)) == 0
    assert mapping(action(ccw=-1.5)) == 1
    assert mapping(action(jump=True)) == 5
    assert mapping(action(forward=-2.0)) == 6  # backward: no rule, the default
    assert mapping(STOP) == 6


def test_multibinary_rules_press_buttons_together() -> None:
    rules = GYM_WORLDS["vizdoom_my_way_home"].action_rules
    mapping = ActionMapping(rules, "", gym.spaces.MultiBinary(5))
    assert mapping(action(forward=2.0, ccw=1.5)).tolist() == [1, 0, 1, 0, 0]
    assert mapping(action(left=-2.0, ccw=-1.5)).tolist() == [0, 1, 0, 0, 1]
    assert mapping(STOP).tolist() == [0, 0, 0, 0, 0]
    assert mapping(STOP).dtype == np.int8


def test_box_rules_scale_and_clip() -> None:
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    mapping = ActionMapping("always -> 0=0.5*forward; run & forward > 0 -> 1=0.75", "", space)
    assert mapping(action(forward=1.0)).tolist() == [0.5, 0.0]
    assert mapping(action(forward=4.0, run=True)).tolist() == [1.0, 0.75]  # clipped to the box
    assert mapping(action(forward=-1.0)).tolist() == [-0.5, 0.0]
    assert mapping(STOP).dtype == np.float32


def test_conditions_read_every_value_and_negation() -> None:
    (rule,) = parse_action_rules("left >= 1 & ccw <= -0.5 & !run & jump -> 3")
    values = {"forward": 0.0, "left": 1.0, "ccw": -0.5, "jump": 1.0, "run": 0.0}
    assert rule.holds(values)
    assert not rule.holds({**values, "run": 1.0})
    assert not rule.holds({**values, "left": 0.9})


@pytest.mark.parametrize(
    ("rules", "default", "space", "message"),
    [
        ("forward > 0.1 -> 7", "", gym.spaces.Discrete(7), r"rule 'forward > 0.1 -> 7'.*0\.\.6"),
        ("forward > 0.1 -> 2", "9", gym.spaces.Discrete(7), "default_action: 9 is out of range"),
        ("forward > 0.1 -> 0=0.5*ccw", "", gym.spaces.Discrete(3), "one index per step"),
        ("forward > 0.1 -> 5", "", gym.spaces.MultiBinary(5), r"element 5 is outside"),
        ("forward > 0.1 -> 0=2", "", gym.spaces.MultiBinary(5), "2 is outside 0..1"),
        ("always -> 0=0.5*forward", "", gym.spaces.MultiBinary(2), "only a continuous Box"),
        ("speed > 1 -> 0", "", gym.spaces.Discrete(2), "unknown value 'speed'"),
        ("forward > 1", "", gym.spaces.Discrete(2), "CONDITION -> TARGET"),
        ("forward ~ 1 -> 0", "", gym.spaces.Discrete(2), "cannot read the term"),
        ("forward > 1 -> left", "", gym.spaces.Discrete(2), "cannot read the target"),
        (" ; ", "", gym.spaces.Discrete(2), "no rule given"),
        ("always -> 0", "", gym.spaces.Text(5), "not supported"),
        ("always -> 0=1", "1,2,3", gym.spaces.Box(0, 1, (2,)), "default_action"),
    ],
)
def test_rules_that_do_not_fit_the_space_are_refused(
    rules: str, default: str, space: gym.Space, message: str
) -> None:
    with pytest.raises(GymWorldError, match=message) as raised:
        ActionMapping(rules, default, space)
    assert str(raised.value).startswith(("action_rules", "default_action"))


# --- bad specs ------------------------------------------------------------------------------


def spec(**fields: object) -> GymWorldSpec:
    values: dict[str, object] = {
        "name": "t",
        "env_id": "CartPole-v1",
        "action_rules": "always -> 0",
    }
    values.update(fields)
    return GymWorldSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"env_id": "NoSuchEnv-v0"}, "env_id: cannot make 'NoSuchEnv-v0'"),
        ({"env_id": "no_such_module:Thing-v0"}, "env_id: cannot make"),
        ({}, r"frame_source: the observation of 'CartPole-v1' is Box\(.*not an image"),
        ({"frame_key": "image"}, "frame_key: 'CartPole-v1' has no observation entry 'image'"),
        ({"env_kwargs": {"no_such_argument": 1}}, "env_kwargs: 'CartPole-v1' refused them"),
        ({"frame_source": "render", "action_rules": "always -> 2"}, r"action_rules: rule"),
        (
            {"frame_source": "render", "wrappers": (("gymnasium.wrappers:NoSuch", {}),)},
            r"wrappers\[0\] 'gymnasium.wrappers:NoSuch': cannot import",
        ),
        (
            {"frame_source": "render", "wrappers": (("numpy:ndarray", {}),)},
            "not a gymnasium.Wrapper",
        ),
        (
            {"frame_source": "render", "wrappers": (("gymnasium.wrappers:TimeLimit", {"x": 1}),)},
            "refused its arguments",
        ),
    ],
)
def test_specs_that_cannot_work_are_refused_naming_the_field(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(GymWorldError, match=message):
        GymWorld(spec(**fields))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"env_id": " "}, "env_id: empty"),
        ({"frame_source": "screen"}, "frame_source: must be one of"),
        ({"ground_truth": "gps"}, "ground_truth: must be one of"),
        ({"frame_width": 64}, "set both, or neither"),
        ({"cell_size": 0.0}, "cell_size: must be a positive number"),
    ],
)
def test_invalid_spec_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(GymWorldError, match=message):
        spec(**fields)


def test_json_fields_round_trip_and_bad_json_is_refused() -> None:
    shipped = GYM_WORLDS["minigrid_four_rooms"]
    rebuilt = GymWorldSpec.from_json_fields(
        name=shipped.name,
        env_id=shipped.env_id,
        action_rules=shipped.action_rules,
        default_action=shipped.default_action,
        frame_key=shipped.frame_key,
        frame_width=shipped.frame_width,
        frame_height=shipped.frame_height,
        terminal_reward_is_goal=True,
        **shipped.json_fields(),
    )
    assert rebuilt == shipped
    with pytest.raises(GymWorldError, match="env_kwargs: not valid JSON"):
        GymWorldSpec.from_json_fields("t", "{", "", env_id="X-v0", action_rules="always -> 0")
    with pytest.raises(GymWorldError, match="env_kwargs: must be a JSON object"):
        GymWorldSpec.from_json_fields("t", "[1]", "", env_id="X-v0", action_rules="always -> 0")
    with pytest.raises(GymWorldError, match=r"wrappers\[0\]: must be"):
        GymWorldSpec.from_json_fields("t", "", "[3]", env_id="X-v0", action_rules="always -> 0")


def test_any_environment_renders_as_a_world() -> None:
    # CartPole has no image observation; its rgb_array render is the view.
    world = GymWorld(
        spec(
            frame_source="render", frame_width=80, frame_height=60, action_rules="forward > 0 -> 1"
        )
    )
    try:
        first = world.reset(seed=0)
        assert first.frame.shape == (60, 80, 3) and first.position is None
        for _ in range(200):  # always pushing right: the pole falls
            if world.step(FORWARD, 0.05).terminated:
                break
        else:
            pytest.fail("the pole never fell: the action did not reach CartPole")
    finally:
        world.close()


def test_unknown_shipped_world_is_refused() -> None:
    with pytest.raises(GymWorldError, match="world: no shipped Gymnasium world 'doom'"):
        make_world("doom")


# --- faults ---------------------------------------------------------------------------------


def test_a_raising_environment_is_reported_and_reset_not_fatal() -> None:
    world = GymWorld(
        GymWorldSpec(
            name="raising",
            env_id=RAISING_ID,
            action_rules="forward > 0 -> 1",
            ground_truth="none",
            terminal_reward_is_goal=True,
        )
    )
    try:
        first = world.reset(seed=0)
        assert first.frame.shape == (16, 16, 3)  # grey made RGB
        walked = world.step(FORWARD, 0.1)
        assert not walked.episode_over and walked.frame.mean() > first.frame.mean()
        second = world.step(FORWARD, 0.1)
        broken = world.step(FORWARD, 0.1)  # the environment raises on its third step
        assert broken.truncated and broken.info["env_error"] == 1.0
        assert np.array_equal(broken.frame, second.frame)  # the last view stays
        assert world.errors == 1 and RAISING_MESSAGE in world.last_error
        assert "RuntimeError" in world.last_error
        again = world.reset(seed=1)
        assert np.array_equal(again.frame, first.frame)
        assert not world.step(FORWARD, 0.1).episode_over
    finally:
        world.close()


def test_a_frame_that_is_not_an_image_mid_episode_is_an_environment_error() -> None:
    world = GymWorld(
        GymWorldSpec(
            name="garbled",
            env_id=RAISING_ID,
            env_kwargs={"raise_at": 0, "garble_at": 2},
            action_rules="forward > 0 -> 1",
            ground_truth="none",
        )
    )
    try:
        world.reset(seed=0)
        good = world.step(FORWARD, 0.1)
        garbled = world.step(FORWARD, 0.1)
        assert garbled.info["env_error"] == 1.0 and garbled.truncated
        assert np.array_equal(garbled.frame, good.frame)
        assert "frame_source" in world.last_error and "float64" in world.last_error
        world.reset(seed=1)
        assert not world.step(FORWARD, 0.1).episode_over
    finally:
        world.close()


def test_the_vizdoom_engine_outlives_ctrl_c_and_ends_when_closed() -> None:
    handler = signal.getsignal(signal.SIGINT)
    world = make_world("vizdoom_my_way_home")
    try:
        world.reset(seed=0)
        assert signal.getsignal(signal.SIGINT) is handler  # the test's own handler is back
        (engine,) = [child for child in psutil.Process().children() if child.name() == "vizdoom"]
        os.kill(engine.pid, signal.SIGINT)  # as Ctrl-C to the process group would
        time.sleep(0.5)
        assert engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE
        assert not world.step(STOP, 0.1).info.get("env_error")
    finally:
        world.close()
    assert not psutil.pid_exists(engine.pid) or engine.status() == psutil.STATUS_ZOMBIE


def test_close_is_idempotent_and_leaves_no_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    world = make_world("vizdoom_my_way_home")
    world.reset(seed=0)
    world.close()
    world.close()
    assert not (tmp_path / "_vizdoom.ini").exists()  # ViZDoom's ini went to the scratch folder
