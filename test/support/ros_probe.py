"""A test-side ROS node in the test's own DDS domain, spinning in a background thread."""

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from test.support.processes import wait_until


class Received:
    """Messages received on one topic, with their arrival times (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[float, Any]] = []

    def append(self, message: Any) -> None:
        with self._lock:
            self._items.append((time.monotonic(), message))

    @property
    def messages(self) -> list[Any]:
        with self._lock:
            return [message for _, message in self._items]

    @property
    def timed(self) -> list[tuple[float, Any]]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list[Any]:
        """Waits for at least ``count`` messages; fails the test if they do not come."""
        if not wait_until(lambda: len(self) >= count, timeout):
            raise AssertionError(f"got {len(self)} message(s), expected {count} within {timeout} s")
        return self.messages


class RosProbe:
    """Subscribes and publishes on behalf of a test, in the given DDS domain."""

    def __init__(self, domain_id: int, name: str = "test_probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node: Node = rclpy.create_node(name, context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # the context was shut down under the spin
            return

    def subscribe(
        self, message_type: Any, topic: str, qos: QoSProfile | int = qos_profile_sensor_data
    ) -> Received:
        received = Received()
        self.node.create_subscription(message_type, topic, received.append, qos)
        return received

    def publisher(self, message_type: Any, topic: str, qos: QoSProfile | int = 10) -> Any:
        return self.node.create_publisher(message_type, topic, qos)

    def call_periodically(self, period: float, callback: Callable[[], None]) -> Any:
        return self.node.create_timer(period, callback)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
        self.context.destroy()  # frees the participant's shared memory once unreferenced
