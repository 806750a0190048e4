"""Health and progress of a node on ``/diagnostics`` (diagnostic_msgs), readable by rqt and CLI.

Every node with a reporter also beats on ``heartbeat`` (``std_msgs/Header``, ``frame_id`` the
node's full name) every :data:`HEARTBEAT_PERIOD_S`; a :class:`PeerWatch` listens for one peer's
beats, so a peer that died (even by SIGKILL, with no last word) is noticed within seconds.
"""

import time
from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from pamiq_ros.core import health
from pamiq_ros.core.health import Problems, Silence
from pamiq_ros.io.capture import CaptureState

DIAGNOSTICS_TOPIC = "/diagnostics"
HEARTBEAT_TOPIC = "heartbeat"
HEARTBEAT_PERIOD_S = 0.5
HEARTBEAT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR


class DiagnosticsReporter:
    """Publishes one ``DiagnosticStatus`` for its node, named after the node's full name."""

    def __init__(self, node: Node, hardware_id: str = "") -> None:
        self._node = node
        self._hardware_id = hardware_id
        self._publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._heartbeat = node.create_publisher(Header, HEARTBEAT_TOPIC, HEARTBEAT_QOS)
        self._name = node.get_fully_qualified_name()
        node.create_timer(HEARTBEAT_PERIOD_S, self._beat)

    def _beat(self) -> None:
        beat = Header(frame_id=self._name)
        beat.stamp = self._node.get_clock().now().to_msg()
        self._heartbeat.publish(beat)

    def publish(self, level: bytes | int, message: str, values: Mapping[str, object]) -> None:
        """Publishes the node's status.

        Args:
            level: ``OK``, ``WARN`` or ``ERROR`` (or their numbers, as in
                :mod:`pamiq_ros.core.health`).
            message: A one-line summary.
            values: Figures to show, each converted with ``str`` (floats to 3 decimals).
        """
        status = DiagnosticStatus(
            level=bytes([level]) if isinstance(level, int) else level,
            name=self._node.get_fully_qualified_name(),
            message=message,
            hardware_id=self._hardware_id,
            values=[KeyValue(key=key, value=_format(value)) for key, value in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def resolve_node_name(node: Node, name: str) -> str:
    """A node name relative to ``node``'s namespace made absolute (an absolute one stays)."""
    if name.startswith("/"):
        return name
    return f"{node.get_namespace().rstrip('/')}/{name}"


class PeerWatch:
    """Listens to one peer's heartbeat and says how long it has been silent."""

    def __init__(self, node: Node, peer: str, warn_after_s: float, error_after_s: float) -> None:
        """Subscribes to the heartbeats of ``peer`` (a node name, relative or absolute).

        Raises:
            ValueError: If the limits are not positive or out of order.
        """
        self.peer = resolve_node_name(node, peer)
        self._silence = Silence(time.monotonic(), warn_after_s, error_after_s)
        node.create_subscription(Header, HEARTBEAT_TOPIC, self._on_beat, HEARTBEAT_QOS)

    def _on_beat(self, beat: Header) -> None:
        if beat.frame_id == self.peer:
            self._silence.heard(time.monotonic())

    def set_limits(self, warn_after_s: float, error_after_s: float) -> None:
        """Changes the silences that are a warning and an error.

        Raises:
            ValueError: If the limits are not positive or out of order.
        """
        self._silence.set_limits(warn_after_s, error_after_s)

    def silent_s(self) -> float:
        """Seconds since the peer's last beat (since the watch began if never heard)."""
        return self._silence.seconds(time.monotonic())

    def check(self, report: Problems) -> None:
        """Adds a warning or an error when the peer has been silent too long."""
        self._silence.check(report, time.monotonic(), f"{self.peer} (heartbeat)")


def check_capture(
    report: Problems,
    state: CaptureState,
    last_error: str,
    attempts: int,
    new_items: int,
    what: tuple[str, str],
) -> bool:
    """Adds the problem of a capture (camera, audio) that is not streaming or brought nothing.

    Args:
        report: Where the problem goes.
        state: The capture's state.
        last_error: Its last error ("" if none).
        attempts: Failed attempts to (re)open it so far.
        new_items: Items (frames, chunks) captured since the last status.
        what: The source and its items, as ``("video source", "frames")``.

    Returns:
        Whether it streams and brought new items (so its rate can be checked).
    """
    source, items = what
    if state is CaptureState.CONNECTING:
        report.add(health.ERROR, last_error or f"opening the {source}")
    elif state is CaptureState.REOPENING:
        reason = f": {last_error}" if last_error else ""
        report.add(health.WARN, f"{source} lost; reopening (attempt {attempts + 1}){reason}")
    elif state is CaptureState.FINISHED:
        report.add(health.WARN, f"{source} finished (loop is false)")
    elif state is CaptureState.STOPPED:
        report.add(health.WARN, "capture stopped")
    elif new_items == 0:
        report.add(health.WARN, f"no new {items} since the last status")
    else:
        return True
    return False
