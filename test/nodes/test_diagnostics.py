"""Honest diagnostics over real processes: a trainer killed by SIGKILL turns the agent WARN.

The agent hears the trainer's heartbeat (every 0.5 s) and publishes its status every second;
with the trainer gone without a last word, the agent's level must leave OK within 3 s, naming
the silent trainer, and become ERROR after ``peer_error_after`` (2.5 s here; 5 s by default).
"""

import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import Image

from pamiq_ros.io.image_codec import encode_image
from test.support.processes import wait_until

pytestmark = pytest.mark.e2e


def agent_statuses(received, since: float) -> list[tuple[float, DiagnosticStatus]]:
    return [
        (at, status)
        for at, array in received.timed
        if at >= since
        for status in array.status
        if status.name == "/agent"
    ]


def test_a_killed_trainer_turns_the_agent_warn_within_3_s_then_error(spawn_node, probe):
    light = {"mind": "autoencoder", "image_width": 64, "image_height": 48}
    trainer = spawn_node("trainer", {**light, "niceness": 0})
    agent = {**light, "rate_hz": 5.0, "send_experience": False, "peer_error_after": 2.5}
    spawn_node("agent", agent)
    camera = probe.publisher(Image, "camera/image_raw")
    fields = encode_image(np.full((48, 64, 3), 80, dtype=np.uint8))

    def publish_frame() -> None:
        message = Image(height=48, width=64, encoding="rgb8", step=fields.step)
        message.header.stamp = probe.node.get_clock().now().to_msg()
        message.data = fields.data
        camera.publish(message)

    probe.call_periodically(0.1, publish_frame)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 50)

    def trainer_heard() -> bool:
        statuses = agent_statuses(diagnostics, time.monotonic() - 1.5)
        return bool(statuses) and "trainer" not in statuses[-1][1].message

    assert wait_until(trainer_heard, 60.0), "the agent never heard the trainer"
    trainer.popen.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    trainer.popen.wait(timeout=10.0)

    def level_at_least(level: bytes) -> float | None:
        for at, status in agent_statuses(diagnostics, killed):
            if status.level >= level and "/trainer (heartbeat)" in status.message:
                return at
        return None

    assert wait_until(lambda: level_at_least(DiagnosticStatus.WARN) is not None, 10.0)
    warned = level_at_least(DiagnosticStatus.WARN)
    assert warned is not None
    assert warned - killed <= 3.0, f"WARN {warned - killed:.2f} s after the kill"
    assert wait_until(lambda: level_at_least(DiagnosticStatus.ERROR) is not None, 10.0)
    errored = level_at_least(DiagnosticStatus.ERROR)
    assert errored is not None
    print(f"agent WARN {warned - killed:.2f} s, ERROR {errored - killed:.2f} s after the kill")
    assert errored - killed <= 4.5, f"ERROR {errored - killed:.2f} s after the kill"
