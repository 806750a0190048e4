from collections.abc import Callable, Mapping

import numpy as np
import pytest
import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.buffers import DataBuffer, SequentialBuffer
from pamiq_ros.core.trainers import Trainer, TrainerRunner


class RecordingTrainer(Trainer):
    """Counts its train() calls into a shared log; optionally does something during a run."""

    def __init__(
        self,
        name: str,
        log: list[str],
        buffer_name: str = "data",
        min_buffer_size: int = 1,
        min_new_samples: int = 0,
        during_train: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, buffer_name, min_buffer_size, min_new_samples)
        self.log = log
        self.during_train = during_train
        self.setup_calls = 0

    @override
    def on_setup(self, models: Mapping[str, nn.Module]) -> None:
        self.setup_calls += 1

    @override
    def train(self, models, buffers):
        self.log.append(self.name)
        if self.during_train is not None:
            self.during_train()
        return {f"{self.name}/value": float(len(self.log))}, ("model",)

    @override
    def extra_state_dict(self):
        return {"step": torch.tensor([len(self.log)])}


def add(buffer: DataBuffer, count: int) -> None:
    for value in range(count):
        buffer.add({"x": np.array(value)})


@pytest.fixture
def buffers() -> dict[str, DataBuffer]:
    return {"data": SequentialBuffer(["x"], 100), "other": SequentialBuffer(["x"], 100)}


def test_conditions_min_buffer_size_and_new_samples(buffers):
    trainer = RecordingTrainer("t", [], min_buffer_size=5, min_new_samples=3)
    add(buffers["data"], 4)
    assert not trainer.is_trainable(buffers)
    add(buffers["data"], 1)
    assert trainer.is_trainable(buffers)
    result = trainer.run({}, buffers)
    assert result.trainer == "t"
    assert result.updated_models == ("model",)
    assert result.metrics == {"t/value": 1.0}
    assert result.duration_s >= 0
    assert trainer.runs == 1
    assert trainer.new_samples(buffers) == 0
    assert not trainer.is_trainable(buffers)
    add(buffers["data"], 2)
    assert not trainer.is_trainable(buffers)
    add(buffers["data"], 1)
    assert trainer.is_trainable(buffers)


def test_new_samples_count_in_a_full_buffer(buffers):
    buffers["data"] = SequentialBuffer(["x"], 4)
    trainer = RecordingTrainer("t", [], min_buffer_size=4, min_new_samples=10)
    add(buffers["data"], 10)
    trainer.run({}, buffers)
    add(buffers["data"], 9)
    assert len(buffers["data"]) == 4
    assert not trainer.is_trainable(buffers)
    add(buffers["data"], 1)
    assert trainer.is_trainable(buffers)


def test_samples_added_during_a_run_count_for_the_next(buffers):
    trainer = RecordingTrainer(
        "t", [], min_new_samples=2, during_train=lambda: add(buffers["data"], 2)
    )
    add(buffers["data"], 2)
    trainer.run({}, buffers)
    assert trainer.new_samples(buffers) == 2
    assert trainer.is_trainable(buffers)


def test_failed_run_leaves_counters(buffers):
    def fail() -> None:
        raise RuntimeError("boom")

    trainer = RecordingTrainer("t", [], min_new_samples=1, during_train=fail)
    add(buffers["data"], 3)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run({}, buffers)
    assert trainer.runs == 0
    assert trainer.new_samples(buffers) == 3


def test_run_sets_up_once(buffers):
    trainer = RecordingTrainer("t", [])
    add(buffers["data"], 1)
    trainer.run({}, buffers)
    trainer.run({}, buffers)
    assert trainer.setup_calls == 1


def test_missing_buffer_is_named(buffers):
    trainer = RecordingTrainer("t", [], buffer_name="nowhere")
    with pytest.raises(KeyError, match="needs buffer 'nowhere'"):
        trainer.is_trainable(buffers)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", "b", 1, 0), "empty"),
        (("t", "b", 0, 0), "min_buffer_size"),
        (("t", "b", 1, -1), "min_new_samples"),
    ],
)
def test_constructor_refuses_bad_arguments(arguments, message):
    name, buffer_name, min_size, min_new = arguments
    with pytest.raises(ValueError, match=message):
        RecordingTrainer(name, [], buffer_name, min_size, min_new)


def test_round_robin_skips_untrainable_and_continues_after_last(buffers):
    log: list[str] = []
    a = RecordingTrainer("a", log)
    b = RecordingTrainer("b", log, buffer_name="other")
    c = RecordingTrainer("c", log)
    runner = TrainerRunner([a, b, c])
    assert runner.run_next({}, buffers) is None  # all buffers empty
    add(buffers["data"], 1)
    results = [runner.run_next({}, buffers) for _ in range(4)]
    assert [r.trainer for r in results if r is not None] == ["a", "c", "a", "c"]
    add(buffers["other"], 1)
    for _ in range(4):
        runner.run_next({}, buffers)
    assert log[4:] == ["a", "b", "c", "a"]


def test_round_robin_returns_none_when_no_new_samples(buffers):
    log: list[str] = []
    runner = TrainerRunner([RecordingTrainer("a", log, min_new_samples=1)])
    add(buffers["data"], 1)
    assert runner.run_next({}, buffers) is not None
    assert runner.run_next({}, buffers) is None
    assert log == ["a"]


def test_runner_refuses_duplicate_names_and_empty():
    with pytest.raises(ValueError, match="unique"):
        TrainerRunner([RecordingTrainer("a", []), RecordingTrainer("a", [])])
    with pytest.raises(ValueError, match="at least one"):
        TrainerRunner([])


def test_runner_state_round_trip(buffers):
    log: list[str] = []
    trainers = [RecordingTrainer("a", log), RecordingTrainer("b", log)]
    runner = TrainerRunner(trainers)
    add(buffers["data"], 1)
    runner.run_next({}, buffers)
    other = TrainerRunner(trainers)
    other.load_state_dict(runner.state_dict())
    result = other.run_next({}, buffers)
    assert result is not None
    assert result.trainer == "b"
    with pytest.raises(ValueError, match="'zz' is not among"):
        other.load_state_dict({"last_trainer": "zz"})


def test_trainer_state_survives_torch_save_weights_only(tmp_path, buffers):
    trainer = RecordingTrainer("t", ["x", "y"], min_new_samples=1)
    add(buffers["data"], 5)
    trainer.run({}, buffers)
    torch.save(trainer.state_dict(), tmp_path / "t.pt")
    state = torch.load(tmp_path / "t.pt", weights_only=True)
    fresh = RecordingTrainer("t", [], min_new_samples=1)
    fresh.load_state_dict(state)
    assert fresh.runs == 1
    assert not fresh.is_trainable(buffers)
    assert state["extra"]["step"].tolist() == [3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "other"}, "state of trainer 'other' given to trainer 't'"),
        ({"runs": -1}, "counters"),
        ({"extra": None, "runs": None}, "counters"),
    ],
)
def test_trainer_refuses_foreign_or_damaged_state(change, message):
    trainer = RecordingTrainer("t", [])
    state = {**trainer.state_dict(), **change}
    with pytest.raises(ValueError, match=message):
        trainer.load_state_dict(state)
    partial = trainer.state_dict()
    del partial["runs"]
    with pytest.raises(ValueError, match="lacks"):
        trainer.load_state_dict(partial)
