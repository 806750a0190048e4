"""The agent node: camera frames in, actions out, at a fixed rate that never waits for frames.

Frames from ``camera/image_raw`` are checked and decoded as they arrive; the newest good one
waits in a slot. A step loop in its own thread (``pamiq_ros.core.step_loop``) runs the policy on
that frame, or on None while no frame has come, and publishes the action as a ``Twist`` on
``cmd_vel`` and a ``VRChatInput`` on ``vrchat_input``. The action space and its mapping to
motion live in ``pamiq_ros.core.actions``; the policy is random for now.
"""

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rclpy
from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import VRChatInput
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from pamiq_ros.core.actions import Action, ActionMapper
from pamiq_ros.core.policy import Observation, RandomPolicy
from pamiq_ros.core.settings import require_positive, setting
from pamiq_ros.core.step_loop import StepLoop
from pamiq_ros.io.image_codec import ImageFields, ImageFormatError, decode_image, to_rgb
from pamiq_ros.nodes._diagnostics import OK, WARN, DiagnosticsReporter
from pamiq_ros.nodes._runtime import declare_settings, run_node

ERROR_LOG_PERIOD_S = 2.0
"""Least time between two logs of the same problem."""

STALE_FRAME_AGE_S = 2.0
"""A newest frame older than this makes the status a warning (the camera stalled)."""


@dataclass(frozen=True)
class AgentSettings:
    """Parameters of the agent node."""

    rate_hz: float = setting(
        10.0, "Steps per second (Hz); the loop keeps it when frames are late or absent."
    )
    image_width: int = setting(160, "Width (pixels) of the frames the agent accepts.")
    image_height: int = setting(120, "Height (pixels) of the frames the agent accepts.")
    seed: int = setting(0, "Seed of the policy's random generator.")
    linear_speed: float = setting(2.0, "Walking speed (m/s) of move and strafe actions.")
    angular_speed: float = setting(1.5, "Turn rate (rad/s) of turn actions.")
    report_period: float = setting(5.0, "Seconds between progress reports (log and /diagnostics).")

    def __post_init__(self) -> None:
        require_positive(
            self, "rate_hz", "linear_speed", "angular_speed", "report_period", "image_width",
            "image_height",
        )  # fmt: skip


@dataclass(frozen=True)
class _Frame:
    pixels: Observation
    received: float  # monotonic seconds


class _ProblemLog:
    """Logs each distinct problem at most once per period, with how many repeats were held back.

    rclpy's own throttling is per line of code, which would hide a second, different problem
    reported from the same line.
    """

    MAX_TRACKED = 32

    def __init__(self, logger: RcutilsLogger, period_s: float) -> None:
        self._logger = logger
        self._period_s = period_s
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def error(self, text: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(text)
            if last is not None and now - last < self._period_s:
                self._held_back[text] = self._held_back.get(text, 0) + 1
                return
            if text not in self._last_logged and len(self._last_logged) >= self.MAX_TRACKED:
                oldest = min(self._last_logged, key=self._last_logged.__getitem__)
                del self._last_logged[oldest]
                self._held_back.pop(oldest, None)
            self._last_logged[text] = now
            repeats = self._held_back.pop(text, 0)
        suffix = f" ({repeats} more like it since the last log)" if repeats else ""
        self._logger.error(text + suffix)


class AgentNode(Node):
    """Runs the policy at a fixed rate on the newest camera frame and publishes its actions."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("agent", **node_options)
        self.settings = declare_settings(self, AgentSettings)
        settings = self.settings
        self._policy = RandomPolicy(settings.seed)
        self._mapper = ActionMapper(settings.linear_speed, settings.angular_speed)
        self._problems = _ProblemLog(self.get_logger(), ERROR_LOG_PERIOD_S)
        self._lock = threading.Lock()
        self._frame: _Frame | None = None
        self._frames_received = 0
        self._frames_rejected = 0
        self._rejected_at_last_report = 0
        self._last_action_label = "none"
        self._closing = False

        self._cmd_vel = self.create_publisher(Twist, "cmd_vel", 10)
        self._vrchat_input = self.create_publisher(VRChatInput, "vrchat_input", 10)
        self._diagnostics = DiagnosticsReporter(self)
        self.create_subscription(Image, "camera/image_raw", self._on_image, qos_profile_sensor_data)
        self.create_timer(settings.report_period, self._report)
        self._loop = StepLoop(
            settings.rate_hz, self._step, on_error=self._on_step_error, name="agent-step"
        )
        self._loop.start()
        self.get_logger().info(
            f"stepping at {settings.rate_hz} Hz on {settings.image_width}x"
            f"{settings.image_height} frames from camera/image_raw (random policy, seed "
            f"{settings.seed})"
        )

    def _on_image(self, message: Image) -> None:
        try:
            pixels = self._decode(message)
        except ImageFormatError as error:
            with self._lock:
                self._frames_rejected += 1
            self._problems.error(f"camera/image_raw frame refused: {error}")
            return
        frame = _Frame(pixels, time.monotonic())
        with self._lock:
            self._frame = frame
            self._frames_received += 1

    def _decode(self, message: Image) -> Observation:
        """Checks the size first (cheap), then the fields, and returns RGB pixels."""
        expected = (self.settings.image_width, self.settings.image_height)
        if (message.width, message.height) != expected:
            raise ImageFormatError(
                f"image {message.width}x{message.height} does not match the expected "
                f"{expected[0]}x{expected[1]}"
            )
        fields = ImageFields(
            height=message.height,
            width=message.width,
            encoding=message.encoding,
            is_bigendian=message.is_bigendian,
            step=message.step,
            data=bytes(message.data),
        )
        return to_rgb(decode_image(fields), message.encoding)

    def _step(self) -> None:
        """One step, in the loop's thread: act on the newest frame (or None) and publish."""
        with self._lock:
            frame = self._frame
        choice = self._policy.act(frame.pixels if frame is not None else None)
        action = self._mapper.to_action(choice)
        with self._lock:
            if self._closing:
                return
            self._last_action_label = choice.label()
        self._publish(action)

    def _publish(self, action: Action) -> None:
        twist = Twist()
        twist.linear.x = action.motion.forward_mps
        twist.linear.y = action.motion.left_mps
        twist.angular.z = action.motion.ccw_radps
        buttons = VRChatInput(jump=action.buttons.jump, run=action.buttons.run)
        buttons.header.stamp = self.get_clock().now().to_msg()
        self._cmd_vel.publish(twist)
        self._vrchat_input.publish(buttons)

    def _on_step_error(self, error: Exception) -> None:
        if self._closing or not rclpy.ok(context=self.context):
            return  # shutting down: the publishers are gone, nothing to report
        self._problems.error(f"step failed: {type(error).__name__}: {error}")

    def _report(self) -> None:
        stats = self._loop.statistics()
        now = time.monotonic()
        with self._lock:
            frame = self._frame
            received, rejected = self._frames_received, self._frames_rejected
            newly_rejected = rejected - self._rejected_at_last_report
            self._rejected_at_last_report = rejected
            action = self._last_action_label
        if frame is not None:
            height, width = frame.pixels.shape[:2]
            age = now - frame.received
            last = f"last={width}x{height} age={age:.2f} s"
        else:
            height = width = 0
            age = math.inf
            last = "last=none"
        self.get_logger().info(
            f"steps={stats.steps} ({stats.rate_hz:.1f} Hz) | interval error "
            f"p50={stats.interval_error_p50_ms:.1f} ms p99={stats.interval_error_p99_ms:.1f} ms "
            f"max={stats.interval_error_max_ms:.1f} ms missed={stats.missed_deadlines} | "
            f"frames received={received} rejected={rejected} {last} | action={action}"
        )
        if frame is None:
            level, summary = WARN, "no camera frame yet: acting without observation"
        elif age > STALE_FRAME_AGE_S:
            level, summary = WARN, f"newest camera frame is {age:.1f} s old"
        elif newly_rejected:
            level, summary = WARN, f"{newly_rejected} camera frame(s) refused since last report"
        else:
            level, summary = OK, f"stepping at {stats.rate_hz:.1f} Hz"
        self._diagnostics.publish(
            level,
            summary,
            {
                "steps": stats.steps,
                "rate_hz": stats.rate_hz,
                "target_rate_hz": self.settings.rate_hz,
                "missed_deadlines": stats.missed_deadlines,
                "interval_error_p50_ms": stats.interval_error_p50_ms,
                "interval_error_p99_ms": stats.interval_error_p99_ms,
                "interval_error_max_ms": stats.interval_error_max_ms,
                "step_compute_mean_ms": stats.compute_mean_ms,
                "step_compute_max_ms": stats.compute_max_ms,
                "step_errors": stats.errors,
                "frames_received": received,
                "frames_rejected": rejected,
                "last_frame_width": width,
                "last_frame_height": height,
                "last_frame_age_s": age if frame is not None else "none",
                "action": action,
            },
        )

    def close(self) -> None:
        """Stops the step loop; nothing is published after this returns."""
        with self._lock:
            self._closing = True
        self._loop.stop()
        stats = self._loop.statistics()
        self.get_logger().info(
            f"closed after {stats.steps} steps ({stats.missed_deadlines} missed deadlines)"
        )


def main(args: Sequence[str] | None = None) -> None:
    """Runs the agent node until Ctrl-C."""
    run_node(AgentNode, args)


if __name__ == "__main__":
    main()
