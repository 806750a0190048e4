"""Frees the shared memory that Fast DDS processes left behind when they died.

Every Fast DDS participant with the shared-memory transport (the loopback, lan and wifi
profiles: 16 MiB segments, see ``fastdds_loopback.xml``) keeps a segment file in ``/dev/shm``
and maps ports there. A participant that is destroyed removes its segment; a process that is
killed (SIGKILL, a crash, ``os._exit`` before the context is destroyed) leaves it behind, and
``/dev/shm`` is memory: on a machine that restarts crashed nodes for days, or runs the test
suite again and again, the leftovers grow until nothing can start (seen here: 23 GB of a 24 GB
machine after a day of test runs, and a CI run that then failed node after node).

Fast DDS tells live files from dead ones with a lock: the owner of a segment or port holds an
``flock`` on its ``_el`` (or ``_sl``) companion file for as long as it lives, and the kernel
releases it when the process dies, however it dies. :func:`sweep` removes exactly the files
whose lock nobody holds (what eProsima's ``fastdds shm clean`` does, without the ``psutil``
that tool needs). A live participant's files are never touched, whoever owns them, so sweeping
while other stacks run on the machine is safe.

Data-sharing segments (``fast_datasharing_*``) carry no lock, so nothing tells a live one from a
dead one; they are small (18 KiB each) and are left alone.
"""

import argparse
import contextlib
import fcntl
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SHARED_MEMORY_DIR = Path("/dev/shm")
"""Where Fast DDS keeps its segments and ports on Linux."""

_SEGMENT_LOCK = re.compile(r"^fastdds_[0-9a-z]{16}_(el|sl)$")
_PORT_LOCK = re.compile(r"^fastdds_port\d{1,5}_(el|sl)$")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep found: dead segments and ports removed, live ones left alone."""

    segments_removed: int = 0
    ports_removed: int = 0
    bytes_freed: int = 0
    in_use: int = 0

    @property
    def removed_anything(self) -> bool:
        """Whether the sweep removed a segment or a port."""
        return bool(self.segments_removed or self.ports_removed)

    def describe(self) -> str:
        """One line for a log: what was freed, and how much stays in use."""
        return (
            f"freed {self.bytes_freed / (1 << 20):.1f} MiB of shared memory left by dead Fast DDS "
            f"processes ({self.segments_removed} segments, {self.ports_removed} ports; "
            f"{self.in_use} in use left alone)"
        )


def sweep(directory: Path = SHARED_MEMORY_DIR) -> SweepReport:
    """Removes the Fast DDS segments and ports in ``directory`` whose owners are all dead.

    Never raises for a file it cannot read, lock or remove (another user's, or one that went
    away meanwhile): that file is skipped.

    Returns:
        How many segments and ports were removed, the bytes they held, how many are in use.
    """
    try:
        names = os.listdir(directory)
    except OSError:  # no such folder (not Linux), or not readable: nothing to sweep
        return SweepReport()
    segments = ports = freed = in_use = 0
    for name in names:
        if _SEGMENT_LOCK.match(name):
            companions = [name[:-3]]
        elif _PORT_LOCK.match(name):
            companions = [name[:-3], f"sem.{name[:-3]}_mutex"]
        else:
            continue
        lock = directory / name
        if _held(lock):
            in_use += 1
            continue
        sizes = [_remove(directory / file) for file in (name, *companions)]
        removed = [size for size in sizes if size is not None]
        if not removed:
            continue
        freed += sum(removed)
        if name.startswith("fastdds_port"):
            ports += 1
        else:
            segments += 1
    return SweepReport(segments, ports, freed, in_use)


def _held(lock: Path) -> bool:
    """Whether some live process holds the ``flock`` on ``lock`` (True when unsure)."""
    try:
        with lock.open("ab") as file:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a live owner, or not ours to open: leave it
        return True
    return False


def _remove(path: Path) -> int | None:
    """Removes ``path``; returns the bytes of memory it held, None if it was not removed."""
    with contextlib.suppress(OSError):
        size = path.stat().st_blocks * 512
        path.unlink()
        return size
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pamiq_ros.bringup.shared_memory``: one sweep, with a line saying what it did."""
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bringup.shared_memory",
        description="Remove the Fast DDS shared-memory segments and ports of dead processes "
        "(live ones are never touched).",
    )
    parser.add_argument(
        "--dir", type=Path, default=SHARED_MEMORY_DIR, help="the shared-memory folder"
    )
    arguments = parser.parse_args(argv)
    print(sweep(arguments.dir).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
