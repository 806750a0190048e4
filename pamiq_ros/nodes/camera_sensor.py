"""The camera sensor node: video from a device, a file or a stream URL -> ``camera/image_raw``.

Capture runs in its own thread (``pamiq_ros.io.capture``) and keeps only the newest frame; an
http:// MJPEG stream is read by the project's own reader, which drops any backlog so that a
slow machine skips frames instead of falling behind. A live frame is published from the capture
thread as soon as it is decoded (at most ``rate_hz``; a timer sends what that held back, and
paces a file), stamped with its capture time (for a stream, when its last byte arrived), with a
``camera/camera_info`` of the same stamp (from a calibration file or a field of view, following
the resize). The age of each published frame (capture to publish) is in the status and
``/diagnostics``. A source that cannot be opened, or is lost, is retried with exponential
backoff; the node keeps running.

With both ``width`` and ``height`` set, a frame of another aspect ratio is fitted by
``resize_mode``: crop (default: keep the aspect, cut the centre out), pad (keep it, black
borders) or stretch (distort).

For the latency benchmark (``stamp_from_frame``, off by default) the stamp is instead the send
time the simulated world wrote into the frame's pixels (``pamiq_ros.io.frame_stamp``).
"""

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
from rclpy.duration import Duration
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
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
from pamiq_ros.io.camera_info import Intrinsics, fill_camera_info, load_calibration
from pamiq_ros.io.capture import (
    STREAM_READERS,
    CapturedFrame,
    FrameFormat,
    LatestFrameCapture,
    ReopenBackoff,
    ReportLevel,
    open_frame_source,
    parse_source,
)
from pamiq_ros.io.frame_stamp import UNIT_NS, read_stamp, unwrap_units
from pamiq_ros.io.image_codec import RESIZE_MODES, encode_image
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter, check_capture
from pamiq_ros.nodes._lifecycle import AUTOSTART_DESCRIPTION, ManagedNode
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, replace_timer, run_node

IMAGE_TOPIC = "camera/image_raw"
CAMERA_INFO_TOPIC = "camera/camera_info"
PUBLISH_BURST = 2.0
"""Frames that may go out back to back before rate_hz holds the next one for the timer."""


@dataclass(frozen=True)
class CameraSensorSettings:
    """Parameters of the camera sensor node."""

    source: str = setting(
        "http://127.0.0.1:8080/stream.mjpg",
        "Video source: a camera device index ('0'), a video file path, or a stream URL "
        "(http, https, rtsp, udp, tcp...).",
    )
    width: int = setting(
        160, "Output image width in pixels; 0 keeps the native width (or, with height set, "
        "the aspect ratio)."
    )  # fmt: skip
    height: int = setting(
        120, "Output image height in pixels; 0 keeps the native height (or, with width set, "
        "the aspect ratio)."
    )  # fmt: skip
    resize_mode: str = setting(
        "crop", "With width and height both set, how another aspect ratio is met: crop (keep "
        "the aspect, cut the centre out), pad (keep it, black borders) or stretch (distort)."
    )  # fmt: skip
    stream_reader: str = setting(
        "auto", "auto: http:// MJPEG streams through the project's reader, which drops any "
        "backlog (newest frame only), the rest through OpenCV; opencv: everything through OpenCV."
    )  # fmt: skip
    camera_info_file: str = setting(
        "", "Camera calibration YAML (the standard ROS format) for camera/camera_info; empty: an "
        "ideal pinhole of horizontal_fov_deg."
    )  # fmt: skip
    horizontal_fov_deg: float = setting(
        90.0, "Without camera_info_file: the native image's horizontal field of view (degrees)."
    )
    rate_hz: float = setting(
        20.0, "Publish rate (Hz); a video file is also played at this rate (the file's pace is "
        "set at start-up).", low=0.1, high=1000.0, runtime=True,
    )  # fmt: skip
    encoding: str = setting("rgb8", "Output encoding: 'rgb8', 'bgr8' or 'mono8'.")
    frame_id: str = setting(
        "camera", "frame_id in the header of each published image and camera_info (the optical "
        "frame of the TF tree)."
    )  # fmt: skip
    loop: bool = setting(True, "Whether a video file starts over at its end.")
    reopen_initial_delay: float = setting(
        0.5, "Seconds before the first attempt to reopen a lost or unopenable source."
    )
    reopen_max_delay: float = setting(
        5.0, "Longest delay between reopen attempts (s); the delay doubles up to it."
    )
    report_period: float = setting(
        5.0, "Seconds between progress lines in the log.", low=0.05,
        high=3600.0, runtime=True,
    )  # fmt: skip
    stamp_from_frame: bool = setting(
        False,
        "Latency benchmark: stamp each image with the send time sim_world (stamp_frames) wrote "
        "into its pixels; a frame without one keeps its capture stamp and is counted.",
    )

    diagnostics_period: float = diagnostics_period_setting()
    autostart: bool = setting(True, AUTOSTART_DESCRIPTION)

    def __post_init__(self) -> None:
        parse_source(self.source)
        FrameFormat(self.width, self.height, self.encoding, self.resize_mode)
        if self.resize_mode not in RESIZE_MODES or self.stream_reader not in STREAM_READERS:
            raise ValueError(
                f"resize_mode must be one of {', '.join(RESIZE_MODES)} and stream_reader one of "
                f"{', '.join(STREAM_READERS)}"
            )
        if not 0 < self.horizontal_fov_deg < 180:
            raise ValueError(
                f"horizontal_fov_deg must be in (0, 180), got {self.horizontal_fov_deg}"
            )
        require_positive(self, "rate_hz", "reopen_initial_delay", "report_period")
        if self.reopen_max_delay < self.reopen_initial_delay:
            raise ValueError(
                f"reopen_max_delay ({self.reopen_max_delay}) must not be below "
                f"reopen_initial_delay ({self.reopen_initial_delay})"
            )


class CameraSensorNode(ManagedNode, Controllable):
    """Publishes the newest captured frame on ``camera/image_raw`` at ``rate_hz``."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("camera_sensor", **node_options)
        self.settings = declare_settings(self, CameraSensorSettings, self._apply_settings)
        settings = self.settings
        # OpenCV's own warnings on a failed open are vague ("can't be used to capture by name");
        # the capture module logs the source and the likely reason instead.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self._spec = parse_source(settings.source)
        self._calibration: Intrinsics | None = None
        self._intrinsics: dict[tuple[int, int, int, int], Intrinsics] = {}
        self._ages = FrameAges()
        self._capture: LatestFrameCapture | None = None
        self._publish_lock = threading.Lock()
        # A token bucket caps the rate at rate_hz on average while letting a frame that comes
        # a little early (a jittery source at about rate_hz) out at once.
        self._tokens = PUBLISH_BURST
        self._tokens_at = time.monotonic()
        self._publisher = self.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        self._info_publisher = self.create_publisher(
            CameraInfo, CAMERA_INFO_TOPIC, qos_profile_sensor_data
        )
        self._diagnostics = DiagnosticsReporter(self, hardware_id=settings.source)
        self._published = 0
        self._stamps_read = 0
        self._stamps_missing = 0
        self._paused = False
        self._last_sequence = 0
        self._report_published = 0
        self._report_time = time.monotonic()
        self._publish_timer = self.create_timer(1.0 / settings.rate_hz, self._publish_newest)
        self._period_timers = SettingTimers(self)
        self._period_timers.add("report_period", settings.report_period, self._report)
        self._recent_fps = RecentRate()
        self._new_captured = NewCount()
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)
        self.bring_up(settings.autostart)

    # --- lifecycle ----------------------------------------------------------------------------

    @override
    def configure(self) -> None:
        """Loads the calibration and opens the source (the capture thread opens and reads it)."""
        settings = self.settings
        calibration = None
        if settings.camera_info_file:
            calibration, _ = load_calibration(settings.camera_info_file)
        source = open_frame_source(
            self._spec,
            FrameFormat(settings.width, settings.height, settings.encoding, settings.resize_mode),
            loop=settings.loop,
            reader=settings.stream_reader,
        )
        capture = LatestFrameCapture(
            source,
            ReopenBackoff(settings.reopen_initial_delay, settings.reopen_max_delay),
            self._log_capture_event,
            file_period=1.0 / settings.rate_hz,
            on_frame=self._on_live_frame if self._spec.is_live else None,
        )
        self._calibration, self._intrinsics = calibration, {}
        self.get_logger().info(
            f"capturing from {self._spec.kind.value} {settings.source!r}: publishing "
            f"{IMAGE_TOPIC} as {settings.encoding} {self._size_text()} at {settings.rate_hz} Hz "
            f"({type(source).__name__}); {CAMERA_INFO_TOPIC} from "
            f"{settings.camera_info_file or f'a {settings.horizontal_fov_deg:g} deg pinhole'}"
        )
        capture.start()
        self._capture = capture

    @override
    def activate(self) -> None:
        """Publishes frames from now on (active is checked on each frame)."""

    @override
    def deactivate(self) -> None:
        """Stops publishing; the capture goes on, so activating again gives a fresh frame."""

    @override
    def cleanup(self) -> None:
        """Stops the capture thread, which releases the source."""
        self._stop_capture()

    def _apply_settings(self, new: CameraSensorSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        self.settings = new  # the token bucket reads rate_hz from here
        if "rate_hz" in changed:
            self._publish_timer = replace_timer(
                self, self._publish_timer, 1.0 / new.rate_hz, self._publish_newest
            )
        self._period_timers.apply(new, changed)
        if "rate_hz" in changed:
            self._recent_fps.reset()

    @override
    def pause(self) -> str:
        self._paused = True
        return "publishing paused (capture goes on, so resuming gives a fresh frame)"

    @override
    def resume(self) -> str:
        self._paused = False
        return "publishing resumed"

    @override
    def status(self) -> Mapping[str, object]:
        if self._capture is None:
            return {"lifecycle": "unconfigured", "source": self.settings.source}
        stats = self._capture.stats()
        return {
            "lifecycle": "active" if self.active else "inactive",
            "paused": self._paused,
            "source": self.settings.source,
            "state": stats.state.value,
            "frames_captured": stats.frames_captured,
            "frames_published": self._published,
            "frames_dropped": stats.frames_dropped,
            "reopens": stats.reopens,
            **self._ages.figures("frame_age"),
        }

    def close(self) -> None:
        """Stops the capture thread, which releases the source."""
        self._stop_capture()

    def _stop_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None and not capture.stop(timeout=3.0):
            self.get_logger().warning(
                "the capture thread is still inside a blocking read; leaving it to end on its own"
            )

    def _on_live_frame(self, frame: CapturedFrame) -> None:
        """Capture thread: a live frame goes out at once, unless that would exceed rate_hz.

        The timer then sends the newest one; so a frame never waits up to a period for it.
        """
        try:
            self._publish_newest()
        except Exception as error:  # the context may be going down
            self.get_logger().error(f"publishing a frame failed: {error}")

    def _publish_newest(self) -> None:
        with self._publish_lock:
            capture = self._capture
            if capture is None or self._paused or not self.active:
                return
            frame = capture.latest()
            if frame is None or frame.sequence == self._last_sequence:
                return
            now = time.monotonic()
            refill = (now - self._tokens_at) * self.settings.rate_hz
            self._tokens, self._tokens_at = min(PUBLISH_BURST, self._tokens + refill), now
            if self._tokens < 1.0:
                return  # over rate_hz: the timer sends the newest frame later
            self._tokens -= 1.0
            self._last_sequence = frame.sequence
            self._publish(frame)

    def _publish(self, frame: CapturedFrame) -> None:
        fields = encode_image(frame.pixels, self.settings.encoding)
        # Stamped when captured: the node clock now, less the frame's age.
        age_s = time.monotonic() - frame.captured_at
        age = Duration(nanoseconds=int(age_s * 1e9))
        message = Image()
        message.header.stamp = (self.get_clock().now() - age).to_msg()
        if self.settings.stamp_from_frame:
            self._stamp_from_pixels(frame.pixels, message)
        message.header.frame_id = self.settings.frame_id
        fields.fill(message)
        self._publisher.publish(message)
        self._publish_camera_info(frame, message)
        self._published += 1
        self._ages.add(age_s)

    def _publish_camera_info(self, frame: CapturedFrame, image: Image) -> None:
        """A camera_info with the image's header, for the published (fitted) size."""
        native_width, native_height = frame.native_size
        key = (native_width, native_height, image.width, image.height)
        intrinsics = self._intrinsics.get(key)
        if intrinsics is None:
            source = self._calibration
            if source is None:
                source = Intrinsics.pinhole(
                    native_width or image.width,
                    native_height or image.height,
                    self.settings.horizontal_fov_deg,
                )
            elif (source.width, source.height) != (native_width, native_height):
                self.get_logger().warning(
                    f"calibration is for {source.width}x{source.height} but the source sends "
                    f"{native_width}x{native_height}: camera_info scaled as if it were the same "
                    "camera at another resolution"
                )
            mode = (
                self.settings.resize_mode
                if self.settings.width and self.settings.height
                else "stretch"
            )
            intrinsics = self._intrinsics[key] = source.fitted(image.width, image.height, mode)
        info = CameraInfo()
        info.header = image.header
        fill_camera_info(info, intrinsics)
        self._info_publisher.publish(info)

    def _stamp_from_pixels(self, pixels: Any, message: Image) -> None:
        units = read_stamp(pixels)
        if units is None:
            self._stamps_missing += 1
            self.get_logger().warning(
                "stamp_from_frame: a frame without a readable time stamp kept its capture stamp",
                throttle_duration_sec=2.0,
            )
            return
        self._stamps_read += 1
        # The world and this node share the machine's clock, which is also the ROS clock here.
        sec, nanosec = divmod(unwrap_units(units, time.time()) * UNIT_NS, 1_000_000_000)
        message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec

    def _report(self) -> None:
        if self._capture is None:
            return
        stats = self._capture.stats()
        now = time.monotonic()
        elapsed = max(now - self._report_time, 1e-9)
        fps = (self._published - self._report_published) / elapsed
        self._report_time = now
        self._report_published = self._published
        self.get_logger().info(
            f"frames captured={stats.frames_captured} published={self._published} "
            f"({fps:.1f} fps) | source={self.settings.source} {stats.state.value} "
            f"| reopens={stats.reopens}"
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: the capture's state, new frames and the publish rate."""
        capture = self._capture
        if capture is None:
            self._diagnostics.publish(
                WARN, "unconfigured (lifecycle): no source open", {"source": self.settings.source}
            )
            return
        stats = capture.stats()
        now = time.monotonic()
        fps = self._recent_fps.add(now, self._published)
        new_frames = self._new_captured.since_last(stats.frames_captured)
        problems = Problems()
        streaming = check_capture(
            problems, stats.state, stats.last_error, stats.attempts, new_frames,
            ("video source", "frames"),
        )  # fmt: skip
        if streaming and (self._paused or not self.active):
            problems.add(WARN, "paused" if self.active else "inactive (lifecycle): not publishing")
        elif streaming:
            check_rate(problems, fps, self.settings.rate_hz, "publishing")
        self._diagnostics.publish(
            problems.level,
            problems.summary("streaming"),
            {
                "source": self.settings.source,
                "state": stats.state.value,
                "frames_captured": stats.frames_captured,
                "frames_published": self._published,
                "frames_dropped": stats.frames_dropped,
                "publish_fps": fps,
                **self._ages.figures("frame_age"),
                "reopens": stats.reopens,
                "failed_attempts": stats.attempts,
                "last_error": stats.last_error,
                **(
                    {"stamps_read": self._stamps_read, "stamps_missing": self._stamps_missing}
                    if self.settings.stamp_from_frame
                    else {}
                ),
            },
        )

    def _log_capture_event(self, level: ReportLevel, message: str) -> None:
        logger = self.get_logger()
        if level == "error":
            logger.error(message)
        elif level == "warning":
            logger.warning(message)
        else:
            logger.info(message)

    def _size_text(self) -> str:
        width, height = self.settings.width, self.settings.height
        if width == 0 and height == 0:
            return "at native size"
        if width and height:
            return f"{width}x{height} ({self.settings.resize_mode} to that aspect)"
        return f"{width or 'auto'}x{height or 'auto'} (aspect kept)"


def main(args: Sequence[str] | None = None) -> None:
    """Runs the camera sensor node until Ctrl-C."""
    run_node(CameraSensorNode, args)


if __name__ == "__main__":
    main()
