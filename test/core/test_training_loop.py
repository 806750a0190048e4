"""The training loop without ROS: publishes each version, rolls back NaN, pauses, checkpoints."""

import threading
from pathlib import Path

import numpy as np
import torch

from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.training_loop import TrainingLoop, TrainingPace
from pamiq_ros.models.autoencoder import MODEL_NAME, build_autoencoder_learner
from test.support.processes import wait_until


def record(step: int) -> ExperienceRecord:
    frame = np.random.default_rng(step).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return ExperienceRecord(step, frame, np.zeros(5, np.int64), MODEL_NAME, 0)


class Published:
    def __init__(self) -> None:
        self.versions: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, model: str, version: int, weights: object) -> bool:
        with self.lock:
            self.versions.append((model, version))
        return True


def make(tmp_path: Path, published: Published, problems: list[str]) -> TrainingLoop:
    learner = build_autoencoder_learner(
        buffer_size=64, batch_size=4, steps_per_run=1, min_buffer_size=4, min_new_samples=4
    )
    written: list[Path] = []

    def write(reason: str) -> Path:
        path = tmp_path / f"{len(written)}-{reason}"
        path.mkdir()
        written.append(path)
        return path

    return TrainingLoop(
        learner, TrainingPace(checkpoint_period=3600.0), published, write,
        on_problem=problems.append,
    )  # fmt: skip


def test_the_start_publishes_version_0_and_each_run_a_new_version(tmp_path):
    published, problems = Published(), list[str]()
    loop = make(tmp_path, published, problems)
    loop.start()
    assert published.versions[0] == (MODEL_NAME, 0)
    for step in range(8):
        loop.learner.add(record(step))
    assert wait_until(lambda: loop.runs >= 1, 20.0)
    loop.stop()
    assert (MODEL_NAME, 1) in published.versions
    assert loop.published[MODEL_NAME] >= 1
    assert not problems


def test_a_run_that_leaves_nan_is_rolled_back_and_not_published(tmp_path):
    published, problems = Published(), list[str]()
    loop = make(tmp_path, published, problems)
    loop.start()
    with torch.no_grad():
        next(iter(loop.learner.models[MODEL_NAME].parameters())).fill_(float("nan"))
    for step in range(8):
        loop.learner.add(record(step))
    assert wait_until(lambda: loop.refused_versions >= 1, 20.0)
    loop.stop()
    assert published.versions == [(MODEL_NAME, 0)]
    assert "rolled back" in problems[0]
    assert not loop.learner.non_finite_parameters(MODEL_NAME)


def test_paused_it_trains_nothing_but_still_writes_checkpoints(tmp_path):
    published, problems = Published(), list[str]()
    loop = make(tmp_path, published, problems)
    loop.pause()
    loop.start()
    for step in range(8):
        loop.learner.add(record(step))
    path = loop.checkpoint("requested", timeout_s=10.0)
    assert path.name.endswith("requested")
    assert loop.runs == 0
    loop.resume()
    assert wait_until(lambda: loop.runs >= 1, 20.0)
    loop.stop()
    assert loop.checkpoint("shutdown").name.endswith("shutdown")  # written directly once stopped
    assert loop.checkpoints_written == 2
