"""The disk budgets of a run folder: ROS logs, checkpoints, TensorBoard events."""

import os
import time
from pathlib import Path

from pamiq_ros.bringup.disk_budget import Budgets, DiskBudget
from pamiq_ros.core.checkpoint import CheckpointStore


def file_of(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_logs_lose_their_oldest_files_and_a_huge_live_one_is_truncated(tmp_path: Path):
    logs = tmp_path / "ros_logs"
    old = file_of(logs / "agent_1.log", 400, 30)
    middle = file_of(logs / "agent_2.log", 400, 20)
    live = file_of(logs / "trainer_3.log", 300, 0)
    reports: list[str] = []
    DiskBudget(tmp_path, Budgets(logs=800, checkpoints=1 << 30, tensorboard=1 << 30),
               reports.append).enforce()  # fmt: skip
    assert not old.exists() and middle.exists() and live.stat().st_size == 300
    huge = file_of(logs / "trainer_4.log", 2000, 0)
    DiskBudget(tmp_path, Budgets(logs=800, checkpoints=1 << 30, tensorboard=1 << 30),
               reports.append).enforce()  # fmt: skip
    assert huge.exists() and huge.stat().st_size == 0
    assert any("truncated trainer_4.log" in line for line in reports)


def test_checkpoints_and_events_are_kept_within_their_budgets(tmp_path: Path):
    store = CheckpointStore(tmp_path / "trainer" / "checkpoints", keep_last=10)

    def write(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"w" * 1000)

    saved = [store.save(write, "periodic") for _ in range(4)]
    events = tmp_path / "trainer" / "tensorboard"
    old_events = file_of(events / "events.out.tfevents.1.host", 5000, 60)
    live_events = file_of(events / "events.out.tfevents.2.host", 5000, 0)
    reports: list[str] = []
    DiskBudget(tmp_path, Budgets(logs=1 << 30, checkpoints=2500, tensorboard=6000),
               reports.append).enforce()  # fmt: skip
    assert store.checkpoints() == saved[2:]
    assert not old_events.exists() and live_events.exists()
    assert any("checkpoint budget: removed" in line for line in reports)
