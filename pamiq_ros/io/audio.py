"""Audio capture from a file, a stream URL, a PulseAudio/PipeWire source or an ALSA device.

No ROS import here. The audio sensor node wraps these pieces:

- :func:`parse_audio_source` turns the ``source`` parameter into an :class:`AudioSourceSpec`:
  ``pulse:NAME`` (a PulseAudio/PipeWire source, an output's ``.monitor`` included; ``pulse:``
  alone is the default output's monitor), ``alsa:DEVICE`` (``alsa:hw:1,0``, ``alsa:default``),
  a URL (``http://...``) or a file path.
- :class:`PyAvAudioSource` decodes files and streams with PyAV (FFmpeg) and resamples them
  with FFmpeg's swresample to the wanted rate and channels.
- :class:`SoundcardAudioSource` (``pulse:``) and :class:`SounddeviceAudioSource` (``alsa:``)
  read devices; their libraries are imported only when such a source is opened, and a missing
  library or device is an :class:`AudioSourceError` naming it.
- :class:`AudioCapture` reads in its own thread, cuts fixed-size chunks, stamps each with the
  monotonic time its first frame was captured, paces a file at its real rate, and reopens a
  lost source with :class:`~pamiq_ros.io.capture.ReopenBackoff`.

Samples travel inside as float32 in [-1, 1], shape ``(frames, channels)``;
:func:`encode_samples` writes them as ``S16LE`` or ``F32LE`` bytes for the message.
"""

import contextlib
import enum
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from pamiq_ros.io.capture import CaptureState, ReopenBackoff, Reporter

Samples = npt.NDArray[np.float32]
"""Audio as float32 in [-1, 1], shape ``(frames, channels)``."""

SAMPLE_FORMATS: dict[str, type[np.generic]] = {"S16LE": np.int16, "F32LE": np.float32}
"""The sample formats a chunk may carry (audio_common's names), and their NumPy types."""

LIVE_STREAM_OPTIONS: dict[str, str] = {
    "probesize": "32",  # a live stream's header says all; FFmpeg's default probe waits ~5 s
    "analyzeduration": "0",
    "max_size": "2048",  # WAV/PCM packets of 2 KiB (~12 ms at 44.1 kHz stereo), not 16 KiB
}
"""FFmpeg options for streams: start at once and hand over small packets (low latency)."""

DRIFT_SETTLE_S = 1.0
"""Seconds after opening before the drift's reference is taken."""

_URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_LAYOUTS = {1: "mono", 2: "stereo"}


class AudioSourceError(RuntimeError):
    """An audio source that cannot be opened or read; the message names it and the reason."""


class AudioSourceKind(enum.Enum):
    """What a source string designates."""

    FILE = "file"
    URL = "url"
    PULSE = "pulse"
    ALSA = "alsa"


@dataclass(frozen=True)
class AudioSourceSpec:
    """A parsed ``source`` parameter: its kind and the name or location inside it."""

    kind: AudioSourceKind
    location: str

    @property
    def is_live(self) -> bool:
        """True for devices and streams (they pace themselves); False for a file."""
        return self.kind is not AudioSourceKind.FILE


def parse_audio_source(text: str) -> AudioSourceSpec:
    """Parses a ``source`` parameter (see the module docstring for the forms).

    Raises:
        ValueError: If it is empty or an ``alsa:`` source has no device.
    """
    text = text.strip()
    if not text:
        raise ValueError("audio source is empty: give pulse:NAME, alsa:DEVICE, a URL or a file")
    if text.startswith("pulse:"):
        return AudioSourceSpec(AudioSourceKind.PULSE, text.removeprefix("pulse:"))
    if text.startswith("alsa:"):
        device = text.removeprefix("alsa:")
        if not device:
            raise ValueError("an alsa: source needs a device, e.g. alsa:default or alsa:hw:1,0")
        return AudioSourceSpec(AudioSourceKind.ALSA, device)
    if _URL_PATTERN.match(text):
        return AudioSourceSpec(AudioSourceKind.URL, text)
    return AudioSourceSpec(AudioSourceKind.FILE, text)


@dataclass(frozen=True)
class AudioFormat:
    """What the sensor publishes: frames per second, channels, and the sample encoding."""

    sample_rate: int = 16000
    channels: int = 2
    sample_format: str = "S16LE"

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 192000:
            raise ValueError(f"sample_rate must be in 1000..192000 Hz, got {self.sample_rate}")
        if self.channels not in _LAYOUTS:
            raise ValueError(f"channels must be 1 or 2, got {self.channels}")
        if self.sample_format not in SAMPLE_FORMATS:
            raise ValueError(
                f"sample_format must be one of {', '.join(SAMPLE_FORMATS)}, "
                f"got {self.sample_format!r}"
            )

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one frame (one sample per channel)."""
        return self.channels * np.dtype(SAMPLE_FORMATS[self.sample_format]).itemsize


def encode_samples(samples: Samples, sample_format: str) -> bytes:
    """Interleaved little-endian bytes of ``samples`` (clipped to [-1, 1]) in ``sample_format``."""
    clipped = np.clip(samples, -1.0, 1.0)
    if sample_format == "S16LE":
        return np.round(clipped * 32767.0).astype("<i2").tobytes()
    if sample_format == "F32LE":
        return clipped.astype("<f4").tobytes()
    raise ValueError(f"unknown sample_format {sample_format!r}")


def decode_samples(data: bytes, sample_format: str, channels: int) -> Samples:
    """The inverse of :func:`encode_samples`: float32 of shape ``(frames, channels)``.

    Raises:
        ValueError: If the format is unknown or the bytes are not whole frames.
    """
    if sample_format not in SAMPLE_FORMATS or channels < 1:
        raise ValueError(f"cannot decode sample_format {sample_format!r} with {channels} channels")
    dtype = np.dtype(SAMPLE_FORMATS[sample_format]).newbyteorder("<")
    if len(data) % (dtype.itemsize * channels):
        raise ValueError(
            f"{len(data)} bytes are not whole frames of {channels} x {sample_format} samples"
        )
    values = np.frombuffer(data, dtype=dtype).reshape(-1, channels)
    if sample_format == "S16LE":
        return (values.astype(np.float32) / 32767.0).astype(np.float32)
    return values.astype(np.float32)


class AudioSource(Protocol):
    """What :class:`AudioCapture` reads from."""

    spec: AudioSourceSpec
    finished: bool
    """True once a file that does not loop has ended."""

    def open(self) -> None:
        """Opens the source; raises :class:`AudioSourceError` with the reason if it cannot."""

    def read(self) -> Samples | None:
        """The next block of frames (any length), or None at the end of a file that does not loop.

        Raises:
            AudioSourceError: If the source is lost.
        """

    def close(self) -> None:
        """Releases the source."""


class PyAvAudioSource:
    """A file or stream through PyAV, resampled by FFmpeg to ``audio_format``.

    Args:
        spec: A file or URL spec.
        audio_format: The rate and channels to deliver.
        loop: Whether a file starts over at its end.
        timeout_s: Longest wait to open a stream or for its next bytes.
    """

    def __init__(
        self,
        spec: AudioSourceSpec,
        audio_format: AudioFormat,
        loop: bool = True,
        timeout_s: float = 5.0,
    ) -> None:
        self.spec = spec
        self.finished = False
        self._format = audio_format
        self._loop = loop and spec.kind is AudioSourceKind.FILE
        self._timeout_s = timeout_s
        self._container: Any = None
        self._stream: Any = None
        self._resampler: Any = None
        self._packets: Any = None

    def open(self) -> None:
        """Opens the source; raises :class:`AudioSourceError` naming it if it cannot."""
        import av

        if self.spec.kind is AudioSourceKind.FILE and not Path(self.spec.location).is_file():
            raise AudioSourceError(f"audio file {self.spec.location!r} does not exist")
        try:
            self._container = av.open(
                self.spec.location,
                options=dict(LIVE_STREAM_OPTIONS) if self.spec.is_live else {},
                timeout=(self._timeout_s, self._timeout_s),
            )
        except (av.error.FFmpegError, OSError) as error:
            raise AudioSourceError(
                f"cannot open audio {self.spec.kind.value} {self.spec.location!r}: {error}"
            ) from error
        if not self._container.streams.audio:
            self.close()
            raise AudioSourceError(f"{self.spec.location!r} has no audio stream")
        self._stream = self._container.streams.audio[0]
        self._resampler = av.AudioResampler(
            format="flt", layout=_LAYOUTS[self._format.channels], rate=self._format.sample_rate
        )
        self._packets = self._container.demux(self._stream)
        self.finished = False

    def read(self) -> Samples | None:
        """The next block of frames, or None at the end of a file."""
        import av

        if self._container is None:
            raise AudioSourceError(f"audio {self.spec.location!r} is not open")
        try:
            while True:
                packet = next(self._packets, None)
                if packet is not None and packet.size == 0:
                    continue  # the demuxer's closing flush packet
                if packet is None:
                    if self.spec.kind is not AudioSourceKind.FILE:
                        raise AudioSourceError(f"stream {self.spec.location!r} ended")
                    if not self._loop:
                        self.finished = True
                        # What the resampler still holds: the file's last frames.
                        tail = [f.to_ndarray() for f in self._resampler.resample(None)]
                        if tail:
                            return np.concatenate(tail, axis=1).reshape(-1, self._format.channels)
                        return None
                    self._container.seek(0)
                    self._packets = self._container.demux(self._stream)
                    continue
                blocks = [
                    resampled.to_ndarray().reshape(-1, self._format.channels)
                    for frame in packet.decode()
                    for resampled in self._resampler.resample(frame)
                ]
                if blocks:
                    return np.concatenate(blocks).astype(np.float32, copy=False)
        except (av.error.FFmpegError, OSError) as error:
            raise AudioSourceError(
                f"reading audio {self.spec.location!r} failed: {error}"
            ) from error

    def close(self) -> None:
        """Releases the source."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
        self._container = self._stream = self._resampler = self._packets = None


class _DeviceAudioSource:
    """What both device sources share: blocks of ``block_frames``, read errors as a loss.

    Args:
        spec: The device's spec.
        audio_format: Rate and channels asked of the device (or sound server, which resamples).
        block_frames: Frames per read.
    """

    kind_name = "audio device"

    def __init__(self, spec: AudioSourceSpec, audio_format: AudioFormat, block_frames: int) -> None:
        self.spec = spec
        self.finished = False
        self._format = audio_format
        self._block_frames = block_frames
        self._handle: Any = None

    def open(self) -> None:
        """Opens the source; raises :class:`AudioSourceError` naming it if it cannot."""
        self._handle = self._open_device()

    def read(self) -> Samples | None:
        """The next block of frames.

        Raises:
            AudioSourceError: If the device is not open or is lost.
        """
        if self._handle is None:
            raise AudioSourceError(f"{self.kind_name} {self.spec.location!r} is not open")
        try:
            block = self._read_block(self._handle)
        except Exception as error:
            raise AudioSourceError(
                f"{self.kind_name} {self.spec.location!r} lost: {error}"
            ) from error
        return np.asarray(block, dtype=np.float32).reshape(-1, self._format.channels)

    def close(self) -> None:
        """Releases the source."""
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._release(self._handle)
        self._handle = None

    def _open_device(self) -> Any:
        raise NotImplementedError

    def _read_block(self, handle: Any) -> Any:
        raise NotImplementedError

    def _release(self, handle: Any) -> None:
        raise NotImplementedError


class SoundcardAudioSource(_DeviceAudioSource):
    """A PulseAudio/PipeWire source through ``soundcard``.

    ``pulse:`` alone is the default output's monitor: what the machine plays, which is how
    VRChat's sound is captured on Linux.
    """

    kind_name = "PulseAudio/PipeWire source"

    @override
    def _open_device(self) -> Any:
        name = self.spec.location or "(the default output's monitor)"
        try:
            import soundcard  # type: ignore[import-untyped]  # connects to the server
        except Exception as error:  # no library, no libpulse, or no server to connect to
            raise AudioSourceError(
                f"cannot use {self.kind_name} {name!r}: {type(error).__name__}: {error}"
            ) from error
        try:
            device = self.spec.location or soundcard.default_speaker().name
            microphone = soundcard.get_microphone(device, include_loopback=True)
            recorder = microphone.recorder(
                samplerate=self._format.sample_rate,
                channels=self._format.channels,
                blocksize=self._block_frames,
            )
            recorder.__enter__()
        except Exception as error:
            raise AudioSourceError(
                f"{self.kind_name} {name!r} cannot be opened: {error} "
                "(list them with `pactl list short sources`)"
            ) from error
        return recorder

    @override
    def _read_block(self, handle: Any) -> Any:
        return handle.record(numframes=self._block_frames)

    @override
    def _release(self, handle: Any) -> None:
        handle.__exit__(None, None, None)


class SounddeviceAudioSource(_DeviceAudioSource):
    """An ALSA capture device through ``sounddevice`` (PortAudio)."""

    kind_name = "ALSA device"

    @override
    def _open_device(self) -> Any:
        try:
            import sounddevice  # type: ignore[import-untyped]  # loads PortAudio
        except Exception as error:
            raise AudioSourceError(
                f"cannot use {self.kind_name} {self.spec.location!r}: {type(error).__name__}: "
                f"{error} (sounddevice needs PortAudio: apt-get install libportaudio2)"
            ) from error
        try:
            stream = sounddevice.InputStream(
                device=self.spec.location,
                samplerate=self._format.sample_rate,
                channels=self._format.channels,
                dtype="float32",
                blocksize=self._block_frames,
            )
            stream.start()
        except Exception as error:
            raise AudioSourceError(
                f"{self.kind_name} {self.spec.location!r} cannot be opened: {error} "
                "(list capture devices with `arecord -L`)"
            ) from error
        return stream

    @override
    def _read_block(self, handle: Any) -> Any:
        block, _overflowed = handle.read(self._block_frames)
        return block

    @override
    def _release(self, handle: Any) -> None:
        handle.close()


def open_audio_source(
    spec: AudioSourceSpec, audio_format: AudioFormat, block_frames: int, loop: bool = True
) -> AudioSource:
    """The reader for ``spec`` (not opened yet)."""
    if spec.kind is AudioSourceKind.PULSE:
        return SoundcardAudioSource(spec, audio_format, block_frames)
    if spec.kind is AudioSourceKind.ALSA:
        return SounddeviceAudioSource(spec, audio_format, block_frames)
    return PyAvAudioSource(spec, audio_format, loop=loop)


@dataclass(frozen=True)
class AudioChunk:
    """A fixed-size chunk of captured audio.

    Attributes:
        samples: float32, shape ``(frames, channels)``.
        first_frame: Frames delivered before this chunk since the source was (re)opened.
        captured_at: Monotonic time the chunk's first frame was captured.
        opened_count: How many times the source has been opened (1 for the first).
    """

    samples: Samples
    first_frame: int
    captured_at: float
    opened_count: int


@dataclass(frozen=True)
class AudioCaptureStats:
    """A snapshot of an :class:`AudioCapture`'s counters."""

    state: CaptureState
    chunks: int
    frames: int
    reopens: int
    attempts: int
    last_error: str
    drift_s: float
    """How far the source's sample clock (frames over the rate) has moved ahead of the wall clock
    since ``DRIFT_SETTLE_S`` after opening: positive when it delivers faster than its nominal
    rate. (The first second is left out: a stream's opening backlog arrives in a burst.)"""


class AudioCapture:
    """Reads a source in its own thread and hands fixed-size chunks to ``on_chunk``.

    A live source is read as fast as it delivers; a file is paced by its sample clock, so its
    chunks come at the real rate. A source that cannot be opened or is lost is reopened after
    :class:`ReopenBackoff`'s delays; each step is reported through ``report``.

    Args:
        source: What to read.
        audio_format: The rate and channels the source delivers.
        chunk_frames: Frames per chunk.
        on_chunk: Called from the capture thread with each chunk.
        backoff: Delays between attempts to (re)open.
        report: Receives ``(level, message)`` for each step worth a log line.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        source: AudioSource,
        audio_format: AudioFormat,
        chunk_frames: int,
        on_chunk: Callable[[AudioChunk], None],
        backoff: ReopenBackoff,
        report: Reporter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if chunk_frames <= 0:
            raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
        self._source = source
        self._format = audio_format
        self._chunk_frames = chunk_frames
        self._on_chunk = on_chunk
        self._backoff = backoff
        self._report = report
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audio-capture", daemon=True)
        self._state = CaptureState.CONNECTING
        self._chunks = 0
        self._frames = 0
        self._opens = 0
        self._attempts = 0
        self._last_error = ""
        self._opened_at = 0.0
        self._pending: list[Samples] = []
        self._pending_frames = 0
        self._drift_reference: float | None = None

    def start(self) -> None:
        """Starts the capture thread."""
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> bool:
        """Stops the thread and closes the source; False if the thread did not end in time."""
        self._stop.set()
        self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if ended:
            self._source.close()
        with self._lock:
            self._state = CaptureState.STOPPED
        return ended

    def stats(self) -> AudioCaptureStats:
        """The counters now."""
        with self._lock:
            drift = 0.0
            if self._state is CaptureState.STREAMING and self._drift_reference is not None:
                drift = self._sample_clock_lead() - self._drift_reference
            return AudioCaptureStats(
                self._state,
                self._chunks,
                self._frames,
                max(0, self._opens - 1),
                self._attempts,
                self._last_error,
                drift,
            )

    def _sample_clock_lead(self) -> float:
        """Frames delivered over the rate, less the wall time since opening (lock held)."""
        return self._frames / self._format.sample_rate - (self._clock() - self._opened_at)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._state in (CaptureState.CONNECTING, CaptureState.REOPENING):
                error = self._try_open()
                if error is not None:
                    delay = self._backoff.next_delay()
                    self._report("error", f"{error}; retrying in {delay:.1f} s")
                    self._stop.wait(delay)
                continue
            if self._state is CaptureState.FINISHED:
                self._stop.wait(0.1)
                continue
            self._read_one()

    def _try_open(self) -> str | None:
        """Opens the source; the error's text if it cannot."""
        try:
            self._source.open()
        except AudioSourceError as error:
            with self._lock:
                self._attempts += 1
                self._last_error = str(error)
            return str(error)
        self._backoff.reset()
        with self._lock:
            self._opens += 1
            self._attempts = 0
            self._state = CaptureState.STREAMING
            self._opened_at = self._clock()
            self._frames = 0
            self._pending, self._pending_frames = [], 0
            self._drift_reference = None
        verb = "reopened" if self._opens > 1 else "opened"
        self._report("info", f"audio source {self._source.spec.location or 'default'!r} {verb}")
        return None

    def _read_one(self) -> None:
        try:
            block = self._source.read()
        except AudioSourceError as error:
            self._source.close()
            with self._lock:
                self._state = CaptureState.REOPENING
                self._last_error = str(error)
            self._report("warning", f"{error}; reopening")
            return
        arrived = self._clock()
        if block is None:
            if self._source.finished:
                with self._lock:
                    self._state = CaptureState.FINISHED
                self._report("info", "audio file finished (loop is false)")
            return
        if len(block) == 0:
            return
        self._pending.append(block)
        self._pending_frames += len(block)
        # The newest frame arrived now; earlier ones one sample period apart before it.
        self._emit_chunks(arrived)

    def _emit_chunks(self, arrived: float) -> None:
        rate = self._format.sample_rate
        while self._pending_frames >= self._chunk_frames:
            joined = np.concatenate(self._pending)
            chunk, rest = joined[: self._chunk_frames], joined[self._chunk_frames :]
            self._pending = [rest] if len(rest) else []
            if not self._source.spec.is_live:
                # A file: each chunk is due when the sample clock reaches its end.
                due = self._opened_at + (self._frames + self._chunk_frames) / rate
                self._stop.wait(max(0.0, due - self._clock()))
                captured_at = due - self._chunk_frames / rate
            else:
                captured_at = arrived - (self._chunk_frames + len(rest)) / rate
            with self._lock:
                first_frame = self._frames
                self._frames += self._chunk_frames
                self._pending_frames = len(rest)
                self._chunks += 1
                opens = self._opens
                if (
                    self._drift_reference is None
                    and self._clock() - self._opened_at > DRIFT_SETTLE_S
                ):
                    self._drift_reference = self._sample_clock_lead()
            self._on_chunk(AudioChunk(chunk.copy(), first_frame, captured_at, opens))
            if self._stop.is_set():
                return


class AudioWindow:
    """The newest ``window_frames`` of a stream of chunks: what a listener hears "now".

    Chunks must match ``audio_format`` (rate, channels); one that does not is refused with
    the reason, and the window keeps what it had. A gap in ``first_frame`` (a lost chunk, a
    reopened source) is counted; the window simply moves on. Before enough sound has come, the
    older part of the window is silence.

    Args:
        audio_format: Rate and channels the chunks must have.
        window_frames: Frames in the window (16000: 1 s at 16 kHz, as pamiq-vrchat's agent).
    """

    def __init__(self, audio_format: AudioFormat, window_frames: int) -> None:
        if window_frames <= 0:
            raise ValueError(f"window_frames must be positive, got {window_frames}")
        self.audio_format = audio_format
        self._samples = np.zeros((window_frames, audio_format.channels), dtype=np.float32)
        self._next_frame: int | None = None
        self.chunks = 0
        self.gaps = 0
        self.newest_stamp: float | None = None
        """Capture time (the chunks' clock) of the newest frame taken in."""

    def add(
        self, data: bytes, sample_format: str, sample_rate: int, channels: int,
        first_frame: int, stamp: float,
    ) -> None:  # fmt: skip
        """Takes in a chunk (the fields of an ``AudioChunk`` message).

        Raises:
            ValueError: If its rate or channels differ from the window's, or its bytes are not
                whole frames of ``sample_format``.
        """
        expected = (self.audio_format.sample_rate, self.audio_format.channels)
        if (sample_rate, channels) != expected:
            raise ValueError(
                f"a chunk of {sample_rate} Hz x {channels} channels does not fit a window of "
                f"{expected[0]} Hz x {expected[1]} channels"
            )
        samples = decode_samples(data, sample_format, channels)
        if self._next_frame is not None and first_frame != self._next_frame:
            self.gaps += 1
        self._next_frame = first_frame + len(samples)
        keep = min(len(samples), len(self._samples))
        self._samples = np.concatenate([self._samples[keep:], samples[len(samples) - keep :]])
        self.chunks += 1
        self.newest_stamp = stamp + len(samples) / sample_rate

    def latest(self) -> Samples:
        """A copy of the window, oldest frame first: ``(window_frames, channels)``."""
        return self._samples.copy()
