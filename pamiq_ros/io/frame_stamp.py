"""A wall-clock time written into a frame's pixels, readable after JPEG and resizing.

For the end-to-end latency benchmark: the simulated world writes each frame's send time into a
strip across the top of the frame, the camera node reads it back and uses it as the image's
stamp, and the world times the OSC answer that carries that stamp. All on one machine, so one
clock.

The strip is ``ROWS`` x ``COLUMNS`` black or white cells spanning the whole width and
``1 / STRIP_HEIGHT_DIVISOR`` of the height: 32 bits of the time (in ``UNIT_S`` units, modulo
2**32, so it wraps every ~5 days) and 8 check bits (the low byte of its CRC-32, XOR 0xA5).
Cells are grey levels 0 or 255 in every channel, so JPEG's chroma subsampling and the channel
order (RGB, BGR, mono) do not matter, and their layout is relative to the frame's size, so the
camera may scale the frame. A frame whose strip does not check out reads as None, never as a
wrong time.

No ROS import here.
"""

import zlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt

UNIT_S: Final = 1e-4
"""Resolution of the stamp: 100 microseconds."""

UNIT_NS: Final = 100_000
"""``UNIT_S`` in nanoseconds."""

STAMP_BITS: Final = 32
CHECK_BITS: Final = 8
COLUMNS: Final = 20
ROWS: Final = 2
STRIP_HEIGHT_DIVISOR: Final = 8
"""The strip is the top ``height // STRIP_HEIGHT_DIVISOR`` rows (at least ``ROWS * 2``)."""

MIN_WIDTH: Final = 2 * COLUMNS
"""Narrowest frame that can carry a stamp (2 pixels per cell)."""

MIN_HEIGHT: Final = 2 * ROWS * STRIP_HEIGHT_DIVISOR
"""Lowest frame that can carry a stamp."""

ANSWERS_ADDRESS: Final = "/pamiq/answers"
"""OSC address of the benchmark's answer tag: one int64, the answered frame's stamp in ns."""

_WRAP: Final = 1 << STAMP_BITS
_CHECK_PATTERN: Final = 0xA5


def stamp_units(wall_s: float) -> int:
    """``wall_s`` (Unix seconds) as the stamp's value: ``UNIT_S`` units modulo 2**32."""
    return round(wall_s / UNIT_S) % _WRAP


def unwrap_units(units: int, now_wall_s: float) -> int:
    """The full count of ``UNIT_S`` units since the epoch whose low 32 bits are ``units``.

    Picks the one nearest ``now_wall_s``; right for any stamp within ~2.5 days of now.
    """
    now_units = round(now_wall_s / UNIT_S)
    return now_units + (units - now_units + _WRAP // 2) % _WRAP - _WRAP // 2


def check_size(width: int, height: int) -> None:
    """Refuses a frame size too small to carry a stamp.

    Raises:
        ValueError: Naming the size and the least that works.
    """
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(
            f"a {width}x{height} frame is too small to carry a time stamp "
            f"(at least {MIN_WIDTH}x{MIN_HEIGHT})"
        )


def write_stamp(pixels: npt.NDArray[np.uint8], wall_s: float) -> int:
    """Writes ``wall_s`` into the top strip of ``pixels`` (H x W or H x W x C) in place.

    Returns:
        The value written (see :func:`stamp_units`).

    Raises:
        ValueError: If the frame is too small (see :func:`check_size`).
    """
    height, width = pixels.shape[:2]
    check_size(width, height)
    units = stamp_units(wall_s)
    bits = _bits(units)
    for index, bit in enumerate(bits):
        top, bottom, left, right = _cell(index, width, height)
        pixels[top:bottom, left:right] = 255 if bit else 0
    return units


def read_stamp(pixels: npt.NDArray[Any]) -> int | None:
    """The stamp value in the top strip of ``pixels``, or None if there is none that checks out.

    Each cell is read as the mean of its middle half, thresholded at mid-grey.
    """
    height, width = pixels.shape[:2]
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return None
    strip = pixels[: max(height // STRIP_HEIGHT_DIVISOR, 2 * ROWS)]  # only the strip is read
    grey = strip if strip.ndim == 2 else strip.mean(axis=2)
    bits = []
    for index in range(STAMP_BITS + CHECK_BITS):
        top, bottom, left, right = _cell(index, width, height)
        inner_top, inner_left = top + (bottom - top) // 4, left + (right - left) // 4
        inner_bottom = max(inner_top + 1, bottom - (bottom - top) // 4)
        inner_right = max(inner_left + 1, right - (right - left) // 4)
        bits.append(bool(grey[inner_top:inner_bottom, inner_left:inner_right].mean() >= 128))
    units = sum(1 << position for position, bit in enumerate(bits[:STAMP_BITS]) if bit)
    return units if bits == _bits(units) else None


def _bits(units: int) -> list[bool]:
    # XORed with a pattern so that a plain strip (all black, all white) never checks out.
    check = (zlib.crc32(units.to_bytes(4, "little")) ^ _CHECK_PATTERN) & 0xFF
    return [bool(units >> i & 1) for i in range(STAMP_BITS)] + [
        bool(check >> i & 1) for i in range(CHECK_BITS)
    ]


def _cell(index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Top, bottom, left, right of cell ``index`` (row-major) in a ``width`` x ``height`` frame."""
    row, column = divmod(index, COLUMNS)
    strip = max(height // STRIP_HEIGHT_DIVISOR, 2 * ROWS)
    top, bottom = row * strip // ROWS, (row + 1) * strip // ROWS
    left, right = column * width // COLUMNS, (column + 1) * width // COLUMNS
    return top, bottom, left, right
