"""Motion and VRChat buttons -> VRChat OSC input messages, a UDP sender and a deadman switch.

The mapping (see ``pamiq_ros.io.vrchat_osc`` for the addresses; REP-103 on the ROS side):

- ``/input/Vertical``       = ``forward_mps / linear_speed_at_full_axis`` (+1 forward)
- ``/input/Horizontal``     = ``-left_mps / linear_speed_at_full_axis`` (+1 right)
- ``/input/LookHorizontal`` = ``-ccw_radps / angular_speed_at_full_axis`` (+1 turn right)

Axes are floats clamped to [-1, 1] and hold their value in VRChat until changed, so they are
sent on every action. ``/input/Run`` is held: int 1 while running, 0 otherwise, sent on every
button update. ``/input/Jump`` is an edge: a jump request sends 1 and the next update sends 0;
a jump requested while Jump is still pressed sends 0 and then 1, since VRChat only counts a
press after a release. :class:`ReleaseHold` spaces such a press after its release by a hold
(about one VRChat frame), so that the release is seen; :class:`AxisSmoother` optionally eases
axes toward their targets (a first-order lag, like PAMIQ's smooth OSC actuator).

No ROS import here.
"""

import ipaddress
import math
import socket
from collections.abc import Sequence
from typing import NamedTuple

from pythonosc.osc_message_builder import OscMessageBuilder

from pamiq_ros.core.actions import Motion, VRChatButtons
from pamiq_ros.io.vrchat_osc import (
    AXIS_ADDRESSES,
    AXIS_MAX,
    AXIS_MIN,
    BUTTON_ADDRESSES,
    HORIZONTAL,
    JUMP,
    LOOK_HORIZONTAL,
    RUN,
    VERTICAL,
)

PRESSED = 1
RELEASED = 0


class OscInput(NamedTuple):
    """One OSC message to VRChat: an address and its single argument (float axis, int button)."""

    address: str
    value: float | int


class VRChatOscMapper:
    """Turns motions and button requests into OSC inputs; remembers whether Jump is pressed."""

    def __init__(
        self, linear_speed_at_full_axis: float = 2.0, angular_speed_at_full_axis: float = 1.5
    ) -> None:
        """Creates the mapper.

        Args:
            linear_speed_at_full_axis: The speed (m/s) an axis value of 1.0 walks at.
            angular_speed_at_full_axis: The turn rate (rad/s) a LookHorizontal of 1.0 turns at.
        """
        for name, value in (
            ("linear_speed_at_full_axis", linear_speed_at_full_axis),
            ("angular_speed_at_full_axis", angular_speed_at_full_axis),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        self._linear_scale = linear_speed_at_full_axis
        self._angular_scale = angular_speed_at_full_axis
        self._jump_pressed = False

    def motion_inputs(self, motion: Motion) -> list[OscInput]:
        """The three axis messages for a motion.

        Raises:
            ValueError: If a component is NaN (infinities are clamped like any large value).
        """
        for name in ("forward_mps", "left_mps", "ccw_radps"):
            if math.isnan(getattr(motion, name)):
                raise ValueError(f"motion {name} is NaN")
        return [
            OscInput(VERTICAL, _axis(motion.forward_mps / self._linear_scale)),
            OscInput(HORIZONTAL, _axis(-motion.left_mps / self._linear_scale)),
            OscInput(LOOK_HORIZONTAL, _axis(-motion.ccw_radps / self._angular_scale)),
        ]

    def button_inputs(self, buttons: VRChatButtons) -> list[OscInput]:
        """The button messages for one update: Run always, Jump when its state changes."""
        inputs = [OscInput(RUN, PRESSED if buttons.run else RELEASED)]
        if buttons.jump:
            if self._jump_pressed:
                # A press only counts after a release.
                inputs.append(OscInput(JUMP, RELEASED))
            inputs.append(OscInput(JUMP, PRESSED))
            self._jump_pressed = True
        elif self._jump_pressed:
            inputs.append(OscInput(JUMP, RELEASED))
            self._jump_pressed = False
        return inputs

    def release_all(self) -> list[OscInput]:
        """Messages that release every VRChat button and centre every axis."""
        return self.release_buttons() + self.release_axes()

    def release_buttons(self) -> list[OscInput]:
        """Messages that release every VRChat button."""
        self._jump_pressed = False
        return [OscInput(address, RELEASED) for address in BUTTON_ADDRESSES]

    @staticmethod
    def release_axes() -> list[OscInput]:
        """Messages that centre every axis."""
        return [OscInput(address, 0.0) for address in AXIS_ADDRESSES]


def _axis(value: float) -> float:
    return float(min(AXIS_MAX, max(AXIS_MIN, value)))


def encode_osc(message: OscInput) -> bytes:
    """The OSC datagram for one input: a float (``f``) for axes, an int (``i``) for buttons.

    An int beyond 32 bits (the latency benchmark's answer tag, a stamp in ns) goes as ``h``.
    """
    builder = OscMessageBuilder(address=message.address)
    if isinstance(message.value, float):
        builder.add_arg(message.value, OscMessageBuilder.ARG_TYPE_FLOAT)
    elif -(2**31) <= int(message.value) < 2**31:
        builder.add_arg(int(message.value), OscMessageBuilder.ARG_TYPE_INT)
    else:
        builder.add_arg(int(message.value), OscMessageBuilder.ARG_TYPE_INT64)
    return bytes(builder.build().dgram)


class OscSendError(OSError):
    """OSC could not be sent to the configured destination; the message says where and why."""


class OscSender:
    """Sends OSC inputs as UDP datagrams to one host and port, and nowhere else."""

    def __init__(self, host: str, port: int) -> None:
        """Creates the sender.

        The host is resolved on the first send, so a failure there is reported (and retried
        on the next send) like any send error.

        Args:
            host: The destination host name or address (VRChat's machine).
            port: The destination UDP port (VRChat listens on 9000).
        """
        if not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        self.host = host
        self.port = port
        self._socket: socket.socket | None = None
        self._destination: tuple[str, int] | None = None
        self.sent = 0

    @property
    def destination(self) -> str:
        """``host:port`` as configured."""
        return f"{self.host}:{self.port}"

    def send(self, inputs: Sequence[OscInput]) -> None:
        """Sends each input as one datagram, in order.

        Raises:
            OscSendError: If the host cannot be resolved or the system refuses a datagram.
        """
        sock, destination = self._open()
        for message in inputs:
            try:
                sock.sendto(encode_osc(message), destination)
            except OSError as error:
                raise OscSendError(
                    f"cannot send OSC {message.address} to {self.destination}: {error}"
                ) from error
            self.sent += 1

    def close(self) -> None:
        """Closes the socket; a later send opens a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _open(self) -> tuple[socket.socket, tuple[str, int]]:
        if self._socket is not None and self._destination is not None:
            return self._socket, self._destination
        try:
            family, kind, protocol, _, address = socket.getaddrinfo(
                self.host, self.port, socket.AF_INET, socket.SOCK_DGRAM
            )[0]
        except (OSError, IndexError) as error:
            raise OscSendError(f"cannot resolve OSC host {self.destination}: {error}") from error
        ip, port = str(address[0]), int(address[1])
        sock = socket.socket(family, kind, protocol)
        if ipaddress.ip_address(ip).is_loopback:
            # Keep the socket itself on loopback when the destination is local.
            sock.bind(("127.0.0.1", 0))
        self._socket, self._destination = sock, (ip, port)
        return sock, (ip, port)


class Deadman:
    """Says when to release every input because no action arrived for ``timeout_s``.

    It releases once per silence: after a release it stays quiet until an action arrives
    again. It starts released (nothing pressed yet). Times are monotonic seconds.
    """

    def __init__(self, timeout_s: float) -> None:
        """Creates the switch.

        Args:
            timeout_s: How long without actions (seconds) before everything is released.
        """
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"deadman timeout must be positive and finite, got {timeout_s}")
        self.timeout_s = timeout_s
        self._last_action: float | None = None
        self._released = True

    @property
    def released(self) -> bool:
        """Whether inputs are released (nothing received since the last release)."""
        return self._released

    @property
    def last_action(self) -> float | None:
        """When the newest action arrived, or None if none did."""
        return self._last_action

    def action_received(self, now: float) -> bool:
        """Records an action; returns True when it ends a silence that caused a release."""
        resumed = self._released and self._last_action is not None
        self._last_action = now
        self._released = False
        return resumed

    def should_release(self, now: float) -> bool:
        """Whether to release now: True once per silence, then False until the next action."""
        if self._released or self._last_action is None:
            return False
        if now - self._last_action < self.timeout_s:
            return False
        self._released = True
        return True


class ReleaseHold:
    """Delays a button press that would follow its release too closely for VRChat to see it.

    Each button's last release time is remembered; a press sooner than ``hold_s`` after it is
    given a due time ``hold_s`` after the release. Inputs for one address keep their order
    (nothing is due before an earlier input for the same address). Times are monotonic seconds.
    """

    def __init__(self, hold_s: float) -> None:
        """Creates the hold.

        Args:
            hold_s: Least time (seconds) between a button's release and its next press; 0 sends
                presses at once.
        """
        if not (math.isfinite(hold_s) and hold_s >= 0):
            raise ValueError(f"release hold must be 0 or more and finite, got {hold_s}")
        self.hold_s = hold_s
        self._released_at: dict[str, float] = {}
        self._last_due: dict[str, float] = {}

    def schedule(self, inputs: Sequence[OscInput], now: float) -> list[tuple[float, OscInput]]:
        """The inputs with the time each is due, in order; axes are always due now."""
        scheduled = []
        for message in inputs:
            due = max(now, self._last_due.get(message.address, now))
            if message.address in BUTTON_ADDRESSES:
                if message.value == PRESSED:
                    due = max(due, self._released_at.get(message.address, -math.inf) + self.hold_s)
                else:
                    self._released_at[message.address] = due
                self._last_due[message.address] = due
            scheduled.append((due, message))
        return scheduled

    def reset(self, now: float) -> None:
        """Everything was just released (a deadman, a pause): presses wait the hold from now."""
        self._last_due.clear()
        self._released_at = dict.fromkeys(BUTTON_ADDRESSES, now)


class AxisSmoother:
    """Eases each axis toward its target with a first-order lag of time constant ``tau_s``.

    After ``step(dt)`` an axis has moved ``1 - exp(-dt / tau_s)`` of its distance to the target
    (PAMIQ's smooth OSC actuator steps the same kind of lag once per action); within
    :data:`SNAP` it takes the target itself, so it settles exactly.
    """

    SNAP = 1e-3

    def __init__(self, tau_s: float) -> None:
        """Creates the smoother, every axis at 0.

        Args:
            tau_s: The time constant (seconds); must be positive.
        """
        if not (math.isfinite(tau_s) and tau_s > 0):
            raise ValueError(f"axis time constant must be positive and finite, got {tau_s}")
        self.tau_s = tau_s
        self._targets = dict.fromkeys(AXIS_ADDRESSES, 0.0)
        self._values = dict.fromkeys(AXIS_ADDRESSES, 0.0)

    def set_targets(self, inputs: Sequence[OscInput]) -> None:
        """New targets from axis inputs (other addresses are ignored)."""
        for message in inputs:
            if message.address in self._targets:
                self._targets[message.address] = float(message.value)

    def step(self, dt: float) -> list[OscInput]:
        """Advances ``dt`` seconds; returns the axes whose sent value changes."""
        fraction = 1.0 - math.exp(-max(dt, 0.0) / self.tau_s)
        changed = []
        for address, target in self._targets.items():
            value = self._values[address]
            if value == target:
                continue
            value += (target - value) * fraction
            if abs(target - value) < self.SNAP:
                value = target
            self._values[address] = value
            changed.append(OscInput(address, float(value)))
        return changed

    def reset(self) -> None:
        """Targets and values back to 0 at once (a release is never eased)."""
        for address in AXIS_ADDRESSES:
            self._targets[address] = self._values[address] = 0.0
