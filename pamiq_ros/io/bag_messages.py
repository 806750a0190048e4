"""ROS messages and bags meet here: message classes by type name, JPEG images both ways.

The recorder stores raw CDR bytes as they arrived; only images may be re-encoded as
``sensor_msgs/CompressedImage`` (JPEG) on ``<topic>/compressed``, and replay turns them back
into ``sensor_msgs/Image`` on the original topic so that the agent sees what it would live.
"""

import importlib
from typing import Any

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from pamiq_ros.io.image_codec import ImageFields, decode_image, encode_image, to_rgb

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
COMPRESSED_SUFFIX = "/compressed"
JPEG_FORMAT = "rgb8; jpeg compressed bgr8"
"""image_transport's format string for a JPEG of an rgb8 image."""


class UnknownMessageTypeError(LookupError):
    """A message type name that no installed Python package provides."""


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (also ``pkg/Name``).

    Raises:
        UnknownMessageTypeError: If the package or the message is not installed.
    """
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise UnknownMessageTypeError(f"{msgtype!r} is not a message type name (pkg/msg/Name)")
    package, kind, name = parts
    try:
        module = importlib.import_module(f"{package}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError) as error:
        raise UnknownMessageTypeError(f"message type {msgtype!r} is not installed here") from error


def compress_image(data: bytes, quality: int) -> bytes:
    """A serialized ``Image`` as a serialized JPEG ``CompressedImage`` with the same header.

    Raises:
        ValueError: If the image cannot be decoded or encoded.
    """
    image = deserialize_message(data, Image)
    pixels = to_rgb(decode_image(ImageFields.of_message(image)), image.encoding)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    message = CompressedImage(header=image.header, format=JPEG_FORMAT)
    message.data = encoded.tobytes()
    return bytes(serialize_message(message))


def decompress_image(data: bytes) -> bytes:
    """A serialized JPEG ``CompressedImage`` back as a serialized rgb8 ``Image``.

    Raises:
        ValueError: If the bytes are not a decodable JPEG image.
    """
    message = deserialize_message(data, CompressedImage)
    decoded = cv2.imdecode(np.frombuffer(bytes(message.data), dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError(f"compressed image ({message.format!r}) does not decode")
    image = Image(header=message.header)
    rgb = np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    encode_image(rgb, "rgb8").fill(image)
    return bytes(serialize_message(image))
