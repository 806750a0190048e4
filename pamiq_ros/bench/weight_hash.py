"""Integrity hashing on the weight-sync path: before (sha256, a pass of its own) and now.

Both sides of one version, interleaved in one process so they share the machine's state:

- trainer: the encoded tensors written to a shared-memory file while a second thread hashes
  them with sha256 (what main did), against written block by block with each 1 MiB block
  hashed by BLAKE3 right after (:func:`pamiq_ros.core.weight_store.SharedWeightStore`'s way);
- agent: the file read into a buffer, then sha256 over it, against read block by block with
  BLAKE3 over each block while it is in the cache (:class:`WeightSubscriber`'s way).

Writes ``weight_hash.json`` (every repeat) and prints p50 [min-max] per arm.

Usage::

    python -m pamiq_ros.bench.weight_hash [--params 1e7] [--repeats 15] [--out DIR]
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pamiq_ros.bench._shared import machine_description
from pamiq_ros.bench.weight_sync import build_model
from pamiq_ros.core.weight_store import _write_all, _write_pieces
from pamiq_ros.core.weights import HASH_BLOCK_BYTES, Checksummer, encode_pieces


def write_with_parallel_sha256(pieces: Sequence[memoryview], path: Path) -> str:
    """Main's way: write the pieces while another thread hashes them with sha256."""
    hasher = hashlib.sha256()

    def hash_all() -> None:
        for piece in pieces:
            hasher.update(piece)

    thread = threading.Thread(target=hash_all)
    thread.start()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for piece in pieces:
            _write_all(fd, piece)
    finally:
        os.close(fd)
    thread.join()
    return hasher.hexdigest()


def write_hashing_blocks(pieces: Sequence[memoryview], path: Path) -> str:
    """Now: each block hashed (BLAKE3) right after it is written."""
    checksummer = Checksummer()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_pieces(fd, pieces, checksummer)
    finally:
        os.close(fd)
    return checksummer.hexdigest()


def read_then_sha256(path: Path, buffer: bytearray) -> str:
    """Main's way: read the whole file, then hash it."""
    with path.open("rb", buffering=0) as file:
        count = file.readinto(buffer)
    return hashlib.sha256(memoryview(buffer)[:count]).hexdigest()


def read_hashing_blocks(path: Path, buffer: bytearray) -> str:
    """Now: each block hashed (BLAKE3) right after it is read."""
    checksummer = Checksummer()
    view = memoryview(buffer)
    position = 0
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(view[position : position + HASH_BLOCK_BYTES]):
            checksummer.update(view[position : position + count])
            position += count
    return checksummer.hexdigest()


def main(args: Sequence[str] | None = None) -> int:
    """Runs the four arms interleaved; prints and writes the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=float, default=1e7)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args(args)
    out = options.out or Path("runs") / f"bench-hash-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    pieces = encode_pieces("bench", 1, build_model(int(options.params)).state_dict()).pieces
    size = sum(piece.nbytes for piece in pieces)
    buffer = bytearray(size)
    folder = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    path = folder / "weights.safetensors"
    arms: dict[str, Callable[[], str]] = {
        "trainer_sha256_parallel": lambda: write_with_parallel_sha256(pieces, path),
        "trainer_blake3_blocks": lambda: write_hashing_blocks(pieces, path),
        "agent_read_then_sha256": lambda: read_then_sha256(path, buffer),
        "agent_blake3_blocks": lambda: read_hashing_blocks(path, buffer),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for _ in range(options.repeats):
            for name, arm in arms.items():
                started = time.perf_counter()
                arm()
                times[name].append((time.perf_counter() - started) * 1000.0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{size / 1e6:.1f} MB, {options.repeats} interleaved repeats: ms p50 [min-max]")
    for name, values in times.items():
        print(
            f"  {name:26s} {statistics.median(values):7.1f} [{min(values):.1f}-{max(values):.1f}]"
        )
    report = {"benchmark": "weight_hash", "machine": machine_description(), "size_bytes": size,
              "repeats": options.repeats, "ms": times,
              "p50_ms": {name: statistics.median(v) for name, v in times.items()}}  # fmt: skip
    (out / "weight_hash.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'weight_hash.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
