"""Finding what to resume from: ``latest``, a run folder, a checkpoint store or one checkpoint."""

from collections.abc import Callable
from pathlib import Path

from pamiq_ros.core.checkpoint import CheckpointError, CheckpointStore

MANIFEST = "manifest.json"


def resume_candidates(
    reference: str, runs_root: Path, store_subdir: str, exclude: Path | None = None
) -> list[Path]:
    """The checkpoint stores (or single checkpoints) to try, best first.

    Args:
        reference: ``latest``, a run folder, a checkpoint store folder or one checkpoint.
        runs_root: Where run folders are (for ``latest``).
        store_subdir: A node's store inside a run folder, e.g. ``trainer/checkpoints``.
        exclude: The run folder of this start, which holds nothing to resume yet.

    Raises:
        CheckpointError: If ``reference`` is a path that does not exist.
    """
    if reference == "latest":
        if not runs_root.is_dir():
            return []
        runs = sorted(
            (run for run in runs_root.iterdir() if run.is_dir() and run != exclude),
            key=lambda run: run.name,
            reverse=True,
        )
        return [run / store_subdir for run in runs if (run / store_subdir).is_dir()]
    path = Path(reference)
    if not path.exists():
        raise CheckpointError(f"nothing to resume from at {reference!r}: no such file or folder")
    if (path / store_subdir).is_dir():
        return [path / store_subdir]
    return [path]


def restore(
    candidates: list[Path],
    read: Callable[[Path], None],
    on_skip: Callable[[Path, str], None],
    keep_last: int = 3,
) -> Path | None:
    """Reads the first usable checkpoint among ``candidates``; returns it, or None.

    A single checkpoint that is damaged falls back to the ones before it in its store; each
    checkpoint passed over is reported through ``on_skip`` with the reason.
    """
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            store = CheckpointStore(candidate.parent, keep_last=keep_last)
            newer_first = [path for path in reversed(store.checkpoints()) if path.name <= candidate.name]
            for path in newer_first or [candidate]:
                try:
                    store.verify(path)
                    read(path)
                    return path
                except Exception as error:  # any damage: report and try the one before
                    on_skip(path, str(error))
            continue
        used = CheckpointStore(candidate, keep_last=keep_last).load_latest(read, on_skip)
        if used is not None:
            return used
    return None
