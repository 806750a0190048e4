"""Seeded generators of malformed inputs for the fuzz pass (issue 5). Pure: no ROS, no I/O
except the checkpoint damage helpers, which change files in a folder they are given.

Every generator is deterministic for a seed, and every input it makes is malformed by
construction (the tests check that each one is refused), so the counts the tests assert are
exact.
"""

import json
import math
import random
import string
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pamiq_ros.io.image_codec import CHANNELS_BY_ENCODING
from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES, BUTTON_ADDRESSES

KNOWN_ADDRESSES = frozenset(AXIS_ADDRESSES) | frozenset(BUTTON_ADDRESSES)
MAX_UDP_PAYLOAD = 65507  # IPv4


# --- OSC ------------------------------------------------------------------------------------


def osc_string(text: bytes) -> bytes:
    """An OSC string: the bytes, a NUL, padding to a multiple of 4."""
    return text + b"\x00" * (4 - len(text) % 4)


def osc_message(address: str | bytes, tags: str, payload: bytes = b"") -> bytes:
    """A message with raw argument bytes (``tags`` without the leading comma)."""
    raw = address.encode() if isinstance(address, str) else address
    return osc_string(raw) + osc_string(b"," + tags.encode()) + payload


def osc_bundle(*elements: bytes) -> bytes:
    """A bundle (time tag "immediately") holding ``elements`` with correct sizes."""
    body = b"".join(struct.pack(">i", len(element)) + element for element in elements)
    return b"#bundle\x00" + struct.pack(">Q", 1) + body


def _valid_message(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return osc_message(rng.choice(AXIS_ADDRESSES), "f", struct.pack(">f", rng.uniform(-1, 1)))
    return osc_message(rng.choice(BUTTON_ADDRESSES), "i", struct.pack(">i", rng.randint(0, 1)))


def _random_bytes(rng: random.Random, low: int, high: int) -> bytes:
    data = rng.randbytes(rng.randint(low, high))
    # A bundle would count one rejection per message; a known address could be accepted.
    return b"X" + data[1:] if data.startswith((b"#", b"/input/")) else data


def _wrong_type(rng: random.Random) -> bytes:
    string_arg = osc_string(rng.choice([b"1", b"yes", b"0.5", b""]))
    if rng.random() < 0.5:  # axes take float only
        address = rng.choice(AXIS_ADDRESSES)
        tags, payload = rng.choice(
            [
                ("i", struct.pack(">i", rng.randint(-1, 1))),
                ("h", struct.pack(">q", rng.randint(-1, 1))),
                ("s", string_arg),
                ("T", b""),
                ("F", b""),
                ("N", b""),
                ("b", struct.pack(">i", 3) + b"abc\x00"),
            ]
        )
    else:  # buttons take int 0/1 or a bool
        address = rng.choice(BUTTON_ADDRESSES)
        tags, payload = rng.choice(
            [
                ("f", struct.pack(">f", rng.choice([0.0, 1.0, 0.5]))),
                ("d", struct.pack(">d", 1.0)),
                ("s", string_arg),
                ("N", b""),
                ("b", struct.pack(">i", 1) + b"\x01\x00\x00\x00"),
            ]
        )
    return osc_message(address, tags, payload)


def _out_of_range(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        value = rng.choice([2, -1, 255, -(1 << 31), (1 << 31) - 1])
        return osc_message(rng.choice(BUTTON_ADDRESSES), "i", struct.pack(">i", value))
    bad = rng.choice(
        [math.nan, math.inf, -math.inf, 1.0001, -1.0001, 3.5, -1e30, rng.uniform(1.01, 1e6)]
    )
    tag, code = ("f", ">f") if rng.random() < 0.7 else ("d", ">d")
    return osc_message(rng.choice(AXIS_ADDRESSES), tag, struct.pack(code, bad))


def _wrong_count(rng: random.Random) -> bytes:
    address = rng.choice(AXIS_ADDRESSES)
    count = rng.choice([0, 2, 3, 7])
    return osc_message(address, "f" * count, struct.pack(">f", 0.0) * count)


def _unknown_address(rng: random.Random) -> bytes:
    while True:
        name = "".join(
            rng.choices(string.ascii_letters + string.digits + "_/", k=rng.randint(1, 30))
        )
        address = rng.choice(["/input/", "/avatar/parameters/", "/", "/chatbox/"]) + name
        if address not in KNOWN_ADDRESSES:
            return osc_message(address, "f", struct.pack(">f", 0.5))


def _truncated(rng: random.Random) -> bytes:
    message = _valid_message(rng)
    return message[: rng.randrange(len(message))]


def _trailing_bytes(rng: random.Random) -> bytes:
    return _valid_message(rng) + rng.randbytes(rng.choice([1, 3, 4, 8]))


def _unknown_tag(rng: random.Random) -> bytes:
    tag = rng.choice("gjklnopquvwxyzAGJKLQ")
    return osc_message(rng.choice(AXIS_ADDRESSES), tag, struct.pack(">f", 0.5))


def _mangled_address(rng: random.Random) -> bytes:
    message = bytearray(_valid_message(rng))
    end = message.index(0)
    while True:
        index = rng.randrange(1, end)
        value = rng.randrange(256)
        if value != message[index]:
            break
    message[index] = value
    mangled = bytes(message)
    assert mangled[: mangled.index(0)].decode("latin-1") not in KNOWN_ADDRESSES
    return mangled


def _bundle(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:  # a well-formed bundle around one refused message
        inner = rng.choice([_wrong_type, _out_of_range, _wrong_count, _unknown_address])(rng)
        return osc_bundle(inner)
    if choice == 1:  # a nested one
        return osc_bundle(osc_bundle(_out_of_range(rng)))
    if choice == 2:  # element size beyond the end, negative, or not a multiple of 4
        element = _valid_message(rng)
        size = rng.choice([len(element) + 4, -4, len(element) + 1, 0])
        return b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", size) + element
    return osc_bundle(_valid_message(rng))[: rng.randint(8, 15)]  # header cut short


OSC_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "random_bytes": lambda rng: _random_bytes(rng, 1, 512),
    "empty": lambda rng: b"",
    "huge": lambda rng: _random_bytes(rng, 8192, MAX_UDP_PAYLOAD),
    "truncated": _truncated,
    "trailing_bytes": _trailing_bytes,
    "wrong_type": _wrong_type,
    "unknown_tag": _unknown_tag,
    "out_of_range": _out_of_range,
    "wrong_count": _wrong_count,
    "unknown_address": _unknown_address,
    "mangled_address": _mangled_address,
    "bundle": _bundle,
}
_OSC_WEIGHTS = {"huge": 0.2, "empty": 0.2}  # rarer: big ones fill socket buffers


def malformed_osc_packets(seed: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` datagrams ``(kind, bytes)``, each refused exactly once (one rejection)."""
    rng = random.Random(seed)
    kinds = list(OSC_KINDS)
    weights = [_OSC_WEIGHTS.get(kind, 1.0) for kind in kinds]
    packets = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        packets.append((kind, OSC_KINDS[kind](rng)))
    return packets


# --- images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """The pixel fields of one ``sensor_msgs/Image`` to send."""

    kind: str
    width: int
    height: int
    encoding: str
    step: int
    data: bytes


def _image_of(
    rng: random.Random, kind: str, width: int, height: int, encoding: str, step: int, size: int
) -> ImageSpec:
    return ImageSpec(kind, width, height, encoding, step, rng.randbytes(max(0, size)))


def malformed_images(seed: int, count: int, width: int, height: int) -> list[ImageSpec]:
    """``count`` image specs an agent must refuse (it takes any size of a valid image)."""
    rng = random.Random(seed)
    row = width * 3
    specs = []
    for _ in range(count):
        kind = rng.choice(
            ["size_vs_data", "zero_size", "step_too_small", "data_length", "odd_step",
             "unknown_encoding", "mismatched_encoding"]
        )  # fmt: skip
        if kind == "size_vs_data":  # declares another size than its data holds
            w = max(1, width + rng.choice([-1, 1]) * rng.randint(1, width))
            h = max(1, height + rng.choice([-1, 0, 1]) * rng.randint(1, height))
            w = w if (w, h) != (width, height) else width + 1
            spec = _image_of(rng, kind, w, h, "rgb8", w * 3, row * height)
        elif kind == "zero_size":
            w, h = rng.choice([(0, height), (width, 0), (0, 0)])
            spec = _image_of(rng, kind, w, h, "rgb8", w * 3, rng.choice([0, row * height]))
        elif kind == "step_too_small":
            step = rng.randrange(row)
            spec = _image_of(rng, kind, width, height, "rgb8", step, step * height)
        elif kind == "data_length":
            step = row + rng.choice([0, 0, 4, 32])
            size = step * height + rng.choice([-1, 1]) * rng.randint(1, step * height)
            spec = _image_of(rng, kind, width, height, "rgb8", step, size)
        elif kind == "odd_step":
            step = row + rng.randrange(1, 16, 2)
            size = step * height - rng.randint(1, step)
            spec = _image_of(rng, kind, width, height, "rgb8", step, size)
        elif kind == "unknown_encoding":
            encoding = rng.choice(
                ["yuv420", "rgb16", "bgra16", "16UC1", "mono16", "RGB8", "", "rgb8 ", "8UC3",
                 "".join(rng.choices(string.printable, k=rng.randint(1, 20)))]
            )  # fmt: skip
            if encoding in CHANNELS_BY_ENCODING:
                encoding = "bayer_" + encoding
            spec = _image_of(rng, kind, width, height, encoding, row, row * height)
        else:  # mismatched: the encoding and the step/data describe different pixels
            encoding, step, size = rng.choice(
                [
                    ("rgb8", width, width * height),  # mono data declared rgb8
                    ("bgr8", width * 2, width * 2 * height),
                    ("mono8", width, row * height),  # rgb data declared mono8
                    ("mono8", row, row * height - 1),
                ]
            )
            spec = _image_of(rng, kind, width, height, encoding, step, size)
        specs.append(spec)
    return specs


# --- weights --------------------------------------------------------------------------------


def split_safetensors(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the tensor bytes of safetensors ``data``."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def join_safetensors(header: object, body: bytes) -> bytes:
    """Safetensors bytes from a header (any JSON value) and tensor bytes."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _tensor_names(header: dict[str, Any]) -> list[str]:
    return sorted(name for name in header if name != "__metadata__")


def _edit_header(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """A well-formed safetensors file whose header no longer fits the model or the version."""
    header, body = split_safetensors(data)
    names = _tensor_names(header)
    name = rng.choice(names)
    entry = header[name]
    edit = rng.randrange(11)
    if edit == 0:
        del header[name]  # leaves a gap in the tensor data
        return "tensor_dropped", join_safetensors(header, body)
    if edit == 1:
        header[name + rng.choice(["_x", ".1", "X"])] = header.pop(name)
        return "tensor_renamed", join_safetensors(header, body)
    if edit == 2:
        shape = list(entry["shape"])
        entry["shape"] = [*shape, 1] if rng.random() < 0.5 else [*reversed(shape), 2]
        return "shape_changed", join_safetensors(header, body)
    if edit == 3:
        entry["dtype"] = rng.choice(["F16", "I32", "U8", "F8_E4M3", "Q4", "", 7])
        return "dtype_changed", join_safetensors(header, body)
    if edit == 4:
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = rng.choice(
            [[begin + 4, end + 4], [begin, end - 4], [end, begin], [-4, end], [begin, str(end)]]
        )
        return "offsets_changed", join_safetensors(header, body)
    if edit == 5:
        version = str(rng.randint(6, 99))
        header["__metadata__"] = {**header["__metadata__"], "version": version}
        return "metadata_version", join_safetensors(header, body)
    if edit == 6:
        header["__metadata__"] = {**header["__metadata__"], "model_name": "other"}
        return "metadata_model", join_safetensors(header, body)
    if edit == 7:
        del header["__metadata__"]
        return "metadata_missing", join_safetensors(header, body)
    if edit == 8:
        return "header_not_object", join_safetensors(rng.choice([[], "x", 3, None]), body)
    if edit == 9:
        entry["shape"] = [-1, *entry["shape"][1:]]
        return "negative_shape", join_safetensors(header, body)
    return "body_extended", join_safetensors(header, body + bytes(rng.choice([4, 8, 64])))


def _inject_non_finite(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    header, body = split_safetensors(data)
    floats = [n for n in _tensor_names(header) if header[n]["dtype"] == "F32"]
    entry = header[rng.choice(floats)]
    begin, end = entry["data_offsets"]
    index = begin + 4 * rng.randrange((end - begin) // 4)
    value = struct.pack("<f", rng.choice([math.nan, math.inf, -math.inf]))
    prefix_length = len(data) - len(body)
    cut = prefix_length + index
    return "non_finite", data[:cut] + value + data[cut + 4 :]


def _truncate(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    return "truncated", data[: rng.randrange(len(data))]


def _flip_header_bit(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    header_end = 8 + int.from_bytes(data[:8], "little")
    index = rng.randrange(header_end)
    damaged = bytearray(data)
    damaged[index] ^= 1 << rng.randrange(8)
    return "header_bit_flip", bytes(damaged)


def _length_prefix(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    length = int.from_bytes(data[:8], "little")
    new = rng.choice([0, 1, length - 8, length + 8, len(data), 1 << 40, (1 << 64) - 1])
    return "length_prefix", struct.pack("<Q", new) + data[8:]


def _wrong_magic(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    blob = rng.choice([b"", b"\x00" * 7, b"PK\x03\x04" + data[4:], rng.randbytes(64), b"{}" * 8])
    return "not_safetensors", blob


def _flip_anywhere(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
    return "bit_flip", bytes(damaged)


def _extend(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    return "extended", data + rng.randbytes(rng.randint(1, 64))


WEIGHT_DAMAGE_STRUCTURAL = (
    _edit_header, _inject_non_finite, _truncate, _flip_header_bit, _length_prefix, _wrong_magic,
    _extend,
)  # fmt: skip
"""Damage that stays refused even when the checksum is recomputed over the damaged bytes."""

WEIGHT_DAMAGE_ANY = (*WEIGHT_DAMAGE_STRUCTURAL, _flip_anywhere)
"""All damage, refused at least by the announced checksum."""


def damaged_weights(
    seed: int, count: int, data: bytes, structural_only: bool = False
) -> Iterator[tuple[str, bytes]]:
    """``count`` damaged copies ``(kind, bytes)`` of encoded weights, all differing from them."""
    rng = random.Random(seed)
    kinds = WEIGHT_DAMAGE_STRUCTURAL if structural_only else WEIGHT_DAMAGE_ANY
    made = 0
    while made < count:
        kind, damaged = rng.choice(kinds)(rng, data)
        if damaged != data:
            made += 1
            yield kind, damaged


# --- checkpoints ----------------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def damage_checkpoint(rng: random.Random, folder: Path) -> tuple[str, Path]:
    """Damages one file of a checkpoint folder; returns ``(kind, file)``.

    Any change to a file's bytes, a missing file or a file turned into a folder. The file is
    replaced, never written in place, so ``folder`` may be a copy made of hard links.
    """
    files = _files(folder)
    file = rng.choice(files)
    data = file.read_bytes()
    kind = rng.choice(
        ["truncate", "empty", "bit_flip", "byte_set", "append", "delete", "to_folder", "swap"]
    )
    damaged = bytearray(data)
    if kind == "truncate":
        del damaged[rng.randrange(len(data)) :]
    elif kind == "empty":
        damaged.clear()
    elif kind == "bit_flip":
        damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "byte_set":
        index = rng.randrange(len(data))
        damaged[index] = (damaged[index] + rng.randint(1, 255)) % 256
    elif kind == "append":
        damaged += rng.randbytes(rng.randint(1, 32))
    elif kind == "swap":  # another file's bytes under this name
        damaged = bytearray(rng.choice([o for o in files if o != file]).read_bytes())
    file.unlink()
    if kind == "to_folder":
        file.mkdir()
    elif kind != "delete":
        file.write_bytes(bytes(damaged))
    return kind, file


# --- experience records (issue 10) ------------------------------------------------------------


@dataclass(frozen=True)
class ExperienceSpec:
    """The fields of one ``Experience`` message to send (built into a message by the test)."""

    kind: str
    observation: ImageSpec
    action: list[int]
    model_name: str
    tensors: list[tuple[str, list[int], Any]]


def malformed_experience(
    seed: int,
    count: int,
    width: int,
    height: int,
    action_sizes: Sequence[int],
    big_every: int = 50,
) -> Iterator[ExperienceSpec]:
    """``count`` records a trainer expecting ``width``x``height`` rgb8 must refuse.

    One in ``big_every`` is oversized (a 6.2 MB observation or tensor: refused by size before
    any copy). ``scalar_not_scalar`` is the record that killed the trainer (issue 10): a reward
    with three values passed every check and broke the figures outside the callback's ``try``.
    """
    rng = random.Random(seed)
    row = width * 3
    good_action = [rng.randrange(size) for size in action_sizes]
    kinds = [
        "wrong_size", "step_data_mismatch", "unknown_encoding", "action_length",
        "action_range", "tensor_count_mismatch", "tensor_too_big", "too_many_tensors",
        "tensor_name", "non_finite", "scalar_not_scalar", "deep_shape", "long_model_name",
    ]  # fmt: skip
    for index in range(count):
        kind = "oversized" if index % big_every == big_every - 1 else rng.choice(kinds)
        w, h, encoding, step = width, height, "rgb8", row
        data = bytes(rng.randrange(256) for _ in range(8)) * (row * height // 8)
        data += bytes(row * height - len(data))
        action = list(good_action)
        model = "autoencoder"
        tensors: list[tuple[str, list[int], Any]] = [("value", [], [0.5])]
        if kind == "oversized":
            if rng.random() < 0.5:
                w = h = 1440
                step, data = w * 3, bytes(w * 3 * h)
            else:
                tensors = [("junk", [1_550_000], np.zeros(1_550_000, np.float32))]
        elif kind == "wrong_size":
            w = width + rng.choice([-1, 1]) * rng.randint(1, width - 1)
            step, data = w * 3, bytes(w * 3 * h)
        elif kind == "step_data_mismatch":
            step = rng.choice([0, row - 1, row + 1, row * 5])
            data = data[: rng.randrange(len(data))] if rng.random() < 0.5 else data
            if step == row and len(data) == row * height:
                data += b"\x00"
        elif kind == "unknown_encoding":
            encoding = rng.choice(["rgba8", "yuv422", "", "16UC1", "RGB8", "x" * 300])
        elif kind == "action_length":
            action = [*action, 0] if rng.random() < 0.5 else action[:-1]
        elif kind == "action_range":
            dimension = rng.randrange(len(action))
            action[dimension] = rng.choice([-1, action_sizes[dimension], (1 << 31) - 1])
        elif kind == "tensor_count_mismatch":
            tensors = [("obs", [rng.randint(2, 64)], [0.0] * rng.randint(0, 1))]
        elif kind == "tensor_too_big":
            tensors = [("obs", [70_000], np.zeros(70_000, np.float32))]
        elif kind == "too_many_tensors":
            tensors = [(f"t{number}", [1], [0.0]) for number in range(rng.randint(33, 200))]
        elif kind == "tensor_name":
            tensors = [(rng.choice(["", "n" * 65]), [1], [0.0])]
        elif kind == "non_finite":
            tensors = [("obs", [4], [0.0, rng.choice([math.nan, math.inf, -math.inf]), 0.0, 1.0])]
        elif kind == "scalar_not_scalar":
            name = rng.choice(["raw_reward", "value"])
            tensors = [(name, [3], [0.1, 0.2, 0.3])]
        elif kind == "deep_shape":
            tensors = [("obs", [1] * rng.randint(5, 64), [0.0])]
        else:  # long_model_name
            model = "m" * rng.randint(65, 5000)
        observation = ImageSpec(kind, w, h, encoding, step, data)
        yield ExperienceSpec(kind, observation, action, model, tensors)


# --- extreme images (issue 10) ----------------------------------------------------------------


def extreme_images(seed: int, count: int, big_every: int = 100) -> Iterator[ImageSpec]:
    """Images whose declared sides are extreme (0, 1, 2^31, 65535...) and whose data does not
    match them; one in ``big_every`` carries a real 12 MB buffer. All are refused (any camera
    size is accepted, so each is malformed in its data, not only in its size)."""
    rng = random.Random(seed)
    sides = [0, 1, 2, 3, 4095, 4096, 8192, 65535, 100_000, (1 << 31) - 1, (1 << 32) - 1]
    for index in range(count):
        if index % big_every == big_every - 1:
            width, height = 2000, 2000  # a real 12 MB buffer, one row short of its header
            data = bytes(width * 3 * (height - 1))
            yield ImageSpec("big_real", width, height, "rgb8", width * 3, data)
            continue
        width, height = rng.choice(sides), rng.choice(sides)
        encoding = rng.choice(["rgb8", "bgr8", "mono8"])
        step = rng.choice([0, width * 3 % (1 << 32), (1 << 32) - 1])
        data = rng.randbytes(rng.choice([0, 1, 3, 64, 4096]))
        yield ImageSpec("extreme_size", width, height, encoding, step, data)


# --- weight answers (issue 10) ----------------------------------------------------------------

WEIGHT_ANSWER_KINDS = (
    "no", "wrong_checksum", "wrong_version", "wrong_size", "relative_path", "outside_store",
    "other_store", "wrong_name", "file_symlink", "folder_symlink", "fifo", "oversized_file",
    "world_writable", "dot_dot", "garbage_chunk", "huge_chunk_count", "chunk_out_of_order",
)  # fmt: skip
"""What a second ``weights/get`` server answers instead of the trainer's weights."""


def weight_answer_kinds(seed: int, count: int) -> list[str]:
    """``count`` kinds of forged answers, every kind at least once (for count >= the kinds)."""
    rng = random.Random(seed)
    kinds = list(WEIGHT_ANSWER_KINDS)
    chosen = kinds[:count] + [rng.choice(kinds) for _ in range(max(0, count - len(kinds)))]
    rng.shuffle(chosen)
    return chosen


def weight_requests(seed: int, count: int, model: str) -> list[dict[str, Any]]:
    """``count`` GetWeights requests a trainer must answer with a refusal (never serve, never
    die): unknown or absurd models, versions it never had, chunks out of range."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        kind = rng.randrange(5)
        request: dict[str, Any] = {"model_name": model, "host_id": rng.choice(["", "x" * 300])}
        if kind == 0:
            request["model_name"] = "".join(rng.choices(string.printable, k=rng.randint(0, 300)))
            request["model_name"] = request["model_name"].replace(model, "_") or "?"
        elif kind == 1:
            request["version"] = rng.choice([10**6, (1 << 64) - 1, 1 << 53])
        elif kind == 2:
            request.update(bytes_only=True, chunk_index=rng.choice([10**6, (1 << 32) - 1]))
        elif kind == 3:
            request["model_name"] = "../" * rng.randint(1, 50) + "etc/passwd"
        else:
            request["model_name"] = model + " " * rng.randint(1, 8)
        requests.append(request)
    return requests
