import json
import threading

import numpy as np
import pytest

from pamiq_ros.core.buffers import (
    BufferStateError,
    DataBuffer,
    RandomReplacementBuffer,
    SequentialBuffer,
)


def sample(value: int) -> dict[str, np.ndarray]:
    return {"id": np.array(value, dtype=np.int64), "frame": np.full((2, 3), value, np.uint8)}


def fill(buffer: DataBuffer, values) -> None:
    for value in values:
        buffer.add(sample(value))


def test_sequential_keeps_the_newest_oldest_first():
    buffer = SequentialBuffer(["id", "frame"], max_size=3)
    fill(buffer, range(5))
    data = buffer.get_data()
    assert len(buffer) == 3
    assert buffer.added_total == 5
    assert data["id"].tolist() == [2, 3, 4]
    assert data["frame"].shape == (3, 2, 3)
    assert data["frame"][:, 0, 0].tolist() == [2, 3, 4]
    fill(buffer, [5])
    assert buffer.get_data()["id"].tolist() == [3, 4, 5]


def test_get_data_returns_copies():
    buffer = SequentialBuffer(["id", "frame"], max_size=3)
    fill(buffer, [1])
    data = buffer.get_data()
    data["frame"][:] = 99
    assert buffer.get_data()["frame"].max() == 1


def test_empty_buffer_gives_empty_arrays():
    buffer = SequentialBuffer(["id"], max_size=3)
    assert len(buffer) == 0
    assert buffer.get_data()["id"].shape == (0,)


def test_samples_must_match_keys_and_first_sample():
    buffer = SequentialBuffer(["id", "frame"], max_size=3)
    with pytest.raises(KeyError, match="missing"):
        buffer.add({"id": np.array(1)})
    with pytest.raises(KeyError, match="unknown"):
        buffer.add({**sample(1), "extra": np.array(1)})
    fill(buffer, [1])
    with pytest.raises(ValueError, match=r"'frame' has shape \(3, 3\), the buffer holds \(2, 3\)"):
        buffer.add({"id": np.array(2), "frame": np.zeros((3, 3), np.uint8)})
    with pytest.raises(ValueError, match="no safe conversion"):
        buffer.add({"id": np.array(2.5), "frame": np.zeros((2, 3), np.uint8)})
    with pytest.raises(ValueError, match="numeric"):
        buffer.check_sample({"id": np.array("x"), "frame": np.zeros((2, 3), np.uint8)})
    buffer.add({"id": np.array(2, dtype=np.int8), "frame": np.zeros((2, 3), np.uint8)})
    assert buffer.get_data()["id"].dtype == np.int64
    assert len(buffer) == 2
    assert buffer.added_total == 2


@pytest.mark.parametrize(
    ("keys", "max_size", "message"),
    [([], 3, "non-empty"), (["a", "a"], 3, "unique"), ("ab", 3, "string"), (["a"], 0, "max_size")],
)
def test_constructor_refuses_bad_arguments(keys, max_size, message):
    with pytest.raises(ValueError, match=message):
        SequentialBuffer(keys, max_size)


def test_random_replacement_probability_from_survival_length():
    buffer = RandomReplacementBuffer(["id"], 100, expected_survival_length=400)
    assert buffer.replace_probability == pytest.approx(0.25)
    assert buffer.expected_survival_length == pytest.approx(400)
    assert RandomReplacementBuffer(["id"], 100).replace_probability == 1.0
    with pytest.raises(ValueError, match="at least max_size"):
        RandomReplacementBuffer(["id"], 100, expected_survival_length=99)
    with pytest.raises(ValueError, match="not both"):
        RandomReplacementBuffer(["id"], 100, replace_probability=0.5, expected_survival_length=200)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        RandomReplacementBuffer(["id"], 100, replace_probability=0.0)


def test_random_replacement_keeps_everything_until_full():
    buffer = RandomReplacementBuffer(["id", "frame"], 10, replace_probability=0.1)
    fill(buffer, range(10))
    assert sorted(buffer.get_data()["id"].tolist()) == list(range(10))


def test_random_replacement_mean_survival_matches_formula():
    """A stored sample survives max_size / p new samples on average (geometric)."""
    size, survival = 50, 500  # p = 0.1
    buffer = RandomReplacementBuffer(["id"], size, expected_survival_length=survival, seed=3)
    for value in range(size):
        buffer.add({"id": np.array(value)})
    present = set(range(size))
    inserted_at: dict[int, int] = {}
    lifetimes: list[tuple[int, int]] = []
    stored = 0
    total = 20_000
    for value in range(size, size + total):
        buffer.add({"id": np.array(value)})
        now = set(buffer.get_data()["id"].tolist())
        if value in now:
            stored += 1
            inserted_at[value] = value
            (evicted,) = present - now
            if evicted in inserted_at:
                lifetimes.append((inserted_at[evicted], value - inserted_at.pop(evicted)))
        present = now
    # Only samples stored early enough to be evicted with near certainty (10 mean lifetimes),
    # so that the long lives of late samples are not cut off by the end of the run.
    cutoff = size + total - 10 * survival
    early = [life for start, life in lifetimes if start < cutoff]
    assert stored / total == pytest.approx(0.1, rel=0.1)
    assert len(early) > 1000
    assert np.mean(early) == pytest.approx(survival, rel=0.12)


def test_concurrent_add_and_get_data_never_tear_samples():
    buffer = RandomReplacementBuffer(["id", "frame"], 64, seed=1)
    errors: list[BaseException] = []
    stop = threading.Event()

    def produce(offset: int) -> None:
        try:
            for value in range(offset, offset + 3000):
                buffer.add({"id": np.array(value), "frame": np.full((2, 3), value % 251, np.uint8)})
        except BaseException as error:
            errors.append(error)

    def consume() -> None:
        try:
            while not stop.is_set():
                data = buffer.get_data()
                if len(data["id"]):
                    assert len(data["id"]) == len(data["frame"])
                    expected = (data["id"] % 251).astype(np.uint8)
                    assert (data["frame"] == expected[:, None, None]).all()
        except BaseException as error:
            errors.append(error)

    producers = [threading.Thread(target=produce, args=(k * 10_000,)) for k in range(2)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    stop.set()
    consumer.join()
    assert not errors
    assert buffer.added_total == 6000
    assert len(buffer) == 64


@pytest.mark.parametrize("kind", ["sequential", "random"])
def test_save_load_round_trip_continues_identically(tmp_path, kind):
    def make() -> DataBuffer:
        if kind == "sequential":
            return SequentialBuffer(["id", "frame"], 8)
        return RandomReplacementBuffer(["id", "frame"], 8, replace_probability=0.5, seed=7)

    original = make()
    fill(original, range(20))
    original.save_state(tmp_path / "buffer")
    copy = make()
    copy.load_state(tmp_path / "buffer")
    assert copy.added_total == original.added_total == 20
    for key in ("id", "frame"):
        np.testing.assert_array_equal(copy.get_data()[key], original.get_data()[key])
    # Same future: the replacement order and the random generator were restored too.
    fill(original, range(20, 40))
    fill(copy, range(20, 40))
    np.testing.assert_array_equal(copy.get_data()["id"], original.get_data()["id"])


def test_empty_state_round_trip(tmp_path):
    SequentialBuffer(["id"], 4).save_state(tmp_path / "empty")
    buffer = SequentialBuffer(["id"], 4)
    fill_one = {"id": np.array(3)}
    buffer.add(fill_one)
    buffer.load_state(tmp_path / "empty")
    assert len(buffer) == 0
    assert buffer.added_total == 0


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: SequentialBuffer(["id", "frame", "x"], 8), "keys"),
        (lambda: SequentialBuffer(["id", "frame"], 9), "max_size 8, this buffer has 9"),
        (lambda: RandomReplacementBuffer(["id", "frame"], 8), "saved by a SequentialBuffer"),
    ],
)
def test_incompatible_state_is_refused(tmp_path, other, message):
    saved = SequentialBuffer(["id", "frame"], 8)
    fill(saved, range(5))
    saved.save_state(tmp_path / "b")
    with pytest.raises(BufferStateError, match=message):
        other().load_state(tmp_path / "b")


def test_state_with_other_shapes_than_held_is_refused_and_buffer_unchanged(tmp_path):
    saved = SequentialBuffer(["id", "frame"], 8)
    fill(saved, range(5))
    saved.save_state(tmp_path / "b")
    holder = SequentialBuffer(["id", "frame"], 8)
    holder.add({"id": np.array(1), "frame": np.zeros((4, 4), np.uint8)})
    with pytest.raises(BufferStateError, match="already holds"):
        holder.load_state(tmp_path / "b")
    assert len(holder) == 1
    assert holder.get_data()["frame"].shape == (1, 4, 4)


def test_damaged_files_are_refused(tmp_path):
    saved = RandomReplacementBuffer(["id", "frame"], 8)
    fill(saved, range(5))
    saved.save_state(tmp_path / "b")
    data = tmp_path / "b" / "data.npz"
    meta = tmp_path / "b" / "meta.json"
    target = RandomReplacementBuffer(["id", "frame"], 8)
    fill(target, [42])

    data_bytes = data.read_bytes()
    data.write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(BufferStateError, match=r"data\.npz is damaged"):
        target.load_state(tmp_path / "b")
    data.write_bytes(data_bytes)

    meta_text = meta.read_text()
    meta.write_text(meta_text[:20])
    with pytest.raises(BufferStateError, match=r"meta\.json is damaged"):
        target.load_state(tmp_path / "b")

    changed = json.loads(meta_text)
    changed["size"] = 6
    meta.write_text(json.dumps(changed))
    with pytest.raises(BufferStateError, match="damaged"):
        target.load_state(tmp_path / "b")

    changed = json.loads(meta_text)
    changed["extra"]["rng"] = {"bit_generator": "nonsense"}
    meta.write_text(json.dumps(changed))
    with pytest.raises(BufferStateError, match="random generator"):
        target.load_state(tmp_path / "b")

    meta.unlink()
    with pytest.raises(BufferStateError, match=r"meta\.json is missing"):
        target.load_state(tmp_path / "b")
    assert target.get_data()["id"].tolist() == [42]
