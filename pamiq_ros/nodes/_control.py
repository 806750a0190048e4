"""Pause, resume, save, status and shutdown as ROS services (std_srvs/Trigger) on a node.

Each controllable node offers ``~/control/<command>``, e.g. ``/agent/control/pause``, so
``pamiq-ros pause`` (and ``ros2 service call``) reach every node of a running stack.
"""

import json
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Final

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

CONTROL_COMMANDS: Final = ("pause", "resume", "save", "status", "shutdown")

SHUTDOWN_DELAY_S: Final = 0.5
"""Time between answering ``shutdown`` and stopping, for the answer to reach the caller."""
CONTROL_NAMESPACE: Final = "control"


class Controllable(ABC):
    """What a node does on each control command; each returns a one-line result."""

    @abstractmethod
    def pause(self) -> str:
        """Stops the node's work (acting, training, sending) until resumed."""

    @abstractmethod
    def resume(self) -> str:
        """Continues where pause stopped."""

    def save(self) -> str:
        """Saves the node's state now; nodes without state say so."""
        return "nothing to save"

    @abstractmethod
    def status(self) -> Mapping[str, object]:
        """The node's key figures (JSON-serialisable)."""


class ControlServices:
    """Offers the control services of ``node``, answering through ``target``.

    The services have their own callback group so a slow save never delays the node's other
    callbacks. ``shutdown`` answers first, then (after :data:`SHUTDOWN_DELAY_S`) sends this
    process SIGTERM, which the node's main turns into a clean close.
    """

    def __init__(self, node: Node, target: Controllable) -> None:
        self._node = node
        self._target = target
        group = MutuallyExclusiveCallbackGroup()
        for command in CONTROL_COMMANDS:
            node.create_service(
                Trigger,
                f"~/{CONTROL_NAMESPACE}/{command}",
                self._handler(command),
                callback_group=group,
            )

    def _handler(
        self, command: str
    ) -> Callable[[Trigger.Request, Trigger.Response], Trigger.Response]:
        def handle(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            return self._answer(command, response)

        return handle

    def _answer(self, command: str, response: Trigger.Response) -> Trigger.Response:
        try:
            if command == "status":
                response.message = json.dumps(dict(self._target.status()), default=str)
            elif command == "shutdown":
                response.message = "shutting down"
                self._node.get_logger().info("shutdown requested through the control service")
                # Later, not now: the signal shuts the context down, and the answer must leave
                # first or the caller waits in vain.
                threading.Timer(SHUTDOWN_DELAY_S, os.kill, (os.getpid(), signal.SIGTERM)).start()
            else:
                response.message = getattr(self._target, command)()
                self._node.get_logger().info(f"{command}: {response.message}")
            response.success = True
        except Exception as error:  # a failed command is answered, never crashes the node
            response.success = False
            response.message = f"{command} failed: {type(error).__name__}: {error}"
            self._node.get_logger().error(response.message)
        return response
