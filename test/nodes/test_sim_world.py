"""sim_world over real processes: OSC in, pose out, the MJPEG stream, and the robot face."""

import math
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, Twist
from pythonosc.udp_client import SimpleUDPClient

from pamiq_ros.core.settings import SettingsError, SettingValue, build_settings, describe
from pamiq_ros.nodes.sim_world import SimWorldSettings
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import Received, RosProbe

WIDTH, HEIGHT = 96, 72  # not the default, so the test sees the parameters work


def yaw_of(message: Any) -> float:
    orientation = message.pose.orientation
    return 2.0 * math.atan2(orientation.z, orientation.w)


def latest(poses: Received) -> tuple[float, float, float]:
    message = poses.messages[-1]
    return message.pose.position.x, message.pose.position.y, yaw_of(message)


def world_statuses(diagnostics: Received) -> list[DiagnosticStatus]:
    """sim_world's statuses on /diagnostics, oldest first."""
    return [
        status
        for array in diagnostics.messages
        for status in array.status
        if status.name.endswith("/sim_world")
    ]


def start_world(
    spawn_node: Callable[..., NodeProcess],
    free_udp_port: Callable[[], int],
    free_tcp_port: Callable[[], int],
    **parameters: object,
) -> tuple[NodeProcess, int, int]:
    osc_port, video_port = free_udp_port(), free_tcp_port()
    node = spawn_node(
        "sim_world",
        {
            "osc_port": osc_port,
            "video_port": video_port,
            "frame_width": WIDTH,
            "frame_height": HEIGHT,
            "report_period": 1.0,
            **parameters,
        },
    )
    node.wait_for_output("video stream at")
    return node, osc_port, video_port


@pytest.mark.e2e
def test_osc_moves_and_turns_the_avatar(
    spawn_node, probe: RosProbe, free_udp_port, free_tcp_port
) -> None:
    node, osc_port, _ = start_world(spawn_node, free_udp_port, free_tcp_port)
    output = node.wait_for_output(f"OSC input on udp://127.0.0.1:{osc_port}")
    assert "/world/pose" in output
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    first = poses.wait_for(1)[-1]
    assert first.header.frame_id == "world"
    assert latest(poses) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)

    client = SimpleUDPClient("127.0.0.1", osc_port)
    client.send_message("/input/Vertical", 1.0)  # walk forward (+x at yaw 0)
    assert wait_until(lambda: latest(poses)[0] > 1.0, 10.0), latest(poses)
    client.send_message("/input/Vertical", 0.0)
    time.sleep(0.3)
    stopped = latest(poses)
    time.sleep(0.3)
    assert latest(poses) == pytest.approx(stopped, abs=1e-9)  # the axis held 0: standing
    assert stopped[1] == pytest.approx(0.0, abs=1e-6)
    assert stopped[2] == pytest.approx(0.0, abs=1e-6)

    client.send_message("/input/LookHorizontal", 1.0)  # +1 turns right: yaw goes negative
    assert wait_until(lambda: latest(poses)[2] < -0.5, 10.0), latest(poses)
    client.send_message("/input/LookHorizontal", 0.0)
    x, y, _ = latest(poses)
    assert (x, y) == pytest.approx(stopped[:2], abs=1e-9)  # turned on the spot

    client.send_message("/input/Jump", 1)  # a jump lifts the avatar: pose z > 0 for a moment
    assert wait_until(lambda: poses.messages[-1].pose.position.z > 0.2, 5.0)
    client.send_message("/input/Jump", 0)
    assert wait_until(lambda: poses.messages[-1].pose.position.z == 0.0, 5.0)
    assert node.is_running()


@pytest.mark.e2e
def test_bad_osc_is_logged_and_the_node_still_obeys_good_osc(
    spawn_node, probe: RosProbe, free_udp_port, free_tcp_port
) -> None:
    node, osc_port, _ = start_world(spawn_node, free_udp_port, free_tcp_port)
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 50)
    poses.wait_for(1)
    client = SimpleUDPClient("127.0.0.1", osc_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"\xff\xfe\x00\x13garbage\x9c\x01", ("127.0.0.1", osc_port))
        raw.sendto(b"/input/Vertical\x00,f\x00\x00?\x00", ("127.0.0.1", osc_port))  # cut short
    client.send_message("/input/Fly", 1)
    client.send_message("/input/Jump", "yes")
    client.send_message("/input/Vertical", 3.5)

    node.wait_for_output("rejected OSC from 127.0.0.1:")
    node.wait_for_output("malformed OSC packet")
    node.wait_for_output("/input/Fly: unknown address")
    node.wait_for_output("/input/Jump: expects int 0 or 1, or a bool, got str 'yes'")
    node.wait_for_output("/input/Vertical: expects a float in [-1, 1], got 3.5")
    node.wait_for_output("rejected=5")  # the progress line counts all, logged or not
    assert node.is_running()
    assert latest(poses) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)

    client.send_message("/input/Vertical", -0.5)  # good input is still obeyed
    assert wait_until(lambda: latest(poses)[0] < -0.3, 10.0), latest(poses)
    client.send_message("/input/Vertical", 0.0)
    node.wait_for_output("osc accepted=2 rejected=5")

    # The rejections turned the status WARN; a later status, with none new, no longer says so.
    def warned() -> int | None:
        messages = [status.message for status in world_statuses(diagnostics)]
        return next(
            (i for i, text in enumerate(messages) if "OSC message(s) rejected" in text), None
        )

    assert wait_until(lambda: warned() is not None, 5.0), world_statuses(diagnostics)
    first = warned()
    assert first is not None
    assert world_statuses(diagnostics)[first].level >= DiagnosticStatus.WARN
    assert wait_until(
        lambda: any("rejected" not in s.message for s in world_statuses(diagnostics)[first + 1 :]),
        5.0,
    ), world_statuses(diagnostics)
    assert node.stop() == 0
    assert "Traceback" not in node.output()


@pytest.mark.e2e
def test_video_stream_gives_frames_of_the_configured_size(
    spawn_node, free_udp_port, free_tcp_port
) -> None:
    node, _, video_port = start_world(spawn_node, free_udp_port, free_tcp_port)
    url = f"http://127.0.0.1:{video_port}/stream.mjpg"
    assert f"video stream at {url} ({WIDTH}x{HEIGHT} at 20 fps)" in node.output()
    capture = cv2.VideoCapture(url)
    try:
        assert capture.isOpened(), node.output()
        frames = []
        for _ in range(5):
            ok, frame = capture.read()
            assert ok
            frames.append(frame)
        assert all(frame.shape == (HEIGHT, WIDTH, 3) for frame in frames)
        assert frames[-1].std() > 10.0  # a scene, not a blank image
        node.wait_for_output("clients=1")
    finally:
        capture.release()


@pytest.mark.e2e
def test_robot_face_cmd_vel_moves_and_a_stale_cmd_vel_stops(
    spawn_node, probe: RosProbe, free_udp_port, free_tcp_port
) -> None:
    timeout = 0.5
    node, _, _ = start_world(
        spawn_node,
        free_udp_port,
        free_tcp_port,
        osc_enabled=False,
        cmd_vel_enabled=True,
        cmd_vel_timeout=timeout,
    )
    output = node.wait_for_output("robot face: cmd_vel on /cmd_vel")
    assert "OSC input disabled" in output
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    poses.wait_for(1)
    publisher = probe.publisher(Twist, "cmd_vel", 10)
    twist = Twist()
    twist.linear.x = 1.0
    twist.angular.z = 0.5  # CCW: yaw grows
    sending = threading.Event()
    sending.set()
    last_sent = [0.0]

    def send() -> None:
        if sending.is_set():
            publisher.publish(twist)
            last_sent[0] = time.monotonic()

    probe.call_periodically(0.05, send)
    assert wait_until(lambda: latest(poses)[0] > 0.5 and latest(poses)[2] > 0.25, 15.0), latest(
        poses
    )
    sending.clear()
    time.sleep(0.1)  # let a send already under way finish
    stopped_sending = last_sent[0]
    time.sleep(timeout + 0.7)
    final = latest(poses)
    time.sleep(0.4)
    assert latest(poses) == pytest.approx(final, abs=1e-9)  # stale: standing still
    # It kept going until the timeout, then stopped: the first pose at rest came then.
    at_rest = next(
        arrival
        for arrival, message in poses.timed
        if (message.pose.position.x, message.pose.position.y, yaw_of(message))
        == pytest.approx(final, abs=1e-9)
    )
    assert timeout - 0.2 < at_rest - stopped_sending < timeout + 1.0, at_rest - stopped_sending
    node.wait_for_output("cmd_vel received=")
    assert node.stop() == 0  # Ctrl-C: the loop, OSC and video servers close cleanly
    assert "Traceback" not in node.output()


def test_settings_have_documented_defaults_and_refuse_bad_values() -> None:
    defaults = {name: default for name, default, _ in describe(SimWorldSettings)}
    assert defaults["osc_port"] == 9000 and defaults["video_port"] == 8080
    assert defaults["cmd_vel_enabled"] is False and defaults["fps"] == 20.0
    assert defaults["stamp_frames"] is False
    assert all(description for _, _, description in describe(SimWorldSettings))
    cases: list[tuple[dict[str, SettingValue], str]] = [
        ({"fps": 0.0}, "fps must be a positive"),
        ({"cmd_vel_timeout": -1.0}, "cmd_vel_timeout"),
        ({"osc_port": 70000}, "osc_port must be in 0..65535"),
        ({"frame_width": 4}, "frame_width must be in 8..4096"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"video_path": "stream.mjpg"}, "video_path must start with '/'"),
        ({"walk_speed": float("nan")}, "walk_speed"),
        ({"stamp_frames": True, "frame_width": 32}, "stamp_frames: a 32x120 frame is too small"),
    ]
    for values, says in cases:
        with pytest.raises(SettingsError, match=re.escape(says)):
            build_settings(SimWorldSettings, values)


@pytest.mark.e2e
def test_an_osc_port_in_use_stops_the_node_with_a_clear_error(spawn_node, free_tcp_port) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        node = spawn_node("sim_world", {"osc_port": port, "video_port": free_tcp_port()})
        assert wait_until(lambda: not node.is_running(), 20.0)
        assert node.stop() == 2
    assert f"cannot listen for OSC on udp://127.0.0.1:{port}" in node.output()
    assert "Traceback" not in node.output()


@pytest.mark.e2e
def test_tf_tree_and_camera_info_place_the_camera_for_rviz(
    spawn_node, probe: RosProbe, free_udp_port, free_tcp_port
) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    node, osc_port, _ = start_world(
        spawn_node, free_udp_port, free_tcp_port, base_frame_id="robot", camera_frame_id="eye"
    )
    tf = probe.subscribe(TFMessage, "/tf", 10)
    static = probe.subscribe(
        TFMessage, "/tf_static", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    )
    info = probe.subscribe(CameraInfo, "world/camera_info", 10)
    SimpleUDPClient("127.0.0.1", osc_port).send_message("/input/Vertical", 1.0)
    tf.wait_for(5)
    static.wait_for(1)  # latched: a late subscriber still gets the mount
    info.wait_for(1)

    (mount,) = static.messages[-1].transforms
    assert (mount.header.frame_id, mount.child_frame_id) == ("robot", "eye")
    assert mount.transform.translation.z > 0.5  # at eye height
    rotation = mount.transform.rotation
    assert (rotation.x, rotation.y, rotation.z, rotation.w) == (-0.5, 0.5, -0.5, 0.5)

    (body,) = tf.messages[-1].transforms
    assert (body.header.frame_id, body.child_frame_id) == ("world", "robot")
    assert wait_until(lambda: tf.messages[-1].transforms[0].transform.translation.x > 0.1, 10.0)

    camera = info.messages[-1]
    assert (camera.header.frame_id, camera.width, camera.height) == ("eye", WIDTH, HEIGHT)
    focal = (WIDTH / 2) / math.tan(math.radians(90.0) / 2)
    assert camera.k[0] == pytest.approx(focal) and camera.k[4] == pytest.approx(focal)
    assert camera.k[2] == pytest.approx((WIDTH - 1) / 2)
    assert camera.p[0] == pytest.approx(focal) and list(camera.d) == [0.0] * 5
    assert node.is_running()
