"""Health and progress of a node on ``/diagnostics`` (diagnostic_msgs), readable by rqt and CLI."""

from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

DIAGNOSTICS_TOPIC = "/diagnostics"

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR


class DiagnosticsReporter:
    """Publishes one ``DiagnosticStatus`` for its node, named after the node's full name."""

    def __init__(self, node: Node, hardware_id: str = "") -> None:
        self._node = node
        self._hardware_id = hardware_id
        self._publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)

    def publish(self, level: bytes, message: str, values: Mapping[str, object]) -> None:
        """Publishes the node's status.

        Args:
            level: ``OK``, ``WARN`` or ``ERROR``.
            message: A one-line summary.
            values: Figures to show, each converted with ``str`` (floats to 3 decimals).
        """
        status = DiagnosticStatus(
            level=level,
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
