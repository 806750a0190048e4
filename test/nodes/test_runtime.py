"""run_node: a callback that raises is logged and counted, and the node goes on."""

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from std_msgs.msg import String
from std_srvs.srv import Trigger

from test.support.processes import NodeProcess, wait_until
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
