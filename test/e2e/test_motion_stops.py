"""End-to-end: a stand-in robot base behind the safety relay sees motion stop, in time.

Real processes: an agent (light autoencoder mind, random actions) fed fresh frames by the test,
the ``safety`` relay, and the test's own rclpy subscriber as the base on ``cmd_vel_safe``. The
README's ``cmd_vel`` contract states the times checked here: a zero at once (within one relay
period and transport) on pause and on a shutdown request (not at its SIGTERM half a second
later), and within the relay's input timeout plus one period when the agent is killed outright.
"""

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pamiq_ros.io.image_codec import encode_image
from pamiq_ros.nodes._control import SHUTDOWN_DELAY_S
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import Received, RosProbe

pytestmark = pytest.mark.e2e

INPUT_TIMEOUT = 0.3
RELAY_RATE_HZ = 20.0
AT_ONCE_S = 1 / RELAY_RATE_HZ + 0.25
"""Pause and shutdown: one relay period, plus transport and scheduling on a loaded machine."""
KILLED_S = INPUT_TIMEOUT + 1 / RELAY_RATE_HZ + 0.25
"""SIGKILL: the relay's input timeout and one period, plus the same slack."""
WATCH_S = 1.5
"""How long the output must stay zero after it reached zero."""


def moving(twist: Twist) -> bool:
    return bool(twist.linear.x or twist.linear.y or twist.angular.z)


def time_to_lasting_zero(base: Received, since: float) -> float:
    """Seconds from ``since`` to the first zero after which every command up to now is zero."""
    timed = [(arrival, message) for arrival, message in base.timed if arrival >= since]
    assert timed, "the base received nothing"
    last_moving = max((arrival for arrival, message in timed if moving(message)), default=None)
    after = [arrival for arrival, message in timed if last_moving is None or arrival > last_moving]
    assert after, "the base was still moving at the end"
    return after[0] - since


class Camera:
    """Publishes fresh 160x120 frames at 20 Hz, stamped now, from a thread of the test."""

    def __init__(self, probe: RosProbe) -> None:
        self._publisher = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self._probe = probe
        self._stop = threading.Event()
        self._fields = encode_image(np.full((120, 160, 3), 90, dtype=np.uint8))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            message = Image()
            self._fields.fill(message)
            message.header.stamp = self._probe.node.get_clock().now().to_msg()
            self._publisher.publish(message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def call(probe: RosProbe, service: str) -> tuple[float, str]:
    """Calls a Trigger service; returns when it was called (monotonic) and the answer."""
    client: Any = probe.node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=20.0), f"{service} not offered"
    called = time.monotonic()
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, 10.0), f"{service} did not answer"
    result = future.result()
    assert result is not None and result.success, result
    return called, str(result.message)


def test_the_base_stops_on_pause_shutdown_and_agent_kill(spawn_node, probe):
    spawn_node(
        "safety",
        {"input_timeout": INPUT_TIMEOUT, "rate_hz": RELAY_RATE_HZ, "report_period": 1.0},
    )
    start_agent: Callable[[], NodeProcess] = lambda: spawn_node(  # noqa: E731
        "agent", {"mind": "autoencoder", "rate_hz": 10.0, "max_frame_age": 0.5}
    )
    agent = start_agent()
    base = probe.subscribe(Twist, "cmd_vel_safe", 50)
    camera = Camera(probe)
    try:

        def drives() -> bool:
            return any(moving(message) for _, message in base.timed[-5:])

        assert wait_until(drives, 60.0), "the agent never drove the base"

        # Pause: the agent's own stop, relayed (the relay itself is not paused).
        paused, answer = call(probe, "/agent/control/pause")
        assert "stop command sent" in answer
        time.sleep(WATCH_S)
        pause_s = time_to_lasting_zero(base, paused)
        assert pause_s <= AT_ONCE_S, f"zero {pause_s:.3f} s after pause"

        call(probe, "/agent/control/resume")
        assert wait_until(drives, 20.0), "no motion after resume"

        # SIGKILL: nothing from the agent; the relay's input timeout stops the base.
        killed = time.monotonic()
        agent.signal_group(signal.SIGKILL)
        time.sleep(WATCH_S)
        kill_s = time_to_lasting_zero(base, killed)
        assert INPUT_TIMEOUT - 0.1 <= kill_s <= KILLED_S, f"zero {kill_s:.3f} s after SIGKILL"

        # Shutdown through the control service (SIGTERM, clean close): the agent's last stop.
        agent = start_agent()
        mark = time.monotonic()
        assert wait_until(lambda: drives() and base.timed[-1][0] > mark, 60.0)
        shutdown, _ = call(probe, "/agent/control/shutdown")
        assert wait_until(lambda: not agent.is_running(), 15.0)
        time.sleep(WATCH_S)
        shutdown_s = time_to_lasting_zero(base, shutdown)
        # The agent stops acting when it answers, not when its SIGTERM comes SHUTDOWN_DELAY_S
        # later (it closes with a stop again then).
        assert shutdown_s <= AT_ONCE_S < SHUTDOWN_DELAY_S, f"zero {shutdown_s:.3f} s after shutdown"
        assert "closed after" in agent.output()
        print(
            f"time to zero on the base: pause {pause_s * 1000:.0f} ms, SIGKILL {kill_s * 1000:.0f} "
            f"ms, shutdown {shutdown_s * 1000:.0f} ms from the request"
        )
    finally:
        camera.close()


def test_the_relay_clamps_ramps_locks_on_estop_and_speaks_twist_stamped(spawn_node, probe):
    from geometry_msgs.msg import TwistStamped
    from std_msgs.msg import Bool

    relay = spawn_node(
        "safety",
        {
            "input_stamped": True,
            "output_stamped": True,
            "output_frame_id": "base_footprint",
            "max_linear_speed": 1.0,
            "max_linear_accel": 2.0,
            "input_timeout": INPUT_TIMEOUT,
        },
    )
    commands = probe.publisher(TwistStamped, "cmd_vel", 10)
    estop = probe.publisher(Bool, "e_stop", 10)
    base = probe.subscribe(TwistStamped, "cmd_vel_safe", 50)
    assert wait_until(lambda: commands.get_subscription_count() > 0, 20.0)
    command = TwistStamped()
    command.twist.linear.x = 3.0  # beyond the limit

    def drive_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            commands.publish(command)
            time.sleep(0.05)

    start = time.monotonic()
    drive_for(1.5)
    driven = [(t, m) for t, m in base.timed if t >= start]
    speeds = [m.twist.linear.x for _, m in driven]
    assert max(speeds) == pytest.approx(1.0)  # clamped
    first_full = next(t for t, m in driven if m.twist.linear.x == pytest.approx(1.0))
    first_moving = next(t for t, m in driven if m.twist.linear.x > 0)
    assert first_full - first_moving >= 0.35  # 2 m/s^2 from 0 to 1 m/s takes 0.5 s
    assert driven[-1][1].header.frame_id == "base_footprint"

    engaged = time.monotonic()
    estop.publish(Bool(data=True))
    drive_for(1.0)
    locked = [m.twist.linear.x for t, m in base.timed if t >= engaged + 0.2]
    assert locked and not any(locked), "the e-stop must hold zero while commands come"
    relay.wait_for_output("e-stop engaged")

    released = time.monotonic()
    estop.publish(Bool(data=False))
    drive_for(1.0)
    assert any(m.twist.linear.x > 0 for t, m in base.timed if t >= released)

    silent = time.monotonic()
    time.sleep(1.0)
    late = [m.twist.linear.x for t, m in base.timed if t >= silent + INPUT_TIMEOUT + 0.15]
    assert late and not any(late), "zero after the input timeout"
