import json
import subprocess
import sys
from pathlib import Path

import pytest

from pamiq_ros.core.checkpoint import (
    CheckpointError,
    CheckpointStore,
    checkpoints_to_restore,
    latest_to_keep,
    restore,
)


def writer(content: str):
    def write(folder: Path) -> None:
        (folder / "state.txt").write_text(content)
        (folder / "sub").mkdir()
        (folder / "sub" / "data.bin").write_bytes(content.encode() * 100)

    return write


def read_into(seen: list[str]):
    def read(folder: Path) -> None:
        seen.append((folder / "state.txt").read_text())

    return read


def test_save_names_checkpoints_in_sequence_with_manifest(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    first = store.save(writer("a"))
    second = store.save(writer("b"), label="shut down/now")
    assert first.name == "000001"
    assert second.name == "000002-shut_down_now"
    assert store.checkpoints() == [first, second]
    manifest = json.loads((second / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["state.txt", "sub/data.bin"]
    assert manifest["files"]["sub/data.bin"]["size"] == 100
    store.verify(first)
    store.verify(second)


def test_failing_write_leaves_previous_checkpoints_and_no_new_one(tmp_path):
    store = CheckpointStore(tmp_path)
    good = store.save(writer("good"))

    def broken(folder: Path) -> None:
        (folder / "state.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.save(broken)
    assert store.checkpoints() == [good]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001"]
    seen: list[str] = []
    assert store.load_latest(read_into(seen)) == good
    assert seen == ["good"]


def test_process_killed_mid_write_leaves_a_temp_folder_that_is_ignored_then_cleaned(tmp_path):
    store = CheckpointStore(tmp_path)
    good = store.save(writer("good"))
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pamiq_ros.core.checkpoint import CheckpointStore\n"
        "def write(folder):\n"
        "    (folder / 'state.txt').write_text('partial')\n"
        "    os._exit(9)\n"
        f"CheckpointStore(Path({str(tmp_path)!r})).save(write)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert completed.returncode == 9
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1
    assert store.checkpoints() == [good]
    seen: list[str] = []
    assert store.load_latest(read_into(seen)) == good
    assert seen == ["good"]
    newer = store.save(writer("newer"))
    assert newer.name == "000002"
    assert not leftovers[0].exists()


def test_verify_names_a_truncated_altered_or_missing_file(tmp_path):
    store = CheckpointStore(tmp_path)
    path = store.save(writer("abc"))
    data = path / "sub" / "data.bin"
    original = data.read_bytes()

    data.write_bytes(original[:10])
    with pytest.raises(CheckpointError, match=r"sub/data\.bin was altered: 10 bytes"):
        store.verify(path)

    data.write_bytes(b"X" + original[1:])
    with pytest.raises(CheckpointError, match=r"sub/data\.bin was altered: checksum differs"):
        store.verify(path)

    data.unlink()
    with pytest.raises(CheckpointError, match=r"sub/data\.bin is missing"):
        store.verify(path)

    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"manifest\.json is damaged"):
        store.verify(path)


def test_load_latest_falls_back_and_reports_why(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=5)
    first = store.save(writer("one"))
    second = store.save(writer("two"))
    third = store.save(writer("three"))
    (third / "state.txt").write_text("corrupted!")  # altered after the manifest was written
    skipped: list[tuple[Path, str]] = []
    seen: list[str] = []

    def read(folder: Path) -> None:
        if (folder / "state.txt").read_text() == "two":
            raise ValueError("incompatible model")
        seen.append((folder / "state.txt").read_text())

    assert store.load_latest(read, on_skip=lambda p, why: skipped.append((p, why))) == first
    assert seen == ["one"]
    assert [p for p, _ in skipped] == [third, second]
    assert "state.txt was altered" in skipped[0][1]
    assert skipped[1][1] == "ValueError: incompatible model"


def test_load_latest_reports_a_checkpoint_without_manifest(tmp_path):
    store = CheckpointStore(tmp_path)
    good = store.save(writer("good"))
    broken = store.save(writer("broken"))
    (broken / "manifest.json").unlink()
    skipped: list[str] = []
    assert store.load_latest(read_into([]), on_skip=lambda p, why: skipped.append(why)) == good
    assert "manifest.json is missing" in skipped[0]


def test_load_latest_returns_none_when_nothing_is_usable(tmp_path):
    store = CheckpointStore(tmp_path / "never_written")
    assert store.load_latest(read_into([])) is None
    store = CheckpointStore(tmp_path)
    path = store.save(writer("x"))
    (path / "state.txt").unlink()
    assert store.load_latest(read_into([])) is None


def test_keep_last_prunes_the_oldest(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    paths = [store.save(writer(str(k))) for k in range(5)]
    assert store.checkpoints() == paths[3:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000004", "000005"]
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointStore(tmp_path, keep_last=0)


def test_write_must_not_make_its_own_manifest(tmp_path):
    store = CheckpointStore(tmp_path)

    def sneaky(folder: Path) -> None:
        (folder / "manifest.json").write_text("{}")

    with pytest.raises(CheckpointError, match=r"must not create manifest\.json"):
        store.save(sneaky)
    assert store.checkpoints() == []


def test_checkpoints_to_resume_orders_best_first(tmp_path):
    runs = tmp_path / "runs"
    old_run = CheckpointStore(runs / "2024-01-01_000000" / "trainer" / "ckpt")
    oldest = old_run.save(writer("a"))
    new_run = CheckpointStore(runs / "2024-01-02_000000" / "trainer" / "ckpt")
    newest = new_run.save(writer("b"))
    old_newest = old_run.save(writer("c"))  # written last: newest overall
    assert checkpoints_to_restore("latest", runs, "trainer/ckpt") == [old_newest, newest, oldest]
    assert checkpoints_to_restore(str(runs / "2024-01-02_000000"), runs, "trainer/ckpt") == [newest]
    assert checkpoints_to_restore(str(newest.parent), runs, "trainer/ckpt") == [newest]
    assert checkpoints_to_restore(str(old_newest), runs, "trainer/ckpt") == [old_newest, oldest]
    with pytest.raises(CheckpointError, match="no such folder"):
        checkpoints_to_restore(str(tmp_path / "nope"), runs, "trainer/ckpt")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        checkpoints_to_restore("latest", tmp_path / "empty", "trainer/ckpt")


def test_restore_reports_each_refusal_and_uses_the_one_before(tmp_path):
    runs = tmp_path / "runs"
    store = CheckpointStore(runs / "1" / "node" / "ckpt")
    before = store.save(writer("good"))
    newest = store.save(writer("bad"))
    reports: list[str] = []
    read_paths: list[Path] = []

    def read(path: Path) -> None:
        if path == newest:
            raise ValueError("incompatible shapes")
        read_paths.append(path)

    assert restore("latest", runs, "node/ckpt", read, reports.append) == before
    assert read_paths == [before]
    assert len(reports) == 1 and f"checkpoint {newest} refused" in reports[0]
    assert "incompatible shapes" in reports[0]

    reports.clear()
    assert restore(str(tmp_path / "none"), runs, "node/ckpt", read, reports.append) is None
    assert reports and "cannot restore" in reports[0]


def test_a_pinned_checkpoint_outlives_keep_last_and_is_not_counted(tmp_path: Path):
    store = CheckpointStore(tmp_path / "store", keep_last=2)
    store.save(writer("a"), "periodic")
    before = store.save(writer("b"), "periodic")
    crashed = store.save(writer("c"), "shutdown")
    assert latest_to_keep(store) == before  # not the checkpoint written on the way out
    store.pin(before, "before the crash")
    for number in range(5):
        store.save(writer(f"loop {number}"), "shutdown")
    kept = store.checkpoints()
    assert before in kept and crashed not in kept and len(kept) == 3
    assert (before / "state.txt").read_text() == "b"
    store.verify(before)  # the pin file lives beside the checkpoints, not in them
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        store.pin(tmp_path / "elsewhere", "no")


def test_the_store_sheds_its_oldest_unpinned_checkpoints_beyond_a_byte_budget(tmp_path: Path):
    store = CheckpointStore(tmp_path / "store", keep_last=10)
    paths = [store.save(writer(str(number) * 50), "periodic") for number in range(6)]
    store.pin(paths[0], "kept")
    one = store.size_bytes() // 6
    removed = store.prune_to_budget(3 * one + one // 2)
    assert removed == paths[1:4]
    assert store.checkpoints() == [paths[0], paths[4], paths[5]]
    assert store.prune_to_budget(0) == [paths[4]]  # the newest always stays
    assert store.checkpoints() == [paths[0], paths[5]]
    assert latest_to_keep(CheckpointStore(tmp_path / "empty")) is None
