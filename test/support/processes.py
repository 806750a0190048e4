"""Real node processes for end-to-end tests, each in its own process group.

Every process is stopped by its process group (never by name), so a test leaves nothing
running even when a node forks or the ROS wheels' bootstrap re-executes the interpreter.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pamiq_ros.bringup.executables import NODE_EXECUTABLES


class NodeProcess:
    """One started process whose output goes to a log file the test can read."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log_file = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(command),
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pgid = self.popen.pid

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def wait_for_output(self, text: str, timeout: float = 20.0) -> str:
        """Waits until ``text`` appears in the output; fails the test with the log if not."""
        if not wait_until(lambda: text in self.output(), timeout):
            raise AssertionError(
                f"{self.name}: {text!r} not seen within {timeout} s; output:\n{self.output()}"
            )
        return self.output()

    def signal_group(self, sig: int) -> None:
        """Sends ``sig`` to the process group, if it still exists."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Signals the group, waits for the process, then kills the group; returns the status."""
        if self.popen.poll() is None:
            self.signal_group(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Children that outlived the leader (none expected) go with the group.
        self.signal_group(signal.SIGKILL)
        self._log_file.close()
        code = self.popen.returncode
        assert code is not None
        return code


def node_command(
    executable: str,
    parameters: dict[str, object] | None = None,
    params_file: Path | None = None,
    node_name: str | None = None,
) -> list[str]:
    """The command that runs one of the project's nodes as ``python -m <module>``."""
    command = [sys.executable, "-m", NODE_EXECUTABLES[executable], "--ros-args"]
    command += ["-r", f"__node:={node_name or executable}"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for name, value in (parameters or {}).items():
        command += ["-p", f"{name}:={_ros_argument_value(value)}"]
    return command


def _ros_argument_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # YAML-quoted so that strings like "0" or "1.5" stay strings.
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
