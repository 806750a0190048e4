"""The osc_actuator node: actions on ``cmd_vel`` and ``vrchat_input`` -> VRChat OSC over UDP.

Every action is sent at once (VRChat's axes hold their value, so nothing is re-sent). Each
input topic has its own deadman: ``cmd_vel`` silent for ``deadman_timeout`` centres the axes,
``vrchat_input`` silent as long releases the buttons, so the avatar stops when the agent dies
or hangs even while the other topic still arrives; pausing or closing the node (Ctrl-C,
SIGTERM) releases every input. A button pressed sooner than ``release_hold`` after its
release is sent that long after the release, so that VRChat sees the release. With
``axis_time_constant`` above 0 the axes ease toward each command (a first-order lag, like
PAMIQ's smooth OSC actuator), stepped every ``smoothing_period``. The mapping lives in
``pamiq_ros.io.osc_output``.

For the latency benchmark (``tag_answers``, off by default) the inputs of each ``vrchat_input``
are followed by ``/pamiq/answers`` carrying its header stamp (the camera frame the agent acted
on) in ns, which the simulated world times; VRChat itself would ignore the unknown address.
"""

import heapq
import itertools
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import VRChatInput
from typing_extensions import override

from pamiq_ros.core.actions import Motion, VRChatButtons
from pamiq_ros.core.health import diagnostics_period_setting
from pamiq_ros.core.settings import require_in_range, require_positive, setting
from pamiq_ros.io.frame_stamp import ANSWERS_ADDRESS
from pamiq_ros.io.osc_output import (
    AxisSmoother,
    Deadman,
    OscInput,
    OscSender,
    OscSendError,
    ReleaseHold,
    VRChatOscMapper,
)
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from pamiq_ros.nodes._lifecycle import AUTOSTART_DESCRIPTION, ManagedNode
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, run_node

DEADMAN_CHECK_PERIOD_S = 0.05
"""How often the deadman is checked; a release comes at most this long after the timeout."""

ERROR_LOG_PERIOD_S = 2.0
"""Least time between two logs of the same kind of error."""


@dataclass(frozen=True)
class OscActuatorSettings:
    """Parameters of the osc_actuator node."""

    host: str = setting("127.0.0.1", "Host that receives the OSC input (VRChat's machine).")
    port: int = setting(
        9000, "UDP port that receives the OSC input (VRChat listens on 9000).", low=1, high=65535
    )
    deadman_timeout: float = setting(
        0.5, "Per topic: seconds without cmd_vel after which the axes are centred, and without "
        "vrchat_input after which the buttons are released.",
        low=0.001, high=3600.0, runtime=True,
    )  # fmt: skip
    release_hold: float = setting(
        0.05, "Least seconds between a button's release and its next press (about one VRChat "
        "frame), so that VRChat sees the release; 0: press at once.",
        low=0.0, high=10.0,
    )  # fmt: skip
    axis_time_constant: float = setting(
        0.0, "Time constant (s) of the first-order lag easing axes toward each command (PAMIQ's "
        "smooth actuator uses 0.2); 0: axes jump to each command.",
        low=0.0, high=60.0,
    )  # fmt: skip
    smoothing_period: float = setting(
        0.05, "Seconds between two smoothing steps (sends) while axes ease.", low=0.001, high=10.0
    )
    linear_speed_at_full_axis: float = setting(
        2.0,
        "Speed (m/s) that an axis value of 1.0 walks at; cmd_vel is divided by it.",
        low=0.001,
        high=100.0,
    )
    angular_speed_at_full_axis: float = setting(
        1.5,
        "Turn rate (rad/s) that a LookHorizontal of 1.0 turns at; angular.z is divided by it.",
        low=0.001,
        high=100.0,
    )
    report_period: float = setting(
        5.0, "Seconds between progress lines in the log.", low=0.05, high=3600.0,
        runtime=True,
    )  # fmt: skip
    tag_answers: bool = setting(
        False,
        "Latency benchmark: after each vrchat_input's inputs, send OSC /pamiq/answers with its "
        "header stamp in ns (sim_world with stamp_frames times it).",
    )

    diagnostics_period: float = diagnostics_period_setting()
    autostart: bool = setting(True, AUTOSTART_DESCRIPTION)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        require_in_range(self, 1, 65535, "port")
        require_positive(
            self, "deadman_timeout", "linear_speed_at_full_axis", "angular_speed_at_full_axis",
            "report_period", "smoothing_period",
        )  # fmt: skip
        ReleaseHold(self.release_hold)
        if self.axis_time_constant:
            AxisSmoother(self.axis_time_constant)


class OscActuatorNode(ManagedNode, Controllable):
    """Sends the agent's actions to VRChat as OSC input, with a deadman release."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("osc_actuator", **node_options)
        self.settings = declare_settings(self, OscActuatorSettings, self._apply_settings)
        settings = self.settings
        self._mapper = VRChatOscMapper(
            settings.linear_speed_at_full_axis, settings.angular_speed_at_full_axis
        )
        self._sender = OscSender(settings.host, settings.port)
        self._deadmen = {
            "cmd_vel": Deadman(settings.deadman_timeout),
            "vrchat_input": Deadman(settings.deadman_timeout),
        }
        self._release_hold = ReleaseHold(settings.release_hold)
        self._smoother = (
            AxisSmoother(settings.axis_time_constant) if settings.axis_time_constant else None
        )
        self._pending: list[tuple[float, int, OscInput]] = []  # (due, order, input) heap
        self._order = itertools.count()
        self._pending_timer: threading.Timer | None = None
        # Callbacks, the timers and close() may run on different threads.
        self._lock = threading.Lock()
        self._closed = False
        self._paused = False
        self._actions = 0
        self._rejected = 0
        self._send_errors = 0
        self._deadman_releases = 0
        self._last_error = ""
        self._diagnostics = DiagnosticsReporter(self, hardware_id=self._sender.destination)

        self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, 10)
        self.create_subscription(VRChatInput, "vrchat_input", self._on_vrchat_input, 10)
        self.create_timer(DEADMAN_CHECK_PERIOD_S, self._check_deadman)
        if self._smoother is not None:
            self._last_smoothing = time.monotonic()
            self.create_timer(settings.smoothing_period, self._smooth)
        self._period_timers = SettingTimers(self)
        self._period_timers.add("report_period", settings.report_period, self._report)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)
        self.bring_up(settings.autostart)

    # --- lifecycle ----------------------------------------------------------------------------

    @override
    def configure(self) -> None:
        """Opens the OSC socket and releases whatever a previous actuator left pressed."""
        settings = self.settings
        with self._lock:
            self._closed = False
            self._release_all()
        self.get_logger().info(
            f"sending VRChat OSC to {self._sender.destination}; deadman "
            f"{settings.deadman_timeout} s per topic; release hold {settings.release_hold} s; "
            f"axis smoothing {settings.axis_time_constant or 'off'}; axis 1.0 = "
            f"{settings.linear_speed_at_full_axis} m/s, {settings.angular_speed_at_full_axis} rad/s"
        )

    @override
    def activate(self) -> None:
        """Sends actions from now on (active is checked on each action)."""

    @override
    def deactivate(self) -> None:
        """Releases every input; actions are ignored until activated again."""
        with self._lock:
            self._release_all()

    @override
    def cleanup(self) -> None:
        """Releases every input and closes the socket."""
        with self._lock:
            self._release_all()
            self._closed = True
            self._sender.close()

    def _on_cmd_vel(self, message: Twist) -> None:
        motion = Motion(message.linear.x, message.linear.y, message.angular.z)
        try:
            inputs = self._mapper.motion_inputs(motion)
        except ValueError as error:
            with self._lock:
                self._rejected += 1
            self.get_logger().error(
                f"cmd_vel refused: {error}", throttle_duration_sec=ERROR_LOG_PERIOD_S
            )
            return
        self._act("cmd_vel", inputs)

    def _on_vrchat_input(self, message: VRChatInput) -> None:
        with self._lock:
            inputs = self._mapper.button_inputs(VRChatButtons(jump=message.jump, run=message.run))
        if self.settings.tag_answers:
            stamp = message.header.stamp
            inputs.append(OscInput(ANSWERS_ADDRESS, stamp.sec * 1_000_000_000 + stamp.nanosec))
        self._act("vrchat_input", inputs)

    def _act(self, topic: str, inputs: list[OscInput]) -> None:
        with self._lock:
            if self._closed or self._paused or not self.active:
                return
            now = time.monotonic()
            deadman = self._deadmen[topic]
            silence = _silence(deadman, now)
            resumed = deadman.action_received(now)
            self._actions += 1
            if self._smoother is not None and topic == "cmd_vel":
                self._smoother.set_targets(inputs)
                inputs = []  # sent by the smoothing timer
            self._schedule(inputs, now)
        if resumed:
            self.get_logger().info(f"{topic} resumed after {silence:.1f} s of silence")

    def _schedule(self, inputs: Sequence[OscInput], now: float) -> None:
        """Under the lock: sends what is due now, queues presses that wait for a release hold."""
        due_now = []
        for due, message in self._release_hold.schedule(inputs, now):
            # Only an input behind a held press of its own address waits (order per address).
            waiting = any(queued.address == message.address for _, _, queued in self._pending)
            if due <= now and not waiting:
                due_now.append(message)
            else:
                heapq.heappush(self._pending, (due, next(self._order), message))
        self._send(due_now)
        self._arm_pending_timer()

    def _arm_pending_timer(self) -> None:
        if not self._pending or self._pending_timer is not None:
            return
        delay = max(0.0, self._pending[0][0] - time.monotonic())
        self._pending_timer = threading.Timer(delay, self._send_due)
        self._pending_timer.daemon = True
        self._pending_timer.start()

    def _send_due(self) -> None:
        with self._lock:
            self._pending_timer = None
            if self._closed:
                return
            now = time.monotonic()
            due = []
            while self._pending and self._pending[0][0] <= now + 1e-4:
                due.append(heapq.heappop(self._pending)[2])
            self._send(due)
            self._arm_pending_timer()

    def _drop_pending(self) -> None:
        """Under the lock: forgets queued presses (a release wins over a press still waiting)."""
        self._pending.clear()
        if self._pending_timer is not None:
            self._pending_timer.cancel()
            self._pending_timer = None

    def _smooth(self) -> None:
        assert self._smoother is not None
        with self._lock:
            now = time.monotonic()
            dt, self._last_smoothing = now - self._last_smoothing, now
            if self._closed or self._paused or not self.active:
                return
            self._send(self._smoother.step(dt))

    def _check_deadman(self) -> None:
        released = []
        with self._lock:
            if self._closed:
                return
            now = time.monotonic()
            if self._deadmen["cmd_vel"].should_release(now):
                self._release_axes()
                released.append("cmd_vel: centred the axes")
            if self._deadmen["vrchat_input"].should_release(now):
                self._release_buttons(now)
                released.append("vrchat_input: released the buttons")
            self._deadman_releases += len(released)
        for line in released:
            topic, what = line.split(": ")
            self.get_logger().warning(f"no {topic} for {self.settings.deadman_timeout} s: {what}")

    def _release_axes(self) -> None:
        if self._smoother is not None:
            self._smoother.reset()
        self._send(self._mapper.release_axes())

    def _release_buttons(self, now: float) -> None:
        self._drop_pending()
        self._send(self._mapper.release_buttons())
        self._release_hold.reset(now)

    def _release_all(self) -> None:
        """Under the lock: centres the axes and releases the buttons now."""
        self._release_axes()
        self._release_buttons(time.monotonic())

    def _send(self, inputs: Sequence[OscInput]) -> None:
        """Sends under the lock; a failure is counted and logged, never raised."""
        try:
            self._sender.send(inputs)
        except OscSendError as error:
            self._send_errors += 1
            self._last_error = str(error)
            self._sender.close()  # the next send resolves and opens afresh
            self.get_logger().error(
                f"{error} (errors so far: {self._send_errors})",
                throttle_duration_sec=ERROR_LOG_PERIOD_S,
            )

    def _figures(self) -> dict[str, object]:
        """The actuator's figures (taken under the lock)."""
        with self._lock:
            now = time.monotonic()
            return {
                "lifecycle": "active" if self.active else "inactive",
                "actions": self._actions,
                "actions_refused": self._rejected,
                "osc_sent": self._sender.sent,
                "send_errors": self._send_errors,
                "deadman_releases": self._deadman_releases,
                "axes_released": self._deadmen["cmd_vel"].released,
                "buttons_released": self._deadmen["vrchat_input"].released,
                "cmd_vel_age_s": _silence(self._deadmen["cmd_vel"], now),
                "vrchat_input_age_s": _silence(self._deadmen["vrchat_input"], now),
                "last_action_age_s": min(_silence(d, now) for d in self._deadmen.values()),
                "destination": self._sender.destination,
            }

    def _report(self) -> None:
        figures = self._figures()
        silence = float(figures["last_action_age_s"])  # type: ignore[arg-type]
        last = "no action yet" if math.isinf(silence) else f"last action {silence:.1f} s ago"
        errors = f" | send errors={figures['send_errors']}" if figures["send_errors"] else ""
        self.get_logger().info(
            f"actions={figures['actions']} osc sent={figures['osc_sent']} | "
            f"deadman releases={figures['deadman_releases']} | {last}{errors}"
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: a send error since the last one is an ERROR."""
        figures = self._figures()
        with self._lock:
            last_error, self._last_error = self._last_error, ""
        if last_error:
            level, summary = ERROR, f"send failing: {last_error}"
        elif not self.active:
            level, summary = WARN, "inactive (lifecycle): actions are ignored"
        elif figures["axes_released"] and figures["buttons_released"]:
            level, summary = WARN, "no actions: inputs released"
        elif figures["axes_released"] or figures["buttons_released"]:
            topic = "cmd_vel" if figures["axes_released"] else "vrchat_input"
            level, summary = WARN, f"no {topic}: its inputs released"
        else:
            level, summary = OK, "sending actions"
        self._diagnostics.publish(level, summary, figures)

    def _apply_settings(self, new: OscActuatorSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        if "deadman_timeout" in changed:
            with self._lock:
                for deadman in self._deadmen.values():
                    deadman.timeout_s = new.deadman_timeout
        self._period_timers.apply(new, changed)
        self.settings = new

    @override
    def pause(self) -> str:
        with self._lock:
            self._paused = True
            self._release_all()
        return "paused: released all inputs; actions are ignored until resume"

    @override
    def before_shutdown(self) -> None:
        self.pause()

    @override
    def resume(self) -> str:
        with self._lock:
            self._paused = False
        return "resumed: sending actions again"

    @override
    def status(self) -> Mapping[str, object]:
        with self._lock:
            return {
                "lifecycle": "active" if self.active else "inactive",
                "paused": self._paused,
                "actions": self._actions,
                "osc_sent": self._sender.sent,
                "deadman_releases": self._deadman_releases,
                "destination": self._sender.destination,
            }

    def close(self) -> None:
        """Releases every input, then closes the socket; sends nothing after."""
        with self._lock:
            if self._closed:
                return
            self._release_all()
            self._closed = True
            self._sender.close()
        self.get_logger().info("closed: released all inputs")


def _silence(deadman: Deadman, now: float) -> float:
    last = deadman.last_action
    return math.inf if last is None else now - last


def main(args: Sequence[str] | None = None) -> None:
    """Runs the osc_actuator node until Ctrl-C."""
    run_node(OscActuatorNode, args)


if __name__ == "__main__":
    main()
