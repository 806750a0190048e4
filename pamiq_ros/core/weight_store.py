"""The trainer's side of weight sync: encoded versions kept as files in shared memory.

Each published version is one safetensors file in a private directory (``/dev/shm`` where the
machine has it, so the file lives in RAM). A client on the same host reads the file directly,
given its path; a client on another host gets the same bytes in chunks, which the store reads
from the file. Files are written under a temporary name and renamed into place, so a reader
never sees a half-written version, and a published file is never changed afterwards (a new
version is a new file). The newest ``keep_versions`` versions per model are kept.

Speed matters here (the trainer's publish is on the weight-sync latency path): the tensors'
bytes go to the file block by block, each block hashed right after it is written while it is
still in the cache (one pass over the data), and a housekeeping thread deletes dropped versions
and allocates the next version's file ahead of time, off that path.

The client side of the chunked path, :class:`ChunkAssembler`, lives here too. No ROS import.
"""

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import torch

from pamiq_ros.core.weights import (
    HASH_BLOCK_BYTES,
    Checksummer,
    EncodedWeights,
    WeightsError,
    check_version,
    encode_pieces,
)

SHARED_MEMORY_ROOT = Path("/dev/shm")
DIRECTORY_PREFIX = "pamiq_ros-"
FILE_SUFFIX = ".safetensors"

TEMPORARY_SUFFIX = ".tmp"

PREALLOCATE_MIN_BYTES = 1 << 20
"""From this size on, the file of a model's next version is allocated ahead of time."""

DEFAULT_CHUNK_SIZE = 1 << 20
"""Bytes per chunk on the chunked path. Responses of 4 and 8 MiB over Fast DDS's same-host
transport were seen to stall for seconds after a few hundred megabytes; 1 MiB chunks kept a
steady rate (about 110 MB/s on loopback, as fast as the larger ones when they did not stall)."""

HOUSEKEEPING_DELAY_S = 0.25
"""Chores wait this long after a put, so that they do not compete for CPU and memory bandwidth
with the clients reading the new version right after its announcement."""


@dataclass(frozen=True)
class StoredWeights:
    """What the store knows of one version without reading its bytes.

    Attributes:
        model_name: The model.
        version: The version.
        checksum: The checksum of the file's bytes (``blake3:<hex>``).
        size_bytes: Length of the file.
        path: The file (absolute).
    """

    model_name: str
    version: int
    checksum: str
    size_bytes: int
    path: Path


@dataclass(frozen=True)
class PutTiming:
    """Where the time of the last :meth:`SharedWeightStore.put_state_dict` went (seconds).

    Attributes:
        encode_s: Building the header, with the NaN/Inf check.
        write_s: Writing the file, hashing included.
        hash_s: Part of ``write_s``: the hashing of each block after it was written.
        total_s: The whole call.
        preallocated: Whether the file was allocated ahead of time.
    """

    encode_s: float
    write_s: float
    hash_s: float
    total_s: float
    preallocated: bool


@dataclass(frozen=True)
class _Written:
    path: Path
    size_bytes: int
    checksum: str
    write_s: float
    hash_s: float
    preallocated: bool


def version_file_name(model_name: str, version: int) -> str:
    """The name of a version's file in a store folder (the model name is percent-quoted)."""
    return f"{quote(model_name, safe='')}-v{version}{FILE_SUFFIX}"


def is_store_directory_name(name: str) -> bool:
    """Whether a folder name is one a store makes by default (``pamiq_ros-<pid>-<random>``)."""
    pid, _, rest = name.removeprefix(DIRECTORY_PREFIX).partition("-")
    return name.startswith(DIRECTORY_PREFIX) and pid.isdigit() and bool(rest)


def default_store_roots() -> tuple[Path, ...]:
    """Where default store folders are made: ``/dev/shm``, and the temporary folder."""
    return (SHARED_MEMORY_ROOT, Path(tempfile.gettempdir()))


def chunk_count(size_bytes: int, chunk_size: int) -> int:
    """Number of chunks of ``chunk_size`` bytes (the last one shorter) covering ``size_bytes``."""
    return max(1, -(-size_bytes // chunk_size))


def remove_stale_stores(root: Path = SHARED_MEMORY_ROOT) -> list[Path]:
    """Removes store directories left in ``root`` by processes that no longer run.

    A trainer killed with SIGKILL cannot delete its shared-memory files, which would hold RAM
    until reboot. Only this user's directories whose owning PID is gone are removed.

    Returns:
        The directories removed.
    """
    removed = []
    for directory in root.glob(f"{DIRECTORY_PREFIX}*-*"):
        pid_text = directory.name[len(DIRECTORY_PREFIX) :].split("-", 1)[0]
        try:
            if not pid_text.isdigit() or directory.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        except OSError:  # not ours to signal (PermissionError) or gone meanwhile: leave it
            continue
    return removed


def _default_directory() -> tuple[Path, bool]:
    root = SHARED_MEMORY_ROOT
    if root.is_dir() and os.access(root, os.W_OK):
        remove_stale_stores(root)
        base: str | None = str(root)
    else:
        base = None  # the system's temporary directory
    prefix = f"{DIRECTORY_PREFIX}{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base)), True


def _write_all(fd: int, piece: memoryview) -> None:
    written = 0
    while written < piece.nbytes:
        written += os.write(fd, piece[written:])


def _write_pieces(fd: int, pieces: Sequence[memoryview], checksummer: Checksummer | None) -> float:
    """Writes the pieces, hashing each block right after writing it; returns the hashing time."""
    hash_s = 0.0
    for piece in pieces:
        for start in range(0, piece.nbytes, HASH_BLOCK_BYTES):
            block = piece[start : start + HASH_BLOCK_BYTES]
            _write_all(fd, block)
            if checksummer is not None:
                started = time.perf_counter()
                checksummer.update(block)
                hash_s += time.perf_counter() - started
    return hash_s


class SharedWeightStore:
    """Versions of encoded weights as files, for same-host reads and chunked transfer.

    Thread-safe: the training thread puts while service handlers read.
    """

    def __init__(
        self,
        directory: Path | None = None,
        keep_versions: int = 3,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """Creates the store and its directory.

        Args:
            directory: Where the files go; created if missing. Default: a new private
                directory ``/dev/shm/pamiq_ros-<pid>-<random>`` (a temporary directory where
                there is no ``/dev/shm``).
            keep_versions: Versions kept per model; older files are deleted.
            chunk_size: Bytes per chunk on the chunked (other-host) path.
        """
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be at least 1, got {keep_versions}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if directory is None:
            self._directory, self._owns_directory = _default_directory()
        else:
            self._directory = directory.absolute()
            self._owns_directory = not self._directory.exists()
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_versions = keep_versions
        self.chunk_size = chunk_size
        self._index_lock = threading.Lock()  # guards _versions; held only briefly
        self._write_lock = threading.Lock()  # one put at a time
        self._versions: dict[str, dict[int, StoredWeights]] = {}
        self._preallocated: dict[str, Path] = {}  # model -> empty file for its next version
        # (due time, chore): a file to delete, or (model, size) of a file to preallocate.
        self._chores: queue.SimpleQueue[tuple[float, tuple[str, int] | Path] | None] = (
            queue.SimpleQueue()
        )
        self._closing = threading.Event()
        self._housekeeper = threading.Thread(
            target=self._keep_house, name="weights-housekeeping", daemon=True
        )
        self._housekeeper.start()
        self._closed = False
        self.last_timing: PutTiming | None = None

    @property
    def directory(self) -> Path:
        """The directory holding the files."""
        return self._directory

    # --- writing ---------------------------------------------------------------------------

    def put(self, encoded: EncodedWeights) -> Path:
        """Stores encoded weights as a new version (atomic: temporary file, then rename).

        Returns:
            The version's file.

        Raises:
            WeightsError: If the version is not newer than the model's newest stored one.
        """
        with self._write_lock:
            self._check_new(encoded.model_name, encoded.version)
            view = memoryview(encoded.data).cast("B")
            written = self._write_file(encoded.model_name, encoded.version, [view], False)
            self._register(
                StoredWeights(
                    encoded.model_name, encoded.version, encoded.checksum, view.nbytes, written.path
                )
            )
            return written.path

    def put_state_dict(
        self, model_name: str, version: int, state_dict: Mapping[str, torch.Tensor]
    ) -> StoredWeights:
        """Encodes and stores a state dict in one pass: the fast path of publishing.

        The tensors' bytes go straight to the file, hashed block by block as they go, so no
        in-memory copy of the encoded data is made (``get`` reads the bytes back if needed).

        Returns:
            What was stored: version, checksum, size and file.

        Raises:
            NonFiniteWeightsError: If a tensor holds NaN or Inf (nothing is stored).
            WeightsError: If the weights cannot be encoded or the version is not newer than the
                model's newest stored one.
        """
        with self._write_lock:
            started = time.perf_counter()
            self._check_new(model_name, version)
            encoded = encode_pieces(model_name, version, state_dict)
            encoded_at = time.perf_counter()
            written = self._write_file(model_name, version, encoded.pieces, True)
            stored = StoredWeights(
                model_name, version, written.checksum, written.size_bytes, written.path
            )
            self._register(stored)
            self.last_timing = PutTiming(
                encode_s=encoded_at - started,
                write_s=written.write_s,
                hash_s=written.hash_s,
                total_s=time.perf_counter() - started,
                preallocated=written.preallocated,
            )
        return stored

    def _check_new(self, model_name: str, version: int) -> None:
        check_version(model_name, version)
        with self._index_lock:
            if self._closed:
                raise RuntimeError("the weight store is closed")
            kept = self._versions.get(model_name, {})
            newest = max(kept, default=None)
        if newest is not None and version <= newest:
            raise WeightsError(
                f"weights of model {model_name!r} version {version}: not newer than the stored "
                f"version {newest} (versions only increase)"
            )

    def _file_path(self, model_name: str, version: int) -> Path:
        return self._directory / version_file_name(model_name, version)

    def _write_file(
        self,
        model_name: str,
        version: int,
        pieces: Sequence[memoryview],
        hash_pieces: bool,
    ) -> "_Written":
        """Writes the pieces under a temporary name and renames; hashes them if asked."""
        path = self._file_path(model_name, version)
        total = sum(piece.nbytes for piece in pieces)
        checksummer = Checksummer() if hash_pieces else None
        started = time.perf_counter()
        temporary, fd, preallocated = self._open_temporary(model_name)
        try:
            try:
                hash_s = _write_pieces(fd, pieces, checksummer)
                os.ftruncate(fd, total)  # a preallocated file may be longer
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        write_s = time.perf_counter() - started
        if total >= PREALLOCATE_MIN_BYTES:
            self._chores.put((time.monotonic() + HOUSEKEEPING_DELAY_S, (model_name, total)))
        checksum = checksummer.hexdigest() if checksummer is not None else ""
        return _Written(path, total, checksum, write_s, hash_s, preallocated)

    def _temporary_path(self, model_name: str) -> Path:
        return (
            self._directory / f".{quote(model_name, safe='')}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"
        )

    def _open_temporary(self, model_name: str) -> tuple[Path, int, bool]:
        """A file to write a version into: the preallocated one if ready, else a fresh one.

        Returns:
            The file, its descriptor (open for writing), and whether it was preallocated.
        """
        with self._index_lock:
            preallocated = self._preallocated.pop(model_name, None)
        if preallocated is not None:
            with contextlib.suppress(OSError):  # gone: write a fresh file
                return preallocated, os.open(preallocated, os.O_WRONLY | os.O_CLOEXEC), True
        temporary = self._temporary_path(model_name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        return temporary, os.open(temporary, flags, 0o600), False

    def _register(self, stored: StoredWeights) -> None:
        with self._index_lock:
            kept = self._versions.setdefault(stored.model_name, {})
            kept[stored.version] = stored
            dropped = sorted(kept)[: -self.keep_versions]
            removed = [kept.pop(version) for version in dropped]
        for old in removed:
            # Readers that opened the file keep reading it; unlink only drops the name.
            self._chores.put((time.monotonic() + HOUSEKEEPING_DELAY_S, old.path))

    def _keep_house(self) -> None:
        """The housekeeping thread: deletes dropped files, allocates next versions' files."""
        while (item := self._chores.get()) is not None:
            due, chore = item
            self._closing.wait(max(0.0, due - time.monotonic()))  # at once when closing
            if isinstance(chore, Path):
                with contextlib.suppress(FileNotFoundError):
                    chore.unlink()
            elif not self._closing.is_set():
                self._preallocate(*chore)

    def _preallocate(self, model_name: str, size: int) -> None:
        """Allocates the file for a model's next version (assumed to be of the same size).

        Freshly allocated shared-memory pages cost as much again as copying the data into them
        (the kernel zeroes each page on first touch), so they are allocated here, off the
        publishing path. Published files themselves are never reused: a reader holding one
        always sees the bytes that were announced.
        """
        temporary = self._temporary_path(model_name)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
        except OSError:  # no space, or no fallocate on this file system: skip the speed-up
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        with self._index_lock:
            if self._closed:
                unused: Path | None = temporary
            else:
                unused = self._preallocated.pop(model_name, None)
                self._preallocated[model_name] = temporary
        if unused is not None:
            with contextlib.suppress(OSError):
                unused.unlink()

    # --- reading ---------------------------------------------------------------------------

    def info(self, model_name: str, version: int = 0) -> StoredWeights | None:
        """What is stored for a version (0: the newest), or None if it is not kept."""
        with self._index_lock:
            kept = self._versions.get(model_name)
            if not kept:
                return None
            return kept[max(kept)] if version == 0 else kept.get(version)

    def versions(self, model_name: str) -> list[int]:
        """The kept versions of a model, oldest first."""
        with self._index_lock:
            return sorted(self._versions.get(model_name, {}))

    def models(self) -> list[str]:
        """The models with at least one stored version."""
        with self._index_lock:
            return sorted(name for name, kept in self._versions.items() if kept)

    def path(self, model_name: str, version: int) -> Path | None:
        """The file of a version (0: the newest), or None if it is not kept."""
        stored = self.info(model_name, version)
        return stored.path if stored is not None else None

    def get(self, model_name: str, version: int = 0) -> EncodedWeights | None:
        """A version's encoded weights (0: the newest), read from its file; None if not kept."""
        stored = self.info(model_name, version)
        if stored is None:
            return None
        try:
            data = stored.path.read_bytes()
        except FileNotFoundError:
            return None  # dropped by a newer version meanwhile
        return EncodedWeights(model_name, stored.version, data, stored.checksum)

    def chunk_count(self, size_bytes: int) -> int:
        """Number of chunks for data of ``size_bytes``."""
        return chunk_count(size_bytes, self.chunk_size)

    def chunk(self, model_name: str, version: int, index: int) -> tuple[bytes, int]:
        """One chunk of a version's bytes.

        Args:
            model_name: The model.
            version: The version (0: the newest).
            index: The chunk, from 0.

        Returns:
            The chunk's bytes and the number of chunks of that version.

        Raises:
            WeightsError: If the version is not kept or the index is out of range.
        """
        stored = self.info(model_name, version)
        if stored is None:
            raise WeightsError(self.describe_missing(model_name, version))
        count = self.chunk_count(stored.size_bytes)
        if not 0 <= index < count:
            raise WeightsError(
                f"weights of model {model_name!r} version {stored.version}: chunk {index} is "
                f"out of range (0..{count - 1})"
            )
        offset = index * self.chunk_size
        length = min(self.chunk_size, stored.size_bytes - offset)
        try:
            fd = os.open(stored.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise WeightsError(self.describe_missing(model_name, stored.version)) from None
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise WeightsError(
                f"weights of model {model_name!r} version {stored.version}: its file "
                f"is shorter than its {stored.size_bytes} bytes"
            )
        return data, count

    def describe_missing(self, model_name: str, version: int) -> str:
        """Why a version (0: any) of a model cannot be served: which versions are kept."""
        kept = self.versions(model_name)
        if not kept:
            return f"no weights of model {model_name!r} are stored"
        which = "any version" if version == 0 else f"version {version}"
        listed = ", ".join(str(kept_version) for kept_version in kept)
        return f"model {model_name!r} has no {which} stored (kept: {listed})"

    # --- cleanup ---------------------------------------------------------------------------

    def close(self) -> None:
        """Deletes the store's files, and its directory if the store created it. Idempotent."""
        with self._write_lock:
            with self._index_lock:
                if self._closed:
                    return
                self._closed = True
            self._closing.set()
            self._chores.put(None)
            self._housekeeper.join()
            with self._index_lock:
                files = [entry.path for kept in self._versions.values() for entry in kept.values()]
                files += self._preallocated.values()
                self._versions.clear()
                self._preallocated.clear()
        if self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)
            return
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def __enter__(self) -> "SharedWeightStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ChunkAssembler:
    """Collects the chunks of one encoded version, in order, into one buffer, hashing each.

    Refuses a chunk out of order (a gap or a repeat), a chunk count that changes, and data
    longer or shorter than announced. An assembly is resumable: after a lost answer the client
    asks again for :attr:`next_index` and goes on where it stopped. Each chunk is hashed as it
    is added (:attr:`checksum`), so the data is not read a second time to be checked.
    """

    def __init__(
        self,
        size_bytes: int,
        chunk_count: int,
        buffer: bytearray | None = None,
        where: str = "weights",
    ) -> None:
        """Starts an empty assembly.

        Args:
            size_bytes: The announced length of the whole data.
            chunk_count: How many chunks the server said there are.
            buffer: Reused if at least ``size_bytes`` long (saves allocating per version).
            where: Names the weights in error messages (model and version).
        """
        if size_bytes < 0 or chunk_count < 1:
            raise WeightsError(f"{where}: invalid size {size_bytes} or chunk count {chunk_count}")
        self.size_bytes = size_bytes
        self.chunk_count = chunk_count
        self._where = where
        if buffer is None or len(buffer) < size_bytes:
            buffer = bytearray(size_bytes)
        self.buffer = buffer
        self._view = memoryview(buffer)[:size_bytes]
        self.next_index = 0
        self.received_bytes = 0
        self._checksummer = Checksummer()

    @property
    def complete(self) -> bool:
        """Whether every chunk arrived."""
        return self.next_index == self.chunk_count

    def add(self, index: int, chunk: bytes | bytearray | memoryview, chunk_count: int) -> None:
        """Appends chunk ``index`` (which must be the next one).

        Raises:
            WeightsError: If the chunk is out of order, the count changed, or the data would be
                longer than announced, or the last chunk leaves it shorter.
        """
        if chunk_count != self.chunk_count:
            raise WeightsError(
                f"{self._where}: chunk count changed from {self.chunk_count} to {chunk_count}"
            )
        if index != self.next_index:
            raise WeightsError(
                f"{self._where}: got chunk {index}, expected chunk {self.next_index} of "
                f"{self.chunk_count}"
            )
        view = memoryview(chunk).cast("B")
        end = self.received_bytes + view.nbytes
        if end > self.size_bytes:
            raise WeightsError(
                f"{self._where}: chunk {index} brings the data to {end} bytes, more than the "
                f"announced {self.size_bytes}"
            )
        self._view[self.received_bytes : end] = view
        self._checksummer.update(self._view[self.received_bytes : end])
        self.received_bytes = end
        self.next_index += 1
        if self.complete and end != self.size_bytes:
            raise WeightsError(
                f"{self._where}: all {self.chunk_count} chunks give {end} bytes, fewer than the "
                f"announced {self.size_bytes} (truncated)"
            )

    @property
    def checksum(self) -> str:
        """The checksum of the chunks added so far (``blake3:<hex>``)."""
        return self._checksummer.hexdigest()

    def data(self) -> memoryview:
        """The assembled bytes (a view of the buffer).

        Raises:
            WeightsError: If chunks are missing.
        """
        if not self.complete:
            raise WeightsError(
                f"{self._where}: {self.chunk_count - self.next_index} of {self.chunk_count} "
                "chunks missing"
            )
        return self._view
