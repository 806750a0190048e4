"""Capture judged with video the project did not encode: ffmpeg's H.264 files and MJPEG stream.

- An H.264 file (libx264, yuv420p) of a 16:9 scene: colour order in rgb8 and bgr8, and what
  crop, pad and stretch make of it at 4:3.
- ffmpeg's HTTP MJPEG server (``-f mpjpeg -listen 1``): the project's reader takes it, comes
  back after ffmpeg is killed and restarted, and under CPU load with a consumer slower than the
  stream gets the newest frame, not a backlog (each frame carries its send time in pixels,
  ``pamiq_ros.io.frame_stamp``, so its age is measured against the sender's clock).
"""

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pamiq_ros.bench._ffmpeg_stream import StampedMjpegStream
from pamiq_ros.io.capture import (
    CaptureState,
    FrameFormat,
    LatestFrameCapture,
    MjpegHttpSource,
    ReopenBackoff,
    VideoSource,
    parse_source,
)
from pamiq_ros.io.frame_stamp import UNIT_S, read_stamp, stamp_units
from test.support.processes import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg is not installed (make setup installs it as root)",
)

RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)


def encode_h264(path: Path, frames: list[np.ndarray], fps: int = 20) -> Path:
    height, width = frames[0].shape[:2]
    command = [
        "ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True, timeout=60)
    return path


def wide_scene() -> np.ndarray:
    """320x180 (16:9): red left edge (60 px), green middle, blue right edge (60 px)."""
    frame = np.empty((180, 320, 3), dtype=np.uint8)
    frame[:, :60], frame[:, 60:260], frame[:, 260:] = RED, GREEN, BLUE
    return frame


def read_first(path: Path, frame_format: FrameFormat) -> np.ndarray:
    source = VideoSource(parse_source(str(path)), frame_format, loop=False)
    source.open()
    try:
        pixels = source.read()
    finally:
        source.close()
    assert pixels is not None
    return pixels


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 30) -> bool:
    return bool(np.abs(pixel.astype(int) - colour).max() <= tolerance)


@pytest.fixture(scope="module")
def h264_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_h264(tmp_path_factory.mktemp("h264") / "wide.mp4", [wide_scene()] * 10)


def test_h264_colours_come_out_in_the_asked_channel_order(h264_file: Path):
    rgb = read_first(h264_file, FrameFormat(0, 0, "rgb8"))
    bgr = read_first(h264_file, FrameFormat(0, 0, "bgr8"))

    assert rgb.shape == (180, 320, 3)
    assert close_to(rgb[90, 10], RED) and close_to(rgb[90, 160], GREEN)
    assert close_to(rgb[90, 310], BLUE)
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])


def test_crop_pad_and_stretch_of_a_16_9_h264_file_at_4_3(h264_file: Path):
    cropped = read_first(h264_file, FrameFormat(160, 120, "rgb8", "crop"))
    padded = read_first(h264_file, FrameFormat(160, 120, "rgb8", "pad"))
    stretched = read_first(h264_file, FrameFormat(160, 120, "rgb8", "stretch"))

    # crop: 320x180 -> 213x120, 27 columns cut each side: 13 of the 40 red and blue remain.
    assert cropped.shape == (120, 160, 3)
    assert close_to(cropped[60, 5], RED) and close_to(cropped[60, 154], BLUE)
    assert close_to(cropped[60, 20], GREEN) and close_to(cropped[0, 80], GREEN)
    assert close_to(cropped[119, 80], GREEN)  # all rows kept
    # pad: 160x90 in the middle (30 red columns), 15 black rows above and below.
    assert padded.shape == (120, 160, 3)
    assert padded[:14].max() < 20 and padded[-14:].max() < 20
    assert close_to(padded[60, 20], RED) and close_to(padded[60, 40], GREEN)
    # stretch: every row and column kept, 30 px edges at 160 wide, squashed horizontally.
    assert close_to(stretched[0, 20], RED) and close_to(stretched[119, 140], BLUE)
    assert close_to(stretched[60, 40], GREEN)


@pytest.fixture
def streams(free_tcp_port) -> Iterator[tuple[int, list[StampedMjpegStream]]]:
    port = free_tcp_port()
    started: list[StampedMjpegStream] = []
    yield port, started
    for stream in started:
        stream.kill()


def age_s(pixels: np.ndarray) -> float:
    units = read_stamp(pixels)
    assert units is not None, "the frame's time stamp did not survive"
    return ((stamp_units(time.time()) - units) % 2**32) * UNIT_S


def open_stream(url: str) -> MjpegHttpSource:
    source = MjpegHttpSource(parse_source(url), FrameFormat(0, 0, "rgb8"), read_timeout=2.0)
    assert wait_until(lambda: _try_open(source), 15.0), f"could not open {url}"
    return source


def _try_open(source: MjpegHttpSource) -> bool:
    try:
        source.open()
    except Exception:
        time.sleep(0.1)
        return False
    return True


def burn_cpu(stop: threading.Event) -> subprocess.Popen[bytes]:
    """A busy process per core, so the reader competes for the CPU."""
    code = "import time\nwhile True:\n    pass\n"
    return subprocess.Popen(
        ["python3", "-c", code], start_new_session=True, stdout=subprocess.DEVNULL
    )


@pytest.mark.e2e
def test_a_slow_consumer_under_load_gets_the_newest_frame_not_a_backlog(streams):
    port, started = streams
    started.append(StampedMjpegStream(port))
    source = open_stream(started[0].url)
    burners = [burn_cpu(threading.Event()) for _ in range(os.cpu_count() or 2)]
    try:
        ages = []
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            pixels = source.read()  # the newest complete JPEG since the last read
            assert pixels is not None and pixels.shape == (480, 640, 3)
            ages.append(age_s(pixels))
            time.sleep(0.25)  # five stream periods per read: a consumer far slower than 20 fps
    finally:
        for burner in burners:
            os.killpg(burner.pid, signal.SIGKILL)
            burner.wait()
        source.close()
    # Backlog would make the age grow by ~0.2 s per read (a 5x slower reader); the newest frame
    # stays within a few periods of its send time.
    assert max(ages[len(ages) // 2 :]) < 0.3, ages
    assert ages[-1] < ages[0] + 0.2, ages
    assert source.frames_dropped >= 3 * len(ages), (source.frames_dropped, len(ages))


@pytest.mark.e2e
def test_the_capture_comes_back_after_ffmpeg_is_killed_and_restarted(streams):
    port, started = streams
    started.append(StampedMjpegStream(port))
    reports: list[tuple[str, str]] = []
    capture = LatestFrameCapture(
        MjpegHttpSource(parse_source(started[0].url), FrameFormat(160, 120, "rgb8"), 5.0, 1.0),
        ReopenBackoff(0.2, 0.5),
        lambda level, message: reports.append((level, message)),
        file_period=0.05,
    )
    capture.start()
    try:
        assert wait_until(lambda: capture.stats().frames_captured >= 5, 20.0)
        latest = capture.latest()
        assert latest is not None and latest.pixels.shape == (120, 160, 3)
        assert latest.native_size == (640, 480)

        started[0].kill()
        assert wait_until(lambda: capture.stats().state is CaptureState.REOPENING, 10.0)
        lost_at = capture.stats().frames_captured
        started.append(StampedMjpegStream(port))
        assert wait_until(lambda: capture.stats().frames_captured > lost_at + 5, 20.0), reports
        stats = capture.stats()
        assert stats.state is CaptureState.STREAMING and stats.reopens == 1
        assert any("reopened video source" in message for _, message in reports)
    finally:
        assert capture.stop(timeout=5.0)
