"""The agent's action space: the one place where discrete choices become motion and buttons.

The agent picks one option in each of five independent dimensions (a multi-discrete space:
one categorical distribution per dimension, as the policy's output heads will be):

========  =====  ======================  ==================================================
dimension index  option                  effect
========  =====  ======================  ==================================================
move      0      stop                    forward_mps = 0
move      1      forward                 forward_mps = +linear_speed
move      2      backward                forward_mps = -linear_speed
strafe    0      none                    left_mps = 0
strafe    1      left                    left_mps = +linear_speed
strafe    2      right                   left_mps = -linear_speed
turn      0      none                    ccw_radps = 0
turn      1      left                    ccw_radps = +angular_speed (counter-clockwise)
turn      2      right                   ccw_radps = -angular_speed (clockwise)
jump      0      no                      VRChatButtons.jump = False
jump      1      yes                     VRChatButtons.jump = True (one jump per request)
run       0      no                      VRChatButtons.run = False
run       1      yes                     VRChatButtons.run = True, and both linear speeds
                                         are multiplied by ``RUN_SPEED_FACTOR`` (2.0)
========  =====  ======================  ==================================================

Defaults: ``linear_speed`` 2.0 m/s (VRChat's walking speed at full axis), ``angular_speed``
1.5 rad/s (VRChat's turning speed at full axis). Running doubles the linear speed in the
``Motion`` too, so the motion always states how fast the body is asked to move: a robot base
driven by ``cmd_vel`` moves as the avatar does. (The OSC actuator clamps the axis to 1.0 and
presses Run, which doubles the avatar's speed in VRChat.)

That is the ``motion`` action space (the default). The ``vrchat`` space (the end of this
module: :data:`VRCHAT_ACTION_DIMENSIONS`, :class:`VRChatChoice`, :class:`VRChatActionMapper`)
has pamiq-vrchat's 9 heads: the above without ``turn``, plus the mouse's x and y velocity and
three buttons. Agent and trainer choose one with their ``action_space`` setting.

``Motion`` follows ROS REP-103 (x forward, y left, z up, so a positive turn is
counter-clockwise, a left turn). No ROS import here.
"""

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import ClassVar, Final, Self


class Move(IntEnum):
    """Options of the ``move`` dimension."""

    STOP = 0
    FORWARD = 1
    BACKWARD = 2


class Strafe(IntEnum):
    """Options of the ``strafe`` dimension (sideways steps)."""

    NONE = 0
    LEFT = 1
    RIGHT = 2


class Turn(IntEnum):
    """Options of the ``turn`` dimension."""

    NONE = 0
    LEFT = 1
    RIGHT = 2


class Toggle(IntEnum):
    """Options of the ``jump`` and ``run`` dimensions."""

    NO = 0
    YES = 1


@dataclass(frozen=True)
class ActionDimension:
    """One categorical dimension of the action space."""

    name: str
    options: tuple[str, ...]

    @property
    def size(self) -> int:
        """Number of options (the size of the policy head for this dimension)."""
        return len(self.options)


ACTION_DIMENSIONS: Final[tuple[ActionDimension, ...]] = (
    ActionDimension("move", tuple(option.name.lower() for option in Move)),
    ActionDimension("strafe", tuple(option.name.lower() for option in Strafe)),
    ActionDimension("turn", tuple(option.name.lower() for option in Turn)),
    ActionDimension("jump", tuple(option.name.lower() for option in Toggle)),
    ActionDimension("run", tuple(option.name.lower() for option in Toggle)),
)
"""The dimensions in order; ``ActionChoice.indices()`` uses the same order."""

ACTION_SIZES: Final[tuple[int, ...]] = tuple(dimension.size for dimension in ACTION_DIMENSIONS)
"""Options per dimension: ``(3, 3, 3, 2, 2)``."""

RUN_SPEED_FACTOR: Final = 2.0
"""How much running multiplies the linear speed (as VRChat's Run does)."""


class _IndexedChoice:
    """A frozen dataclass of one option index per dimension of ``DIMENSIONS``, in order."""

    DIMENSIONS: ClassVar[tuple[ActionDimension, ...]]

    def __post_init__(self) -> None:
        for field, dimension in zip(fields(self), self.DIMENSIONS, strict=True):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"action {dimension.name} must be an int, got {value!r}")
            if not 0 <= value < dimension.size:
                raise ValueError(
                    f"action {dimension.name}={value} is out of range 0..{dimension.size - 1} "
                    f"({', '.join(dimension.options)})"
                )

    @classmethod
    def from_indices(cls, indices: Sequence[int]) -> Self:
        """Builds a choice from one index per dimension, in ``DIMENSIONS`` order.

        Raises:
            ValueError: If the number of indices is wrong or an index is out of range.
        """
        if len(indices) != len(cls.DIMENSIONS):
            raise ValueError(
                f"an action of {cls.__name__} needs {len(cls.DIMENSIONS)} indices "
                f"({', '.join(d.name for d in cls.DIMENSIONS)}), got {len(indices)}"
            )
        return cls(*(int(index) for index in indices))

    def indices(self) -> tuple[int, ...]:
        """One index per dimension, in ``DIMENSIONS`` order."""
        return tuple(int(getattr(self, field.name)) for field in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ActionChoice(_IndexedChoice):
    """One option index per dimension; see the module docstring for their meaning."""

    DIMENSIONS: ClassVar[tuple[ActionDimension, ...]] = ACTION_DIMENSIONS

    move: int = Move.STOP
    strafe: int = Strafe.NONE
    turn: int = Turn.NONE
    jump: int = Toggle.NO
    run: int = Toggle.NO

    def label(self) -> str:
        """A short readable name, e.g. ``forward+turn_left+run``; ``stop`` when idle."""
        parts = []
        if self.move != Move.STOP:
            parts.append(Move(self.move).name.lower())
        if self.strafe != Strafe.NONE:
            parts.append(f"strafe_{Strafe(self.strafe).name.lower()}")
        if self.turn != Turn.NONE:
            parts.append(f"turn_{Turn(self.turn).name.lower()}")
        if self.jump == Toggle.YES:
            parts.append("jump")
        if self.run == Toggle.YES:
            parts.append("run")
        return "+".join(parts) if parts else "stop"


@dataclass(frozen=True)
class Motion:
    """A body velocity in REP-103 axes: forward (m/s), left (m/s), counter-clockwise (rad/s)."""

    forward_mps: float = 0.0
    left_mps: float = 0.0
    ccw_radps: float = 0.0


@dataclass(frozen=True)
class VRChatButtons:
    """VRChat inputs with no counterpart in a velocity.

    Attributes:
        jump: Asks for one jump (an edge; the actuator releases before pressing again).
        run: Holds Run while true.
    """

    jump: bool = False
    run: bool = False


@dataclass(frozen=True)
class Action:
    """What one choice asks of the body: a motion and VRChat's extra buttons."""

    motion: Motion
    buttons: VRChatButtons


@dataclass(frozen=True)
class ActionMapper:
    """Turns choices into actions with the configured speeds (see the module's table).

    Attributes:
        linear_speed: Walking speed in m/s for move and strafe.
        angular_speed: Turning speed in rad/s.
    """

    linear_speed: float = 2.0
    angular_speed: float = 1.5

    def __post_init__(self) -> None:
        if not self.linear_speed > 0:
            raise ValueError(f"linear_speed must be positive, got {self.linear_speed}")
        if not self.angular_speed > 0:
            raise ValueError(f"angular_speed must be positive, got {self.angular_speed}")

    def to_action(self, choice: "ActionChoice | VRChatChoice") -> Action:
        """Returns the motion and buttons that ``choice`` stands for.

        Of a :class:`VRChatChoice`, its OSC part (no turn: the mouse's x turns there).
        """
        if isinstance(choice, VRChatChoice):
            choice = choice.body()
        running = choice.run == Toggle.YES
        linear = self.linear_speed * (RUN_SPEED_FACTOR if running else 1.0)
        motion = Motion(
            forward_mps=_signed(choice.move, Move.FORWARD, Move.BACKWARD) * linear,
            left_mps=_signed(choice.strafe, Strafe.LEFT, Strafe.RIGHT) * linear,
            ccw_radps=_signed(choice.turn, Turn.LEFT, Turn.RIGHT) * self.angular_speed,
        )
        return Action(motion, VRChatButtons(jump=choice.jump == Toggle.YES, run=running))


def _signed(option: int, positive: int, negative: int) -> float:
    if option == positive:
        return 1.0
    if option == negative:
        return -1.0
    return 0.0


# --- VRChat's 9 heads: movement over OSC, looking and clicking with the mouse ------------------


class Look(IntEnum):
    """Options of ``look_x`` (none, right, left) and ``look_y`` (none, down, up).

    Pointer motion in screen axes (x right, y down).
    """

    NONE = 0
    POSITIVE = 1
    NEGATIVE = 2


VRCHAT_ACTION_DIMENSIONS: Final[tuple[ActionDimension, ...]] = (
    ActionDimension("move", tuple(option.name.lower() for option in Move)),
    ActionDimension("strafe", tuple(option.name.lower() for option in Strafe)),
    ActionDimension("jump", tuple(option.name.lower() for option in Toggle)),
    ActionDimension("run", tuple(option.name.lower() for option in Toggle)),
    ActionDimension("look_x", ("none", "right", "left")),
    ActionDimension("look_y", ("none", "down", "up")),
    ActionDimension("left_button", tuple(option.name.lower() for option in Toggle)),
    ActionDimension("right_button", tuple(option.name.lower() for option in Toggle)),
    ActionDimension("middle_button", tuple(option.name.lower() for option in Toggle)),
)
"""pamiq-vrchat's action space: 4 OSC heads (move, strafe, jump, run) and 5 mouse heads (x and
y velocity, left, right and middle buttons). Turning is the mouse's x here, as in VRChat's
desktop mode, so the motion space's ``turn`` head is absent."""

VRCHAT_ACTION_SIZES: Final[tuple[int, ...]] = tuple(d.size for d in VRCHAT_ACTION_DIMENSIONS)
"""``(3, 3, 2, 2, 3, 3, 2, 2, 2)``."""

ACTION_SPACES: Final[dict[str, tuple[ActionDimension, ...]]] = {
    "motion": ACTION_DIMENSIONS,
    "vrchat": VRCHAT_ACTION_DIMENSIONS,
}
"""By name: ``motion`` (5 heads: walks and turns; robots and light configurations) and
``vrchat`` (9 heads, with the mouse)."""

ACTION_SPACE_NAMES: Final[tuple[str, ...]] = tuple(ACTION_SPACES)
"""``("motion", "vrchat")``; ``motion`` is the default."""


def action_sizes(space: str) -> tuple[int, ...]:
    """Options per head of the named action space (the policy's head sizes).

    Raises:
        ValueError: If no action space has that name.
    """
    if space not in ACTION_SPACES:
        raise ValueError(f"action_space must be one of {list(ACTION_SPACES)}, got {space!r}")
    return tuple(dimension.size for dimension in ACTION_SPACES[space])


@dataclass(frozen=True)
class VRChatChoice(_IndexedChoice):
    """One option index per head of :data:`VRCHAT_ACTION_DIMENSIONS`, in that order."""

    DIMENSIONS: ClassVar[tuple[ActionDimension, ...]] = VRCHAT_ACTION_DIMENSIONS

    move: int = Move.STOP
    strafe: int = Strafe.NONE
    jump: int = Toggle.NO
    run: int = Toggle.NO
    look_x: int = Look.NONE
    look_y: int = Look.NONE
    left_button: int = Toggle.NO
    right_button: int = Toggle.NO
    middle_button: int = Toggle.NO

    def body(self) -> ActionChoice:
        """The OSC part as a motion-space choice (no turn)."""
        return ActionChoice(self.move, self.strafe, Turn.NONE, self.jump, self.run)

    def label(self) -> str:
        """The OSC part's label and the mouse's, e.g. ``forward+run+look_left+click_left``."""
        body = self.body().label()
        parts = [] if body == "stop" else [body]
        looks = (self.look_x, self.look_y)
        for look, option in zip(VRCHAT_ACTION_DIMENSIONS[4:6], looks, strict=True):
            if option != Look.NONE:
                parts.append(f"look_{look.options[option]}")  # look_left, look_up...
        for button in ("left", "right", "middle"):
            if getattr(self, f"{button}_button") == Toggle.YES:
                parts.append(f"click_{button}")
        return "+".join(parts) if parts else "stop"


Choice = ActionChoice | VRChatChoice
"""A choice of either action space."""

CHOICES: Final[dict[str, type[ActionChoice] | type[VRChatChoice]]] = {
    "motion": ActionChoice,
    "vrchat": VRChatChoice,
}
"""The choice type of each action space (``from_indices`` builds one)."""


@dataclass(frozen=True)
class MouseAction:
    """A mouse command: pointer velocity (px/s; x right, y down) and held buttons."""

    velocity_x: float = 0.0
    velocity_y: float = 0.0
    left: bool = False
    right: bool = False
    middle: bool = False


@dataclass(frozen=True)
class VRChatActionMapper:
    """Turns a 9-head choice into the OSC part (an :class:`Action`) and a :class:`MouseAction`.

    Attributes:
        motion: Speeds of the OSC part.
        mouse_speed: Pointer speed (px/s) of a look option (pamiq-vrchat uses 100).
    """

    motion: ActionMapper = ActionMapper()
    mouse_speed: float = 300.0

    def __post_init__(self) -> None:
        if not self.mouse_speed > 0:
            raise ValueError(f"mouse_speed must be positive, got {self.mouse_speed}")

    def to_actions(self, indices: Sequence[int] | VRChatChoice) -> tuple[Action, MouseAction]:
        """The body's action and the mouse's, of a choice or its indices.

        Indices come in ``VRCHAT_ACTION_DIMENSIONS`` order.

        Raises:
            ValueError: If the number of indices is wrong or one is out of range.
        """
        c = indices if isinstance(indices, VRChatChoice) else VRChatChoice.from_indices(indices)
        body = self.motion.to_action(c.body())
        mouse = MouseAction(
            velocity_x=_signed(c.look_x, Look.POSITIVE, Look.NEGATIVE) * self.mouse_speed,
            velocity_y=_signed(c.look_y, Look.POSITIVE, Look.NEGATIVE) * self.mouse_speed,
            left=c.left_button == Toggle.YES,
            right=c.right_button == Toggle.YES,
            middle=c.middle_button == Toggle.YES,
        )
        return body, mouse


RELEASED_MOUSE: Final = MouseAction()
"""The mouse of a gap, a pause and a shutdown: pointer still, every button up."""
