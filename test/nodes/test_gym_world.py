"""gym_world over real processes on the shipped worlds: frames out, actions in, episodes, faults."""

import json
import math
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from pamiq_ros_interfaces.msg import VRChatInput
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger

from pamiq_ros.core.settings import SettingsError, build_settings
from pamiq_ros.nodes.gym_world import GymWorldSettings
from pamiq_ros.sim.gym_env import GYM_WORLDS, GymWorldError
from test.support.configs import CONFIG_DIR
from test.support.diagnostics import figure
from test.support.gym_envs import RAISING_MESSAGE, RAISING_MODULE_ID
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import Received, RosProbe

SHIPPED_CONFIGS = {"minigrid": "minigrid_four_rooms", "vizdoom_my_way_home": "vizdoom_my_way_home"}


def world_parameters(config: str, **overrides: object) -> dict[str, object]:
    """The gym_world parameters of a shipped config, with overrides."""
    document = yaml.safe_load((CONFIG_DIR / f"{config}.yaml").read_text())
    return {**document["gym_world"]["ros__parameters"], "report_period": 1.0, **overrides}


# --- settings (no processes) -----------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(SHIPPED_CONFIGS))
def test_shipped_configs_spell_out_the_shipped_worlds(config: str) -> None:
    settings = build_settings(GymWorldSettings, world_parameters(config))  # type: ignore[arg-type]
    assert settings.spec() == GYM_WORLDS[SHIPPED_CONFIGS[config]]
    document = yaml.safe_load((CONFIG_DIR / f"{config}.yaml").read_text())
    agent = document["agent"]["ros__parameters"]
    frame = GYM_WORLDS[SHIPPED_CONFIGS[config]]
    sizes = {"minigrid_four_rooms": (64, 64), "vizdoom_my_way_home": (160, 120)}
    assert (agent["image_width"], agent["image_height"]) == sizes[frame.name]
    trainer = document["trainer"]["ros__parameters"]
    assert (trainer["image_width"], trainer["image_height"]) == sizes[frame.name]


def test_a_shipped_world_by_name_and_what_contradicts_it() -> None:
    assert GymWorldSettings(world="vizdoom_my_way_home").spec() == GYM_WORLDS["vizdoom_my_way_home"]
    with pytest.raises(GymWorldError, match="world: no shipped world 'doom'"):
        GymWorldSettings(world="doom").spec()
    with pytest.raises(GymWorldError, match="action_rules, cell_size: set, but env_id is empty"):
        GymWorldSettings(action_rules="always -> 0", cell_size=2.0).spec()
    with pytest.raises(GymWorldError, match="env_kwargs: not valid JSON"):
        GymWorldSettings(env_id="CartPole-v1", env_kwargs="{", action_rules="always -> 0").spec()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "fast"}, "mode must be one of"),
        ({"frame_output": "png"}, "frame_output must be one of"),
        ({"rate_hz": 0.0}, "rate_hz must be a positive number"),
        ({"video_port": 70000}, "video_port must be in"),
    ],
)
def test_invalid_node_parameters_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        build_settings(GymWorldSettings, values)


# --- the node, end to end ----------------------------------------------------------------------


def start_world(spawn_node: Callable[..., NodeProcess], **parameters: object) -> NodeProcess:
    node = spawn_node("gym_world", parameters)
    node.wait_for_output("stepping", timeout=30)
    return node


def matched_publisher(probe: RosProbe, message_type: Any, topic: str) -> Any:
    """A publisher that the node has subscribed to (lock-step steps on what it receives)."""
    publisher = probe.publisher(message_type, topic)
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 20.0), topic
    return publisher


def twist(forward: float = 0.0, ccw: float = 0.0) -> Twist:
    message = Twist()
    message.linear.x, message.angular.z = forward, ccw
    return message


def position(poses: Received) -> tuple[float, float]:
    pose = poses.messages[-1].pose.position
    return pose.x, pose.y


def episodes(summaries: Received) -> list[dict[str, Any]]:
    return [json.loads(message.data) for message in summaries.messages]


def moved_from(poses: Received, start: tuple[float, float], distance: float) -> bool:
    return math.dist(position(poses), start) > distance


def assert_still(poses: Received, summaries: Received, seconds: float = 0.5) -> None:
    """The body does not move for ``seconds``, in a window in which no episode ended."""
    for _ in range(5):  # a reset puts the body elsewhere: try another window
        ended, before = len(summaries), position(poses)
        time.sleep(seconds)
        if len(summaries) == ended:
            assert position(poses) == pytest.approx(before, abs=1.0)
            return
    pytest.fail(f"an episode ended in every window: {episodes(summaries)}")


def call(probe: RosProbe, service: str) -> Any:
    client: Any = probe.node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=10.0), service
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, 10.0), service
    return future.result()


@pytest.mark.e2e
def test_minigrid_lockstep_frames_out_actions_in_episodes_counted(
    spawn_node, probe: RosProbe
) -> None:
    frames = probe.subscribe(Image, "camera/image_raw")
    poses = probe.subscribe(PoseStamped, "world/pose", 50)
    rewards = probe.subscribe(Float32, "world/reward", 50)
    summaries = probe.subscribe(String, "world/episode", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 50)
    # Four steps an episode, so the test sees episodes end and the world reset.
    node = start_world(
        spawn_node,
        **world_parameters("minigrid", mode="lockstep", env_kwargs='{"max_steps": 4}'),
    )
    actions = matched_publisher(probe, Twist, "cmd_vel")
    assert len(rewards) == 0  # lock-step: no step until an action

    # Each cmd_vel is one step: one frame, one reward, one pose.
    shown = len(poses)  # the first view may have been seen, as the node started

    def step(message: Twist) -> None:
        nonlocal shown
        actions.publish(message)
        shown += 1
        assert wait_until(lambda: len(poses) >= shown and len(frames) >= 1, 10.0), node.output()

    step(twist(forward=2.0))
    frame = frames.messages[-1]
    assert (frame.width, frame.height, frame.encoding) == (64, 64, "rgb8")
    pixels = np.frombuffer(bytes(frame.data), np.uint8).reshape(64, 64, 3)
    assert pixels.std() > 0
    first = position(poses)
    turned_yaw = []
    for _ in range(2):  # turn left twice: a quarter turn each, on the spot
        step(twist(ccw=1.5))
        orientation = poses.messages[-1].pose.orientation
        turned_yaw.append(2 * math.atan2(orientation.z, orientation.w))
    assert position(poses) == first and turned_yaw[0] != pytest.approx(turned_yaw[1])
    assert len(rewards) == 3

    # The fourth step ends the episode: summed up, counted, the world reset.
    actions.publish(twist(forward=2.0))
    assert wait_until(lambda: len(summaries) >= 1, 10.0), node.output()
    (summary,) = episodes(summaries)
    assert summary["episode"] == 1 and summary["steps"] == 4
    assert summary["truncated"] and not summary["terminated"] and not summary["goal"]
    assert "episode 1 ended after 4 steps" in node.wait_for_output("episode 1 ended")
    for _ in range(4):
        actions.publish(twist(forward=2.0))
        time.sleep(0.1)
    assert wait_until(lambda: len(summaries) >= 2, 10.0), node.output()
    assert wait_until(lambda: figure(diagnostics, "gym_world", "episodes") >= 2, 10.0)
    assert figure(diagnostics, "gym_world", "steps") == 8

    # A cmd_vel with non-finite values is refused, not stepped with.
    steps_before = len(rewards)
    actions.publish(twist(forward=math.nan))
    node.wait_for_output("ignored cmd_vel with non-finite values")
    time.sleep(0.3)
    assert len(rewards) == steps_before

    # Paused, actions are ignored (counted); resumed, they step again.
    assert call(probe, "/gym_world/control/pause").success
    steps_before = len(rewards)
    actions.publish(twist(forward=2.0))
    time.sleep(0.5)
    assert len(rewards) == steps_before
    status = json.loads(call(probe, "/gym_world/control/status").message)
    assert status["paused"] and status["actions_ignored"] == 1 and status["episodes"] == 2
    assert call(probe, "/gym_world/control/resume").success
    actions.publish(twist(forward=2.0))
    assert wait_until(lambda: len(rewards) > steps_before, 10.0)
    assert node.stop(signal.SIGINT) == 0, node.output()


@pytest.mark.e2e
def test_vizdoom_realtime_walks_with_cmd_vel_and_resets_on_time_out(
    spawn_node, probe: RosProbe
) -> None:
    frames = probe.subscribe(Image, "camera/image_raw")
    poses = probe.subscribe(PoseStamped, "world/pose", 50)
    summaries = probe.subscribe(String, "world/episode", 10)
    kwargs = {**GYM_WORLDS["vizdoom_my_way_home"].env_kwargs, "episode_timeout": 120}
    node = start_world(
        spawn_node,
        **world_parameters("vizdoom_my_way_home", env_kwargs=json.dumps(kwargs), rate_hz=20.0),
    )
    assert wait_until(lambda: len(poses) >= 5 and len(frames) >= 5, 15.0), node.output()
    frame = frames.messages[-1]
    assert (frame.width, frame.height, frame.encoding) == (160, 120, "rgb8")
    assert_still(poses, summaries)  # no cmd_vel: the body stands

    actions = matched_publisher(probe, Twist, "cmd_vel")
    buttons = matched_publisher(probe, VRChatInput, "vrchat_input")
    buttons.publish(VRChatInput(jump=True, run=True))  # no such buttons here: harmless
    for _ in range(3):  # a walk within one episode (a reset moves the body too)
        ended, standing = len(summaries), position(poses)
        sender = probe.call_periodically(0.05, lambda: actions.publish(twist(forward=2.0)))
        walked = wait_until(partial(moved_from, poses, standing, 64.0), 10.0)
        sender.cancel()
        if len(summaries) == ended:
            assert walked, node.output()
            break
    else:
        pytest.fail(f"an episode ended during every walk: {episodes(summaries)}")
    time.sleep(1.0)  # cmd_vel goes stale: the body stops
    assert_still(poses, summaries)

    # 120 tics at 4 a step: 30 steps, 1.5 s at 20 Hz; then the world starts again.
    assert wait_until(lambda: len(summaries) >= 1, 15.0), node.output()
    summary = episodes(summaries)[0]
    assert summary["steps"] == 30 and summary["truncated"] and not summary["goal"]
    assert summary["return"] < 0  # the living penalty only
    assert node.is_running()
    # Ctrl-C reaches the engine's process group too; the node, not the signal, ends the engine.
    assert node.stop(signal.SIGINT) == 0, node.output()
    assert "the environment raised" not in node.output()
    assert "stopped after" in node.output()


@pytest.mark.e2e
def test_mjpeg_output_serves_the_frames_to_a_camera(
    spawn_node, free_tcp_port: Callable[[], int]
) -> None:
    port = free_tcp_port()
    node = start_world(
        spawn_node, world="minigrid_four_rooms", frame_output="mjpeg", video_port=port
    )
    assert f"video stream at http://127.0.0.1:{port}/stream.mjpg" in node.output()
    capture = cv2.VideoCapture(f"http://127.0.0.1:{port}/stream.mjpg", cv2.CAP_FFMPEG)
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok and frame.shape == (64, 64, 3)


@pytest.mark.e2e
def test_an_environment_that_raises_is_reset_and_the_node_goes_on(
    spawn_node, probe: RosProbe
) -> None:
    rewards = probe.subscribe(Float32, "world/reward", 50)
    summaries = probe.subscribe(String, "world/episode", 10)
    node = start_world(
        spawn_node,
        world="raising",
        env_id=RAISING_MODULE_ID,
        action_rules="forward > 0.1 -> 1",
        ground_truth="none",
        mode="lockstep",
    )
    actions = matched_publisher(probe, Twist, "cmd_vel")
    for _ in range(7):  # raises on the third step of each episode: twice in seven steps
        actions.publish(twist(forward=2.0))
        time.sleep(0.1)
    assert wait_until(lambda: len(summaries) >= 2 and len(rewards) >= 7, 10.0), node.output()
    assert [summary["env_error"] for summary in episodes(summaries)] == [True, True]
    assert [summary["steps"] for summary in episodes(summaries)] == [3, 3]
    output = node.wait_for_output("the environment raised")
    assert f"RuntimeError: {RAISING_MESSAGE}; resetting it" in output
    assert node.is_running()
    assert node.stop(signal.SIGINT) == 0, node.output()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"env_id": "NoSuchEnv-v0", "action_rules": "always -> 0"},
            "env_id: cannot make 'NoSuchEnv-v0'",
        ),
        (
            {"env_id": "CartPole-v1", "action_rules": "always -> 0"},
            "frame_source: the observation of 'CartPole-v1'",
        ),
        (
            {"env_id": "CartPole-v1", "frame_source": "render", "action_rules": "always -> 5"},
            "action_rules: rule 'always -> 5': Discrete(2) takes 0..1",
        ),
    ],
)
def test_a_world_that_cannot_work_stops_the_node_naming_the_field(
    spawn_node, parameters: dict[str, object], message: str, tmp_path: Path
) -> None:
    node = spawn_node("gym_world", parameters)
    assert wait_until(lambda: not node.is_running(), 30.0), node.output()
    assert node.popen.returncode == 2
    assert f"invalid parameters: {message}" in node.output()
