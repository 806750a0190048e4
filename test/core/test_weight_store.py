import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from blake3 import blake3

from pamiq_ros.core import weight_store
from pamiq_ros.core.weight_store import (
    ChunkAssembler,
    SharedWeightStore,
    chunk_count,
    default_store_roots,
    is_store_directory_name,
    remove_stale_stores,
    version_file_name,
)
from pamiq_ros.core.weights import (
    NonFiniteWeightsError,
    WeightsError,
    decode_weights,
    encode_weights,
)
from test.support.processes import wait_until


def weights(value: float, size: int = 16) -> dict[str, torch.Tensor]:
    return {"w": torch.full((size,), value), "b": torch.full((2,), -value)}


def large_weights(value: float) -> dict[str, torch.Tensor]:
    """Over a megabyte: the parallel hash and the preallocated file are used."""
    return {"w": torch.full((300_000,), value), "b": torch.full((8,), value)}


@pytest.fixture
def store(tmp_path: Path):
    store = SharedWeightStore(tmp_path / "store", keep_versions=2, chunk_size=100)
    yield store
    store.close()


def test_put_writes_the_bytes_and_get_returns_them(store):
    encoded = encode_weights("model", 1, weights(1.0))
    path = store.put(encoded)
    assert path.parent == store.directory
    assert path.read_bytes() == encoded.data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert store.get("model", 1) == encoded
    assert store.path("model", 1) == path
    info = store.info("model")
    assert info is not None
    assert (info.version, info.checksum, info.size_bytes) == (
        1,
        encoded.checksum,
        len(encoded.data),
    )


@pytest.mark.parametrize("make", [weights, large_weights], ids=["small", "large"])
def test_put_state_dict_stores_exactly_what_encode_weights_makes(store, make):
    state = make(2.5)
    stored = store.put_state_dict("model", 4, state)
    expected = encode_weights("model", 4, state)
    assert stored.checksum == expected.checksum
    assert stored.size_bytes == len(expected.data)
    assert stored.path == store.path("model", 4)
    assert stored.path.read_bytes() == expected.data
    assert store.get("model", 4) == expected
    timing = store.last_timing
    assert timing is not None and timing.total_s >= timing.encode_s >= 0.0


def test_versions_must_increase(store):
    store.put_state_dict("model", 3, weights(1.0))
    for version in (3, 2):
        with pytest.raises(WeightsError, match=f"version {version}: not newer than the stored"):
            store.put_state_dict("model", version, weights(2.0))
    store.put_state_dict("other", 1, weights(1.0))  # versions are per model


def test_version_zero_means_the_newest(store):
    store.put_state_dict("model", 1, weights(1.0))
    store.put_state_dict("model", 2, weights(2.0))
    newest = store.get("model", 0)
    assert newest is not None and newest.version == 2
    assert store.get("model", 7) is None and store.get("nobody") is None


def test_older_versions_are_dropped_and_their_files_deleted(store):
    paths = []
    for version in range(1, 5):
        store.put_state_dict("model", version, weights(float(version)))
        path = store.path("model", version)
        assert path is not None
        paths.append(path)
    assert store.versions("model") == [3, 4]
    assert store.get("model", 1) is None
    assert wait_until(lambda: not paths[0].exists() and not paths[1].exists(), 5.0)
    assert paths[2].exists() and paths[3].exists()


def test_a_reader_of_a_dropped_version_still_reads_what_was_announced(store):
    stored = store.put_state_dict("model", 1, large_weights(1.0))
    path = store.path("model", 1)
    assert path is not None
    with path.open("rb") as reader:
        for version in range(2, 6):
            store.put_state_dict("model", version, large_weights(float(version)))
        assert wait_until(lambda: not path.exists(), 5.0)
        data = reader.read()
    assert "blake3:" + blake3(data).hexdigest() == stored.checksum


def test_a_failed_write_leaves_no_file_and_the_previous_version(store, monkeypatch):
    store.put_state_dict("model", 1, weights(1.0))
    written = []

    def failing_write(fd: int, piece: memoryview) -> None:
        written.append(piece.nbytes)
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        os.write(fd, piece)

    monkeypatch.setattr(weight_store, "_write_all", failing_write)
    with pytest.raises(OSError, match="No space"):
        store.put_state_dict("model", 2, weights(2.0))
    assert store.versions("model") == [1]
    assert sorted(path.name for path in store.directory.iterdir()) == ["model-v1.safetensors"]
    kept = store.get("model")
    assert kept is not None
    decoded = decode_weights(kept.data, kept.checksum, "model", 1)
    assert torch.equal(decoded["w"], weights(1.0)["w"])


def test_non_finite_weights_store_nothing(store):
    bad = weights(1.0)
    bad["w"][3] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="tensor 'w'"):
        store.put_state_dict("model", 1, bad)
    assert store.versions("model") == []
    assert list(store.directory.iterdir()) == []


def test_the_next_versions_file_is_allocated_ahead_and_fits_any_size(store, monkeypatch):
    monkeypatch.setattr(weight_store, "HOUSEKEEPING_DELAY_S", 0.0)
    store.put_state_dict("model", 1, large_weights(1.0))
    assert wait_until(lambda: "model" in store._preallocated, 5.0)
    smaller = {"w": torch.full((1000,), 3.0), "b": torch.full((8,), 3.0)}
    stored = store.put_state_dict("model", 2, smaller)
    timing = store.last_timing
    assert timing is not None and timing.preallocated
    path = store.path("model", 2)
    assert path is not None and path.stat().st_size == stored.size_bytes
    decoded = decode_weights(path.read_bytes(), stored.checksum, "model", 2)
    assert torch.equal(decoded["w"], smaller["w"])


def test_chunks_reassemble_the_exact_bytes(store):
    stored = store.put_state_dict("model", 1, weights(1.5, size=100))
    size = stored.size_bytes
    count = chunk_count(size, 100)
    assert count == store.chunk_count(size) > 3
    assembler = ChunkAssembler(size, count)
    for index in range(count):
        chunk, total = store.chunk("model", 1, index)
        assert total == count
        assert len(chunk) == (100 if index < count - 1 else size - 100 * (count - 1))
        assembler.add(index, chunk, total)
    assert assembler.complete
    assert bytes(assembler.data()) == stored.path.read_bytes()


def test_chunk_requests_out_of_range_or_for_unknown_versions_are_refused(store):
    store.put_state_dict("model", 2, weights(1.0))
    info = store.info("model")
    assert info is not None
    count = store.chunk_count(info.size_bytes)
    with pytest.raises(WeightsError, match=rf"chunk {count} is out of range \(0..{count - 1}\)"):
        store.chunk("model", 2, count)
    with pytest.raises(WeightsError, match=r"model 'model' has no version 1 stored \(kept: 2\)"):
        store.chunk("model", 1, 0)
    with pytest.raises(WeightsError, match="no weights of model 'other' are stored"):
        store.chunk("other", 0, 0)


def test_chunk_count_covers_the_data():
    assert chunk_count(0, 10) == 1
    assert chunk_count(10, 10) == 1
    assert chunk_count(11, 10) == 2


def test_the_assembler_refuses_gaps_repeats_and_wrong_sizes():
    assembler = ChunkAssembler(10, 3, where="weights of model 'm' version 1")
    with pytest.raises(WeightsError, match="model 'm' version 1: got chunk 1, expected chunk 0"):
        assembler.add(1, b"abcd", 3)
    assembler.add(0, b"abcd", 3)
    with pytest.raises(WeightsError, match="got chunk 0, expected chunk 1"):
        assembler.add(0, b"abcd", 3)
    with pytest.raises(WeightsError, match="chunk count changed from 3 to 4"):
        assembler.add(1, b"efgh", 4)
    with pytest.raises(WeightsError, match="more than the announced 10"):
        assembler.add(1, b"efghijklm", 3)
    with pytest.raises(WeightsError, match="2 of 3 chunks missing"):
        assembler.data()
    assembler.add(1, b"efgh", 3)
    with pytest.raises(WeightsError, match="give 9 bytes, fewer than the announced 10"):
        assembler.add(2, b"i", 3)


def test_the_assembler_reuses_a_large_enough_buffer():
    buffer = bytearray(b"x" * 20)
    assembler = ChunkAssembler(4, 1, buffer)
    assembler.add(0, b"abcd", 1)
    assert assembler.buffer is buffer
    assert bytes(assembler.data()) == b"abcd"


def test_close_deletes_the_directory_it_created(tmp_path):
    store = SharedWeightStore(tmp_path / "new")
    store.put_state_dict("model", 1, large_weights(1.0))
    store.close()
    store.close()  # idempotent
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError, match="closed"):
        store.put_state_dict("model", 2, weights(1.0))


def test_close_leaves_a_given_directory_and_other_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    store = SharedWeightStore(tmp_path)
    store.put_state_dict("model", 1, large_weights(1.0))
    store.close()
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def test_the_default_directory_is_private_and_named_after_the_process():
    store = SharedWeightStore()
    try:
        directory = store.directory
        assert directory.name.startswith(f"pamiq_ros-{os.getpid()}-")
        if Path("/dev/shm").is_dir():
            assert directory.parent == Path("/dev/shm")
        assert oct(directory.stat().st_mode & 0o777) == "0o700"
    finally:
        store.close()
    assert not directory.exists()


def test_stale_stores_of_dead_processes_are_removed(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(finished.stdout)
    stale = tmp_path / f"pamiq_ros-{dead_pid}-abc"
    alive = tmp_path / f"pamiq_ros-{os.getpid()}-def"
    unrelated = tmp_path / "other-1-x"
    for directory in (stale, alive, unrelated):
        directory.mkdir()
        (directory / "model-v1.safetensors").write_bytes(b"x")
    if dead_pid == os.getpid():  # pragma: no cover - PID reuse
        pytest.skip("PID reused")
    assert remove_stale_stores(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and unrelated.exists()


def test_invalid_store_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="keep_versions"):
        SharedWeightStore(tmp_path, keep_versions=0)
    with pytest.raises(ValueError, match="chunk_size"):
        SharedWeightStore(tmp_path, chunk_size=0)


def test_store_folders_and_version_files_are_named_as_the_subscriber_expects(tmp_path):
    with SharedWeightStore() as store:
        assert is_store_directory_name(store.directory.name)
        assert store.directory.parent in default_store_roots()
        assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert version_file_name("a/b c", 7) == "a%2Fb%20c-v7.safetensors"
    for name in ("pamiq_ros-", "pamiq_ros-x-1", "pamiq_ros-12", "other-1-2"):
        assert not is_store_directory_name(name), name


def test_the_assembler_hashes_the_chunks_as_they_come():
    data = bytes(range(256)) * 40
    assembler = ChunkAssembler(len(data), 3)
    for index in range(3):
        assert assembler.next_index == index  # where a retry after a lost answer goes on
        assembler.add(index, data[index * 4096 : (index + 1) * 4096], 3)
    assert assembler.checksum == "blake3:" + blake3(data).hexdigest()
    assert bytes(assembler.data()) == data
