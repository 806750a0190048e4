"""VRChat's OSC input semantics, as the simulated world reads them. No ROS, no sockets.

Buttons (``/input/MoveForward`` ... ``/input/Run``) take int 0 or 1 (OSC booleans are
accepted too); axes (``/input/Vertical``, ``/input/Horizontal``, ``/input/LookHorizontal``)
take a float in [-1, 1]. Every value holds until it is changed. A jump starts on the 0 -> 1
edge of ``/input/Jump`` only, so the button has to be released before it jumps again.
Anything else is refused with an :class:`OscInputError` that says why.
"""

import math
import threading
from collections.abc import Sequence
from typing import Final, Literal

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
from pamiq_ros.sim.world import MotionCommand

RejectionKind = Literal[
    "malformed", "unknown_address", "wrong_argument_count", "wrong_type", "out_of_range"
]
"""Why an OSC packet or message was refused."""

RUN_SPEED_FACTOR: Final = 2.0
"""Holding Run multiplies linear speed by this."""


class OscInputError(ValueError):
    """An OSC message the world refuses; ``kind`` and ``reason`` say why.

    Attributes:
        address: The message's address ("" when the packet could not be parsed).
        kind: A short category, for counting and rate-limited logging.
        reason: A sentence naming what was wrong and what was expected.
    """

    def __init__(self, address: str, kind: RejectionKind, reason: str) -> None:
        super().__init__(f"{address or 'OSC packet'}: {reason}")
        self.address = address
        self.kind: RejectionKind = kind
        self.reason = reason


def _clamp_unit(value: float) -> float:
    return max(-1.0, min(1.0, value))


class InputState:
    """The held values of VRChat's input buttons and axes; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buttons: dict[str, int] = dict.fromkeys(BUTTON_ADDRESSES, 0)
        self._axes: dict[str, float] = dict.fromkeys(AXIS_ADDRESSES, 0.0)
        self._jump_pending = False

    def apply(self, address: str, args: Sequence[object]) -> None:
        """Applies one OSC message.

        Args:
            address: The OSC address, e.g. ``/input/Vertical``.
            args: The message's arguments as python-osc parsed them.

        Raises:
            OscInputError: For an unknown address, not exactly one argument, a wrong type
                (buttons: int 0/1 or bool; axes: float), or a value out of range (NaN too).
        """
        if address in BUTTON_ADDRESSES:
            pressed = self._button_value(address, args)
            with self._lock:
                if address == JUMP and pressed and not self._buttons[JUMP]:
                    self._jump_pending = True
                self._buttons[address] = pressed
        elif address in AXIS_ADDRESSES:
            value = self._axis_value(address, args)
            with self._lock:
                self._axes[address] = value
        else:
            raise OscInputError(
                address,
                "unknown_address",
                "unknown address; the world reads /input/<button> and /input/<axis> "
                f"(buttons {', '.join(a.rsplit('/', 1)[1] for a in BUTTON_ADDRESSES)}; "
                f"axes {', '.join(a.rsplit('/', 1)[1] for a in AXIS_ADDRESSES)})",
            )

    def button(self, address: str) -> int:
        """The held value (0 or 1) of a button."""
        with self._lock:
            return self._buttons[address]

    def axis(self, address: str) -> float:
        """The held value of an axis."""
        with self._lock:
            return self._axes[address]

    def motion_command(self, walk_speed: float, turn_speed: float) -> MotionCommand:
        """The motion the held input asks for; takes (clears) a pending jump.

        forward = clamp(MoveForward - MoveBackward + Vertical), right = clamp(MoveRight -
        MoveLeft + Horizontal), turn right = clamp(LookRight - LookLeft + LookHorizontal), each
        to [-1, 1]; 1.0 means ``walk_speed`` (doubled while Run is held) or ``turn_speed``.
        The command is in REP-103 terms: ``left`` and ``yaw_rate`` (CCW) are the negatives of
        VRChat's right and turn-right.
        """
        with self._lock:
            b, a = self._buttons, self._axes
            forward = _clamp_unit(b["/input/MoveForward"] - b["/input/MoveBackward"] + a[VERTICAL])
            right = _clamp_unit(b["/input/MoveRight"] - b["/input/MoveLeft"] + a[HORIZONTAL])
            turn_right = _clamp_unit(
                b["/input/LookRight"] - b["/input/LookLeft"] + a[LOOK_HORIZONTAL]
            )
            speed = walk_speed * (RUN_SPEED_FACTOR if b[RUN] else 1.0)
            jump = self._jump_pending
            self._jump_pending = False
        return MotionCommand(
            forward=forward * speed,
            left=-right * speed,
            yaw_rate=-turn_right * turn_speed,
            jump=jump,
        )

    @staticmethod
    def _single_argument(address: str, args: Sequence[object], expected: str) -> object:
        if len(args) != 1:
            raise OscInputError(
                address,
                "wrong_argument_count",
                f"expects exactly one argument ({expected}), got {len(args)}: {list(args)!r}",
            )
        return args[0]

    def _button_value(self, address: str, args: Sequence[object]) -> int:
        expected = "int 0 or 1, or a bool"
        value = self._single_argument(address, args, expected)
        if isinstance(value, bool):
            return int(value)
        if not isinstance(value, int):
            raise OscInputError(
                address,
                "wrong_type",
                f"expects {expected}, got {type(value).__name__} {value!r}",
            )
        if value not in (0, 1):
            raise OscInputError(address, "out_of_range", f"expects {expected}, got {value}")
        return value

    def _axis_value(self, address: str, args: Sequence[object]) -> float:
        expected = f"a float in [{AXIS_MIN:g}, {AXIS_MAX:g}]"
        value = self._single_argument(address, args, expected)
        # VRChat's API types axes as float; an int (or bool) is refused so senders get it right.
        if not isinstance(value, float):
            raise OscInputError(
                address,
                "wrong_type",
                f"expects {expected}, got {type(value).__name__} {value!r}",
            )
        if not (math.isfinite(value) and AXIS_MIN <= value <= AXIS_MAX):
            raise OscInputError(address, "out_of_range", f"expects {expected}, got {value!r}")
        return value
