"""Which Fast DDS shared-memory segments a process holds, read from the outside (/proc)."""

import os
import re
from pathlib import Path

SEGMENT = re.compile(r"^/dev/shm/(fastdds_[0-9a-z]{16})(_el)?$")


def segments_of(pid: int) -> set[Path]:
    """The ``/dev/shm`` segment files whose lock the process ``pid`` holds open (Linux)."""
    found: set[Path] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in fd_dir.iterdir():
        try:
            target = os.readlink(entry)
        except OSError:  # closed meanwhile
            continue
        if match := SEGMENT.match(target):
            found.add(Path("/dev/shm") / match.group(1))
    return found
