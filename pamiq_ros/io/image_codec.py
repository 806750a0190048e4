"""Image <-> ``sensor_msgs/Image`` field conversion, with strict checks on incoming data.

Also what a consumer of any camera needs: :func:`to_rgb` for every encoding a ROS camera driver
commonly sends (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``, YUV 4:2:2 in both byte
orders), :func:`decode_compressed` for ``sensor_msgs/CompressedImage`` (JPEG, PNG) and
:func:`fit_image` to bring any size to the size a model takes (crop, pad or stretch).

No ROS import here: the functions take and return plain values, so the node files wrap them
into messages and the checks are testable without a graph.
"""

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

WRITTEN_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1}
"""The encodings the project writes (channels per pixel, 8 bits each)."""

CHANNELS_BY_ENCODING: dict[str, int] = {
    **WRITTEN_ENCODINGS,
    "rgba8": 4,
    "bgra8": 4,
    "yuv422": 2,  # ROS's name for UYVY (U0 Y0 V0 Y1)
    "uyvy": 2,
    "yuv422_yuy2": 2,  # YUYV (Y0 U0 Y1 V0), what most USB webcams send
    "yuyv": 2,
}
"""The encodings the project reads, all 8 bits per sample: bytes per pixel."""

_YUV_CONVERSIONS = {
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2,
    "yuyv": cv2.COLOR_YUV2RGB_YUY2,
}

RESIZE_MODES = ("crop", "pad", "stretch")
"""How :func:`fit_image` brings an image to another aspect ratio."""

MAX_COMPRESSED_PIXELS = 8192 * 8192
"""Largest image a compressed message may decode to; a bigger header is refused unread."""


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
    if encoding not in WRITTEN_ENCODINGS:
        raise ImageFormatError(f"cannot write encoding {encoding!r} (writes: rgb8, bgr8, mono8)")
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
    if channels == 2 and fields.width % 2:
        raise ImageFormatError(f"{fields.encoding} needs an even width, got {fields.width}")
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
    """Returns ``(H, W, 3)`` RGB pixels from ``decode_image``'s pixels in ``encoding``.

    Alpha is dropped; grey is repeated in the three channels; YUV 4:2:2 is converted with
    OpenCV (BT.601).
    """
    channels = _channels_of(encoding)
    if encoding == "rgb8":
        return pixels
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if channels == 2:
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(pixels), _YUV_CONVERSIONS[encoding]))
    return np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)


def decode_compressed(format_text: str, data: bytes) -> npt.NDArray[np.uint8]:
    """Decodes a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to ``(H, W, 3)`` RGB pixels.

    The data's own signature decides the codec; ``format_text`` (``"jpeg"``, ``"png"``,
    ``"bgr8; jpeg compressed bgr8"``...) is only checked to name one of the two.

    Raises:
        ImageFormatError: If the format is not JPEG or PNG, the data is not what it claims,
            is cut short or corrupt, or decodes to more than :data:`MAX_COMPRESSED_PIXELS`.
    """
    named = format_text.lower()
    if not any(word in named for word in ("jpeg", "jpg", "png")):
        raise ImageFormatError(f"compressed format {format_text!r} is neither JPEG nor PNG")
    if data[:3] == b"\xff\xd8\xff":
        kind = "JPEG"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        kind = "PNG"
    else:
        raise ImageFormatError(
            f"compressed data ({len(data)} bytes) starts with neither a JPEG nor a PNG signature"
        )
    if kind == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageFormatError(f"JPEG of {len(data)} bytes is cut short (no end marker)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if decoded is None or decoded.size == 0:
        raise ImageFormatError(f"corrupt {kind} data ({len(data)} bytes): OpenCV cannot decode it")
    if decoded.shape[0] * decoded.shape[1] > MAX_COMPRESSED_PIXELS:
        raise ImageFormatError(f"{kind} of {decoded.shape[1]}x{decoded.shape[0]} is too large")
    return np.ascontiguousarray(decoded[:, :, ::-1])


@dataclass(frozen=True)
class FitGeometry:
    """Where :func:`fit_image` puts the source.

    Scaled to ``scaled_width`` x ``scaled_height``, its top-left corner at ``(left, top)`` in
    the output (negative when cropped).
    """

    scaled_width: int
    scaled_height: int
    left: int
    top: int


def fit_geometry(
    native_width: int, native_height: int, width: int, height: int, mode: str = "crop"
) -> FitGeometry:
    """The scaling and placement that fits ``native`` into ``width`` x ``height``.

    See :func:`fit_image`; camera intrinsics follow the same geometry.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {mode!r}")
    if mode == "stretch":
        return FitGeometry(width, height, 0, 0)
    cover = mode == "crop"
    scale = (max if cover else min)(width / native_width, height / native_height)
    scaled_width = max(1, round(native_width * scale))
    scaled_height = max(1, round(native_height * scale))
    if cover:
        scaled_width, scaled_height = max(scaled_width, width), max(scaled_height, height)
    else:
        scaled_width, scaled_height = min(scaled_width, width), min(scaled_height, height)
    return FitGeometry(
        scaled_width, scaled_height, (width - scaled_width) // 2, (height - scaled_height) // 2
    )


def fit_image(
    pixels: npt.NDArray[np.uint8], width: int, height: int, mode: str = "crop"
) -> npt.NDArray[np.uint8]:
    """Brings ``pixels`` (``(H, W)`` or ``(H, W, C)``) to ``width`` x ``height``.

    Args:
        pixels: The image.
        width: Wanted width (pixels).
        height: Wanted height (pixels).
        mode: ``crop`` keeps the aspect ratio, scales to cover and cuts the centre out (what
            PAMIQ's image sensor does); ``pad`` keeps it, scales to fit and fills the borders
            with black; ``stretch`` scales each axis on its own (distorts).

    Returns:
        The fitted image (the input itself when it already has that size).
    """
    native_height, native_width = pixels.shape[:2]
    geometry = fit_geometry(native_width, native_height, width, height, mode)
    if (native_width, native_height) == (width, height):
        return pixels
    scaled = _resize(pixels, geometry.scaled_width, geometry.scaled_height)
    if geometry.left <= 0 and geometry.top <= 0:  # crop (or stretch: nothing to cut)
        top, left = -geometry.top, -geometry.left
        return np.ascontiguousarray(scaled[top : top + height, left : left + width])
    canvas = np.zeros((height, width, *pixels.shape[2:]), dtype=np.uint8)
    top, left = geometry.top, geometry.left
    canvas[top : top + geometry.scaled_height, left : left + geometry.scaled_width] = scaled
    return canvas


def _resize(pixels: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    native_height, native_width = pixels.shape[:2]
    shrinking = width * height < native_width * native_height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(pixels, (width, height), interpolation=interpolation))


def _channels_of(encoding: str) -> int:
    try:
        return CHANNELS_BY_ENCODING[encoding]
    except KeyError:
        supported = ", ".join(sorted(CHANNELS_BY_ENCODING))
        raise ImageFormatError(
            f"unsupported encoding {encoding!r} (supported: {supported})"
        ) from None
