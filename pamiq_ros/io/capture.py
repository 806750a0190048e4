"""Video capture from a camera device, a video file or a stream URL, with reopening on loss.

No ROS import here. The camera node wraps these pieces:

- :func:`parse_source` turns the ``source`` parameter into a :class:`SourceSpec`
  (device index, file path or URL).
- :class:`VideoSource` opens it with ``cv2.VideoCapture``, reads frames, resizes them and puts
  their channels in the output order; a file loops at its end when asked to.
- :class:`MjpegHttpSource` reads an MJPEG-over-HTTP stream (IP cameras, the simulated world)
  itself: a thread receives the bytes as fast as they come and keeps only the newest complete
  JPEG, so only that one is decoded and a slow consumer drops the backlog instead of falling
  behind; the stamp is when the JPEG's last byte arrived.
- :class:`ReopenBackoff` is the exponential delay between attempts to (re)open a source.
- :class:`LatestFrameCapture` reads in its own thread, keeps only the newest frame (so a
  consumer never lags behind a live source), reopens a lost source with backoff and reports
  each step through a callback.
"""

import contextlib
import enum
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np
import numpy.typing as npt

from pamiq_ros.io.image_codec import RESIZE_MODES, WRITTEN_ENCODINGS, fit_image

Pixels = npt.NDArray[np.uint8]
ReportLevel = Literal["info", "warning", "error"]
Reporter = Callable[[ReportLevel, str], None]
"""Receives ``(level, message)`` for every step worth a log line."""

_URL_PATTERN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_DEVICE_PATH_PATTERN = re.compile(r"^/dev/video(?P<index>\d+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}


class VideoSourceError(RuntimeError):
    """A video source that cannot be opened; the message names it and the likely reason."""


class SourceKind(enum.Enum):
    """What a source string designates."""

    DEVICE = "device"
    FILE = "file"
    URL = "url"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed video source.

    Attributes:
        text: The source as the user wrote it (used in every message).
        kind: Device, file or URL.
        device_index: The camera index for a device.
        path: The file path for a file (``~`` expanded).
        url: The URL for a stream.
    """

    text: str
    kind: SourceKind
    device_index: int | None = None
    path: Path | None = None
    url: str | None = None

    @property
    def is_live(self) -> bool:
        """Whether frames come at the source's own pace (a device or a stream, not a file)."""
        return self.kind is not SourceKind.FILE


def parse_source(text: str) -> SourceSpec:
    """Parses a source string.

    ``"0"``, ``"1"``... and ``"/dev/videoN"`` are camera devices; ``scheme://...`` is a stream
    URL (http, https, rtsp, udp, tcp...), except ``file://`` which is a file path; anything
    else is a file path.

    Raises:
        ValueError: If the string is empty or a negative device index.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("video source is empty: give a device index, a file path or a URL")
    if re.fullmatch(r"[+-]?\d+", stripped):
        index = int(stripped)
        if index < 0:
            raise ValueError(f"video source {text!r}: a device index must be 0 or more")
        return SourceSpec(text=stripped, kind=SourceKind.DEVICE, device_index=index)
    device_path = _DEVICE_PATH_PATTERN.match(stripped)
    if device_path:
        index = int(device_path.group("index"))
        return SourceSpec(text=stripped, kind=SourceKind.DEVICE, device_index=index)
    url = _URL_PATTERN.match(stripped)
    if url and url.group("scheme").lower() != "file":
        return SourceSpec(text=stripped, kind=SourceKind.URL, url=stripped)
    path_text = stripped[len("file://") :] if url else stripped
    return SourceSpec(text=stripped, kind=SourceKind.FILE, path=Path(path_text).expanduser())


@dataclass(frozen=True)
class FrameFormat:
    """The frames a :class:`VideoSource` hands out.

    Attributes:
        width: Output width in pixels; 0 keeps the native width (or the aspect ratio when
            only ``height`` is given).
        height: Output height in pixels; 0 likewise.
        encoding: Channel order of the output: ``"rgb8"``, ``"bgr8"`` or ``"mono8"``.
        mode: With both width and height set, how another aspect ratio is met: ``crop``
            (keep it, cut the centre out), ``pad`` (keep it, black borders) or ``stretch``.
    """

    width: int = 0
    height: int = 0
    encoding: str = "rgb8"
    mode: str = "crop"

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"output size must be 0 or more, got {self.width}x{self.height}")
        if self.encoding not in WRITTEN_ENCODINGS:
            supported = ", ".join(sorted(WRITTEN_ENCODINGS))
            raise ValueError(f"unsupported encoding {self.encoding!r} (supported: {supported})")
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}")


def output_size(native_width: int, native_height: int, width: int, height: int) -> tuple[int, int]:
    """The ``(width, height)`` to resize to: 0 keeps the native size or the aspect ratio."""
    if width and height:
        return width, height
    if width:
        return width, max(1, round(native_height * width / native_width))
    if height:
        return max(1, round(native_width * height / native_height)), height
    return native_width, native_height


def convert_frame(frame: npt.NDArray[Any], frame_format: FrameFormat) -> Pixels:
    """Resizes an OpenCV frame (BGR, BGRA or grey) and puts it in the output channel order.

    Returns:
        ``(H, W, 3)`` for rgb8/bgr8 and ``(H, W)`` for mono8, contiguous uint8.
    """
    native_height, native_width = frame.shape[:2]
    size = output_size(native_width, native_height, frame_format.width, frame_format.height)
    frame = fit_image(frame, *size, frame_format.mode)
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    conversions = {
        (1, "rgb8"): cv2.COLOR_GRAY2RGB,
        (1, "bgr8"): cv2.COLOR_GRAY2BGR,
        (3, "rgb8"): cv2.COLOR_BGR2RGB,
        (3, "mono8"): cv2.COLOR_BGR2GRAY,
        (4, "rgb8"): cv2.COLOR_BGRA2RGB,
        (4, "bgr8"): cv2.COLOR_BGRA2BGR,
        (4, "mono8"): cv2.COLOR_BGRA2GRAY,
    }
    code = conversions.get((channels, frame_format.encoding))
    if code is not None:
        frame = cv2.cvtColor(frame, code)
    elif channels == 1 and frame.ndim == 3:
        frame = frame[:, :, 0]
    return np.ascontiguousarray(frame, dtype=np.uint8)


class VideoSource:
    """One video source opened with OpenCV; hands out converted frames.

    A file is read frame by frame (the caller sets the pace) and, with ``loop``, starts over
    at its end; without it, :attr:`finished` becomes true there.

    Args:
        spec: What to open.
        frame_format: Output size and encoding.
        loop: Whether a file starts over at its end.
        open_timeout: Seconds a stream URL may take to connect.
        read_timeout: Seconds a stream may stay silent before a read fails.
    """

    def __init__(
        self,
        spec: SourceSpec,
        frame_format: FrameFormat,
        loop: bool = True,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        self.spec = spec
        self.frame_format = frame_format
        self.loop = loop
        self._open_timeout_ms = int(open_timeout * 1000)
        self._read_timeout_ms = int(read_timeout * 1000)
        self._capture: cv2.VideoCapture | None = None
        self.finished = False
        self.loops = 0
        self.native_size: tuple[int, int] = (0, 0)
        self.native_fps = 0.0
        self.captured_at: float | None = None
        self.frames_dropped = 0  # OpenCV does not say what it skipped

    @property
    def is_open(self) -> bool:
        """Whether a capture is open."""
        return self._capture is not None

    def open(self) -> None:
        """Opens the source (closing it first if it was open).

        Raises:
            VideoSourceError: Naming the source and the likely reason.
        """
        self.close()
        capture = self._new_capture()
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(
                f"cannot open video source {self.spec.text!r}: {describe_open_failure(self.spec)}"
            )
        self._capture = capture
        self.finished = False
        self.native_size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.native_fps = float(capture.get(cv2.CAP_PROP_FPS))

    def read(self) -> Pixels | None:
        """Reads the next frame, converted; None when there is none (lost, or a file's end).

        At a file's end this starts over when ``loop`` is set, and sets :attr:`finished` when
        not. A None from an open live source means the source was lost.
        """
        if self._capture is None:
            return None
        frame: npt.NDArray[Any] | None
        ok, frame = self._capture.read()
        if not ok and self.spec.kind is SourceKind.FILE:
            if not self.loop:
                self.finished = True
                self.close()
                return None
            ok, frame = self._rewind_and_read()
        if not ok or frame is None or frame.size == 0:
            return None
        self.captured_at = time.monotonic()
        self.native_size = (frame.shape[1], frame.shape[0])
        return convert_frame(frame, self.frame_format)

    def close(self) -> None:
        """Releases the capture."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _rewind_and_read(self) -> tuple[bool, npt.NDArray[Any] | None]:
        self.loops += 1
        assert self._capture is not None
        # Seeking is cheap but not every container supports it; reopening always works.
        if self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
            ok, frame = self._capture.read()
            if ok:
                return True, frame
        try:
            self.open()
        except VideoSourceError:
            return False, None
        assert self._capture is not None
        ok, frame = self._capture.read()
        return ok, frame

    def _new_capture(self) -> cv2.VideoCapture:
        spec = self.spec
        if spec.kind is SourceKind.DEVICE:
            assert spec.device_index is not None
            capture = cv2.VideoCapture(spec.device_index)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
            return capture
        if spec.kind is SourceKind.FILE:
            return cv2.VideoCapture(str(spec.path))
        assert spec.url is not None
        # Timeouts only for streams: OpenCV refuses a capture whose backend ignores a parameter,
        # and FFmpeg is the backend that reads network streams.
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_ms,
        ]  # fmt: skip
        return cv2.VideoCapture(spec.url, cv2.CAP_FFMPEG, timeouts)


def describe_open_failure(spec: SourceSpec) -> str:
    """The likely reason a source did not open, for an error message."""
    if spec.kind is SourceKind.FILE:
        assert spec.path is not None
        if not spec.path.exists() and "%" not in str(spec.path):
            return f"file does not exist ({spec.path.resolve()})"
        if spec.path.is_dir():
            return f"{spec.path} is a directory, not a video file"
        return "the file exists but OpenCV cannot read it as video (format or codec unsupported?)"
    if spec.kind is SourceKind.DEVICE:
        device = Path(f"/dev/video{spec.device_index}")
        if Path("/dev").is_dir() and not device.exists():
            return f"camera device not present ({device} does not exist)"
        return f"camera device {spec.device_index} could not be opened (in use, or no permission?)"
    return _describe_url_failure(spec.text)


def _describe_url_failure(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "could not connect to the URL: its port is not a number"
    host = parts.hostname
    if scheme == "udp" or host is None or port is None:
        return "could not connect to the URL or read video from it (is the sender running?)"
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return f"could not connect to the URL: nothing answers at {host}:{port} ({reason})"
    return (
        f"connected to {host}:{port}, but no video stream came from the URL "
        "(wrong path, or a format OpenCV cannot read?)"
    )


class ReopenBackoff:
    """Exponential delay between attempts to (re)open a source.

    Each :meth:`next_delay` returns the current delay, schedules the next attempt that far
    ahead and doubles the delay up to ``max_delay``; :meth:`reset` starts over after a success.

    Args:
        initial_delay: Seconds before the first attempt after a failure.
        max_delay: Longest delay, in seconds.
        clock: Monotonic seconds (a fake one in tests).
    """

    def __init__(
        self,
        initial_delay: float = 0.5,
        max_delay: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if initial_delay <= 0:
            raise ValueError(f"initial reopen delay must be positive, got {initial_delay}")
        if max_delay < initial_delay:
            raise ValueError(
                f"max reopen delay ({max_delay}) must not be below the initial one "
                f"({initial_delay})"
            )
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self._clock = clock
        self._delay = initial_delay
        self._due_at = clock()

    def next_delay(self) -> float:
        """Schedules the next attempt after the current delay and returns that delay."""
        delay = self._delay
        self._due_at = self._clock() + delay
        self._delay = min(self._delay * 2.0, self.max_delay)
        return delay

    def seconds_until_due(self) -> float:
        """Seconds left before the scheduled attempt (0 when it is due)."""
        return max(0.0, self._due_at - self._clock())

    def reset(self) -> None:
        """Back to the initial delay, with an attempt due now."""
        self._delay = self.initial_delay
        self._due_at = self._clock()


class FrameSource(Protocol):
    """What :class:`LatestFrameCapture` reads from (a :class:`VideoSource`, or a fake)."""

    spec: SourceSpec
    finished: bool
    captured_at: float | None
    """Monotonic time the last frame read was captured (None: when read returned)."""
    frames_dropped: int
    """Frames the source skipped to stay current."""
    native_size: tuple[int, int]
    """Width and height of the last frame before conversion."""

    @property
    def is_open(self) -> bool:
        """Whether the source is open."""

    def open(self) -> None:
        """Opens the source; raises :class:`VideoSourceError` with the reason if it cannot."""

    def read(self) -> Pixels | None:
        """The next frame, or None."""

    def close(self) -> None:
        """Releases the source."""


class CaptureState(enum.Enum):
    """Where a :class:`LatestFrameCapture` stands."""

    CONNECTING = "connecting"
    """Not opened yet (first attempts)."""
    STREAMING = "streaming"
    REOPENING = "reopening"
    """Lost after it was open; trying again with backoff."""
    FINISHED = "finished"
    """A file ended and does not loop."""
    STOPPED = "stopped"


@dataclass(frozen=True)
class CapturedFrame:
    """A frame and when it was read (``time.monotonic`` seconds)."""

    pixels: Pixels
    sequence: int
    captured_at: float
    native_size: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class CaptureStats:
    """Counters of a :class:`LatestFrameCapture`."""

    state: CaptureState
    frames_captured: int
    frames_dropped: int
    """Frames skipped (a backlog dropped) to stay current."""
    reopens: int
    """Successful reopenings after the source was lost."""
    attempts: int
    """Failed attempts since the source was last open (or since the start)."""
    last_error: str


class LatestFrameCapture:
    """Reads a source in its own thread and keeps only the newest frame.

    A live source is read as fast as it delivers, so :meth:`latest` is never behind it; a file
    is read once per ``file_period`` so that it plays at the consumer's rate. A source that
    fails to open or is lost is retried with ``backoff``; each step goes to ``report``.

    Args:
        source: What to read.
        backoff: Delays between attempts to open.
        report: Receives ``(level, message)`` lines.
        file_period: Seconds between frames read from a file.
        on_frame: Called in the capture thread with each new frame (so a live frame can go out
            at once instead of waiting for a consumer's timer).
    """

    def __init__(
        self,
        source: FrameSource,
        backoff: ReopenBackoff,
        report: Reporter,
        file_period: float,
        on_frame: Callable[[CapturedFrame], None] | None = None,
    ) -> None:
        self._source = source
        self._on_frame = on_frame
        self._backoff = backoff
        self._report = report
        self._file_period = file_period
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: CapturedFrame | None = None
        self._state = CaptureState.CONNECTING
        self._frames_captured = 0
        self._reopens = 0
        self._attempts = 0
        self._last_error = ""
        self._next_file_read = 0.0
        self._thread = threading.Thread(target=self._run, name="video-capture", daemon=True)

    def start(self) -> None:
        """Starts the capture thread."""
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Stops the thread, which releases the source; returns False if it did not end in time.

        A thread still inside a blocking OpenCV call is left to finish on its own (it is a
        daemon); the source is never released under a read in progress.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def latest(self) -> CapturedFrame | None:
        """The newest frame read so far."""
        with self._lock:
            return self._latest

    def stats(self) -> CaptureStats:
        """A snapshot of the counters."""
        with self._lock:
            return CaptureStats(
                state=self._state,
                frames_captured=self._frames_captured,
                frames_dropped=self._source.frames_dropped,
                reopens=self._reopens,
                attempts=self._attempts,
                last_error=self._last_error,
            )

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._source.is_open and not self._try_open():
                    continue
                if not self._read_one():
                    return
        finally:
            self._source.close()
            with self._lock:
                if self._state is not CaptureState.FINISHED:
                    self._state = CaptureState.STOPPED

    def _try_open(self) -> bool:
        if self._stop.wait(self._backoff.seconds_until_due()):
            return False
        try:
            self._source.open()
        except VideoSourceError as error:
            with self._lock:
                self._attempts += 1
                self._last_error = str(error)
                attempts, state = self._attempts, self._state
            delay = self._backoff.next_delay()
            if state is CaptureState.CONNECTING and attempts == 1:
                self._report("error", f"{error}; retrying in {delay:.1f} s")
            else:
                self._report("warning", f"{error}; retrying in {delay:.1f} s (attempt {attempts})")
            return False
        with self._lock:
            was_lost = self._state is CaptureState.REOPENING
            attempts = self._attempts
            self._attempts = 0
            self._last_error = ""
            if was_lost:
                self._reopens += 1
            self._state = CaptureState.STREAMING
        self._backoff.reset()
        if was_lost:
            self._report(
                "info",
                f"reopened video source {self._source.spec.text!r} after {attempts + 1} attempts",
            )
        else:
            self._report("info", f"opened video source {self._source.spec.text!r}")
        self._next_file_read = time.monotonic()
        return True

    def _read_one(self) -> bool:
        """Reads one frame; returns False when the capture is over (a finished file)."""
        pixels = self._source.read()
        captured_at = self._source.captured_at or time.monotonic()
        if pixels is not None:
            with self._lock:
                self._frames_captured += 1
                self._latest = frame = CapturedFrame(
                    pixels, self._frames_captured, captured_at, self._source.native_size
                )
            if self._on_frame is not None:
                self._on_frame(frame)
            if not self._source.spec.is_live:
                self._pace_file(captured_at)
            return True
        if self._source.finished:
            self._set_state(CaptureState.FINISHED)
            self._report(
                "warning",
                f"video file {self._source.spec.text!r} finished (loop is false): no more frames",
            )
            return False
        self._source.close()
        with self._lock:
            self._state = CaptureState.REOPENING
            self._last_error = f"lost video source {self._source.spec.text!r}"
        delay = self._backoff.next_delay()
        self._report(
            "warning", f"lost video source {self._source.spec.text!r}: reopening in {delay:.1f} s"
        )
        return True

    def _pace_file(self, now: float) -> None:
        self._next_file_read += self._file_period
        if self._next_file_read < now:
            # Behind (a slow read): start the schedule again rather than rushing to catch up.
            self._next_file_read = now
        self._stop.wait(self._next_file_read - now)

    def _set_state(self, state: CaptureState) -> None:
        with self._lock:
            self._state = state


class MjpegHttpSource:
    """An MJPEG-over-HTTP stream read by the project itself, so that no backlog can build.

    :meth:`open` connects (HTTP/1.0 GET, so no chunked encoding) and checks for a
    ``multipart/x-mixed-replace`` answer; a receiver thread then takes the parts as they come
    and keeps only the newest complete JPEG with the time its last byte arrived. :meth:`read`
    waits for a JPEG newer than the last one it returned, decodes only that one and counts the
    ones it never decoded in :attr:`frames_dropped`. A part that does not decode is counted in
    :attr:`frames_corrupt` and skipped; a closed connection or ``read_timeout`` of silence
    makes :meth:`read` return None (lost: the capture reopens it).

    Args:
        spec: A URL source with the ``http`` scheme.
        frame_format: Output size, encoding and resize mode.
        open_timeout: Seconds to connect and receive the answer's headers.
        read_timeout: Seconds the stream may stay silent before it counts as lost.
    """

    MAX_PART_BYTES = 64 * 1024 * 1024
    """A part (or header block) larger than this means a broken stream: the source is lost."""

    def __init__(
        self,
        spec: SourceSpec,
        frame_format: FrameFormat,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        if spec.url is None or urlsplit(spec.url).scheme.lower() != "http":
            raise ValueError(f"MjpegHttpSource reads http:// URLs, got {spec.text!r}")
        self.spec = spec
        self.frame_format = frame_format
        self.finished = False
        self.captured_at: float | None = None
        self.frames_dropped = 0
        self.frames_corrupt = 0
        self.native_size = (0, 0)
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._condition = threading.Condition()
        self._newest: tuple[int, bytes, float] | None = None  # index, JPEG, arrival
        self._received = 0
        self._returned = 0
        self._lost = False

    @property
    def is_open(self) -> bool:
        """Whether a connection is open."""
        return self._socket is not None

    def open(self) -> None:
        """Connects and starts receiving.

        Raises:
            VideoSourceError: If nothing answers, the answer is not 200, or not MJPEG.
        """
        self.close()
        parts = urlsplit(self.spec.url or "")
        host, port = parts.hostname or "", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            sock = socket.create_connection((host, port), timeout=self._open_timeout)
        except OSError as error:
            raise VideoSourceError(
                f"cannot open video source {self.spec.text!r}: could not connect to the URL: "
                f"nothing answers at {host}:{port} "
                f"({error.strerror or type(error).__name__})"
            ) from error
        try:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            head, rest = self._read_head(sock)
            headers = self._headers_of(head)
            stream = _ByteStream(
                sock, rest, chunked="chunked" in headers.get("transfer-encoding", "")
            )
            buffer = bytearray()
            boundary = self._boundary_of(headers, stream, buffer)
        except (OSError, ValueError, VideoSourceError) as error:
            sock.close()
            if isinstance(error, VideoSourceError):
                raise
            raise VideoSourceError(f"video source {self.spec.text!r}: {error}") from error
        sock.settimeout(self._read_timeout)
        with self._condition:
            self._socket, self._lost, self._newest = sock, False, None
        self._thread = threading.Thread(
            target=self._receive, args=(stream, boundary, buffer), name="mjpeg-receive",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    def read(self) -> Pixels | None:
        """The newest JPEG not yet returned, decoded and converted; None if the stream is lost."""
        while True:
            with self._condition:
                deadline = time.monotonic() + self._read_timeout
                while not self._lost and (
                    self._newest is None or self._newest[0] <= self._returned
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._socket is None:
                        return None
                    self._condition.wait(remaining)
                if self._newest is None or self._newest[0] <= self._returned:
                    return None  # lost, nothing new left
                index, jpeg, arrived = self._newest
                self.frames_dropped += index - self._returned - 1
                self._returned = index
            frame = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
            if frame is None or frame.size == 0:
                self.frames_corrupt += 1
                continue
            self.captured_at = arrived
            self.native_size = (frame.shape[1], frame.shape[0])
            return convert_frame(frame, self.frame_format)

    def close(self) -> None:
        """Closes the connection and waits for the receiver thread."""
        with self._condition:
            sock, self._socket = self._socket, None
            self._condition.notify_all()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
            self._thread = None

    def _read_head(self, sock: socket.socket) -> tuple[str, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise VideoSourceError(
                    f"video source {self.spec.text!r}: the server closed the connection "
                    "before answering"
                )
            data += chunk
            if len(data) > 65536:
                raise VideoSourceError(f"video source {self.spec.text!r}: answer headers too long")
        head, rest = data.split(b"\r\n\r\n", 1)
        return head.decode("latin-1"), rest

    def _headers_of(self, head: str) -> dict[str, str]:
        lines = head.split("\r\n")
        status = lines[0].split()
        if len(status) < 2 or status[1] != "200":
            raise VideoSourceError(f"video source {self.spec.text!r}: server answered {lines[0]!r}")
        return {
            name.strip().lower(): value.strip().lower() if name.strip().lower() != "content-type"
            else value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }  # fmt: skip

    def _boundary_of(
        self, headers: dict[str, str], stream: "_ByteStream", buffer: bytearray
    ) -> bytes:
        """The part boundary: from the Content-Type, or else from the body's first line.

        ffmpeg's HTTP server, for one, says application/octet-stream.
        """
        content_type = headers.get("content-type", "")
        match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
        if content_type.lower().startswith("multipart/x-mixed-replace") and match is not None:
            boundary = match.group(1)
            return (boundary if boundary.startswith("--") else "--" + boundary).encode("latin-1")
        while b"\r\n" not in buffer and len(buffer) < 256:
            chunk = stream.recv()
            if not chunk:
                break
            buffer += chunk
        first_line = bytes(buffer.split(b"\r\n", 1)[0])
        if first_line.startswith(b"--") and 2 < len(first_line) <= 72 and b"\r\n" in buffer:
            return first_line
        raise VideoSourceError(
            f"video source {self.spec.text!r} is not an MJPEG stream (Content-Type "
            f"{content_type or 'none'!r}); set stream_reader to opencv for other formats"
        )

    def _receive(self, sock: "_ByteStream", boundary: bytes, buffer: bytearray) -> None:
        """Receiver thread: splits the stream into parts and keeps the newest JPEG."""
        try:
            while True:
                part = self._next_part(sock, boundary, buffer)
                if part is None:
                    break
                with self._condition:
                    self._received += 1
                    self._newest = (self._received, part, time.monotonic())
                    self._condition.notify_all()
        except (OSError, ValueError):
            pass  # a closed or broken connection: lost
        with self._condition:
            self._lost = True
            self._condition.notify_all()

    def _next_part(self, sock: "_ByteStream", boundary: bytes, buffer: bytearray) -> bytes | None:
        """The next part's body, or None at the end of the stream."""
        start = self._fill_until(sock, buffer, lambda: buffer.find(boundary))
        if start is None:
            return None
        del buffer[: start + len(boundary)]
        end = self._fill_until(sock, buffer, lambda: buffer.find(b"\r\n\r\n"))
        if end is None:
            return None
        headers = bytes(buffer[:end]).decode("latin-1").lower()
        del buffer[: end + 4]
        length = re.search(r"content-length:\s*(\d+)", headers)
        if length is not None:
            size = int(length.group(1))
            if size > self.MAX_PART_BYTES:
                raise ValueError(f"part of {size} bytes")
            if self._fill_until(sock, buffer, lambda: size if len(buffer) >= size else -1) is None:
                return None
        else:
            found = self._fill_until(sock, buffer, lambda: buffer.find(boundary))
            if found is None:
                return None
            size = found
        body = bytes(buffer[:size]).rstrip(b"\r\n")
        del buffer[:size]
        return body

    def _fill_until(
        self, sock: "_ByteStream", buffer: bytearray, position: Callable[[], int]
    ) -> int | None:
        """Receives into ``buffer`` until ``position()`` is not -1; None when the stream ends."""
        while (found := position()) < 0:
            if len(buffer) > self.MAX_PART_BYTES:
                raise ValueError("no part boundary within the size limit")
            chunk = sock.recv()
            if not chunk:
                return None
            buffer += chunk
        return found


class _ByteStream:
    """An HTTP body from a socket: plain, or with chunked transfer encoding removed."""

    def __init__(self, sock: socket.socket, already: bytes, chunked: bool) -> None:
        self._socket = sock
        self._chunked = chunked
        self._raw = bytearray(already)
        self._left_in_chunk = 0
        self._ended = False

    def recv(self) -> bytes:
        """The next bytes of the body; b"" at its end."""
        if not self._chunked:
            if self._raw:
                data, self._raw = bytes(self._raw), bytearray()
                return data
            return self._socket.recv(1 << 16)
        while not self._ended:
            if self._left_in_chunk:
                if not self._raw and not self._more():
                    return b""
                data = bytes(self._raw[: self._left_in_chunk])
                del self._raw[: len(data)]
                self._left_in_chunk -= len(data)
                return data
            # A chunk header: optional CRLF after the previous chunk, then "size[;ext]\r\n".
            while self._raw[:2] == b"\r\n":
                del self._raw[:2]
            end = self._raw.find(b"\r\n")
            if end < 0:
                if len(self._raw) > 1024:
                    raise ValueError("chunk header too long")
                if not self._more():
                    return b""
                continue
            size = int(bytes(self._raw[:end]).split(b";")[0].strip() or b"0", 16)
            del self._raw[: end + 2]
            if size == 0:
                self._ended = True
            self._left_in_chunk = size
        return b""

    def _more(self) -> bool:
        data = self._socket.recv(1 << 16)
        self._raw += data
        return bool(data)


STREAM_READERS = ("auto", "opencv")
"""``auto``: the project's own MJPEG reader for http:// URLs, OpenCV for the rest."""


def open_frame_source(
    spec: SourceSpec, frame_format: FrameFormat, loop: bool = True, reader: str = "auto"
) -> "VideoSource | MjpegHttpSource":
    """The source object for ``spec`` (see :data:`STREAM_READERS`)."""
    if reader not in STREAM_READERS:
        raise ValueError(f"stream reader must be one of {', '.join(STREAM_READERS)}")
    if reader == "auto" and spec.url is not None and spec.url.lower().startswith("http://"):
        return MjpegHttpSource(spec, frame_format)
    return VideoSource(spec, frame_format, loop=loop)
