"""Image <-> ``sensor_msgs/Image`` field conversion, with strict checks on incoming data.

No ROS import here: the functions take and return plain values, so the node files wrap them
into messages and the checks are testable without a graph.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

CHANNELS_BY_ENCODING: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1}
"""The encodings the project reads and writes, all 8 bits per channel."""


class ImageFormatError(ValueError):
    """An image message whose fields do not describe a usable image."""


@dataclass(frozen=True)
class ImageFields:
    """The fields of a ``sensor_msgs/Image`` that carry the pixels."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes

    @classmethod
    def of_message(cls, message: Any) -> "ImageFields":
        """The pixel fields of a ``sensor_msgs/Image`` (or anything with those attributes)."""
        return cls(
            height=message.height,
            width=message.width,
            encoding=message.encoding,
            is_bigendian=message.is_bigendian,
            step=message.step,
            data=bytes(message.data),
        )

    def fill(self, message: Any) -> None:
        """Writes these fields into a ``sensor_msgs/Image`` (header left to the caller)."""
        message.height, message.width, message.encoding = self.height, self.width, self.encoding
        message.is_bigendian, message.step, message.data = self.is_bigendian, self.step, self.data


def encode_image(pixels: npt.NDArray[np.uint8], encoding: str = "rgb8") -> ImageFields:
    """Packs an ``(H, W, C)`` or ``(H, W)`` uint8 array into image message fields.

    Args:
        pixels: The image, rows first, already in the channel order ``encoding`` names.
        encoding: One of ``CHANNELS_BY_ENCODING``.

    Returns:
        The fields, with a tight ``step`` (no row padding).

    Raises:
        ImageFormatError: If the array's dtype or shape does not fit ``encoding``.
    """
    channels = _channels_of(encoding)
    if pixels.dtype != np.uint8:
        raise ImageFormatError(f"pixels must be uint8, got {pixels.dtype}")
    shape = pixels.shape
    if channels == 1 and pixels.ndim == 3 and shape[2] == 1:
        pixels = pixels[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        raise ImageFormatError(f"pixels of shape {shape} do not fit encoding {encoding!r}")
    height, width = pixels.shape[:2]
    return ImageFields(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels,
        data=np.ascontiguousarray(pixels).tobytes(),
    )


def decode_image(
    fields: ImageFields, expected_encoding: str | None = None
) -> npt.NDArray[np.uint8]:
    """Checks image message fields and returns the pixels as an array.

    Row padding (``step`` larger than ``width * channels``) is allowed and removed.

    Args:
        fields: The message's fields.
        expected_encoding: If given, the encoding the caller needs.

    Returns:
        A ``(height, width, channels)`` uint8 array (a copy; the message may be reused).

    Raises:
        ImageFormatError: With what is wrong, if the fields do not describe a usable image.
    """
    channels = _channels_of(fields.encoding)
    if expected_encoding is not None and fields.encoding != expected_encoding:
        raise ImageFormatError(f"encoding {fields.encoding!r}, expected {expected_encoding!r}")
    if fields.height <= 0 or fields.width <= 0:
        raise ImageFormatError(f"empty image: {fields.width}x{fields.height}")
    row_bytes = fields.width * channels
    if fields.step < row_bytes:
        raise ImageFormatError(
            f"step {fields.step} is shorter than a row of {fields.width} {fields.encoding} pixels "
            f"({row_bytes} bytes)"
        )
    expected_size = fields.step * fields.height
    if len(fields.data) != expected_size:
        raise ImageFormatError(
            f"data holds {len(fields.data)} bytes, but step {fields.step} x height "
            f"{fields.height} needs {expected_size}"
        )
    rows = np.frombuffer(fields.data, dtype=np.uint8).reshape(fields.height, fields.step)
    pixels = rows[:, :row_bytes].reshape(fields.height, fields.width, channels)
    return pixels.copy()


def to_rgb(pixels: npt.NDArray[np.uint8], encoding: str) -> npt.NDArray[np.uint8]:
    """Returns ``(H, W, 3)`` RGB pixels from pixels in ``encoding``."""
    _channels_of(encoding)
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[:, :, ::-1])
    return np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)


def _channels_of(encoding: str) -> int:
    try:
        return CHANNELS_BY_ENCODING[encoding]
    except KeyError:
        supported = ", ".join(sorted(CHANNELS_BY_ENCODING))
        raise ImageFormatError(
            f"unsupported encoding {encoding!r} (supported: {supported})"
        ) from None
