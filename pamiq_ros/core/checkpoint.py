"""Atomic checkpoints: a folder per checkpoint, a manifest of checksums, the last N kept.

Layout of a store::

    <directory>/
      000001-periodic/        a complete checkpoint: what write() put there, plus
        manifest.json         the size and sha256 of every file
      000002-shutdown/
      .tmp-<pid>-<...>/       being written (or left by a crash: ignored, removed later)
      pinned.json             checkpoints kept whatever keep_last says (name -> why)

A checkpoint is written into a temporary folder, its files and folders are flushed to disk
(fsync), the manifest is written and flushed last, and only then is the folder renamed to its
final name. A rename within one file system is atomic, so a crash at any moment leaves either
no new checkpoint or a complete one, never a half-written one under a checkpoint name; the
previous checkpoints are untouched. Old checkpoints are removed by renaming them away first,
so they disappear whole. :meth:`CheckpointStore.verify` compares every file with the manifest
and names the file that is missing or altered. A pinned checkpoint (:meth:`CheckpointStore.pin`:
the launcher pins the last one from before a node's first crash) is never pruned, so a crash
loop cannot push out the state from before the incident. No ROS import here.
"""

import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
PINS = "pinned.json"

PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
"""Run folders, checkpoints, logs and events are for their user only: the launcher and every
node run with this umask."""
_NAME = re.compile(r"^(\d{6,})(?:-([A-Za-z0-9_.-]+))?$")
_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which and why."""


def _sequence_of(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def _clean_label(label: str) -> str:
    # Labels come from callers (a save request's reason): keep them readable but file-safe.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._-")[:64]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CheckpointStore:
    """Writes checkpoints atomically into ``directory``, keeps the newest ``keep_last``.

    One process writes to a store; its saves may come from several threads (they are serialised).
    """

    def __init__(self, directory: Path, keep_last: int = 3) -> None:
        """Creates the store (the folder is made on the first save).

        Raises:
            ValueError: If ``keep_last`` is below 1.
        """
        if keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self._lock = threading.Lock()

    def save(self, write: Callable[[Path], None], label: str = "") -> Path:
        """Writes a new checkpoint and returns its folder.

        Args:
            write: Fills the folder it is given (a temporary folder inside the store).
            label: Appended to the name (``000007-shutdown``); characters other than letters,
                digits, ``_``, ``.`` and ``-`` become ``_``.

        Raises:
            Whatever ``write`` raises, after removing the temporary folder; no new checkpoint
            appears and the previous ones are untouched.
        """
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            sequence = max((_sequence_of(p) or 0 for p in self._candidates()), default=0) + 1
            clean = _clean_label(label)
            name = f"{sequence:06d}-{clean}" if clean else f"{sequence:06d}"
            temporary = self.directory / f"{_TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            temporary.mkdir()
            try:
                write(temporary)
                self._seal(temporary, sequence, clean)
                final = self.directory / name
                os.rename(temporary, final)
            except BaseException:
                shutil.rmtree(temporary, ignore_errors=True)
                raise
            _fsync_file(self.directory)
            self._prune()
            return final

    def checkpoints(self) -> list[Path]:
        """The complete checkpoints (named as such, with a manifest), oldest first."""
        return [path for path in self._candidates() if (path / MANIFEST).is_file()]

    def pinned(self) -> dict[str, str]:
        """Pinned checkpoint names and why they were pinned."""
        try:
            pins = json.loads((self.directory / PINS).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(pins, dict):
            return {}
        return {str(name): str(reason) for name, reason in pins.items()}

    def pin(self, path: Path, reason: str) -> None:
        """Keeps a checkpoint of this store whatever ``keep_last`` says (atomic update).

        Raises:
            CheckpointError: If ``path`` is not a complete checkpoint of this store.
        """
        with self._lock:
            if path.parent.resolve() != self.directory.resolve() or path not in set(
                self.checkpoints()
            ):
                raise CheckpointError(f"{path} is not a complete checkpoint of {self.directory}")
            pins = self.pinned()
            pins[path.name] = reason
            temporary = self.directory / f"{_TEMP_PREFIX}{os.getpid()}-pins"
            temporary.write_text(json.dumps(pins, indent=1))
            os.replace(temporary, self.directory / PINS)

    def size_bytes(self) -> int:
        """Bytes the complete checkpoints take."""
        return sum(_folder_bytes(path) for path in self.checkpoints())

    def prune_to_budget(self, max_bytes: int) -> list[Path]:
        """Removes the oldest unpinned checkpoints while the store is over ``max_bytes``.

        The newest checkpoint always stays. Safe beside the writing process: a removal is a
        rename, and one the writer made first is skipped.

        Returns:
            The checkpoints removed.
        """
        complete = self.checkpoints()
        pins = self.pinned()
        sizes = {path: _folder_bytes(path) for path in complete}
        total = sum(sizes.values())
        removed = []
        for old in complete[:-1]:
            if total <= max_bytes:
                break
            if old.name in pins:
                continue
            if self._discard(old):
                removed.append(old)
            total -= sizes[old]
        return removed

    def _discard(self, old: Path) -> bool:
        trash = self.directory / f"{_TRASH_PREFIX}{old.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(old, trash)  # whole or not at all, then delete at leisure
        except FileNotFoundError:  # removed by the other side meanwhile
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def verify(self, path: Path) -> None:
        """Checks every file of a checkpoint against its manifest.

        Raises:
            CheckpointError: Naming the manifest if it is missing or damaged, or the first file
                that is missing, whose size or checksum differs, or that it does not list.
        """
        manifest_path = path / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{manifest_path} is missing (incomplete checkpoint)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{manifest_path} is damaged: {error}") from error
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise CheckpointError(f"{manifest_path} is damaged or of an unknown format")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise CheckpointError(f"{manifest_path} is damaged: no file list")
        root = path.resolve()
        for relative, entry in sorted(files.items()):
            file = (path / relative).resolve()
            if not isinstance(entry, dict) or not file.is_relative_to(root):
                raise CheckpointError(f"{manifest_path} is damaged: bad entry {relative!r}")
            if not file.is_file():
                raise CheckpointError(f"{path / relative} is missing (listed in {manifest_path})")
            if file.stat().st_size != entry.get("size"):
                raise CheckpointError(
                    f"{path / relative} was altered: {file.stat().st_size} bytes, "
                    f"the manifest says {entry.get('size')} ({manifest_path})"
                )
            if _sha256(file) != entry.get("sha256"):
                # Name the manifest too: the damage may be in either.
                raise CheckpointError(
                    f"{path / relative} was altered: checksum differs from {manifest_path}"
                )
        # A damaged manifest may no longer list a file, which would then go unchecked.
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path).as_posix()
            if file.is_file() and relative != MANIFEST and relative not in files:
                raise CheckpointError(f"{file} is not listed in {manifest_path} (added or renamed)")

    def load_latest(
        self,
        read: Callable[[Path], None],
        on_skip: Callable[[Path, str], object] | None = None,
    ) -> Path | None:
        """Reads the newest usable checkpoint, falling back to older ones.

        Each checkpoint, newest first, is verified and then given to ``read``; if either raises,
        ``on_skip(path, reason)`` is called and the one before is tried. Folders named like a
        checkpoint but without a manifest are tried (and skipped with that reason) too.

        Returns:
            The checkpoint that was read, or None if none was usable.
        """
        return load_first_usable(list(reversed(self._candidates())), read, on_skip, self.verify)

    def _candidates(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [
            (sequence, path)
            for path in self.directory.iterdir()
            if path.is_dir() and (sequence := _sequence_of(path)) is not None
        ]
        return [path for _, path in sorted(found)]

    def _seal(self, folder: Path, sequence: int, label: str) -> None:
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise CheckpointError(f"checkpoint file {relative} is a link; write real files")
            if path.is_file():
                if relative == MANIFEST:
                    raise CheckpointError(f"write() must not create {MANIFEST}")
                _fsync_file(path)
                files[relative] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        manifest = {
            "format": MANIFEST_FORMAT,
            "sequence": sequence,
            "label": label,
            "created_unix": time.time(),
            "files": files,
        }
        manifest_path = folder / MANIFEST
        with open(manifest_path, "w") as file:
            json.dump(manifest, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        for directory in sorted({p.parent for p in folder.rglob("*")} | {folder}, reverse=True):
            _fsync_file(directory)

    def _prune(self) -> None:
        pins = self.pinned()
        complete = [path for path in self.checkpoints() if path.name not in pins]
        for old in complete[: max(0, len(complete) - self.keep_last)]:
            self._discard(old)

    def _remove_leftovers(self) -> None:
        for path in self.directory.iterdir():
            if path.name.startswith(_TRASH_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith(_TEMP_PREFIX):
                pid = path.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
                if not pid.isdigit() or int(pid) == os.getpid() or not _process_alive(int(pid)):
                    shutil.rmtree(path, ignore_errors=True)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed meanwhile
            continue
    return total


def latest_to_keep(store: CheckpointStore) -> Path | None:
    """The checkpoint to pin when a node first crashes: its newest that is not a shutdown one.

    A crashing node may still write a shutdown checkpoint on its way out, holding the state at
    the crash; the periodic or requested one before it is the state from before the incident.
    """
    complete = store.checkpoints()
    before = [path for path in complete if not path.name.endswith("-shutdown")]
    chosen = before or complete
    return chosen[-1] if chosen else None


def load_first_usable(
    paths: list[Path],
    read: Callable[[Path], None],
    on_skip: Callable[[Path, str], object] | None = None,
    verify: Callable[[Path], None] | None = None,
) -> Path | None:
    """Verifies and reads each checkpoint in turn until one works; returns it, or None.

    Args:
        paths: Checkpoints in the order to try them (best first).
        read: Loads a checkpoint; any exception means it is not usable.
        on_skip: Told ``(path, reason)`` for each checkpoint passed over.
        verify: Checks a checkpoint before reading; default: checksums against its manifest.
    """
    check = verify or CheckpointStore(Path(".")).verify
    for path in paths:
        try:
            check(path)
            read(path)
        except Exception as error:  # any damage or incompatibility: report, try the next one
            if on_skip is not None:
                known = isinstance(error, CheckpointError)
                on_skip(path, str(error) if known else f"{type(error).__name__}: {error}")
            continue
        return path
    return None


def checkpoints_to_restore(reference: str, runs_root: Path, store_subdir: str) -> list[Path]:
    """The complete checkpoints a resume tries, best first (see :func:`load_first_usable`).

    Args:
        reference: ``latest`` (every checkpoint over all run folders under ``runs_root``,
            newest by creation time first), a run folder or a checkpoint store folder (its
            checkpoints, newest first), or one checkpoint (it, then the older ones of its store,
            so a damaged one falls back to the one before).
        runs_root: The folder holding run folders; each run keeps its store at
            ``<run>/<store_subdir>``.
        store_subdir: Where a run folder keeps its checkpoint store.

    Raises:
        CheckpointError: If the path does not exist or no complete checkpoint is found.
    """
    if reference == "latest":
        stores = [run / store_subdir for run in sorted(runs_root.glob("*")) if run.is_dir()]
        found = [path for store in stores for path in CheckpointStore(store).checkpoints()]
        if not found:
            raise CheckpointError(f"no complete checkpoint under {runs_root}/*/{store_subdir}")
        return sorted(found, key=lambda path: (_created_unix(path), str(path)), reverse=True)
    path = Path(reference)
    if not path.exists():
        raise CheckpointError(f"nothing to restore from at {reference!r}: no such folder")
    if (path / MANIFEST).is_file():
        older = [
            other for other in CheckpointStore(path.parent).checkpoints() if other.name < path.name
        ]
        return [path, *reversed(older)]
    store = path / store_subdir if (path / store_subdir).is_dir() else path
    complete = CheckpointStore(store).checkpoints()
    if not complete:
        raise CheckpointError(f"{path} holds no complete checkpoint")
    return list(reversed(complete))


def _created_unix(path: Path) -> float:
    try:
        created = json.loads((path / MANIFEST).read_text()).get("created_unix")
        if isinstance(created, int | float):
            return float(created)
    except (OSError, ValueError, AttributeError):
        pass
    return path.stat().st_mtime


def restore(
    reference: str,
    runs_root: Path,
    store_subdir: str,
    read: Callable[[Path], None],
    report: Callable[[str], object],
) -> Path | None:
    """Restores from the best usable checkpoint for ``reference``; returns it, or None.

    Each checkpoint passed over, and a reference that leads nowhere, is told to ``report`` with
    the reason, so a node can log it and start fresh.

    Args:
        reference: As for :func:`checkpoints_to_restore`.
        runs_root: The folder holding run folders.
        store_subdir: Where a run folder keeps this node's checkpoint store.
        read: Loads one checkpoint; any exception means it is not usable.
        report: Receives a one-line message for each problem.
    """
    try:
        candidates = checkpoints_to_restore(reference, runs_root, store_subdir)
    except CheckpointError as error:
        report(f"cannot restore from {reference!r}: {error}")
        return None
    used = load_first_usable(
        candidates,
        read,
        on_skip=lambda path, reason: report(
            f"checkpoint {path} refused: {reason}; trying the one before"
        ),
    )
    if used is None:
        report(f"no usable checkpoint for resume_from={reference!r}")
    return used
