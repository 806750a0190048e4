"""What the benchmarks share: isolation, a listening node, the machine, argument parsing."""

import argparse
import os
import platform
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pamiq_ros.bringup.description import loopback_dds_environment

Subscription = tuple[type, str, Callable[[Any], None], int]
"""``(message type, topic, callback, queue depth)``."""


class BackgroundNode:
    """A node in a ROS context of its own, spinning its subscriptions in a thread.

    DDS settings (domain, discovery) come from this process's environment.
    """

    def __init__(self, name: str, subscriptions: Sequence[Subscription]) -> None:
        """Creates the context and node, subscribes, and starts spinning."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        self._node = rclpy.create_node(name, context=self._context)
        for message_type, topic, callback, depth in subscriptions:
            self._node.create_subscription(message_type, topic, callback, depth)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops spinning and shuts the context down."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=2.0)
        self._node.destroy_node()
        self._context.try_shutdown()

    def _spin(self) -> None:
        while not self._stop.is_set() and self._context.ok():
            self._executor.spin_once(timeout_sec=0.1)


def load_now() -> dict[str, float]:
    """The machine's load averages (1, 5 and 15 min) now, to record beside a figure.

    On a shared machine a load above the core count means every figure is pessimistic.
    """
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2)}


def machine_description() -> dict[str, Any]:
    """The machine a benchmark ran on: platform, CPUs, Python, torch, CUDA device, load now."""
    import torch

    return {
        **load_now(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "system": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def comma_choices(text: str, allowed: Sequence[str], kind: str) -> list[str]:
    """``text``'s comma-separated items, each one of ``allowed`` (for argparse ``type=``).

    Raises:
        argparse.ArgumentTypeError: If none is given or one is unknown.
    """
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(item not in allowed for item in chosen):
        raise argparse.ArgumentTypeError(f"{kind} are {', '.join(allowed)}; got {text!r}")
    return chosen


def isolate_for_benchmark(domain_id: int, out_dir: Path) -> dict[str, str]:
    """Puts this process (and what it starts) in a DDS domain of its own on loopback only.

    Sets ``ROS_DOMAIN_ID``, the loopback DDS variables, ``ROS_LOG_DIR`` under ``out_dir`` and
    unbuffered output, drops static peers, and makes SIGTERM end the run like Ctrl-C, so every
    running stack is stopped by its group on the way out.

    Returns:
        The environment for the benchmark's child processes.
    """
    os.environ.update(
        ROS_DOMAIN_ID=str(domain_id),
        **loopback_dds_environment(),
        ROS_LOG_DIR=str(out_dir / "ros_log"),
        PYTHONUNBUFFERED="1",
    )
    os.environ.pop("ROS_STATIC_PEERS", None)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return dict(os.environ)
