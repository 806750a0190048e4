"""VRChat's OSC input API: the addresses and value ranges the actuator sends and the world reads.

Reference: VRChat's OSC "Input Controller" documentation. Buttons take int 1 (pressed) or
0 (released) and must be released before they are pressed again to register a new press.
Axes take a float in [-1, 1] and hold their value until it is changed.
"""

from typing import Final

BUTTON_ADDRESSES: Final[tuple[str, ...]] = (
    "/input/MoveForward",
    "/input/MoveBackward",
    "/input/MoveLeft",
    "/input/MoveRight",
    "/input/LookLeft",
    "/input/LookRight",
    "/input/Jump",
    "/input/Run",
)
"""Buttons: int 0 or 1."""

AXIS_ADDRESSES: Final[tuple[str, ...]] = (
    "/input/Vertical",  # +1 forward, -1 backward
    "/input/Horizontal",  # +1 right, -1 left
    "/input/LookHorizontal",  # +1 turn right, -1 turn left
)
"""Axes: float in [-1, 1]."""

VERTICAL: Final = "/input/Vertical"
HORIZONTAL: Final = "/input/Horizontal"
LOOK_HORIZONTAL: Final = "/input/LookHorizontal"
JUMP: Final = "/input/Jump"
RUN: Final = "/input/Run"

AXIS_MIN: Final = -1.0
AXIS_MAX: Final = 1.0

DEFAULT_VRCHAT_INPUT_PORT: Final = 9000
"""The UDP port VRChat listens on for OSC input."""
