"""Pause, resume, save, status and shutdown as ROS services (std_srvs/Trigger) on a node.

Each controllable node offers ``~/control/<command>``, e.g. ``/agent/control/pause``, so
``pamiq-ros pause`` (and ``ros2 service call``) reach every node of a running stack.
"""

import json
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Final

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_srvs.srv import Trigger

from pamiq_ros.nodes._runtime import CALLBACK_FAILURES

CONTROL_COMMANDS: Final = ("pause", "resume", "save", "status", "shutdown")

SAVE_MIN_INTERVAL_S: Final = 1.0
"""A save asked for within this time of the last one answers with that one: a flood of save
calls (anyone in the domain may call) must not become a flood of checkpoints."""

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

    def before_shutdown(self) -> None:  # noqa: B027 - optional: most nodes move nothing
        """Called when ``shutdown`` is answered, :data:`SHUTDOWN_DELAY_S` before the node closes.

        A node that moves something stops it here, so nothing moves during the delay (its
        close stops it once more); others have nothing to do.
        """


class ControlServices:
    """Offers the control services of ``node``, answering through ``target``.

    The services have their own callback group so a slow save never delays the node's other
    callbacks. ``shutdown`` answers first, then (after :data:`SHUTDOWN_DELAY_S`) sends this
    process SIGTERM, which the node's main turns into a clean close (under ``pamiq-ros launch``
    a node stopped alone is restarted). Calls are counted per command in ``status``
    (``control_calls``); a failed command is answered with its reason, never raised.
    """

    def __init__(self, node: Node, target: Controllable) -> None:
        self._node = node
        self._target = target
        self._calls = dict.fromkeys(CONTROL_COMMANDS, 0)
        self._last_save: tuple[float, str] | None = None
        self._shutting_down = False
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

    def _save(self) -> str:
        now = time.monotonic()
        if self._last_save is not None and now - self._last_save[0] < SAVE_MIN_INTERVAL_S:
            at, message = self._last_save
            return f"{message} ({now - at:.1f} s ago; one save per {SAVE_MIN_INTERVAL_S:g} s)"
        message = self._target.save()
        self._last_save = (time.monotonic(), message)
        self._node.get_logger().info(f"save: {message}")
        return message

    def _stop_before_shutdown(self) -> None:
        try:
            self._target.before_shutdown()
        except Exception as error:  # the shutdown goes on; its close stops again
            self._node.get_logger().error(
                f"stopping before shutdown failed: {type(error).__name__}: {error}"
            )

    def _answer(self, command: str, response: Trigger.Response) -> Trigger.Response:
        self._calls[command] += 1
        try:
            if command == "status":
                status = {
                    **self._target.status(),
                    "control_calls": dict(self._calls),
                    "callback_failures": CALLBACK_FAILURES.count,
                    "last_callback_failure": CALLBACK_FAILURES.last,
                }
                response.message = json.dumps(status, default=str)
            elif command == "shutdown":
                response.message = "shutting down"
                if not self._shutting_down:  # one signal, however often it is asked
                    self._shutting_down = True
                    self._node.get_logger().info("shutdown requested through the control service")
                    self._stop_before_shutdown()
                    # Later, not now: the signal shuts the context down, and the answer must
                    # leave first or the caller waits in vain.
                    threading.Timer(
                        SHUTDOWN_DELAY_S, os.kill, (os.getpid(), signal.SIGTERM)
                    ).start()
            elif command == "save":
                response.message = self._save()
            else:
                response.message = getattr(self._target, command)()
                self._node.get_logger().info(f"{command}: {response.message}")
            response.success = True
        except Exception as error:  # a failed command is answered, never crashes the node
            response.success = False
            response.message = f"{command} failed: {type(error).__name__}: {error}"
            self._node.get_logger().error(response.message)
        return response
