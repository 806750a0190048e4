"""The weights codec: a model's state dict <-> safetensors bytes with a BLAKE3 checksum.

Weights cross process boundaries only in this form: a JSON header (tensor names, dtypes,
shapes, byte ranges, and metadata naming the model and version) followed by the raw
little-endian tensor bytes. Nothing is unpickled; everything that arrives is parsed and
checked (checksum, header, byte ranges, metadata, finiteness) and refused with a
:class:`WeightsError` that names the model, the version and, where it applies, the tensor.

The format is the standard safetensors layout, so the ``safetensors`` library reads what this
module writes and the other way round. The codec is our own because it is on the hot path of
weight sync: encoding hands out zero-copy views of the tensors (the shared-memory store writes
them straight to its file while hashing them in parallel), and decoding can return tensors that
are views into the received buffer, so the only copy on the agent side is the one into the
acting model. No ROS import here.

The checksum is BLAKE3 (``blake3:<hex>``). It must be a cryptographic hash: anyone in the DDS
domain can answer a weights request, and only the trainer's announced checksum binds the bytes,
so a fast non-cryptographic hash (XXH3) would let a forger match it. BLAKE3 hashes several
times faster than sha256 here, and it is fed block by block while the bytes are written or read
(:class:`Checksummer`), so each side touches the data once, not once to move it and once to hash.
"""

import json
import math
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import torch

HEADER_LENGTH_BYTES = 8
"""The little-endian u64 at the start of the data: the length of the JSON header."""

MAX_HEADER_BYTES = 100 << 20
"""Longest header accepted (the safetensors library's limit): a bad length cannot exhaust memory."""

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")

METADATA_KEY = "__metadata__"

CHECKSUM_PREFIX = "blake3:"
"""Checksums name their algorithm: a peer with another one is refused clearly, not as corrupt."""

HASH_BLOCK_BYTES = 1 << 20
"""Bytes hashed right after they are moved, while they are still in the CPU's cache."""


class WeightsError(ValueError):
    """Weights that cannot be encoded, decoded or loaded; the message says what and where."""


class NonFiniteWeightsError(WeightsError):
    """Weights holding NaN or Inf; the message names the tensor."""


@dataclass(frozen=True)
class _DType:
    name: str  # the safetensors dtype name
    torch_dtype: torch.dtype
    numpy_dtype: str  # little-endian; bfloat16 is read as its int16 bits
    floating: bool

    @property
    def itemsize(self) -> int:
        return np.dtype(self.numpy_dtype).itemsize


_DTYPES = [
    _DType("F64", torch.float64, "<f8", True),
    _DType("F32", torch.float32, "<f4", True),
    _DType("F16", torch.float16, "<f2", True),
    _DType("BF16", torch.bfloat16, "<i2", True),
    _DType("I64", torch.int64, "<i8", False),
    _DType("I32", torch.int32, "<i4", False),
    _DType("I16", torch.int16, "<i2", False),
    _DType("I8", torch.int8, "i1", False),
    _DType("U8", torch.uint8, "u1", False),
    _DType("BOOL", torch.bool, "?", False),
]
_BY_NAME = {dtype.name: dtype for dtype in _DTYPES}
_BY_TORCH = {dtype.torch_dtype: dtype for dtype in _DTYPES}

BF16_EXPONENT_MASK = 0x7F80
"""bfloat16 bits that are all set exactly when the value is NaN or Inf (numpy has no bfloat16)."""


@dataclass(frozen=True)
class EncodedWeights:
    """One version of a model's weights in their transport form.

    Attributes:
        model_name: The model the weights belong to.
        version: The version, which only increases for one model.
        data: The safetensors bytes.
        checksum: ``blake3:`` and the BLAKE3 of ``data``, lowercase hex.
    """

    model_name: str
    version: int
    data: bytes
    checksum: str

    @property
    def size_bytes(self) -> int:
        """Length of ``data`` in bytes."""
        return len(self.data)


@dataclass(frozen=True)
class EncodedPieces:
    """The safetensors encoding of a state dict as a list of zero-copy byte views.

    Concatenated, ``pieces`` are the encoded data: the header first, then each tensor's bytes.
    The views alias the tensors, so the tensors must not change until the pieces are used.

    Attributes:
        model_name: The model the weights belong to.
        version: The weights' version.
        pieces: Byte views (format ``B``, one dimension) in order.
        size_bytes: Total length of the pieces.
    """

    model_name: str
    version: int
    pieces: Sequence[memoryview]
    size_bytes: int


def _where(model_name: str, version: int) -> str:
    return f"weights of model {model_name!r} version {version}"


def check_version(model_name: str, version: int) -> None:
    """Refuses a model name or version that cannot go into the format.

    Raises:
        WeightsError: If the name is empty or the version is not an integer in the uint64 range.
    """
    if not isinstance(model_name, str) or not model_name:
        raise WeightsError(f"weights need a non-empty model name, got {model_name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 1 << 64:
        raise WeightsError(f"{_where(model_name, version)}: version must be an integer >= 0")


def _numpy_view(tensor: torch.Tensor) -> np.ndarray:
    """A zero-copy numpy view of a contiguous CPU tensor (bfloat16 seen as its int16 bits)."""
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy()
    return tensor.numpy()


def non_finite_count(tensor: torch.Tensor) -> int:
    """How many elements of a tensor are NaN or Inf (0 for integer and bool tensors).

    Uses numpy, which checks a float32 tensor several times faster than ``torch.isfinite``.
    """
    if not tensor.dtype.is_floating_point:
        return 0
    values = tensor.detach()
    if values.device.type != "cpu":
        values = values.cpu()
    if not values.is_contiguous():
        values = values.contiguous()
    array = _numpy_view(values)
    if values.dtype == torch.bfloat16:
        return int(np.count_nonzero((array & BF16_EXPONENT_MASK) == BF16_EXPONENT_MASK))
    if bool(np.isfinite(array).all()):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _check_finite(tensor: torch.Tensor, name: str, where: str) -> None:
    bad = non_finite_count(tensor)
    if bad:
        raise NonFiniteWeightsError(
            f"{where}: tensor {name!r} holds {bad} NaN/Inf value(s) of {tensor.numel()}"
        )


def encode_pieces(
    model_name: str, version: int, state_dict: Mapping[str, torch.Tensor]
) -> EncodedPieces:
    """Encodes a state dict as safetensors, without copying the tensors' bytes.

    Tensors are laid out by descending element size, then name, so every tensor starts at an
    offset aligned to its element size (the header is padded to a multiple of 8).

    Raises:
        NonFiniteWeightsError: If a floating-point tensor holds NaN or Inf (names the tensor).
        WeightsError: If a name, dtype or the version cannot be encoded.
    """
    check_version(model_name, version)
    where = _where(model_name, version)
    prepared: list[tuple[str, torch.Tensor, _DType]] = []
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name or name == METADATA_KEY:
            raise WeightsError(f"{where}: invalid tensor name {name!r}")
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{where}: {name!r} is a {type(value).__name__}, not a tensor")
        dtype = _BY_TORCH.get(value.dtype)
        if dtype is None:
            raise WeightsError(f"{where}: tensor {name!r} has unsupported dtype {value.dtype}")
        tensor = value.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        if not tensor.is_contiguous():
            tensor = tensor.contiguous()
        if dtype.floating:
            _check_finite(tensor, name, where)
        prepared.append((name, tensor, dtype))
    prepared.sort(key=lambda item: (-item[2].itemsize, item[0]))

    header: dict[str, Any] = {
        METADATA_KEY: {"format": "pt", "model_name": model_name, "version": str(version)}
    }
    views: list[memoryview] = []
    offset = 0
    for name, tensor, dtype in prepared:
        nbytes = tensor.numel() * dtype.itemsize
        header[name] = {
            "dtype": dtype.name,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        views.append(_numpy_view(tensor).reshape(-1).view(np.uint8).data)
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    # Spaces are JSON whitespace; the padding puts the tensor data on an 8-byte boundary.
    header_bytes += b" " * (-(HEADER_LENGTH_BYTES + len(header_bytes)) % 8)
    prefix = memoryview(struct.pack("<Q", len(header_bytes)) + header_bytes)
    return EncodedPieces(model_name, version, [prefix, *views], len(prefix) + offset)


def encode_weights(
    model_name: str, version: int, state_dict: Mapping[str, torch.Tensor]
) -> EncodedWeights:
    """Encodes a state dict as safetensors bytes with its checksum.

    Args:
        model_name: The model's name, stored in the metadata.
        version: The version, stored in the metadata.
        state_dict: Tensor name -> tensor (any device; moved to the CPU for encoding).

    Raises:
        NonFiniteWeightsError: If a floating-point tensor holds NaN or Inf (names the tensor).
        WeightsError: If a name, dtype or the version cannot be encoded.
    """
    encoded = encode_pieces(model_name, version, state_dict)
    data = b"".join(encoded.pieces)
    return EncodedWeights(model_name, version, data, checksum_of(data))


class Checksummer:
    """A BLAKE3 checksum fed piece by piece, in order (thread-compatible, not thread-safe)."""

    def __init__(self) -> None:
        self._hasher = blake3.blake3()
        self.hashed_bytes = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Adds the next bytes."""
        view = memoryview(data)
        self._hasher.update(view)
        self.hashed_bytes += view.nbytes

    def hexdigest(self) -> str:
        """The checksum of everything added so far (``blake3:<hex>``)."""
        return CHECKSUM_PREFIX + self._hasher.hexdigest()


def checksum_of(data: bytes | bytearray | memoryview) -> str:
    """The checksum of ``data`` in one call (``blake3:<hex>``)."""
    checksummer = Checksummer()
    checksummer.update(data)
    return checksummer.hexdigest()


def compare_checksum(actual: str, checksum: str, size: int, model_name: str, version: int) -> None:
    """Checks a computed checksum against the announced one.

    Raises:
        WeightsError: If the announced one uses another algorithm, or they differ.
    """
    where = _where(model_name, version)
    if not checksum.lower().startswith(CHECKSUM_PREFIX):
        raise WeightsError(
            f"{where}: checksum {checksum[:16]!r}... is not {CHECKSUM_PREFIX}<hex> (a trainer "
            "of another pamiq_ros version?)"
        )
    if actual != checksum.lower():
        raise WeightsError(
            f"{where}: checksum mismatch ({size} bytes hash to {actual[:23]}..., expected "
            f"{checksum[:23]}...); the data is corrupt or was changed"
        )


def verify_checksum(
    data: bytes | bytearray | memoryview, checksum: str, model_name: str, version: int
) -> None:
    """Checks that ``data`` hashes to ``checksum`` (``blake3:<hex>``).

    Raises:
        WeightsError: If it does not.
    """
    compare_checksum(checksum_of(data), checksum, memoryview(data).nbytes, model_name, version)


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: _DType
    shape: tuple[int, ...]
    begin: int
    end: int


def _read_header(view: memoryview, where: str) -> tuple[dict[str, Any], int]:
    """Returns the parsed JSON header and the offset where the tensor data starts."""
    if view.nbytes < HEADER_LENGTH_BYTES:
        raise WeightsError(f"{where}: {view.nbytes} bytes is too short for safetensors data")
    header_length = int.from_bytes(view[:HEADER_LENGTH_BYTES], "little")
    data_start = HEADER_LENGTH_BYTES + header_length
    if header_length > MAX_HEADER_BYTES or data_start > view.nbytes:
        raise WeightsError(
            f"{where}: header length {header_length} does not fit in {view.nbytes} bytes "
            "(truncated or not safetensors data)"
        )
    try:
        header = json.loads(bytes(view[HEADER_LENGTH_BYTES:data_start]))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(f"{where}: header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{where}: header is a JSON {type(header).__name__}, not an object")
    return header, data_start


def _check_metadata(metadata: object, model_name: str, version: int, where: str) -> None:
    if not isinstance(metadata, dict):
        raise WeightsError(f"{where}: metadata missing (no model name and version in the data)")
    found = (metadata.get("model_name"), metadata.get("version"))
    if found != (model_name, str(version)):
        raise WeightsError(
            f"{where}: the data's metadata says model {found[0]!r} version {found[1]}, "
            "not the expected one"
        )


def _parse_entry(name: str, spec: object, where: str) -> _Entry:
    if not isinstance(spec, dict):
        raise WeightsError(f"{where}: tensor {name!r}: header entry is not an object")
    dtype = _BY_NAME.get(spec.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise WeightsError(f"{where}: tensor {name!r}: unsupported dtype {spec.get('dtype')!r}")
    shape = spec.get("shape")
    offsets = spec.get("data_offsets")
    if not isinstance(shape, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
    ):
        raise WeightsError(f"{where}: tensor {name!r}: invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(offset, int) and not isinstance(offset, bool) for offset in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise WeightsError(f"{where}: tensor {name!r}: invalid data_offsets {offsets!r}")
    expected = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != expected:
        raise WeightsError(
            f"{where}: tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} "
            f"{dtype.name} ({expected} bytes expected)"
        )
    return _Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _check_layout(entries: list[_Entry], data_bytes: int, where: str) -> None:
    """Tensors must tile the data exactly: no gap, no overlap, nothing left over."""
    position = 0
    for entry in sorted(entries, key=lambda item: (item.begin, item.end)):
        if entry.begin != position:
            problem = "overlaps another" if entry.begin < position else "leaves a gap before it"
            raise WeightsError(f"{where}: tensor {entry.name!r} {problem} (offset {entry.begin})")
        position = entry.end
    if position != data_bytes:
        raise WeightsError(
            f"{where}: tensors cover {position} bytes but {data_bytes} bytes of tensor data "
            "follow the header (truncated or extended data)"
        )


def _tensor(view: memoryview, entry: _Entry, offset: int, copy: bool) -> torch.Tensor:
    begin = offset + entry.begin
    count = (entry.end - entry.begin) // entry.dtype.itemsize
    array = np.frombuffer(view, dtype=entry.dtype.numpy_dtype, count=count, offset=begin)
    if copy or view.readonly or not array.flags.aligned:
        # Writing through a view of read-only memory would be undefined; unaligned views are slow.
        array = array.copy()
    tensor = torch.from_numpy(array).reshape(entry.shape)
    return tensor.view(torch.bfloat16) if entry.dtype.torch_dtype == torch.bfloat16 else tensor


def parse_weights(
    data: bytes | bytearray | memoryview,
    model_name: str,
    version: int,
    *,
    copy: bool = True,
    check_finite: bool = True,
) -> dict[str, torch.Tensor]:
    """Parses safetensors data (no checksum check; see :func:`decode_weights`).

    Args:
        data: The encoded weights.
        model_name: The model the data must say it belongs to.
        version: The version the data must say it is.
        copy: If False and ``data`` is writable (a ``bytearray`` or a view of one), the tensors
            are views into ``data`` (no copy); they are valid only while ``data`` is unchanged.
            Read-only data is always copied.
        check_finite: Refuse NaN/Inf in floating-point tensors.

    Raises:
        NonFiniteWeightsError: If a floating-point tensor holds NaN or Inf (names the tensor).
        WeightsError: If the data is not well-formed safetensors data of that model and version.
    """
    where = _where(model_name, version)
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    header, data_start = _read_header(view, where)
    _check_metadata(header.pop(METADATA_KEY, None), model_name, version, where)
    entries = [_parse_entry(name, spec, where) for name, spec in header.items()]
    _check_layout(entries, view.nbytes - data_start, where)
    tensors: dict[str, torch.Tensor] = {}
    for entry in entries:
        tensor = _tensor(view, entry, data_start, copy)
        if check_finite and entry.dtype.floating:
            _check_finite(tensor, entry.name, where)
        tensors[entry.name] = tensor
    return tensors


def decode_weights(
    data: bytes | bytearray | memoryview,
    checksum: str,
    model_name: str,
    version: int,
    *,
    copy: bool = True,
) -> dict[str, torch.Tensor]:
    """Checks and decodes encoded weights: checksum, format, metadata, finiteness.

    Args:
        data: The encoded weights (safetensors bytes).
        checksum: The checksum the sender announced for them.
        model_name: The model the data must belong to.
        version: The version the data must be.
        copy: See :func:`parse_weights`; False returns views into writable ``data``.

    Returns:
        Tensor name -> CPU tensor.

    Raises:
        NonFiniteWeightsError: If a floating-point tensor holds NaN or Inf (names the tensor).
        WeightsError: On a checksum mismatch, malformed data, or metadata naming another model
            or version.
    """
    verify_checksum(data, checksum, model_name, version)
    return parse_weights(data, model_name, version, copy=copy)


def host_identity() -> str:
    """Identifies this machine: host name and kernel boot id.

    Two processes see the same string exactly when they run on the same host (and boot), which
    is when a shared-memory file written by one can be read by the other. Containers with their
    own host names differ, so they fall back to the bytes path.
    """
    try:
        boot_id = BOOT_ID_PATH.read_text().strip()
    except OSError:
        boot_id = "no-boot-id"
    return f"{socket.gethostname()}/{boot_id}"
