"""Brings a deployment up without ``ros2 launch``: each node its own process, one Ctrl-C stops all.

Machines with pip-installed ROS 2 have no ``launch``/``launch_ros``; this supervisor starts the
same nodes from the same description (:mod:`pamiq_ros.bringup.description`). Each node runs in
its own process group, so stopping a node stops everything it started, and nothing is ever
stopped by name.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from pamiq_ros.bringup.description import Bringup, NodeDescription

POLL_PERIOD = 0.1


@dataclass
class _Child:
    node: NodeDescription
    process: subprocess.Popen[bytes]
    reader: threading.Thread


def node_command(
    node: NodeDescription,
    config_path: str,
    python: str = sys.executable,
    parameters: Mapping[str, str] | None = None,
) -> list[str]:
    """The command that runs ``node`` with its parameters from ``config_path``.

    ``parameters`` (such as the run folder) override the file; nodes that do not declare one
    ignore it.
    """
    command = [
        python, "-m", node.module,
        "--ros-args", "-r", f"__node:={node.name}", "--params-file", config_path,
    ]  # fmt: skip
    for name, value in (parameters or {}).items():
        command += ["-p", f"{name}:={value}"]
    return command


class Launcher:
    """Starts, watches and stops the nodes of one deployment.

    Args:
        bringup: The deployment.
        output: Where the nodes' output goes, each line prefixed with ``[node]``.
        python: The interpreter that runs the nodes.
        parameters: Parameters given to every node on its command line (run folder, resume).
    """

    def __init__(
        self,
        bringup: Bringup,
        output: TextIO = sys.stdout,
        python: str = sys.executable,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self._bringup = bringup
        self._parameters = dict(parameters or {})
        self._output = output
        self._python = python
        self._write_lock = threading.Lock()
        self._children: list[_Child] = []
        self._stop_requested = threading.Event()
        self._stop_reason = ""

    def say(self, line: str, source: str = "launch") -> None:
        """Writes one prefixed line to the output."""
        with self._write_lock:
            self._output.write(f"[{source}] {line}\n")
            self._output.flush()

    def request_stop(self, reason: str) -> None:
        """Asks :meth:`run` to stop every node (safe from signal handlers and other threads)."""
        if not self._stop_requested.is_set():
            self._stop_reason = reason
            self._stop_requested.set()

    def run(self, duration: float | None = None) -> int:
        """Starts every node, waits for Ctrl-C, SIGTERM or ``duration`` seconds, stops them all.

        Returns:
            0 when every node ran until asked to stop and then exited cleanly, else 1.
        """
        restore = self._install_signal_handlers()
        started_at = time.monotonic()
        failures: list[str] = []
        try:
            environment = self._bringup.node_environment()
            # Lines are prefixed with the node's name already; keep severity and message.
            environment.setdefault("RCUTILS_CONSOLE_OUTPUT_FORMAT", "[{severity}] {message}")
            discovery = " ".join(
                f"{k}={v}" for k, v in self._bringup.discovery_environment().items()
            )
            self.say(f"config {self._bringup.config_path} ({discovery})")
            for node in self._bringup.nodes:
                self._start(node, environment)
            limit = f"for {duration:g} s" if duration else "until Ctrl-C"
            self.say(f"{len(self._children)} nodes running {limit}")
            failures = self._watch(started_at, duration)
        finally:
            failures += self._stop_all()
            restore()
        elapsed = time.monotonic() - started_at
        if failures:
            self.say(f"stopped after {elapsed:.1f} s with problems: {'; '.join(failures)}")
            return 1
        self.say(f"all {len(self._bringup.nodes)} nodes stopped cleanly after {elapsed:.1f} s")
        return 0

    def _start(self, node: NodeDescription, environment: dict[str, str]) -> None:
        command = node_command(node, str(self._bringup.config_path), self._python, self._parameters)
        process = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        reader = threading.Thread(
            target=self._relay, args=(node.name, process), name=f"relay-{node.name}", daemon=True
        )
        reader.start()
        self._children.append(_Child(node, process, reader))
        self.say(f"started {node.name} (pid {process.pid})")

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.say(raw.decode(errors="replace").rstrip(), source=name)

    def _watch(self, started_at: float, duration: float | None) -> list[str]:
        finished: set[str] = set()
        while not self._stop_requested.wait(POLL_PERIOD):
            if duration and time.monotonic() - started_at >= duration:
                self.request_stop(f"{duration:g} s passed")
                break
            codes = [child.process.poll() for child in self._children]
            for child, code in zip(self._children, codes, strict=True):
                if code not in (None, 0):
                    message = f"{child.node.name} exited on its own with code {code}"
                    self.say(message)
                    self.request_stop(message)
                    return [message]
            for child, code in zip(self._children, codes, strict=True):
                if code == 0 and child.node.name not in finished:
                    finished.add(child.node.name)
                    self.say(f"{child.node.name} finished (exit code 0)")
            if all(code == 0 for code in codes):
                # Every node finished cleanly (``pamiq-ros shutdown``): nothing left to stop.
                self.request_stop("every node shut down")
        self.say(f"stopping: {self._stop_reason}")
        return []

    def _stop_all(self) -> list[str]:
        """SIGINT to every group, newest first, then SIGKILL to whatever is left of each group."""
        running = [child for child in reversed(self._children) if child.process.poll() is None]
        for child in running:
            _signal_group(child.process, signal.SIGINT)
        deadline = time.monotonic() + self._bringup.launcher.shutdown_timeout
        failures = []
        for child in running:
            try:
                code = child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                if code != 0:
                    failures.append(f"{child.node.name} exited with code {code} on Ctrl-C")
            except subprocess.TimeoutExpired:
                timeout = self._bringup.launcher.shutdown_timeout
                failures.append(
                    f"{child.node.name} did not exit within {timeout:g} s and was killed"
                )
        for child in self._children:
            # Anything a node started goes with its group, even when the node itself is gone.
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
            child.reader.join(timeout=2.0)
        return failures

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(
                sig, lambda number, _: self.request_stop(signal.strsignal(number) or str(number))
            )
            for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
