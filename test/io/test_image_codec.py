import dataclasses

import cv2
import numpy as np
import pytest

from pamiq_ros.io.image_codec import (
    ImageFields,
    ImageFormatError,
    decode_compressed,
    decode_image,
    encode_image,
    fit_geometry,
    fit_image,
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
    with pytest.raises(ImageFormatError, match="cannot write encoding 'rgba8'"):
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
        ({"encoding": "rgb16"}, "unsupported encoding 'rgb16'"),
        ({"encoding": "yuv422", "step": 10, "data": b"\x00" * 40}, "yuv422 needs an even width"),
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
    bgra = np.array([[[10, 20, 30, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb(bgra, "bgra8"), [[[30, 20, 10]]])
    np.testing.assert_array_equal(to_rgb(bgra, "rgba8"), [[[10, 20, 30]]])
    with pytest.raises(ImageFormatError, match="unsupported encoding"):
        to_rgb(bgr, "rgb16")


def test_fields_fill_and_read_back_a_ros_image_message():
    from sensor_msgs.msg import Image

    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    message = Image()
    encode_image(pixels, "bgr8").fill(message)
    assert (message.width, message.height, message.encoding, message.step) == (6, 4, "bgr8", 18)
    np.testing.assert_array_equal(decode_image(ImageFields.of_message(message)), pixels)


# --- any camera: encodings, compressed images, fitting -----------------------------------


def yuv422_fields(rgb: np.ndarray, encoding: str) -> ImageFields:
    """Packs RGB pixels as YUV 4:2:2 by the BT.601 video-range formulas (as cameras send)."""
    r, g, b = (rgb[:, :, channel].astype(float) for channel in range(3))
    yuv = (
        np.stack(
            [
                16 + 0.257 * r + 0.504 * g + 0.098 * b,
                128 - 0.148 * r - 0.291 * g + 0.439 * b,
                128 + 0.439 * r - 0.368 * g - 0.071 * b,
            ],
            axis=2,
        )
        .round()
        .clip(0, 255)
        .astype(np.uint8)
    )
    height, width = rgb.shape[:2]
    y = yuv[:, :, 0]
    u = yuv[:, 0::2, 1].astype(np.uint16) + yuv[:, 1::2, 1]
    v = yuv[:, 0::2, 2].astype(np.uint16) + yuv[:, 1::2, 2]
    u, v = (u // 2).astype(np.uint8), (v // 2).astype(np.uint8)
    packed = np.empty((height, width * 2), dtype=np.uint8)
    if encoding in ("yuv422", "uyvy"):
        packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = (
            u,
            y[:, 0::2],
            v,
            y[:, 1::2],
        )
    else:
        packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = (
            y[:, 0::2],
            u,
            y[:, 1::2],
            v,
        )
    return ImageFields(height, width, encoding, 0, width * 2, packed.tobytes())


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_in_both_byte_orders_decodes_to_its_colours(encoding):
    rgb = np.zeros((4, 8, 3), dtype=np.uint8)
    rgb[:, :4] = (200, 30, 30)  # red half
    rgb[:, 4:] = (30, 30, 200)  # blue half

    decoded = to_rgb(decode_image(yuv422_fields(rgb, encoding)), encoding)

    assert decoded.shape == (4, 8, 3)
    assert np.abs(decoded.astype(int) - rgb).max() <= 6


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_compressed_images_decode_to_rgb(extension):
    rgb = np.zeros((48, 64, 3), dtype=np.uint8)
    rgb[:, :32] = (220, 20, 20)
    rgb[:, 32:] = (20, 220, 20)
    ok, data = cv2.imencode(extension, rgb[:, :, ::-1])  # OpenCV writes BGR
    assert ok

    decoded = decode_compressed(
        "rgb8; jpeg compressed bgr8" if extension == ".jpg" else "png", data.tobytes()
    )

    assert decoded.shape == (48, 64, 3)
    assert np.abs(decoded[:, 2:30].astype(int) - (220, 20, 20)).max() <= 12
    assert np.abs(decoded[:, 34:62].astype(int) - (20, 220, 20)).max() <= 12


def test_corrupt_or_unknown_compressed_images_are_refused_with_a_reason():
    _, data = cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))
    jpeg = data.tobytes()
    with pytest.raises(ImageFormatError, match="neither JPEG nor PNG"):
        decode_compressed("tiff", jpeg)
    with pytest.raises(ImageFormatError, match="neither a JPEG nor a PNG signature"):
        decode_compressed("jpeg", b"GIF89a" + bytes(100))
    with pytest.raises(ImageFormatError, match="cut short"):
        decode_compressed("jpeg", jpeg[: len(jpeg) // 2])
    with pytest.raises(ImageFormatError, match="corrupt JPEG"):
        decode_compressed("jpeg", jpeg[:4] + bytes(200) + b"\xff\xd9")


def halves(width: int, height: int) -> np.ndarray:
    """Left half white, right half black, a red centre column (to find the centre)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = 255
    return pixels


def test_crop_keeps_the_aspect_and_cuts_the_centre_out():
    wide = np.zeros((90, 160, 3), dtype=np.uint8)
    wide[:, :15] = (255, 0, 0)  # left edge: red, cut away by a 4:3 crop
    wide[:, 15:145] = (0, 255, 0)
    wide[:, 145:] = (0, 0, 255)

    fitted = fit_image(wide, 40, 30, "crop")

    assert fitted.shape == (30, 40, 3)
    # 160x90 scaled to 53x30, 6 columns cut each side: no red or blue survives.
    assert fitted[:, :, 0].max() < 40 and fitted[:, :, 2].max() < 40
    assert fitted[:, :, 1].min() > 200


def test_pad_keeps_the_aspect_with_black_borders_and_stretch_fills():
    wide = np.full((90, 160, 3), 200, dtype=np.uint8)

    padded = fit_image(wide, 40, 30, "pad")
    stretched = fit_image(wide, 40, 30, "stretch")

    geometry = fit_geometry(160, 90, 40, 30, "pad")
    assert (geometry.scaled_width, geometry.scaled_height) == (40, 22)
    assert padded[: geometry.top].max() == 0 and padded[geometry.top + 22 :].max() == 0
    assert padded[geometry.top : geometry.top + 22].min() == 200
    assert stretched.min() == 200 and stretched.shape == (30, 40, 3)


def test_fit_keeps_an_image_of_the_right_size_and_refuses_an_unknown_mode():
    pixels = random_pixels((30, 40, 3))
    assert fit_image(pixels, 40, 30) is pixels
    with pytest.raises(ValueError, match="resize mode"):
        fit_image(pixels, 20, 15, "zoom")
