"""Calling a node's services from a test's rclpy probe, waiting for the answer."""

from typing import Any

from test.support.processes import wait_until
from test.support.ros_probe import RosProbe


def call_service(probe: RosProbe, service_type: Any, name: str, request: Any) -> Any:
    """Calls ``name`` once the service is offered; fails the test if it is not or is silent."""
    client: Any = probe.node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=30.0), f"{name} not offered"
    future = client.call_async(request)
    assert wait_until(future.done, 30.0), f"{name} did not answer"
    return future.result()
