import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pamiq_ros.io.capture import (
    CaptureState,
    FrameFormat,
    LatestFrameCapture,
    ReopenBackoff,
    SourceKind,
    SourceSpec,
    VideoSource,
    VideoSourceError,
    convert_frame,
    output_size,
    parse_source,
)
from pamiq_ros.sim.video_server import MjpegStreamServer
from test.support.processes import wait_until

RED_BGR = (0, 0, 255)
GREEN_BGR = (0, 255, 0)
BLUE_BGR = (255, 0, 0)


def write_video(path: Path, colours_bgr, size=(64, 48), fps=20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for colour in colours_bgr:
        writer.write(np.full((size[1], size[0], 3), colour, dtype=np.uint8))
    writer.release()
    return path


def dominant_channel(rgb: np.ndarray) -> str:
    return "RGB"[int(np.argmax(rgb.reshape(-1, 3).mean(axis=0)))]


# --- source strings -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "index"), [("0", 0), (" 2 ", 2), ("/dev/video3", 3)])
def test_digits_and_dev_video_paths_are_devices(text, index):
    spec = parse_source(text)

    assert spec.kind is SourceKind.DEVICE
    assert spec.device_index == index
    assert spec.is_live


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/stream.mjpg",
        "https://camera.local/video",
        "rtsp://10.0.0.2:554/live",
        "udp://127.0.0.1:5000",
        "tcp://127.0.0.1:5000?listen",
        "RTMP://host/app",
    ],
)
def test_scheme_strings_are_urls(url):
    spec = parse_source(url)

    assert spec.kind is SourceKind.URL
    assert spec.url == url
    assert spec.is_live


def test_other_strings_are_file_paths():
    assert parse_source("videos/run.avi").path == Path("videos/run.avi")
    assert parse_source("file:///tmp/run.avi").path == Path("/tmp/run.avi")
    assert parse_source("~/run.mp4").path == Path.home() / "run.mp4"
    spec = parse_source("/data/12.mp4")
    assert spec.kind is SourceKind.FILE
    assert not spec.is_live


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "video source is empty"),
        ("   ", "video source is empty"),
        ("-1", "a device index must be 0 or more"),
    ],
)
def test_unusable_source_strings_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_source(text)


# --- backoff --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_the_initial_delay_up_to_the_maximum():
    backoff = ReopenBackoff(0.5, 5.0, clock=FakeClock())

    delays = [backoff.next_delay() for _ in range(7)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_counts_down_on_its_clock_and_resets_after_success():
    clock = FakeClock()
    backoff = ReopenBackoff(0.5, 5.0, clock=clock)
    assert backoff.seconds_until_due() == 0.0

    backoff.next_delay()
    backoff.next_delay()
    assert backoff.seconds_until_due() == pytest.approx(1.0)
    clock.now += 0.25
    assert backoff.seconds_until_due() == pytest.approx(0.75)
    clock.now += 2.0
    assert backoff.seconds_until_due() == 0.0

    backoff.reset()
    assert backoff.seconds_until_due() == 0.0
    assert backoff.next_delay() == 0.5


def test_backoff_refuses_delays_that_make_no_sense():
    with pytest.raises(ValueError, match="initial reopen delay must be positive"):
        ReopenBackoff(0.0, 5.0)
    with pytest.raises(ValueError, match=r"max reopen delay \(0.1\) must not be below"):
        ReopenBackoff(0.5, 0.1)


# --- frame conversion -----------------------------------------------------------------------


def test_output_size_keeps_native_size_or_aspect_ratio_for_zeros():
    assert output_size(640, 480, 160, 120) == (160, 120)
    assert output_size(640, 480, 100, 100) == (100, 100)
    assert output_size(640, 480, 0, 0) == (640, 480)
    assert output_size(640, 480, 320, 0) == (320, 240)
    assert output_size(640, 480, 0, 60) == (80, 60)


def test_frame_format_refuses_bad_values():
    with pytest.raises(ValueError, match="unsupported encoding 'yuv'"):
        FrameFormat(encoding="yuv")
    with pytest.raises(ValueError, match="output size must be 0 or more, got -1x10"):
        FrameFormat(-1, 10)


def test_a_red_bgr_frame_comes_out_red_in_rgb8_and_unchanged_in_bgr8():
    red_bgr = np.full((48, 64, 3), RED_BGR, dtype=np.uint8)

    rgb = convert_frame(red_bgr, FrameFormat(encoding="rgb8"))
    bgr = convert_frame(red_bgr, FrameFormat(encoding="bgr8"))

    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert bgr[0, 0].tolist() == [0, 0, 255]
    assert rgb.flags.c_contiguous and rgb.dtype == np.uint8


def test_mono8_is_one_grey_channel():
    red_bgr = np.full((48, 64, 3), RED_BGR, dtype=np.uint8)

    grey = convert_frame(red_bgr, FrameFormat(encoding="mono8"))

    assert grey.shape == (48, 64)
    assert grey[0, 0] == pytest.approx(0.299 * 255, abs=1)


def test_frames_are_resized_to_the_output_size():
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 320:] = 255  # right half white

    small = convert_frame(frame, FrameFormat(80, 60, "rgb8"))
    native = convert_frame(frame, FrameFormat(0, 0, "rgb8"))

    assert small.shape == (60, 80, 3)
    assert small[:, :40].max() == 0 and small[:, 40:].min() == 255
    assert native.shape == (480, 640, 3)


def test_grey_and_bgra_frames_are_converted_too():
    grey = np.full((4, 4), 50, dtype=np.uint8)
    bgra = np.zeros((4, 4, 4), dtype=np.uint8)
    bgra[..., 0] = 200  # blue

    assert convert_frame(grey, FrameFormat(encoding="rgb8"))[0, 0].tolist() == [50, 50, 50]
    assert convert_frame(grey[..., None], FrameFormat(encoding="mono8")).shape == (4, 4)
    assert convert_frame(bgra, FrameFormat(encoding="rgb8"))[0, 0].tolist() == [0, 0, 200]


# --- video files ----------------------------------------------------------------------------


@pytest.fixture
def rgb_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "rgb.avi", [RED_BGR, GREEN_BGR, BLUE_BGR])


def read_colours(source: VideoSource, count: int) -> list[str | None]:
    colours: list[str | None] = []
    for _ in range(count):
        frame = source.read()
        colours.append(None if frame is None else dominant_channel(frame))
    return colours


def test_a_file_loops_at_its_end_when_asked(rgb_video):
    source = VideoSource(parse_source(str(rgb_video)), FrameFormat(80, 60, "rgb8"), loop=True)
    source.open()

    assert source.native_size == (64, 48)
    assert read_colours(source, 7) == ["R", "G", "B", "R", "G", "B", "R"]
    assert source.loops == 2
    assert not source.finished
    frame = source.read()
    assert frame is not None and frame.shape == (60, 80, 3)
    source.close()
    assert not source.is_open


def test_a_file_finishes_at_its_end_without_loop(rgb_video):
    source = VideoSource(parse_source(str(rgb_video)), FrameFormat(encoding="rgb8"), loop=False)
    source.open()

    assert read_colours(source, 4) == ["R", "G", "B", None]
    assert source.finished
    assert source.read() is None


def test_a_missing_file_is_named_with_the_reason(tmp_path):
    missing = tmp_path / "missing.avi"
    source = VideoSource(parse_source(str(missing)), FrameFormat())

    with pytest.raises(VideoSourceError) as caught:
        source.open()

    assert str(caught.value) == (
        f"cannot open video source '{missing}': file does not exist ({missing})"
    )
    assert not source.is_open


def test_a_file_that_is_not_video_is_named_with_the_reason(tmp_path):
    garbage = tmp_path / "notes.avi"
    garbage.write_text("not a video")

    with pytest.raises(VideoSourceError, match="exists but OpenCV cannot read it as video"):
        VideoSource(parse_source(str(garbage)), FrameFormat()).open()
    with pytest.raises(VideoSourceError, match="is a directory"):
        VideoSource(parse_source(str(tmp_path)), FrameFormat()).open()


def test_an_absent_device_is_named_with_the_reason():
    with pytest.raises(VideoSourceError, match=r"'57': camera device not present \(/dev/video57"):
        VideoSource(parse_source("57"), FrameFormat()).open()


def test_a_url_where_nothing_listens_is_named_with_the_reason(free_tcp_port):
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}/stream.mjpg"

    with pytest.raises(VideoSourceError) as caught:
        VideoSource(parse_source(url), FrameFormat()).open()

    assert f"cannot open video source '{url}'" in str(caught.value)
    assert f"could not connect to the URL: nothing answers at 127.0.0.1:{port}" in str(caught.value)


def test_a_url_that_answers_without_video_is_named_with_the_reason():
    server = MjpegStreamServer(port=0)
    server.start()
    try:
        wrong_path = f"http://127.0.0.1:{server.port}/wrong.mjpg"
        with pytest.raises(VideoSourceError, match=f"connected to 127.0.0.1:{server.port}, but no"):
            VideoSource(parse_source(wrong_path), FrameFormat()).open()
    finally:
        server.close()


# --- the capture thread ---------------------------------------------------------------------


class FakeSource:
    """A scripted source: ``opens`` says which open attempts succeed, ``frames`` what reads give."""

    def __init__(self, kind: SourceKind = SourceKind.URL, opens=(), frames=()) -> None:
        self.spec = SourceSpec(text="fake://camera", kind=kind)
        self.finished = False
        self.captured_at = None
        self.frames_dropped = 0
        self.native_size = (2, 2)
        self._opens = list(opens)
        self._frames = list(frames)
        self._open = False
        self.reads = 0
        self.closed = threading.Event()

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self._opens and not self._opens.pop(0):
            raise VideoSourceError("cannot open video source 'fake://camera': test says no")
        self._open = True

    def read(self):
        time.sleep(0.001)
        self.reads += 1
        item = self._frames.pop(0) if self._frames else "frame"
        if item == "finished":
            self.finished = True
            return None
        if item == "lost":
            return None
        return np.full((2, 2, 3), self.reads % 256, dtype=np.uint8)

    def close(self) -> None:
        self._open = False
        self.closed.set()


class Reports:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    def wait_for(self, text: str, timeout: float = 5.0) -> tuple[str, str]:
        assert wait_until(lambda: any(text in line for _, line in self.lines), timeout), self.lines
        return next(item for item in self.lines if text in item[1])


@pytest.fixture
def run_capture():
    started: list[LatestFrameCapture] = []

    def start(source, file_period=0.05, initial=0.01, maximum=0.04):
        reports = Reports()
        capture = LatestFrameCapture(source, ReopenBackoff(initial, maximum), reports, file_period)
        capture.start()
        started.append(capture)
        return capture, reports

    yield start
    for capture in started:
        assert capture.stop(timeout=5.0)


def test_an_unopenable_source_is_an_error_then_retried_until_it_opens(run_capture):
    source = FakeSource(opens=[False, False, False, True])

    capture, reports = run_capture(source)

    reports.wait_for("opened video source 'fake://camera'")
    assert reports.lines[0] == (
        "error",
        "cannot open video source 'fake://camera': test says no; retrying in 0.0 s",
    )
    assert reports.lines[1][0] == "warning" and "(attempt 2)" in reports.lines[1][1]
    assert "(attempt 3)" in reports.lines[2][1]
    assert wait_until(lambda: capture.latest() is not None, 5.0)
    assert capture.stats().reopens == 0


def test_a_lost_live_source_is_reopened_with_backoff(run_capture):
    source = FakeSource(opens=[True, False, False, True], frames=["frame"] * 5 + ["lost"])

    capture, reports = run_capture(source, initial=0.01, maximum=0.02)

    level, message = reports.wait_for("lost video source")
    assert (level, message) == ("warning", "lost video source 'fake://camera': reopening in 0.0 s")
    level, message = reports.wait_for("reopened video source")
    assert (level, message) == ("info", "reopened video source 'fake://camera' after 3 attempts")
    assert [level for level, _ in reports.lines[2:4]] == ["warning", "warning"]
    stats = capture.stats()
    assert stats.reopens == 1 and stats.attempts == 0 and stats.last_error == ""
    assert wait_until(lambda: capture.stats().state is CaptureState.STREAMING, 5.0)


def test_a_live_source_is_read_as_fast_as_it_delivers_keeping_the_newest_frame(run_capture):
    source = FakeSource()

    capture, _ = run_capture(source, file_period=1.0)  # the file period must not slow it

    assert wait_until(lambda: capture.stats().frames_captured >= 50, 2.0)
    assert capture.stop(timeout=5.0)
    newest = capture.latest()
    assert newest is not None
    assert newest.sequence == capture.stats().frames_captured
    assert newest.pixels[0, 0, 0] == source.reads % 256
    assert newest.captured_at <= time.monotonic()


def test_a_file_is_read_at_the_file_period(run_capture):
    source = FakeSource(kind=SourceKind.FILE)

    capture, _ = run_capture(source, file_period=0.05)
    time.sleep(0.5)

    assert 6 <= capture.stats().frames_captured <= 13


def test_a_finished_file_ends_the_capture_and_releases_it(run_capture):
    source = FakeSource(kind=SourceKind.FILE, frames=["frame", "frame", "finished"])

    capture, reports = run_capture(source, file_period=0.01)

    level, message = reports.wait_for("finished")
    assert level == "warning"
    assert message == "video file 'fake://camera' finished (loop is false): no more frames"
    assert source.closed.wait(5.0)
    assert capture.stats().frames_captured == 2
    assert capture.stats().state is CaptureState.FINISHED
    assert capture.stop(timeout=5.0)
    assert capture.stats().state is CaptureState.FINISHED


def test_stop_ends_the_thread_and_releases_the_source(run_capture):
    source = FakeSource()
    capture, _ = run_capture(source)
    assert wait_until(lambda: capture.latest() is not None, 5.0)

    assert capture.stop(timeout=5.0)

    assert source.closed.is_set() and not source.is_open
    assert capture.stats().state is CaptureState.STOPPED


def test_stop_interrupts_a_backoff_wait(run_capture):
    source = FakeSource(opens=[False] * 100)
    capture, reports = run_capture(source, initial=30.0, maximum=30.0)
    reports.wait_for("retrying in 30.0 s")

    started = time.monotonic()
    assert capture.stop(timeout=5.0)
    assert time.monotonic() - started < 1.0
