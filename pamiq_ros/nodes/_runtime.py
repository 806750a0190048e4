"""What every node process shares: parameters from settings, and a main that shuts down cleanly."""

import contextlib
import ctypes
import dataclasses
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

import rclpy
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from rclpy.timer import Timer

from pamiq_ros.core.checkpoint import PRIVATE_FOLDER_MODE, PRIVATE_UMASK
from pamiq_ros.core.settings import (
    SettingsError,
    SettingSpec,
    SettingValue,
    build_settings,
    range_text,
    specs,
)
from pamiq_ros.nodes._shutdown import STOP, leave_process

T = TypeVar("T")

SPIN_PERIOD = 0.1
"""Seconds between checks for Ctrl-C/SIGTERM while spinning."""


class CallbackFailures:
    """Callbacks of this process's node that raised: how many, and the last reason."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""

    def note(self, error: Exception) -> str:
        """Counts a failure; returns its one-line reason."""
        self.count += 1
        self.last = f"{type(error).__name__}: {error}"
        return self.last


CALLBACK_FAILURES = CallbackFailures()
"""Reported by every node's control status (``callback_failures``)."""

M_MMAP_THRESHOLD = -3  # mallopt option, glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 << 10
"""Allocations from this size on are mapped and given back at free (see below)."""


class ClosableNode(Protocol):
    """A node with a ``close`` that stops its threads and releases what it holds."""

    def close(self) -> None:
        """Stops work and releases resources; called once, also after the context shut down."""

    def destroy_node(self) -> None:
        """Tears the node down (rclpy)."""


def declare_settings(
    node: Node,
    settings_type: type[T],
    apply: Callable[[T, frozenset[str]], None] | None = None,
) -> T:
    """Declares every field of a settings dataclass as a typed parameter; returns the values.

    Each parameter has the type of its default (no dynamic typing), its declared range and,
    unless the setting is marked ``runtime``, ``read_only``. With ``apply``, a parameter
    callback takes run-time changes of the ``runtime`` settings: the whole settings are built
    and checked with the new values, then ``apply(new_settings, changed_names)`` puts them to
    use (raising ``ValueError`` to refuse); a refusal is answered with its reason and the old
    value stays, so reading a parameter back returns the value in use.

    Raises:
        SettingsError: If a given parameter has the wrong type or an invalid value.
    """
    values: dict[str, SettingValue] = {}
    declared = specs(settings_type)
    for name, spec in declared.items():
        descriptor = _descriptor(spec, read_only=apply is None or not spec.runtime)
        default = spec.default
        override = node._parameter_overrides.get(name)
        if (
            isinstance(default, float)
            and override is not None
            and override.type_ == Parameter.Type.INTEGER
        ):  # ``rate_hz: 10`` in YAML means 10.0
            node._parameter_overrides[name] = Parameter(name, value=float(override.value))
        try:
            value: SettingValue | None = node.declare_parameter(name, default, descriptor).value
        except InvalidParameterValueException as error:  # out of the declared range
            given = node._parameter_overrides.get(name)
            raise SettingsError(
                f"{name} must be in {range_text(spec)}, got {given.value if given else '?'!r}"
            ) from error
        except InvalidParameterTypeException as error:
            raise SettingsError(f"parameter {name!r}: {error}") from error
        if value is None:
            raise SettingsError(f"parameter {name!r} is unset")
        values[name] = value
    settings = build_settings(settings_type, values)
    if apply is not None:
        holder = [settings]

        def on_set(parameters: list[Parameter]) -> SetParametersResult:
            changes = {p.name: p.value for p in parameters if p.name in declared}
            if not changes:
                return SetParametersResult(successful=True)
            fixed = sorted(name for name in changes if not declared[name].runtime)
            if fixed:
                return SetParametersResult(
                    successful=False, reason=f"{', '.join(fixed)}: set at start-up only"
                )
            try:
                current = holder[0]
                candidate = build_settings(
                    settings_type,
                    {**dataclasses.asdict(current), **changes},  # type: ignore[call-overload]
                )
                apply(candidate, frozenset(changes))
            except (SettingsError, ValueError) as error:
                return SetParametersResult(successful=False, reason=str(error))
            holder[0] = candidate
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(on_set)
    return settings


def replace_timer(node: Node, timer: Timer, period_s: float, callback: Callable[[], None]) -> Timer:
    """A new timer of ``period_s`` in place of ``timer`` (a period changed at run time)."""
    node.destroy_timer(timer)
    return node.create_timer(period_s, callback)


class SettingTimers:
    """A node's timers whose periods are settings; a run-time change of one replaces its timer."""

    def __init__(self, node: Node) -> None:
        """Creates an empty set of timers for ``node``."""
        self._node = node
        self._timers: dict[str, tuple[Timer, Callable[[], None]]] = {}

    def add(self, setting: str, period_s: float, callback: Callable[[], None]) -> None:
        """Calls ``callback`` every ``period_s``, the value of the setting named ``setting``."""
        self._timers[setting] = (self._node.create_timer(period_s, callback), callback)

    def apply(self, new_settings: object, changed: frozenset[str]) -> None:
        """Replaces the timer of each changed setting by one of its new period."""
        for setting in sorted(changed & self._timers.keys()):
            timer, callback = self._timers[setting]
            period_s = float(getattr(new_settings, setting))
            self._timers[setting] = (replace_timer(self._node, timer, period_s, callback), callback)


_PARAMETER_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def _descriptor(spec: SettingSpec, read_only: bool) -> ParameterDescriptor:
    """The ROS descriptor of a setting: fixed type, range where declared, read-only or not."""
    descriptor = ParameterDescriptor(
        description=spec.description,
        type=_PARAMETER_TYPES[type(spec.default)],
        read_only=read_only,
        dynamic_typing=False,
    )
    if spec.low is not None or spec.high is not None:
        if isinstance(spec.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(
                    from_value=-sys.float_info.max if spec.low is None else float(spec.low),
                    to_value=sys.float_info.max if spec.high is None else float(spec.high),
                    step=0.0,
                )
            ]
        else:
            descriptor.integer_range = [
                IntegerRange(
                    from_value=-(2**63) if spec.low is None else int(spec.low),
                    to_value=2**63 - 1 if spec.high is None else int(spec.high),
                    step=1,
                )
            ]
    return descriptor


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


def hold_memory_in_bounds() -> None:
    """Keeps what a flood of large messages costs from staying in the process after it.

    Call before ``rclpy.init``. Measured on the trainer (60 refused 6.2 MB records): resident
    memory rose 325 MB and stayed. Two causes: glibc raises its mmap threshold after large
    frees, so later large buffers come from heaps that are never returned (fixed here with a
    constant threshold); and rmw_fastrtps gives every reader a sample pool that keeps each
    slot's buffer at the largest size seen (``PREALLOCATED_WITH_REALLOC``). With
    ``RMW_FASTRTPS_USE_QOS_FROM_XML=1`` the loopback profile's ``DYNAMIC`` reader memory is
    honoured instead, freeing each sample once taken. Together with a shallow queue the rise was
    17 MB (``test/e2e/test_fuzz.py`` measures it under each flood).
    """
    os.environ.setdefault("RMW_FASTRTPS_USE_QOS_FROM_XML", "1")
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to set
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def as_parameter_overrides(values: dict[str, SettingValue]) -> list[Parameter]:
    """Turns plain values into rclpy parameter overrides (for nodes built in tests)."""
    return [Parameter(name, value=value) for name, value in values.items()]


def run_node(make_node: Callable[[], ClosableNode], args: Sequence[str] | None = None) -> NoReturn:
    """Runs one node until Ctrl-C, SIGTERM or shutdown, then closes it and ends the process.

    Every way of stopping ends the same way: ``close()`` (a node with state writes its shutdown
    checkpoint there) and exit status 0. A signal during start-up lets the node finish building,
    then closes it; further signals while it closes are only noted (see
    :mod:`pamiq_ros.nodes._shutdown`). The node is closed while its ROS context is still up, so
    ``close`` can still log and publish (a last status, released inputs). Exits with status 2
    and a one-line error when the node's settings are invalid, 1 when building or closing it
    failed.

    Args:
        make_node: Builds the node (after ``rclpy.init``).
        args: Command-line arguments (ROS arguments included); ``sys.argv`` if None.
    """
    os.umask(PRIVATE_UMASK)  # checkpoints, events and logs for this user only
    STOP.catch()  # a node process has caught them since its first import already
    # rclpy's own handlers would shut the context down before close() runs.
    rclpy.init(
        args=list(args) if args is not None else sys.argv,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    node: ClosableNode | None = None
    executor: SingleThreadedExecutor | None = None
    exit_code = 0
    try:
        node = make_node()
        # rclpy's MultiThreadedExecutor was seen to delay small reliable messages across
        # processes by up to a second; the nodes keep slow work in threads of their own.
        executor = SingleThreadedExecutor()
        executor.add_node(node)  # type: ignore[arg-type]
        while not STOP.requested() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=SPIN_PERIOD)
            except ExternalShutdownException:
                raise
            except Exception as error:  # no callback's failure ends the node: log, count, go on
                reason = CALLBACK_FAILURES.note(error)
                node.get_logger().error(  # type: ignore[attr-defined]
                    f"a callback failed: {reason}", throttle_duration_sec=2.0
                )
    except SettingsError as error:
        print(f"[ERROR] invalid parameters: {error}", file=sys.stderr, flush=True)
        exit_code = 2
    except ExternalShutdownException:
        pass
    except Exception:  # building the node failed: say why, then leave as quickly as the rest
        traceback.print_exc()
        exit_code = 1
    finally:
        try:
            exit_code = _close(node, executor, exit_code)
        except Exception:  # tearing ROS down failed: say so, and still leave with a status
            traceback.print_exc()
            exit_code = exit_code or 1
    # rclpy destroys a context only once nothing refers to it (destroy() waits while handles
    # are in use) and leave_process skips every collection: drop the node and its executor and
    # collect their cycles now, so that DDS destroys the participant and removes its 16 MiB
    # shared-memory segment (left in /dev/shm otherwise, after every clean stop).
    node = executor = None
    gc.collect()
    leave_process(exit_code)


def _close(
    node: ClosableNode | None, executor: SingleThreadedExecutor | None, exit_code: int
) -> int:
    """Closes the node and the ROS context; returns the exit code (1 if closing failed)."""
    if node is not None:
        logger = node.get_logger()  # type: ignore[attr-defined]
        if STOP.requested():
            logger.info(f"stopping on {STOP.describe()}")
        started = time.monotonic()
        try:
            node.close()
        except Exception:
            traceback.print_exc()
            exit_code = exit_code or 1
        logger.info(
            f"closed in {time.monotonic() - started:.2f} s"
            + (f" (stop signals: {STOP.describe()})" if len(STOP.signals) > 1 else "")
            + f"; exit code {exit_code}"
        )
        with contextlib.suppress(Exception):  # the context may be gone already
            node.destroy_node()
    if executor is not None:
        executor.shutdown(timeout_sec=1.0)
    rclpy.try_shutdown()
    # Tear DDS down (peers see this participant leave, its shared memory is freed) as soon as
    # nothing refers to the context any more: run_node drops the node and collects, since
    # leave_process skips the garbage collection that would otherwise do it.
    rclpy.get_default_context().destroy()
    return exit_code
