"""What every node process shares: parameters from settings, and a main that shuts down cleanly."""

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from pamiq_ros.core.checkpoint import PRIVATE_FOLDER_MODE, PRIVATE_UMASK
from pamiq_ros.core.settings import SettingsError, SettingValue, build_settings, describe

T = TypeVar("T")

SPIN_PERIOD = 0.1
"""Seconds between checks for Ctrl-C/SIGTERM while spinning."""


class ClosableNode(Protocol):
    """A node with a ``close`` that stops its threads and releases what it holds."""

    def close(self) -> None:
        """Stops work and releases resources; called once, also after the context shut down."""

    def destroy_node(self) -> None:
        """Tears the node down (rclpy)."""


def declare_settings(node: Node, settings_type: type[T]) -> T:
    """Declares every field of a settings dataclass as a parameter and returns the values.

    Raises:
        SettingsError: If a given parameter has the wrong type or an invalid value.
    """
    values: dict[str, SettingValue] = {}
    for name, default, description in describe(settings_type):
        descriptor = ParameterDescriptor(description=description, dynamic_typing=True)
        value: SettingValue | None = node.declare_parameter(name, default, descriptor).value
        if value is None:
            raise SettingsError(f"parameter {name!r} is unset")
        values[name] = value
    return build_settings(settings_type, values)


def prepare_run_dir(configured: str, node_name: str) -> Path:
    """The node's run folder, created if needed: the configured one, or ``runs/<time>-<node>``.

    ``pamiq-ros launch`` gives every node of a start the same folder; a node started alone
    gets one of its own.
    """
    run_dir = (
        Path(configured)
        if configured
        else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{node_name}"
    )
    run_dir.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)
    return run_dir.resolve()


def as_parameter_overrides(values: dict[str, SettingValue]) -> list[Parameter]:
    """Turns plain values into rclpy parameter overrides (for nodes built in tests)."""
    return [Parameter(name, value=value) for name, value in values.items()]


def run_node(make_node: Callable[[], ClosableNode], args: Sequence[str] | None = None) -> None:
    """Runs one node until Ctrl-C, SIGTERM or shutdown, then closes it and exits.

    The node is closed while its ROS context is still up, so ``close`` can still log and
    publish (a last status, released inputs). Exits with status 2 and a one-line error when
    the node's settings are invalid.

    Args:
        make_node: Builds the node (after ``rclpy.init``).
        args: Command-line arguments (ROS arguments included); ``sys.argv`` if None.
    """
    os.umask(PRIVATE_UMASK)  # checkpoints, events and logs for this user only
    # rclpy's own handlers would shut the context down before close() runs.
    rclpy.init(
        args=list(args) if args is not None else sys.argv,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    stop_requested = threading.Event()
    previous_handlers = {
        sig: signal.signal(sig, lambda *_: stop_requested.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    node: ClosableNode | None = None
    exit_code = 0
    try:
        node = make_node()
        # rclpy's MultiThreadedExecutor was seen to delay small reliable messages across
        # processes by up to a second; the nodes keep slow work in threads of their own.
        executor = SingleThreadedExecutor()
        executor.add_node(node)  # type: ignore[arg-type]
        while not stop_requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD)
    except SettingsError as error:
        print(f"[ERROR] invalid parameters: {error}", file=sys.stderr, flush=True)
        exit_code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    if exit_code:
        sys.exit(exit_code)
