"""The sweep frees the Fast DDS shared memory of dead processes and never a live one's.

First on files laid out as Fast DDS lays them out, with the locks held (or not) by real
processes; then on a real participant that is killed with SIGKILL, in the real /dev/shm.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pamiq_ros.bringup.shared_memory import main, sweep
from test.support.dds_memory import segments_of

HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "ab") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("held", flush=True)
    time.sleep(600)
"""


def _segment(folder: Path, name: str, size: int) -> Path:
    (folder / name).write_bytes(b"\1" * size)
    lock = folder / f"{name}_el"
    lock.touch()
    return lock


def test_only_files_whose_lock_nobody_holds_are_removed(tmp_path: Path) -> None:
    live_lock = _segment(tmp_path, "fastdds_0123456789abcdef", 8192)
    _segment(tmp_path, "fastdds_fedcba9876543210", 65536)  # its owner is gone
    (tmp_path / "fastdds_port7411").write_bytes(b"\1" * 4096)  # a dead port and its mutex
    (tmp_path / "fastdds_port7411_el").touch()
    (tmp_path / "sem.fastdds_port7411_mutex").touch()
    others = ["fast_datasharing_01.0f.78.fd.00.1c.27.21.00.00.00.00_0.0.15.3", "notes", "x_el"]
    for name in others:
        (tmp_path / name).touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(live_lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        report = sweep(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert (report.segments_removed, report.ports_removed, report.in_use) == (1, 1, 1)
    assert report.bytes_freed >= 65536 + 4096
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted([*others, "fastdds_0123456789abcdef", "fastdds_0123456789abcdef_el"])
    # Its owner is gone now (killed): the next sweep frees it too, and says so.
    again = sweep(tmp_path)
    assert (again.segments_removed, again.in_use) == (1, 0)
    assert "1 segments" in again.describe() and "MiB" in again.describe()


def test_a_folder_that_is_missing_or_empty_is_a_sweep_with_nothing_done(tmp_path: Path) -> None:
    assert not sweep(tmp_path / "missing").removed_anything
    assert not sweep(tmp_path).removed_anything


def test_a_file_that_cannot_be_opened_is_left_alone(tmp_path: Path) -> None:
    lock = _segment(tmp_path, "fastdds_00000000000000aa", 4096)
    lock.unlink()
    lock.mkdir()  # opening it fails as a file owned by another user would
    report = sweep(tmp_path)
    assert (report.segments_removed, report.in_use) == (0, 1)
    assert (tmp_path / "fastdds_00000000000000aa").exists()


def test_the_command_line_says_what_it_freed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _segment(tmp_path, "fastdds_00000000000000bb", 4096)
    assert main(["--dir", str(tmp_path)]) == 0
    assert "(1 segments, 0 ports; 0 in use left alone)" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


PARTICIPANT = """
import rclpy, time
rclpy.init()
node = rclpy.create_node("leaks_when_killed")
print("up", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="Linux shared memory only")
def test_a_killed_participant_leaves_its_segment_and_the_sweep_frees_only_that(
    ros_env: dict[str, str],
) -> None:
    """Real Fast DDS with the loopback profile: SIGKILL leaves the 16 MiB segment behind; the
    sweep removes it while a live participant's segment stays."""
    live = subprocess.Popen(
        [sys.executable, "-c", PARTICIPANT], env=ros_env, stdout=subprocess.PIPE, text=True
    )
    killed = subprocess.Popen(
        [sys.executable, "-c", PARTICIPANT], env=ros_env, stdout=subprocess.PIPE, text=True
    )
    try:
        for process in (live, killed):
            assert process.stdout is not None and process.stdout.readline() == "up\n"
        live_segments, killed_segments = segments_of(live.pid), segments_of(killed.pid)
        assert live_segments and killed_segments
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert all(path.exists() for path in killed_segments), "Fast DDS removed it itself"
        report = sweep()
        assert report.segments_removed >= len(killed_segments)
        assert report.bytes_freed > 0
        assert not any(path.exists() for path in killed_segments)
        assert all(path.exists() for path in live_segments)
    finally:
        for process in (live, killed):
            process.kill()
            process.wait()
