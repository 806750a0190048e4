"""End-to-end: the agent process acts at its rate with or without frames, and refuses bad ones."""

import os
import signal
import time
from functools import partial
from typing import Any

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import VRChatInput
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from pamiq_ros.io.image_codec import encode_image
from test.support.processes import wait_until

pytestmark = pytest.mark.e2e


def latest_status(diagnostics, node_name: str = "/agent") -> dict[str, str] | None:
    for array in reversed(diagnostics.messages):
        for status in array.status:
            if status.name == node_name:
                return {value.key: value.value for value in status.values}
    return None


def image(
    width: int,
    height: int,
    encoding: str = "rgb8",
    step: int | None = None,
    data: bytes | None = None,
) -> Image:
    fields = encode_image(np.full((height, width, 3), 100, dtype=np.uint8))
    message = Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=fields.step if step is None else step,
    )
    message.data = fields.data if data is None else data
    return message


def test_agent_holds_its_rate_without_a_camera(spawn_node, probe):
    agent = spawn_node("agent", {"rate_hz": 10.0, "report_period": 1.0})
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 10)
    vrchat_input = probe.subscribe(VRChatInput, "vrchat_input", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    cmd_vel.wait_for(1, timeout=20.0)

    before = len(cmd_vel)
    time.sleep(3.0)
    counted = len(cmd_vel) - before
    assert 25 <= counted <= 35, f"{counted} cmd_vel messages in 3 s at 10 Hz"
    assert len(vrchat_input) >= 25

    # Every action is one of the action space's motions (2 m/s, 4 m/s running, 1.5 rad/s).
    for message in cmd_vel.messages:
        assert message.linear.x in (0.0, 2.0, -2.0, 4.0, -4.0)
        assert message.linear.y in (0.0, 2.0, -2.0, 4.0, -4.0)
        assert message.angular.z in (0.0, 1.5, -1.5)
        assert message.linear.z == message.angular.x == message.angular.y == 0.0

    assert wait_until(lambda: latest_status(diagnostics) is not None, 5.0)
    status = latest_status(diagnostics)
    assert status is not None
    assert status["frames_received"] == "0"
    assert status["target_rate_hz"] == "10.000"
    assert 9.0 <= float(status["rate_hz"]) <= 11.0
    assert int(status["steps"]) >= 20
    for key in (
        "missed_deadlines",
        "interval_error_p99_ms",
        "last_frame_width",
        "last_frame_height",
    ):
        assert key in status
    output = agent.wait_for_output("| frames received=0 rejected=0 last=none |")
    assert "steps=" in output and "interval error p50=" in output

    assert agent.stop(signal.SIGINT) == 0
    assert "closed after" in agent.output()
    stopped = len(cmd_vel)
    time.sleep(0.5)
    assert len(cmd_vel) == stopped


def test_agent_takes_frames_of_its_size_and_refuses_malformed_ones(spawn_node, probe):
    agent = spawn_node(
        "agent",
        {
            "rate_hz": 10.0,
            "image_width": 160,
            "image_height": 120,
            "report_period": 0.5,
        },
    )
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    assert wait_until(lambda: camera.get_subscription_count() > 0, 20.0)

    def frames_taken() -> bool:
        camera.publish(image(160, 120))
        status = latest_status(diagnostics)
        return status is not None and int(status["frames_received"]) > 0

    assert wait_until(frames_taken, 20.0, interval=0.1)
    status = latest_status(diagnostics)
    assert status is not None
    assert (status["last_frame_width"], status["last_frame_height"]) == ("160", "120")
    agent.wait_for_output("last=160x120 age=")

    malformed = [
        (
            image(160, 120, data=bytes(10)),
            "data holds 10 bytes, but step 480 x height 120 needs 57600",
        ),
        (image(160, 120, step=100), "step 100 is shorter than a row of 160 rgb8 pixels"),
        (image(160, 120, encoding="rgb16"), "unsupported encoding 'rgb16'"),
        (image(161, 120, encoding="yuv422", step=322), "yuv422 needs an even width"),
    ]
    for message, error in malformed:
        # Sensor QoS is best effort: send a few until the error shows.
        def refused(message: Image = message, error: str = error) -> bool:
            camera.publish(message)
            return error in agent.output()

        assert wait_until(refused, 10.0, interval=0.1), f"{error!r} not logged:\n{agent.output()}"

    # The agent goes on acting, and reports what it refused.
    before = len(cmd_vel)
    time.sleep(1.0)
    assert len(cmd_vel) - before >= 5
    assert agent.is_running()
    assert wait_until(
        lambda: int((latest_status(diagnostics) or {}).get("frames_rejected", "0")) >= 4, 5.0
    )


def _has_subscribers(publisher: Any) -> bool:
    return bool(publisher.get_subscription_count() > 0)


def stamped(message, probe):
    message.header.stamp = probe.node.get_clock().now().to_msg()
    return message


def test_agent_takes_any_camera_size_and_encoding_and_stops_on_stale_frames(spawn_node, probe):
    """A robot's 640x480 bgr8 camera and a 1920x1080 yuyv one plug in unchanged; a frame that
    stops coming is no observation after max_frame_age, and motion stops."""
    agent = spawn_node(
        "agent",
        {"rate_hz": 10.0, "mind": "autoencoder", "max_frame_age": 0.3, "report_period": 0.5},
    )
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 50)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    assert wait_until(lambda: camera.get_subscription_count() > 0, 20.0)

    bgr = encode_image(np.zeros((480, 640, 3), dtype=np.uint8), "bgr8")
    yuyv = Image(height=1080, width=1920, encoding="yuyv", step=3840)
    yuyv.data = bytes(1080 * 3840)
    bgr_message = Image()
    bgr.fill(bgr_message)
    for message, size in ((yuyv, "1920x1080"), (bgr_message, "640x480")):
        # One publisher per size: Fast DDS sizes a writer's sample pool by its first samples.
        publisher = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        assert wait_until(partial(_has_subscribers, publisher), 20.0)

        def taken(message=message, size=size, publisher=publisher) -> bool:
            publisher.publish(stamped(message, probe))
            return f"last={size}" in agent.output()

        assert wait_until(taken, 20.0, interval=0.1), agent.output()
        camera = publisher

    # Frames keep coming: the agent acts on them (some of its random actions move).
    mark = time.monotonic()
    while time.monotonic() - mark < 2.0:
        camera.publish(stamped(bgr_message, probe))
        time.sleep(0.05)
    assert any(
        message.linear.x or message.angular.z
        for arrival, message in cmd_vel.timed
        if arrival > mark + 0.5
    )
    stopped = time.monotonic()
    time.sleep(1.5)
    after = [message for arrival, message in cmd_vel.timed if arrival > stopped + 0.3 + 0.15]
    assert after and not any(m.linear.x or m.linear.y or m.angular.z for m in after)
    # Logged once per gap: at start (no frame yet), and when the frames stopped.
    assert agent.output().count("no new observation (") >= 2
    assert wait_until(
        lambda: int((latest_status(diagnostics) or {}).get("gap_steps", "0")) >= 10, 5.0
    )


def test_agent_takes_compressed_jpeg_and_refuses_corrupt_ones(spawn_node, probe):
    agent = spawn_node(
        "agent", {"mind": "autoencoder", "image_message": "compressed", "report_period": 0.5}
    )
    camera = probe.publisher(
        CompressedImage, "camera/image_raw/compressed", qos_profile_sensor_data
    )
    assert wait_until(lambda: camera.get_subscription_count() > 0, 20.0)
    _, jpeg = cv2.imencode(".jpg", np.full((480, 640, 3), 120, dtype=np.uint8))
    good = CompressedImage(format="jpeg", data=jpeg.tobytes())
    corrupt = CompressedImage(format="jpeg", data=jpeg.tobytes()[: len(jpeg) // 3])

    def taken() -> bool:
        camera.publish(stamped(good, probe))
        return "last=640x480" in agent.output()

    assert wait_until(taken, 20.0, interval=0.1), agent.output()

    def refused() -> bool:
        camera.publish(stamped(corrupt, probe))
        return "camera/image_raw/compressed frame refused: JPEG of" in agent.output()

    assert wait_until(refused, 10.0, interval=0.1), agent.output()
    assert agent.is_running()


def test_agent_can_publish_twist_stamped(spawn_node, probe):
    from geometry_msgs.msg import TwistStamped

    spawn_node("agent", {"mind": "autoencoder", "cmd_vel_stamped": True, "base_frame_id": "base"})
    commands = probe.subscribe(TwistStamped, "cmd_vel", 10)
    message = commands.wait_for(3, timeout=30.0)[-1]
    assert message.header.frame_id == "base"
    assert message.header.stamp.sec > 0


def test_agent_steps_on_frames_with_the_step_thread_options_it_was_given(spawn_node, probe):
    """The frame trigger and SCHED_FIFO reach the step loop; without frames it still steps."""
    spawn_node(
        "agent",
        {"rate_hz": 5.0, "step_trigger": "frame", "step_fifo_priority": 5, "report_period": 0.5},
    )
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    cmd_vel.wait_for(2, timeout=30.0)  # no frame: a step after each timeout, seeing the gap
    assert wait_until(lambda: latest_status(diagnostics) is not None, 10.0)
    status = latest_status(diagnostics)
    assert status is not None and int(status["gap_steps"]) >= 1
    expected = "SCHED_FIFO 5" if os.geteuid() == 0 else "REFUSED SCHED_FIFO 5"
    assert expected in status["step_real_time"]

    def steps_on_frames() -> bool:
        camera.publish(image(160, 120))
        latest = latest_status(diagnostics)
        return latest is not None and int(latest["frames_received"]) >= 5

    assert wait_until(steps_on_frames, 20.0, interval=0.05)
    before = len(cmd_vel)
    assert wait_until(lambda: len(cmd_vel) > before, 5.0)
