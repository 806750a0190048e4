"""The mouse actuator node: ``mouse`` (pamiq_ros_interfaces/MouseInput) -> a virtual mouse.

It creates a relative mouse through Linux uinput (``pamiq_ros.io.mouse``, with ``evdev``) that
VRChat, like any program, takes for a real one: in desktop mode it turns the view (x), tilts
it (y) and clicks (left: use/grab, right: the action menu, middle). The velocity eases toward
each command (a first-order lag of ``time_constant``) and the pointer is moved every
``1 / rate_hz`` s. A ``mouse`` silent for ``deadman_timeout`` stops the pointer and lifts every
button; so do pausing and closing the node (Ctrl-C, SIGTERM). Without ``/dev/uinput`` (or
without write access to it) the node stops at start with an error saying what to do.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pamiq_ros_interfaces.msg import MouseInput
from rclpy.node import Node
from typing_extensions import override

from pamiq_ros.core.actions import MouseAction
from pamiq_ros.core.health import (
    ERROR,
    WARN,
    NewCount,
    Problems,
    check_grown,
    diagnostics_period_setting,
)
from pamiq_ros.core.settings import SettingsError, require_positive, setting
from pamiq_ros.io.mouse import (
    DEFAULT_UINPUT_PATH,
    MouseActuation,
    MouseDeviceError,
    MouseDriver,
    open_uinput_mouse,
)
from pamiq_ros.io.osc_output import Deadman
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, run_node

MOUSE_TOPIC = "mouse"


@dataclass(frozen=True)
class MouseActuatorSettings:
    """Parameters of the mouse actuator node."""

    uinput_path: str = setting(DEFAULT_UINPUT_PATH, "The uinput device the mouse is made on.")
    device_name: str = setting(
        "pamiq_ros virtual mouse", "Name of the virtual mouse (in `libinput list-devices`)."
    )
    rate_hz: float = setting(60.0, "Pointer moves per second.", low=1.0, high=1000.0)
    time_constant: float = setting(
        0.1, "Seconds for the velocity to cover 63 % of a change (first-order lag); 0: at once."
    )
    max_speed: float = setting(
        2000.0, "Largest pointer speed per axis (px/s); more is clamped.", low=1.0, high=100000.0
    )
    deadman_timeout: float = setting(
        0.5, "Seconds without a mouse message after which the pointer stops and buttons lift."
    )
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()

    def __post_init__(self) -> None:
        require_positive(self, "rate_hz", "max_speed", "deadman_timeout", "report_period")
        if self.time_constant < 0:
            raise ValueError(f"time_constant must be >= 0, got {self.time_constant}")


class MouseActuatorNode(Node, Controllable):
    """Drives a virtual mouse from ``mouse`` messages, released on deadman, pause and close."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("mouse_actuator", **node_options)
        self.settings = declare_settings(self, MouseActuatorSettings, self._apply_settings)
        settings = self.settings
        try:
            device = open_uinput_mouse(settings.device_name, settings.uinput_path)
        except MouseDeviceError as error:
            raise SettingsError(
                f"cannot create the virtual mouse (uinput_path): {error}"
            ) from error
        self._actuation = MouseActuation(
            MouseDriver(device, settings.time_constant, settings.max_speed),
            Deadman(settings.deadman_timeout),
        )
        self._received = 0
        self._rejected = 0
        self._device_errors = 0
        self._last_device_error = ""
        self._new_device_errors = NewCount()
        self._new_releases = NewCount()
        self._closed = False
        self._diagnostics = DiagnosticsReporter(self, hardware_id=settings.uinput_path)
        self.create_subscription(MouseInput, MOUSE_TOPIC, self._on_mouse, 10)
        self.create_timer(1.0 / settings.rate_hz, self._tick)
        self.create_timer(settings.report_period, self._report)
        self._period_timers = SettingTimers(self)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)
        self.get_logger().info(
            f"virtual mouse {settings.device_name!r} on {settings.uinput_path}, driven from "
            f"{self.resolve_topic_name(MOUSE_TOPIC)}; deadman {settings.deadman_timeout} s"
        )

    def _apply_settings(self, new: MouseActuatorSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        self.settings = new
        self._period_timers.apply(new, changed)

    @override
    def pause(self) -> str:
        self._actuation.pause()
        return "mouse released; commands ignored until resume"

    @override
    def before_shutdown(self) -> None:
        self.pause()

    @override
    def resume(self) -> str:
        self._actuation.resume()
        return "taking mouse commands again"

    @override
    def status(self) -> Mapping[str, object]:
        driver = self._actuation.driver
        return {
            "paused": self._actuation.paused,
            "received": self._received,
            "rejected": self._rejected,
            "velocity": list(driver.velocity),
            "moved_px": list(driver.moved_px),
            "buttons_down": [
                button.name.lower() for button, down in driver.pressed.items() if down
            ],
            "deadman_releases": self._actuation.deadman_releases,
            "device_errors": self._device_errors,
            "last_device_error": self._last_device_error,
        }

    def close(self) -> None:
        """Releases the mouse and removes the virtual device."""
        if self._closed:
            return
        self._closed = True
        self._actuation.close()
        self.get_logger().info("virtual mouse released and removed")

    def _on_mouse(self, message: MouseInput) -> None:
        command = MouseAction(
            message.velocity_x, message.velocity_y, message.left, message.right, message.middle
        )
        try:
            self._actuation.on_command(command, time.monotonic())
        except OSError as error:
            self._device_failed(error)
            return
        except ValueError as error:
            self._rejected += 1
            self.get_logger().warning(
                f"ignored a mouse message: {error}", throttle_duration_sec=2.0
            )
            return
        self._received += 1

    def _tick(self) -> None:
        try:
            released = self._actuation.tick(time.monotonic())
        except OSError as error:
            self._device_failed(error)
            return
        if released:
            self.get_logger().warning(
                f"no {MOUSE_TOPIC} for {self.settings.deadman_timeout} s: mouse released"
            )

    def _device_failed(self, error: OSError) -> None:
        """A write to the virtual mouse failed (the device went away): counted, never fatal."""
        self._device_errors += 1
        self._last_device_error = str(error)
        self.get_logger().error(
            f"writing to the virtual mouse failed: {error}", throttle_duration_sec=5.0
        )

    def _report(self) -> None:
        figures = self.status()
        self.get_logger().info(
            f"mouse received={self._received} rejected={self._rejected} "
            f"moved={figures['moved_px']} px | deadman releases={figures['deadman_releases']}"
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: a device error since the last one is an ERROR."""
        figures = dict(self.status())
        problems = Problems()
        check_grown(
            problems,
            self._new_device_errors.since_last(self._device_errors),
            ERROR,
            f"virtual mouse write error(s) (last: {self._last_device_error})",
        )
        check_grown(
            problems,
            self._new_releases.since_last(self._actuation.deadman_releases),
            WARN,
            f"deadman release(s) (no {MOUSE_TOPIC} for {self.settings.deadman_timeout} s)",
        )
        if self._actuation.paused:
            problems.add(WARN, "paused: mouse released")
        self._diagnostics.publish(
            problems.level, problems.summary("driving the virtual mouse"), figures
        )


def main(args: Sequence[str] | None = None) -> None:
    """Runs the mouse actuator node until Ctrl-C."""
    run_node(MouseActuatorNode, args)


if __name__ == "__main__":
    main()
