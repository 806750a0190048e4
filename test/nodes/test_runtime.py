"""run_node: a callback that raises is logged and counted, and the node goes on; every way of
stopping a node ends with its shutdown checkpoint and exit 0, soon after close(), and leaves
none of its DDS shared memory behind."""

import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from pamiq_ros.core.checkpoint import CheckpointStore
from test.support.dds_memory import segments_of
from test.support.processes import NodeProcess, node_command, wait_until
from test.support.ros_probe import RosProbe

FRAGILE_NODE = """
from rclpy.node import Node
from std_msgs.msg import String
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._runtime import run_node

class Fragile(Node, Controllable):
    def __init__(self):
        super().__init__("fragile")
        self.taken = 0
        self.create_subscription(String, "input", self.on_input, 10)
        ControlServices(self, self)

    def on_input(self, message):
        if message.data == "bad":
            raise ValueError("a bug meets bad input")
        self.taken += 1

    def pause(self): return "paused"
    def resume(self): return "resumed"
    def status(self): return {"taken": self.taken}
    def close(self): pass

run_node(Fragile)
"""


def _status(probe: RosProbe) -> dict[str, Any]:
    client: Any = probe.node.create_client(Trigger, "/fragile/control/status")
    assert client.wait_for_service(timeout_sec=20.0)
    done = threading.Event()
    future = client.call_async(Trigger.Request())
    future.add_done_callback(lambda _: done.set())
    assert done.wait(10.0)
    response: Any = future.result()
    return dict(json.loads(response.message))


@pytest.mark.e2e
def test_a_callback_that_raises_is_counted_and_the_node_goes_on(
    spawn: Callable[..., NodeProcess], probe: RosProbe
) -> None:
    node = spawn("fragile", [sys.executable, "-c", FRAGILE_NODE])
    publisher = probe.publisher(String, "input", 10)
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 30.0)
    for data in ("bad", "good", "bad", "good"):
        publisher.publish(String(data=data))
    assert wait_until(lambda: _status(probe)["taken"] == 2, 20.0)
    status = _status(probe)
    assert status["callback_failures"] == 2
    assert status["last_callback_failure"] == "ValueError: a bug meets bad input"
    assert node.is_running()
    assert "a callback failed: ValueError: a bug meets bad input" in node.output()
    assert node.stop() == 0


# --- stopping: every way ends with the shutdown checkpoint and exit 0 --------------------------

CONFIG = Path(__file__).resolve().parents[2] / "config" / "sim.yaml"
FAST_REPORTS = {"report_period": 1.0}


class ExitClock:
    """When a node logged the end of its ``close()``, and when its process was gone."""

    def __init__(self, node: NodeProcess) -> None:
        self.closed_at: float | None = None
        self.exited_at: float | None = None
        self._node = node
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self._node.popen.poll() is None:
            if self.closed_at is None and "closed in " in self._node.output():
                self.closed_at = time.monotonic()
            time.sleep(0.005)
        self.exited_at = time.monotonic()

    def close_to_exit(self, timeout: float = 60.0) -> float:
        assert wait_until(lambda: self.exited_at is not None, timeout), "still running"
        assert self.closed_at is not None and self.exited_at is not None, self._node.output()
        return self.exited_at - self.closed_at


def _shutdown_checkpoints(run_dir: Path, node: str) -> list[Path]:
    store = CheckpointStore(run_dir / node / "checkpoints")
    return [path for path in store.checkpoints() if path.name.endswith("-shutdown")]


def _frames(probe: RosProbe) -> None:
    """A camera for the agent: fresh noise frames at 20 Hz."""
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    random = np.random.default_rng(0)

    def publish() -> None:
        pixels = random.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        message = Image(height=120, width=160, encoding="rgb8", step=480, data=pixels.tobytes())
        message.header.stamp = probe.node.get_clock().now().to_msg()
        camera.publish(message)

    probe.call_periodically(0.05, publish)


@pytest.mark.e2e
def test_every_way_of_stopping_ends_with_the_shutdown_checkpoint_and_exit_0(
    spawn: Callable[..., NodeProcess], probe: RosProbe, tmp_path: Path
) -> None:
    """A SIGTERM (trainer, training), a double Ctrl-C (agent, acting), a Ctrl-C during
    start-up (agent, importing torch) and a Ctrl-C when idle (trainer): each signal goes to
    the process group, as a terminal or a launcher sends it."""

    clocks: dict[str, ExitClock] = {}

    def start(executable: str, namespace: str, **parameters: object) -> tuple[NodeProcess, Path]:
        run_dir = tmp_path / f"run_{namespace}_{executable}"
        command = node_command(
            executable, {"run_dir": str(run_dir), **FAST_REPORTS, **parameters}, CONFIG
        )
        command += ["-r", f"__ns:=/{namespace}"]
        node = spawn(f"{namespace}_{executable}", command)
        clocks[f"/{namespace}/{executable}".replace("//", "/")] = ExitClock(node)
        return node, run_dir

    _frames(probe)  # on /camera/image_raw: the loaded pair's namespace is the root
    early, early_dir = start("agent", "early")
    time.sleep(0.3)
    early.signal_group(signal.SIGINT)  # while its interpreter is still importing
    trainer, trainer_dir = start("trainer", "", min_buffer_size=16, min_new_samples=4)
    agent, agent_dir = start("agent", "")
    idle, idle_dir = start("trainer", "idle")

    idle.wait_for_output("runs=0", timeout=90)
    segments = {"idle": segments_of(idle.pid)}
    idle.signal_group(signal.SIGINT)
    assert wait_until(lambda: re.search(r"runs=[1-9]", trainer.output()) is not None, 120), (
        trainer.output()
    )
    segments |= {"trainer": segments_of(trainer.pid), "agent": segments_of(agent.pid)}
    trainer.signal_group(signal.SIGTERM)
    agent.signal_group(signal.SIGINT)
    time.sleep(0.05)  # ros2 launch's own SIGINT, after the terminal's
    agent.signal_group(signal.SIGINT)

    figures = {name: clock.close_to_exit() for name, clock in clocks.items()}
    print("close() -> process gone, s:", {name: round(value, 3) for name, value in figures.items()})
    for node, run_dir, executable, how in (
        (early, early_dir, "agent", "SIGINT"),
        (idle, idle_dir, "trainer", "SIGINT"),
        (trainer, trainer_dir, "trainer", "SIGTERM"),
        (agent, agent_dir, "agent", "SIGINT"),
    ):
        assert node.stop() == 0, node.output()
        assert f"stopping on {how}" in node.output(), node.output()
        assert _shutdown_checkpoints(run_dir, executable), node.output()
        assert "KeyboardInterrupt" not in node.output()
    assert all(value < 10.0 for value in figures.values()), figures
    # Each running node held a Fast DDS shared-memory segment (16 MiB of /dev/shm); a clean
    # stop destroys its participant, which removes it (os._exit alone left it behind).
    assert all(segments.values()), segments
    left = {name: [path.name for path in held if path.exists()] for name, held in segments.items()}
    assert not any(left.values()), left


CLOSING_NODE = """
import os, signal, sys, time
from pathlib import Path
from rclpy.node import Node
from pamiq_ros.nodes._runtime import run_node

class Closing(Node):
    def __init__(self):
        super().__init__("closing")
        print("up", flush=True)

    def close(self):
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C, in the middle of cleanup
        time.sleep(0.3)
        Path(sys.argv[1]).write_text("saved")

run_node(Closing, [])
"""


@pytest.mark.e2e
def test_a_second_signal_during_close_does_not_interrupt_it(
    spawn: Callable[..., NodeProcess], tmp_path: Path
) -> None:
    saved = tmp_path / "saved"
    node = spawn("closing", [sys.executable, "-c", CLOSING_NODE, str(saved)])
    node.wait_for_output("up", timeout=60)
    node.signal_group(signal.SIGINT)
    assert node.popen.wait(timeout=30) == 0, node.output()
    assert saved.read_text() == "saved"
    assert "stop signals: SIGINT x2" in node.output()
    assert "KeyboardInterrupt" not in node.output()
