"""A benchmark's child process in its own process group, logged to a file, stopped by group."""

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class GroupProcess:
    """Starts ``command`` in a new session (its own process group), output to ``log_path``.

    Everything the command starts shares its group, so :meth:`stop` ends all of it and
    nothing is ever stopped by name.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        """Starts the process."""
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                list(command),
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def signal_group(self, sig: int) -> None:
        """Sends ``sig`` to the whole group (nothing if it is gone)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT to the group, SIGKILL after ``timeout``, then SIGKILL to anything left."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10.0)
        self.signal_group(signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of its output."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
