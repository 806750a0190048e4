"""The safety relay node: velocity commands in, limited and timed-out velocity commands out.

Sits between a commander (the agent's ``cmd_vel``) and a robot base (``cmd_vel_safe``), like
twist_mux with one input: a command older than ``input_timeout`` gives zero, so the base stops
within ``input_timeout`` plus one output period when the commander dies, even by SIGKILL; an
e-stop lock on a ``std_msgs/Bool`` topic (true engages, false releases) gives zero; speeds and
accelerations are limited (braking never is). The output is published at ``rate_hz`` whether
or not commands come, zeros included, and also at once on each command; a base driver should
still apply its own timeout (the README's ``cmd_vel`` contract). Pause also gives zero; closing
sends a last zero. The logic lives in :mod:`pamiq_ros.core.safety`.
"""

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rclpy.duration
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from std_msgs.msg import Bool
from typing_extensions import override

from pamiq_ros.core.actions import Motion
from pamiq_ros.core.health import diagnostics_period_setting
from pamiq_ros.core.safety import SafetyGate, SafetyLimits
from pamiq_ros.core.settings import require_positive, setting
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from pamiq_ros.nodes._runtime import declare_settings, run_node

STOP_ACKED_WAIT_S = 0.5
"""On shutdown, longest wait for the last zero to be acknowledged by the base."""


@dataclass(frozen=True)
class SafetySettings:
    """Parameters of the safety node."""

    input_topic: str = setting("cmd_vel", "Topic of the commander's velocity commands.")
    output_topic: str = setting("cmd_vel_safe", "Topic the robot base listens to.")
    estop_topic: str = setting("e_stop", "std_msgs/Bool: true engages the e-stop, false releases.")
    input_stamped: bool = setting(False, "Commands in are geometry_msgs/TwistStamped, not Twist.")
    output_stamped: bool = setting(
        False, "Commands out are geometry_msgs/TwistStamped (ros2_control's diff drive since "
        "Jazzy), not Twist."
    )  # fmt: skip
    output_frame_id: str = setting("base_link", "frame_id of a TwistStamped output.")
    rate_hz: float = setting(
        20.0, "Output rate (Hz), zeros included; also one per command.", low=0.1, high=1000.0
    )
    input_timeout: float = setting(
        0.3, "Seconds after the last command when it is stale and the output goes to zero."
    )
    max_linear_speed: float = setting(2.0, "Largest |linear.x| and |linear.y| sent (m/s).")
    max_angular_speed: float = setting(1.5, "Largest |angular.z| sent (rad/s).")
    max_linear_accel: float = setting(
        0.0, "Largest speed-up of linear.x, linear.y (m/s^2); 0: unlimited. Braking is never "
        "limited."
    )  # fmt: skip
    max_angular_accel: float = setting(
        0.0, "Largest speed-up of angular.z (rad/s^2); 0: unlimited. Braking is never limited."
    )
    estop_timeout: float = setting(
        0.0, "Seconds of silence on the e-stop topic after which it engages; 0: silence is fine."
    )
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()

    def __post_init__(self) -> None:
        require_positive(self, "rate_hz", "report_period")
        self.limits()

    def limits(self) -> SafetyLimits:
        """The core's limits from these parameters (raises ValueError if one is invalid)."""
        return SafetyLimits(
            input_timeout_s=self.input_timeout,
            max_linear_mps=self.max_linear_speed,
            max_angular_radps=self.max_angular_speed,
            max_linear_accel=self.max_linear_accel,
            max_angular_accel=self.max_angular_accel,
            estop_timeout_s=self.estop_timeout,
        )


class SafetyNode(Node, Controllable):
    """Relays velocity commands within limits, and zero when they stop or the e-stop holds."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("safety", **node_options)
        self.settings = settings = declare_settings(self, SafetySettings)
        self._lock = threading.Lock()
        self._gate = SafetyGate(settings.limits(), time.monotonic())
        self._paused = False
        self._closed = False
        self._published = 0
        self._commands = 0
        self._last_publish = -1.0
        self._last_state = "no_input"
        self._output = self.create_publisher(
            TwistStamped if settings.output_stamped else Twist, settings.output_topic, 10
        )
        self.create_subscription(
            TwistStamped if settings.input_stamped else Twist,
            settings.input_topic,
            self._on_command,
            10,
        )
        self.create_subscription(Bool, settings.estop_topic, self._on_estop, 10)
        self._diagnostics = DiagnosticsReporter(self)
        self.create_timer(1.0 / settings.rate_hz, self._on_timer)
        self.create_timer(settings.report_period, self._report)
        self.create_timer(settings.diagnostics_period, self._publish_diagnostics)
        ControlServices(self, self)
        self.get_logger().info(
            f"relaying {self.resolve_topic_name(settings.input_topic)} -> "
            f"{self.resolve_topic_name(settings.output_topic)} at {settings.rate_hz:g} Hz: zero "
            f"after {settings.input_timeout:g} s without input or while "
            f"{self.resolve_topic_name(settings.estop_topic)} holds; limits "
            f"{settings.max_linear_speed:g} m/s, {settings.max_angular_speed:g} rad/s"
        )

    def _on_command(self, message: Twist | TwistStamped) -> None:
        twist = message.twist if isinstance(message, TwistStamped) else message
        motion = Motion(twist.linear.x, twist.linear.y, twist.angular.z)
        with self._lock:
            accepted = self._gate.command(motion, time.monotonic())
            self._commands += 1
            if accepted:
                self._publish_locked()
        if not accepted:
            self.get_logger().error(
                f"refused a command with non-finite values ({motion}): it does not count",
                throttle_duration_sec=2.0,
            )

    def _on_estop(self, message: Bool) -> None:
        with self._lock:
            was = self._gate.estop_engaged(time.monotonic())
            self._gate.estop(bool(message.data), time.monotonic())
            self._publish_locked()
        if bool(message.data) != was:
            if message.data:
                self.get_logger().warning("e-stop engaged: output held at zero")
            else:
                self.get_logger().info("e-stop released")

    def _on_timer(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_publish >= 0.9 / self.settings.rate_hz:
                self._publish_locked()

    def _publish_locked(self) -> None:
        """Ticks the gate and publishes its output (zero while paused); under the lock."""
        if self._closed:
            return
        now = time.monotonic()
        motion = self._gate.tick(now)
        if self._paused:
            motion = Motion(0.0, 0.0, 0.0)
        self._send(motion)
        self._last_publish = now
        state = "paused" if self._paused else self._gate.state(now)
        if state != self._last_state:
            if state == "timeout":
                self.get_logger().warning(
                    f"no command for {self.settings.input_timeout:g} s: sending zero"
                )
            elif state == "active" and self._last_state in ("timeout", "no_input"):
                self.get_logger().info("commands arriving: relaying them")
            self._last_state = state

    def _send(self, motion: Motion) -> None:
        twist = Twist()
        twist.linear.x, twist.linear.y = motion.forward_mps, motion.left_mps
        twist.angular.z = motion.ccw_radps
        if self.settings.output_stamped:
            stamped = TwistStamped(twist=twist)
            stamped.header.stamp = self.get_clock().now().to_msg()
            stamped.header.frame_id = self.settings.output_frame_id
            self._output.publish(stamped)
        else:
            self._output.publish(twist)
        self._published += 1

    @override
    def pause(self) -> str:
        with self._lock:
            self._paused = True
            self._publish_locked()
        return "paused: output held at zero"

    @override
    def before_shutdown(self) -> None:
        self.pause()

    @override
    def resume(self) -> str:
        with self._lock:
            self._paused = False
        return "resumed: relaying commands"

    @override
    def status(self) -> Mapping[str, object]:
        now = time.monotonic()
        with self._lock:
            gate = self._gate
            output = gate.output
            return {
                "state": "paused" if self._paused else gate.state(now),
                "paused": self._paused,
                "estop": gate.estop_engaged(now),
                "command_age_s": gate.command_age(now),
                "commands": self._commands,
                "commands_refused": gate.commands_refused,
                "published": self._published,
                "limited_ticks": gate.limited,
                "output_linear_x": output.forward_mps,
                "output_linear_y": output.left_mps,
                "output_angular_z": output.ccw_radps,
                "input_timeout_s": self.settings.input_timeout,
            }

    def _report(self) -> None:
        status = self.status()
        state = status["state"]
        self.get_logger().info(
            f"state={state} commands={status['commands']} published={status['published']} "
            f"limited={status['limited_ticks']} output=({status['output_linear_x']:.2f}, "
            f"{status['output_linear_y']:.2f}, {status['output_angular_z']:.2f})"
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: an engaged e-stop is an ERROR, a zero output a WARN."""
        status = self.status()
        state = status["state"]
        if state == "estop":
            level, summary = ERROR, "e-stop engaged: output zero"
        elif state in ("timeout", "no_input", "paused"):
            level, summary = WARN, f"{state}: output zero"
        else:
            level, summary = OK, "relaying commands"
        self._diagnostics.publish(level, summary, status)

    def close(self) -> None:
        """Sends a last zero and waits (briefly) for it to be acknowledged; nothing after."""
        with self._lock:
            if self._closed:
                return
            try:
                self._send(Motion(0.0, 0.0, 0.0))
            except Exception as error:  # the context may be gone
                self.get_logger().error(f"last zero not sent: {error}")
            self._closed = True
        try:
            self._output.wait_for_all_acked(rclpy.duration.Duration(seconds=STOP_ACKED_WAIT_S))
        except Exception as error:
            self.get_logger().warning(f"last zero not acknowledged: {error}")
        self.get_logger().info("closed: sent a last zero")


def main(args: Sequence[str] | None = None) -> None:
    """Runs the safety node until Ctrl-C."""
    run_node(SafetyNode, args)


if __name__ == "__main__":
    main()
