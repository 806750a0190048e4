"""The audio sensor node: sound from a device, a file or a stream -> ``audio/chunk``.

Sources (``source``): ``pulse:NAME`` a PulseAudio/PipeWire source (an output's monitor, e.g.
``pulse:alsa_output.pci-0000_00_1f.3.analog-stereo.monitor``: what the machine plays, which is
how VRChat's sound is heard on Linux; ``pulse:`` alone is the default output's monitor),
``alsa:DEVICE`` an ALSA capture device, a URL (the simulated world's
``http://127.0.0.1:8081/audio.wav``) or a file. Capture runs in its own thread
(``pamiq_ros.io.audio``): the sound is resampled to ``sample_rate`` and ``channels``, cut into
chunks of ``chunk_ms``, and each chunk is published at once with sensor QoS, stamped with the
capture time of its first frame. A file is played at its real rate. A source that cannot be
opened, or is lost, is retried with exponential backoff while the node keeps running, and the
reason (a missing device, a missing sound server) is in the log and ``/diagnostics``.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pamiq_ros_interfaces.msg import AudioChunk as AudioChunkMessage
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from typing_extensions import override

from pamiq_ros.core.frame_age import FrameAges
from pamiq_ros.core.health import (
    WARN,
    NewCount,
    Problems,
    RecentRate,
    check_rate,
    diagnostics_period_setting,
)
from pamiq_ros.core.settings import require_positive, setting
from pamiq_ros.io.audio import (
    SAMPLE_FORMATS,
    AudioCapture,
    AudioChunk,
    AudioFormat,
    encode_samples,
    open_audio_source,
    parse_audio_source,
)
from pamiq_ros.io.capture import ReopenBackoff, ReportLevel
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter, check_capture
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, run_node

AUDIO_TOPIC = "audio/chunk"


@dataclass(frozen=True)
class AudioSensorSettings:
    """Parameters of the audio sensor node."""

    source: str = setting(
        "http://127.0.0.1:8081/audio.wav",
        "Audio source: pulse:NAME (a PulseAudio/PipeWire source or output monitor; pulse: alone "
        "is the default output's monitor), alsa:DEVICE, a stream URL or a file path.",
    )
    sample_rate: int = setting(
        16000, "Published sample rate (Hz); the source is resampled.", low=8000, high=192000
    )
    channels: int = setting(2, "Published channels: 1 (mono) or 2 (stereo).", low=1, high=2)
    sample_format: str = setting(
        "S16LE", f"Published sample encoding: {' or '.join(SAMPLE_FORMATS)}."
    )
    chunk_ms: float = setting(100.0, "Length of each published chunk (ms).", low=1.0, high=1000.0)
    frame_id: str = setting("audio", "frame_id in each chunk's header.")
    loop: bool = setting(True, "Whether a file starts over at its end.")
    reopen_initial_delay: float = setting(
        0.5, "Seconds before the first attempt to reopen a lost or unopenable source."
    )
    reopen_max_delay: float = setting(
        5.0, "Longest delay between reopen attempts (s); the delay doubles up to it."
    )
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()

    def __post_init__(self) -> None:
        parse_audio_source(self.source)
        AudioFormat(self.sample_rate, self.channels, self.sample_format)
        require_positive(self, "chunk_ms", "reopen_initial_delay", "report_period")
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_ms ({self.chunk_ms}) is shorter than one sample")
        if self.reopen_max_delay < self.reopen_initial_delay:
            raise ValueError(
                f"reopen_max_delay ({self.reopen_max_delay}) must not be below "
                f"reopen_initial_delay ({self.reopen_initial_delay})"
            )

    @property
    def chunk_frames(self) -> int:
        """Frames per chunk."""
        return round(self.chunk_ms * 1e-3 * self.sample_rate)


class AudioSensorNode(Node, Controllable):
    """Publishes fixed-size stamped audio chunks on ``audio/chunk``."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("audio_sensor", **node_options)
        self.settings = declare_settings(self, AudioSensorSettings, self._apply_settings)
        settings = self.settings
        self._format = AudioFormat(settings.sample_rate, settings.channels, settings.sample_format)
        spec = parse_audio_source(settings.source)
        source = open_audio_source(spec, self._format, settings.chunk_frames, loop=settings.loop)
        self._publisher = self.create_publisher(
            AudioChunkMessage, AUDIO_TOPIC, qos_profile_sensor_data
        )
        self._diagnostics = DiagnosticsReporter(self, hardware_id=settings.source)
        self._ages = FrameAges()
        self._published = 0
        self._paused = False
        self._report_published = 0
        self._report_time = time.monotonic()
        self._capture = AudioCapture(
            source,
            self._format,
            settings.chunk_frames,
            self._on_chunk,
            ReopenBackoff(settings.reopen_initial_delay, settings.reopen_max_delay),
            self._log_capture_event,
        )
        self.get_logger().info(
            f"capturing audio from {spec.kind.value} {settings.source!r}: publishing "
            f"{AUDIO_TOPIC} as {settings.channels} x {settings.sample_format} at "
            f"{settings.sample_rate} Hz in chunks of {settings.chunk_frames} frames"
        )
        self._capture.start()
        self.create_timer(settings.report_period, self._report)
        self._recent_rate = RecentRate()
        self._new_captured = NewCount()
        self._period_timers = SettingTimers(self)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)

    def _apply_settings(self, new: AudioSensorSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        self.settings = new
        self._period_timers.apply(new, changed)

    @override
    def pause(self) -> str:
        self._paused = True
        return "publishing paused (capture goes on, so resuming gives current sound)"

    @override
    def resume(self) -> str:
        self._paused = False
        return "publishing resumed"

    @override
    def status(self) -> Mapping[str, object]:
        stats = self._capture.stats()
        return {
            "paused": self._paused,
            "source": self.settings.source,
            "state": stats.state.value,
            "chunks_captured": stats.chunks,
            "chunks_published": self._published,
            "reopens": stats.reopens,
            "drift_s": stats.drift_s,
            **self._ages.figures("chunk_age"),
        }

    def close(self) -> None:
        """Stops the capture thread, which releases the source."""
        if not self._capture.stop(timeout=3.0):
            self.get_logger().warning(
                "the capture thread is still inside a blocking read; leaving it to end on its own"
            )

    def _on_chunk(self, chunk: AudioChunk) -> None:
        """Capture thread: each chunk goes out at once, stamped with its first frame's capture."""
        if self._paused:
            return
        settings = self.settings
        age_s = time.monotonic() - chunk.captured_at
        message = AudioChunkMessage()
        try:
            message.header.stamp = (
                self.get_clock().now() - Duration(nanoseconds=int(age_s * 1e9))
            ).to_msg()
            message.header.frame_id = settings.frame_id
            message.sample_rate = settings.sample_rate
            message.channels = settings.channels
            message.sample_format = settings.sample_format
            message.frames = len(chunk.samples)
            message.first_frame = chunk.first_frame
            message.data = encode_samples(chunk.samples, settings.sample_format)
            self._publisher.publish(message)
        except Exception as error:  # the context may be going down
            self.get_logger().error(f"publishing an audio chunk failed: {error}")
            return
        self._published += 1
        # The age of the chunk's newest frame when it left: the sensor's own latency.
        self._ages.add(max(0.0, age_s - len(chunk.samples) / settings.sample_rate))

    def _report(self) -> None:
        stats = self._capture.stats()
        now = time.monotonic()
        elapsed = max(now - self._report_time, 1e-9)
        rate = (self._published - self._report_published) / elapsed
        self._report_time, self._report_published = now, self._published
        self.get_logger().info(
            f"chunks captured={stats.chunks} published={self._published} ({rate:.1f}/s) "
            f"| drift={stats.drift_s * 1e3:+.1f} ms | source={self.settings.source} "
            f"{stats.state.value} | reopens={stats.reopens}"
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: the capture's state, new chunks and the chunk rate."""
        stats = self._capture.stats()
        rate = self._recent_rate.add(time.monotonic(), self._published)
        new_chunks = self._new_captured.since_last(stats.chunks)
        problems = Problems()
        streaming = check_capture(
            problems, stats.state, stats.last_error, stats.attempts, new_chunks,
            ("audio source", "chunks"),
        )  # fmt: skip
        if streaming and self._paused:
            problems.add(WARN, "paused")
        elif streaming:
            check_rate(problems, rate, 1000.0 / self.settings.chunk_ms, "publishing chunks")
        self._diagnostics.publish(
            problems.level,
            problems.summary("streaming"),
            {
                "source": self.settings.source,
                "state": stats.state.value,
                "chunks_captured": stats.chunks,
                "chunks_published": self._published,
                "chunks_per_s": rate,
                "drift_s": stats.drift_s,
                "reopens": stats.reopens,
                "failed_attempts": stats.attempts,
                "last_error": stats.last_error,
                **self._ages.figures("chunk_age"),
            },
        )

    def _log_capture_event(self, level: ReportLevel, message: str) -> None:
        log = {"error": self.get_logger().error, "warning": self.get_logger().warning}
        log.get(level, self.get_logger().info)(message)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the audio sensor node until Ctrl-C."""
    run_node(AudioSensorNode, args)


if __name__ == "__main__":
    main()
