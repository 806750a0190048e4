"""The time stamp written into frame pixels: it survives JPEG and scaling, and never misreads."""

import cv2
import numpy as np
import pytest

from pamiq_ros.io.frame_stamp import (
    MIN_HEIGHT,
    MIN_WIDTH,
    UNIT_S,
    check_size,
    read_stamp,
    stamp_units,
    unwrap_units,
    write_stamp,
)
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import World

NOW = 1_790_000_000.123456  # a fixed Unix time


def rendered(width: int, height: int) -> np.ndarray:
    world = World(0, 2.0, 1.5)
    return Renderer(world.layout, width, height).render(world).copy()


def through_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded[:, :, ::-1], dtype=np.uint8)


@pytest.mark.parametrize("size", [(84, 84), (160, 120), (640, 480)])
def test_the_stamp_survives_jpeg_on_a_rendered_frame(size: tuple[int, int]) -> None:
    frame = rendered(*size)
    for offset in range(25):
        wall = NOW + offset * 0.0137
        units = write_stamp(frame, wall)
        assert read_stamp(through_jpeg(frame, 50)) == units
        assert unwrap_units(units, wall + 0.2) * UNIT_S == pytest.approx(wall, abs=UNIT_S)


def test_the_stamp_reads_in_bgr_mono_and_after_scaling() -> None:
    frame = rendered(160, 120)
    units = write_stamp(frame, NOW)
    decoded = through_jpeg(frame, 90)
    assert read_stamp(decoded[:, :, ::-1].copy()) == units
    assert read_stamp(cv2.cvtColor(decoded, cv2.COLOR_RGB2GRAY)) == units
    assert read_stamp(cv2.resize(decoded, (84, 84), interpolation=cv2.INTER_AREA)) == units


def test_a_frame_without_a_stamp_or_a_damaged_one_reads_as_none() -> None:
    frame = rendered(160, 120)
    assert read_stamp(frame) is None
    assert read_stamp(np.zeros((120, 160, 3), np.uint8)) is None
    write_stamp(frame, NOW)
    frame[:8, :8] = 255 - frame[:8, :8]  # flip the first cell: the check bits no longer match
    assert read_stamp(frame) is None
    assert read_stamp(np.zeros((MIN_HEIGHT - 1, MIN_WIDTH, 3), np.uint8)) is None


def test_unwrapping_picks_the_time_nearest_now_across_the_wrap() -> None:
    wrap_s = 2**32 * UNIT_S
    before_wrap = (NOW // wrap_s + 1) * wrap_s - 0.05  # 50 ms before the 32-bit value wraps
    units = stamp_units(before_wrap)
    assert units > 2**32 - 1000
    later = before_wrap + 0.1  # read after the wrap
    assert unwrap_units(units, later) * UNIT_S == pytest.approx(before_wrap, abs=UNIT_S)


def test_a_frame_too_small_is_refused_with_the_least_size() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_WIDTH}x{MIN_HEIGHT}"):
        write_stamp(np.zeros((MIN_HEIGHT, MIN_WIDTH - 1, 3), np.uint8), NOW)
    check_size(MIN_WIDTH, MIN_HEIGHT)
