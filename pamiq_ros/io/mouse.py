"""A virtual mouse through Linux uinput, and the driver that moves it smoothly and releases it.

No ROS import here. :func:`open_uinput_mouse` creates the device with ``evdev`` (a relative
pointer with left, right and middle buttons, as VRChat in desktop mode reads a mouse); where
``/dev/uinput`` is missing or not writable it raises :class:`MouseDeviceError` saying what to do.
:class:`MouseDriver` holds the commanded velocity and buttons, follows the velocity with a
first-order lag (``time_constant``: the policy's discrete choices become smooth motion, as
pamiq-vrchat's actuators do), turns it into whole-pixel relative moves each :meth:`tick`
(carrying the fraction over), and writes a button only when it changes. :meth:`release` stops at
once and lifts every button: the node calls it on deadman, pause and shutdown.
"""

import enum
import math
import os
from collections.abc import Sequence
from typing import Protocol

from pamiq_ros.core.actions import MouseAction
from pamiq_ros.io.osc_output import Deadman

EV_SYN, EV_KEY, EV_REL = 0x00, 0x01, 0x02
SYN_REPORT = 0
REL_X, REL_Y = 0x00, 0x01
DEFAULT_UINPUT_PATH = "/dev/uinput"


class MouseButton(enum.IntEnum):
    """The buttons, by their Linux input event codes (linux/input-event-codes.h)."""

    LEFT = 0x110
    RIGHT = 0x111
    MIDDLE = 0x112


class MouseDeviceError(RuntimeError):
    """The virtual mouse cannot be created; the message says why and what to do."""


class RelativeMouseDevice(Protocol):
    """What the driver writes to: ``evdev.UInput``, or a plain recording object in tests."""

    def write(self, etype: int, code: int, value: int) -> None:
        """Queues one input event."""

    def syn(self) -> None:
        """Sends the queued events as one report."""

    def close(self) -> None:
        """Removes the device."""


def open_uinput_mouse(
    name: str = "pamiq_ros virtual mouse", path: str = DEFAULT_UINPUT_PATH
) -> RelativeMouseDevice:
    """Creates a virtual relative mouse through uinput.

    Raises:
        MouseDeviceError: If ``path`` is missing or not writable, or evdev cannot be loaded.
    """
    if not os.path.exists(path):
        raise MouseDeviceError(
            f"{path} does not exist: load the uinput kernel module (sudo modprobe uinput), or run "
            "where it exists (a container needs it passed in: --device /dev/uinput)"
        )
    if not os.access(path, os.W_OK):
        raise MouseDeviceError(
            f"{path} is not writable by this user: add a udev rule giving your group access, "
            'e.g. KERNEL=="uinput", GROUP="input", MODE="0660", and join that group'
        )
    try:
        import evdev
    except ImportError as error:
        raise MouseDeviceError(f"the evdev package cannot be imported: {error}") from error
    capabilities: dict[int, Sequence[int]] = {
        evdev.ecodes.EV_REL: [evdev.ecodes.REL_X, evdev.ecodes.REL_Y],
        evdev.ecodes.EV_KEY: [int(button) for button in MouseButton],
    }
    try:
        device: RelativeMouseDevice = evdev.UInput(capabilities, name=name, devnode=path)
    except (OSError, evdev.UInputError) as error:
        raise MouseDeviceError(f"creating the virtual mouse on {path} failed: {error}") from error
    return device


def buttons_of(action: MouseAction) -> dict[MouseButton, bool]:
    """Each button and whether ``action`` holds it."""
    return {
        MouseButton.LEFT: action.left,
        MouseButton.RIGHT: action.right,
        MouseButton.MIDDLE: action.middle,
    }


class MouseDriver:
    """Moves a :class:`RelativeMouseDevice` towards the commanded velocity, smoothly.

    Args:
        device: Where events go.
        time_constant: Seconds for the velocity to cover 63 % of a change (0: at once).
        max_speed: Largest speed per axis (px/s); larger commands are clamped.
    """

    def __init__(
        self, device: RelativeMouseDevice, time_constant: float = 0.1, max_speed: float = 2000.0
    ) -> None:
        if time_constant < 0 or max_speed <= 0:
            raise ValueError(
                f"time_constant must be >= 0 and max_speed positive, got {time_constant}, "
                f"{max_speed}"
            )
        self._device = device
        self._time_constant = time_constant
        self._max_speed = max_speed
        self._target = MouseAction()
        self._velocity = (0.0, 0.0)
        self._remainder = (0.0, 0.0)
        self._pressed: dict[MouseButton, bool] = dict.fromkeys(MouseButton, False)
        self.moved_px = [0, 0]
        """Pixels moved so far on x and y (for status)."""

    @property
    def velocity(self) -> tuple[float, float]:
        """The smoothed velocity now (px/s)."""
        return self._velocity

    @property
    def pressed(self) -> dict[MouseButton, bool]:
        """Which buttons are down now."""
        return dict(self._pressed)

    def command(self, command: MouseAction) -> None:
        """Sets the target; buttons change at once, the velocity on the following ticks.

        Raises:
            ValueError: If a velocity is not finite.
        """
        if not (math.isfinite(command.velocity_x) and math.isfinite(command.velocity_y)):
            raise ValueError(
                f"mouse velocity must be finite, got ({command.velocity_x}, {command.velocity_y})"
            )
        limit = self._max_speed
        self._target = MouseAction(
            max(-limit, min(limit, command.velocity_x)),
            max(-limit, min(limit, command.velocity_y)),
            command.left,
            command.right,
            command.middle,
        )
        self._write_buttons(buttons_of(self._target))

    def tick(self, dt: float) -> tuple[int, int]:
        """Advances ``dt`` seconds: smooths the velocity and moves the pointer; returns the move."""
        if dt <= 0:
            return (0, 0)
        blend = 1.0 if self._time_constant == 0 else 1.0 - math.exp(-dt / self._time_constant)
        vx, vy = self._velocity
        vx += (self._target.velocity_x - vx) * blend
        vy += (self._target.velocity_y - vy) * blend
        self._velocity = (vx, vy)
        exact_x = vx * dt + self._remainder[0]
        exact_y = vy * dt + self._remainder[1]
        step_x, step_y = int(exact_x), int(exact_y)  # toward zero; the fraction carries over
        self._remainder = (exact_x - step_x, exact_y - step_y)
        if step_x or step_y:
            if step_x:
                self._device.write(EV_REL, REL_X, step_x)
            if step_y:
                self._device.write(EV_REL, REL_Y, step_y)
            self._device.syn()
            self.moved_px[0] += step_x
            self.moved_px[1] += step_y
        return (step_x, step_y)

    def release(self) -> None:
        """Stops at once (no coasting) and lifts every button that is down."""
        self._target = MouseAction()
        self._velocity = (0.0, 0.0)
        self._remainder = (0.0, 0.0)
        self._write_buttons(buttons_of(self._target))

    @property
    def is_released(self) -> bool:
        """True when nothing moves and no button is down."""
        return self._velocity == (0.0, 0.0) and not any(self._pressed.values())

    def close(self) -> None:
        """Releases, then removes the device."""
        self.release()
        self._device.close()

    def _write_buttons(self, wanted: dict[MouseButton, bool]) -> None:
        changed = False
        for button, down in wanted.items():
            if self._pressed[button] != down:
                self._device.write(EV_KEY, int(button), 1 if down else 0)
                self._pressed[button] = down
                changed = True
        if changed:
            self._device.syn()


class MouseActuation:
    """The mouse actuator's logic without ROS: commands, a deadman, pause and close.

    Args:
        driver: The smoothing driver over the device.
        deadman: Releases the mouse when commands stop for its timeout.
    """

    def __init__(self, driver: MouseDriver, deadman: Deadman) -> None:
        self.driver = driver
        self._deadman = deadman
        self._paused = False
        self._last_tick: float | None = None
        self.deadman_releases = 0

    @property
    def paused(self) -> bool:
        """Whether commands are ignored (and the mouse released)."""
        return self._paused

    def on_command(self, command: MouseAction, now: float) -> None:
        """A new command (ignored while paused).

        Raises:
            ValueError: If a velocity is not finite (the previous command stays).
        """
        if self._paused:
            return
        self.driver.command(command)
        self._deadman.action_received(now)

    def tick(self, now: float) -> bool:
        """Moves the pointer for the time since the last tick; True if the deadman released."""
        dt = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        released = self._deadman.should_release(now)
        if released:
            self.driver.release()
            self.deadman_releases += 1
        if not self._paused:
            self.driver.tick(dt)
        return released

    def pause(self) -> None:
        """Releases everything and ignores commands until :meth:`resume`."""
        self._paused = True
        self.driver.release()

    def resume(self) -> None:
        """Takes commands again (the mouse stays released until the next one)."""
        self._paused = False

    def close(self) -> None:
        """Releases everything and removes the device."""
        self.driver.close()
