"""``pamiq-ros pause|resume|save|status|shutdown``: calls a control service on every node."""

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from pamiq_ros.bringup.description import fully_qualified
from pamiq_ros.bringup.security import CONTROL_TOOL_NODE, enclave_of
from pamiq_ros.nodes._control import CONTROL_NAMESPACE

TRIGGER_TYPE = "std_srvs/srv/Trigger"
SETTLE_S = 2.0
"""Once services are seen, how long the set must stay unchanged before the call (discovery of
the rest of the graph trickles in)."""


@dataclass(frozen=True)
class ControlReply:
    """One node's answer (or failure to answer) to a control command."""

    node: str
    success: bool
    message: str


def control_service_names(
    service_names_and_types: list[tuple[str, list[str]]], command: str, namespace: str = "/"
) -> list[str]:
    """The control services for ``command`` among the graph's services, sorted.

    Only those of nodes in ``namespace`` or below it (``/`` for every node of the domain).
    """
    suffix = f"/{CONTROL_NAMESPACE}/{command}"
    prefix = namespace.rstrip("/") + "/"
    return sorted(
        name
        for name, types in service_names_and_types
        if name.endswith(suffix) and name.startswith(prefix) and TRIGGER_TYPE in types
    )


def send_command(
    command: str,
    discovery_timeout: float = 3.0,
    call_timeout: float = 30.0,
    expected: Sequence[str] = (),
    namespace: str = "/",
) -> list[ControlReply]:
    """Sends ``command`` to every node that offers it in ``namespace`` of this ROS domain.

    Waits up to ``discovery_timeout`` for services to appear (DDS discovery takes a moment),
    then calls them all and waits up to ``call_timeout`` for the answers. With ``expected``
    node names (relative ones in ``namespace``), discovery waits for exactly those (no settle
    time) and a node still missing at the timeout gets a failed reply. ``namespace`` ``/``
    reaches every node of the domain; ``/robot1`` only the nodes in it (or below it).
    """
    context = Context()
    arguments = []
    if os.environ.get("ROS_SECURITY_ENABLE") == "true" and "ROS_SECURITY_ENCLAVE" not in os.environ:
        arguments = ["--ros-args", "--enclave", enclave_of(CONTROL_TOOL_NODE)]
    rclpy.init(context=context, args=arguments)
    try:
        node = rclpy.create_node(CONTROL_TOOL_NODE, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        wanted = {fully_qualified(namespace, name) for name in expected}
        names = _discover(node, executor, command, discovery_timeout, wanted, namespace)
        clients: dict[str, Any] = {name: node.create_client(Trigger, name) for name in names}
        futures = {}
        for name, client in clients.items():
            if client.wait_for_service(timeout_sec=discovery_timeout):
                futures[name] = client.call_async(Trigger.Request())
        deadline = time.monotonic() + call_timeout
        while any(not future.done() for future in futures.values()) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        replies = []
        for name in names:
            owner = name[: -len(f"/{CONTROL_NAMESPACE}/{command}")] or "/"
            future = futures.get(name)
            if future is None:
                replies.append(ControlReply(owner, False, "service not reachable"))
            elif not future.done():
                replies.append(ControlReply(owner, False, f"no answer within {call_timeout:g} s"))
            else:
                result = future.result()
                if result is None:
                    replies.append(ControlReply(owner, False, "the call failed"))
                    continue
                replies.append(ControlReply(owner, bool(result.success), str(result.message)))
        answered = {reply.node for reply in replies}
        for missing in sorted(wanted - answered):
            replies.append(
                ControlReply(missing, False, f"not found within {discovery_timeout:g} s")
            )
        node.destroy_node()
        return replies
    finally:
        context.try_shutdown()


def _discover(
    node: rclpy.node.Node,
    executor: SingleThreadedExecutor,
    command: str,
    timeout: float,
    wanted: set[str],
    namespace: str,
) -> list[str]:
    deadline = time.monotonic() + timeout
    suffix = f"/{CONTROL_NAMESPACE}/{command}"
    names: list[str] = []
    settled_at: float | None = None
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
        found = control_service_names(node.get_service_names_and_types(), command, namespace)
        if wanted:
            names = found
            if wanted <= {name[: -len(suffix)] for name in found}:
                break
        elif found != names:
            names, settled_at = found, time.monotonic()
        # Once some services are seen, wait a little for the rest of the graph to appear.
        elif names and settled_at is not None and time.monotonic() - settled_at > SETTLE_S:
            break
    return names
