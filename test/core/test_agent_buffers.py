import json
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
from torch import nn
from typing_extensions import override

from pamiq_ros.core.agent_buffers import PerAgentBuffer, arrange_buffers
from pamiq_ros.core.buffers import (
    BufferStateError,
    DataBuffer,
    RandomReplacementBuffer,
    SequentialBuffer,
)
from pamiq_ros.core.checkpoint import CheckpointError
from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.trainers import Trainer

AGENTS = ("/fleet/a/agent", "/fleet/b/agent")
MAKERS: dict[str, Callable[[], DataBuffer]] = {
    "steps": partial(SequentialBuffer, ["agent", "step"], 64),
    "frames": partial(RandomReplacementBuffer, ["mean"], 8, seed=3),
}


def route(record: ExperienceRecord):
    return {
        "steps": {"agent": record.tensors["agent"], "step": np.int64(record.step)},
        "frames": {"mean": np.float32(record.observation.mean())},
    }


def record(agent: int, step: int) -> ExperienceRecord:
    return ExperienceRecord(
        step=step,
        observation=np.full((2, 2, 3), step % 256, np.uint8),
        action=np.zeros(5, np.int64),
        model_name="m",
        weight_version=0,
        tensors={"agent": np.array([agent], np.float32)},
    )


class Counting(Trainer):
    """Counts its runs; trains nothing."""

    def __init__(self, min_buffer_size: int = 4):
        super().__init__("count", "steps", min_buffer_size=min_buffer_size, min_new_samples=1)

    @override
    def train(self, models, buffers):
        return {}, ()


def make_learner(sharing: str, seed: int = 0) -> Learner:
    buffers = arrange_buffers(MAKERS, sharing, {"steps": 4}, seed)
    return Learner({"m": nn.Linear(1, 1)}, buffers, [Counting()], route)


def feed_interleaved(learner: Learner, steps: range) -> None:
    """Two agents' steps as they arrive from a fleet: alternating, one of each in turn."""
    for step in steps:
        for index, agent_id in enumerate(AGENTS):
            learner.add(record(index, step), agent_id)


def is_contiguous(data) -> bool:
    """One agent's steps only, each the one after the previous."""
    return len(np.unique(data["agent"])) == 1 and bool(np.all(np.diff(data["step"]) == 1))


def test_shared_buffers_hand_out_each_agents_sequence_together():
    learner = make_learner("shared")
    feed_interleaved(learner, range(10))

    data = learner.buffers["steps"].get_data()
    assert learner.buffer_sharing == "shared"
    by_agent = [
        {key: value[data["agent"][:, 0] == a] for key, value in data.items()} for a in (0, 1)
    ]
    assert all(is_contiguous(part) for part in by_agent)
    assert list(data["agent"][:, 0]) == [0] * 10 + [1] * 10  # one seam, not 19 alternations
    assert learner.buffer_sizes() == {"steps": 20, "frames": 8}
    assert learner.agent_buffer_sizes() == {}


def test_a_full_shared_buffer_keeps_each_agents_newest_steps_together():
    buffer = SequentialBuffer(["agent", "step"], 8)
    for step in range(10):
        for index, agent_id in enumerate(AGENTS):
            buffer.add_for(agent_id, {"agent": [float(index)], "step": step})

    data = buffer.get_data()

    assert list(data["step"]) == [6, 7, 8, 9, 6, 7, 8, 9]
    assert list(data["agent"][:, 0]) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_a_shared_buffer_keeps_its_agents_across_save_and_load(tmp_path):
    buffer = SequentialBuffer(["agent", "step"], 64)
    for step in range(5):
        for index, agent_id in enumerate(AGENTS):
            buffer.add_for(agent_id, {"agent": [float(index)], "step": step})
    buffer.save_state(tmp_path)
    restored = SequentialBuffer(["agent", "step"], 64)
    restored.load_state(tmp_path)
    restored.add_for(AGENTS[0], {"agent": [0.0], "step": 5})

    data = restored.get_data()
    assert list(data["step"]) == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
    assert list(data["agent"][:, 0]) == [0] * 6 + [1] * 5


def test_a_buffer_saved_before_agents_were_told_apart_still_loads(tmp_path):
    buffer = SequentialBuffer(["agent", "step"], 64)
    for step in range(3):
        buffer.add({"agent": [0.0], "step": step})
    buffer.save_state(tmp_path)
    with np.load(tmp_path / "data.npz") as data:  # as the files were before: no agent column
        arrays = {key: data[key] for key in data.files if key != "agents"}
    np.savez(tmp_path / "data.npz", **arrays)
    meta = json.loads((tmp_path / "meta.json").read_text())
    del meta["agent_ids"]
    (tmp_path / "meta.json").write_text(json.dumps(meta))

    restored = SequentialBuffer(["agent", "step"], 64)
    restored.load_state(tmp_path)
    assert list(restored.get_data()["step"]) == [0, 1, 2]


def test_per_agent_buffers_keep_each_agents_sequence_contiguous():
    learner = make_learner("per_agent")
    feed_interleaved(learner, range(10))
    learner.add(record(0, 10), AGENTS[0])  # agent a one step ahead

    steps = learner.buffers["steps"]
    assert isinstance(steps, PerAgentBuffer)
    assert learner.buffer_sharing == "per_agent"
    assert learner.agent_buffer_sizes() == {
        AGENTS[0]: {"steps": 11, "frames": 8},
        AGENTS[1]: {"steps": 10, "frames": 8},
    }
    assert learner.buffer_sizes() == {"steps": 21, "frames": 16}
    assert steps.added_total == 21
    assert steps.drawable_size() == 11
    for _ in range(20):
        assert is_contiguous(steps.get_data())


def test_draws_are_proportional_to_the_samples_each_agent_holds():
    buffer = PerAgentBuffer(MAKERS["steps"], min_draw_size=1, seed=0)
    for step in range(60):
        buffer.add_for(AGENTS[0], {"agent": [0.0], "step": step})
        if step % 3 == 0:
            buffer.add_for(AGENTS[1], {"agent": [1.0], "step": step})

    drawn = [int(buffer.get_data()["agent"][0, 0]) for _ in range(800)]

    share_b = np.mean(drawn)  # b holds 20 of 80 samples
    assert 0.25 - 0.05 < share_b < 0.25 + 0.05


def test_agents_below_the_trainers_need_are_not_drawn():
    buffer = PerAgentBuffer(MAKERS["steps"], min_draw_size=10, seed=0)
    assert buffer.get_data()["step"].shape == (0,)  # nothing yet: an empty draw
    for step in range(12):
        buffer.add_for(AGENTS[0], {"agent": [0.0], "step": step})
    for step in range(3):
        buffer.add_for(AGENTS[1], {"agent": [1.0], "step": step})

    assert all(len(buffer.get_data()["step"]) == 12 for _ in range(50))


def test_a_trainer_is_ready_when_one_agent_has_enough():
    buffers = arrange_buffers(MAKERS, "per_agent", {"steps": 6})
    trainer = Counting(min_buffer_size=6)
    for step in range(5):
        for agent_id in AGENTS:
            buffers["steps"].add_for(agent_id, {"agent": [0.0], "step": step})
    assert len(buffers["steps"]) == 10 and not trainer.is_trainable(buffers)
    buffers["steps"].add_for(AGENTS[0], {"agent": [0.0], "step": 5})
    assert trainer.is_trainable(buffers)


def test_shapes_of_a_second_agent_must_match_the_first_and_agents_are_bounded():
    buffer = PerAgentBuffer(MAKERS["steps"], max_agents=2)
    buffer.add_for(AGENTS[0], {"agent": [0.0], "step": 0})
    with pytest.raises(ValueError, match="shape"):
        buffer.add_for(AGENTS[1], {"agent": [0.0, 1.0], "step": 0})
    buffer.add_for(AGENTS[1], {"agent": [1.0], "step": 0})
    with pytest.raises(ValueError, match="at most 2"):
        buffer.add_for("/third", {"agent": [2.0], "step": 0})
    assert buffer.agent_sizes() == {AGENTS[0]: 1, AGENTS[1]: 1}


def test_a_learner_refuses_a_record_of_one_agent_too_many_and_stores_none_of_it():
    buffers = {name: PerAgentBuffer(make, max_agents=2) for name, make in MAKERS.items()}
    learner = Learner({"m": nn.Linear(1, 1)}, buffers, [Counting()], route)
    feed_interleaved(learner, range(2))
    before = learner.agent_buffer_sizes()
    with pytest.raises(ExperienceError, match="at most 2"):
        learner.add(record(2, 0), "/third")
    assert learner.agent_buffer_sizes() == before


def test_per_agent_checkpoint_round_trip(tmp_path):
    learner = make_learner("per_agent")
    feed_interleaved(learner, range(10))
    learner.save_state(tmp_path)
    expected = [learner.buffers["steps"].get_data() for _ in range(10)]  # draws after the save

    restored = make_learner("per_agent", seed=7)
    feed_interleaved(restored, range(3))  # state that the load replaces
    restored.load_state(tmp_path)

    assert restored.agent_buffer_sizes() == learner.agent_buffer_sizes()
    assert restored.buffers["frames"].added_total == 20
    for want in expected:  # the draw generator is restored too: same agents in the same order
        got = restored.buffers["steps"].get_data()
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    meta = json.loads((tmp_path / "buffers" / "steps" / "meta.json").read_text())
    assert meta["agents"] == list(AGENTS)


@pytest.mark.parametrize(("saved", "loading"), [("shared", "per_agent"), ("per_agent", "shared")])
def test_a_checkpoint_of_the_other_sharing_is_refused_and_changes_nothing(tmp_path, saved, loading):
    source = make_learner(saved)
    feed_interleaved(source, range(10))
    source.save_state(tmp_path)
    target = make_learner(loading)
    feed_interleaved(target, range(3))
    before = target.buffer_sizes()

    with pytest.raises(CheckpointError, match=f"buffer_sharing '{saved}'.*set buffer_sharing"):
        target.load_state(tmp_path)
    assert target.buffer_sizes() == before


def test_buffer_state_of_the_other_kind_is_refused_with_the_reason(tmp_path):
    shared = SequentialBuffer(["agent", "step"], 64)
    shared.add({"agent": [0.0], "step": 0})
    shared.save_state(tmp_path / "shared")
    per_agent = PerAgentBuffer(MAKERS["steps"])
    per_agent.add_for(AGENTS[0], {"agent": [0.0], "step": 0})
    per_agent.save_state(tmp_path / "per_agent")

    with pytest.raises(BufferStateError, match="shared SequentialBuffer"):
        PerAgentBuffer(MAKERS["steps"]).read_state(tmp_path / "shared")
    with pytest.raises(BufferStateError, match="PerAgentBuffer"):
        SequentialBuffer(["agent", "step"], 64).read_state(tmp_path / "per_agent")
    with pytest.raises(BufferStateError, match="max_size"):
        PerAgentBuffer(partial(SequentialBuffer, ["agent", "step"], 32)).read_state(
            tmp_path / "per_agent"
        )


def test_an_unknown_sharing_is_refused():
    with pytest.raises(ValueError, match="buffer_sharing must be one of"):
        arrange_buffers(MAKERS, "pooled", {})
