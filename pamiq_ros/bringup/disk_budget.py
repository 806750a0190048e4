"""Keeps a run folder's logs, checkpoints and TensorBoard events within their disk budgets.

The launcher calls :meth:`DiskBudget.enforce` every few seconds. ROS log files (``ROS_LOG_DIR``
points inside the run folder) are never rotated by rcl's logger: the oldest go first, and a file
still being written that alone takes over half the budget is truncated (the logger appends, so
it goes on writing at the new end). Checkpoint stores shed their oldest unpinned checkpoints;
TensorBoard event files their oldest files, never the newest of a folder (being written).
No ROS import here.
"""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pamiq_ros.core.checkpoint import CheckpointStore

MIB = 1 << 20
LOG_SUBDIR = "ros_logs"
CHECKPOINT_STORES = "*/checkpoints"
EVENT_FILES = "*/tensorboard/**/events.out.tfevents.*"


@dataclass(frozen=True)
class Budgets:
    """Bytes each kind of file may take in one run folder."""

    logs: int
    checkpoints: int
    tensorboard: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class DiskBudget:
    """Enforces :class:`Budgets` on one run folder; says what it removed through ``report``."""

    def __init__(self, run_dir: Path, budgets: Budgets, report: Callable[[str], None]) -> None:
        self.run_dir = run_dir
        self.budgets = budgets
        self._report = report
        self._warned: set[Path] = set()

    @property
    def log_dir(self) -> Path:
        """Where the nodes' ROS log files go."""
        return self.run_dir / LOG_SUBDIR

    def enforce(self) -> None:
        """One pass over logs, checkpoints and events; never raises for a vanished file."""
        self._logs()
        for store in sorted(self.run_dir.glob(CHECKPOINT_STORES)):
            removed = CheckpointStore(store).prune_to_budget(self.budgets.checkpoints)
            if removed:
                names = ", ".join(path.name for path in removed)
                self._report(f"checkpoint budget: removed {names} from {store}")
        self._events()

    def _logs(self) -> None:
        files = sorted((path for path in self.log_dir.rglob("*") if path.is_file()), key=_mtime)
        total = sum(_size(path) for path in files)
        budget = self.budgets.logs
        for path in files[:-1]:  # oldest first; the newest is handled below
            if total <= budget:
                return
            total -= _size(path)
            with contextlib.suppress(OSError):
                path.unlink()
        for path in files:
            if _size(path) > budget // 2:
                with contextlib.suppress(OSError):
                    os.truncate(path, 0)
                    self._report(
                        f"log budget: truncated {path.name} (over {budget // MIB // 2} MiB)"
                    )

    def _events(self) -> None:
        files = sorted(self.run_dir.glob(EVENT_FILES), key=_mtime)
        newest_per_folder = {path.parent: path for path in files}
        total = sum(_size(path) for path in files)
        for path in files:
            if total <= self.budgets.tensorboard:
                return
            if newest_per_folder[path.parent] == path:
                continue
            total -= _size(path)
            with contextlib.suppress(OSError):
                path.unlink()
                self._report(f"TensorBoard budget: removed {path.name}")
        if total > self.budgets.tensorboard and not self._warned:
            self._warned.update(newest_per_folder)
            self._report(
                f"TensorBoard events take {total // MIB} MiB, over the "
                f"{self.budgets.tensorboard // MIB} MiB budget, in files still being written"
            )
