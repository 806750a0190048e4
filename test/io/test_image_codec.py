import dataclasses

import numpy as np
import pytest

from pamiq_ros.io.image_codec import (
    ImageFields,
    ImageFormatError,
    decode_image,
    encode_image,
    to_rgb,
)


def random_pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "shape"),
    [
        ("rgb8", (4, 5, 3)),
        ("bgr8", (4, 5, 3)),
        ("mono8", (4, 5)),
    ],
)
def test_encode_then_decode_gives_the_same_pixels(encoding, shape):
    pixels = random_pixels(shape)

    fields = encode_image(pixels, encoding)
    decoded = decode_image(fields, expected_encoding=encoding)

    channels = 1 if encoding == "mono8" else 3
    assert (fields.height, fields.width, fields.encoding) == (4, 5, encoding)
    assert fields.step == 5 * channels
    assert fields.is_bigendian == 0
    assert len(fields.data) == 4 * 5 * channels
    assert decoded.shape == (4, 5, channels)
    np.testing.assert_array_equal(decoded.reshape(shape), pixels)


def test_encode_accepts_a_single_channel_axis_for_mono8():
    pixels = random_pixels((3, 2, 1))

    fields = encode_image(pixels, "mono8")

    assert fields.step == 2
    assert fields.data == pixels.tobytes()


def test_encode_packs_a_non_contiguous_view_row_by_row():
    pixels = random_pixels((4, 6, 3))[:, ::2]  # every other column: not contiguous

    fields = encode_image(pixels, "rgb8")

    np.testing.assert_array_equal(decode_image(fields), pixels)


def test_encode_rejects_pixels_that_do_not_fit_the_encoding():
    with pytest.raises(ImageFormatError, match="uint8"):
        encode_image(np.zeros((2, 2, 3), dtype=np.float32), "rgb8")
    with pytest.raises(ImageFormatError, match=r"shape \(2, 2\) do not fit encoding 'rgb8'"):
        encode_image(np.zeros((2, 2), dtype=np.uint8), "rgb8")
    with pytest.raises(ImageFormatError, match="do not fit encoding 'bgr8'"):
        encode_image(np.zeros((2, 2, 4), dtype=np.uint8), "bgr8")
    with pytest.raises(ImageFormatError, match="do not fit encoding 'mono8'"):
        encode_image(np.zeros((2, 2, 3), dtype=np.uint8), "mono8")
    with pytest.raises(ImageFormatError, match="unsupported encoding 'rgba8'"):
        encode_image(np.zeros((2, 2, 4), dtype=np.uint8), "rgba8")


def test_decode_removes_row_padding():
    pixels = random_pixels((3, 2, 3))
    padding = b"\xee" * 4
    data = b"".join(row.tobytes() + padding for row in pixels)
    fields = ImageFields(height=3, width=2, encoding="rgb8", is_bigendian=0, step=10, data=data)

    np.testing.assert_array_equal(decode_image(fields), pixels)


def test_decode_returns_a_writable_copy():
    fields = encode_image(random_pixels((2, 2, 3)), "rgb8")

    decoded = decode_image(fields)
    decoded[:] = 0

    assert decoded.flags.writeable
    assert decode_image(fields).any()


def valid_fields() -> ImageFields:
    return encode_image(random_pixels((4, 5, 3)), "rgb8")


@pytest.mark.parametrize(
    ("change", "expected_message"),
    [
        ({"data": b"\x00" * 59}, "data holds 59 bytes, but step 15 x height 4 needs 60"),
        ({"data": b"\x00" * 61}, "data holds 61 bytes"),
        ({"step": 14, "data": b"\x00" * 56}, "step 14 is shorter than a row of 5 rgb8 pixels"),
        ({"encoding": "yuv422"}, "unsupported encoding 'yuv422'"),
        ({"width": 0, "step": 0, "data": b""}, "empty image: 0x4"),
        ({"height": 0, "data": b""}, "empty image: 5x0"),
        ({"height": -1}, "empty image"),
    ],
)
def test_decode_rejects_fields_that_do_not_describe_an_image(change, expected_message):
    fields = dataclasses.replace(valid_fields(), **change)

    with pytest.raises(ImageFormatError, match=expected_message):
        decode_image(fields)


def test_decode_rejects_an_encoding_other_than_the_expected_one():
    fields = encode_image(random_pixels((2, 2, 3)), "bgr8")

    with pytest.raises(ImageFormatError, match="encoding 'bgr8', expected 'rgb8'"):
        decode_image(fields, expected_encoding="rgb8")


def test_to_rgb_reorders_or_expands_channels():
    bgr = np.array([[[10, 20, 30]]], dtype=np.uint8)
    mono = np.array([[7, 9]], dtype=np.uint8)

    np.testing.assert_array_equal(to_rgb(bgr, "rgb8"), bgr)
    np.testing.assert_array_equal(to_rgb(bgr, "bgr8"), [[[30, 20, 10]]])
    np.testing.assert_array_equal(to_rgb(mono, "mono8"), [[[7, 7, 7], [9, 9, 9]]])
    with pytest.raises(ImageFormatError, match="unsupported encoding"):
        to_rgb(bgr, "rgba8")


def test_fields_fill_and_read_back_a_ros_image_message():
    from sensor_msgs.msg import Image

    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    message = Image()
    encode_image(pixels, "bgr8").fill(message)
    assert (message.width, message.height, message.encoding, message.step) == (6, 4, "bgr8", 18)
    np.testing.assert_array_equal(decode_image(ImageFields.of_message(message)), pixels)
