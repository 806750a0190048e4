"""Any Gymnasium environment as a stepped world: frames out, the agent's actions in.

No ROS here. A :class:`GymWorld` wraps one Gymnasium environment, named by its id and keyword
arguments (:class:`GymWorldSpec`), as a :class:`~pamiq_ros.sim.stepped.SteppedWorld`: the
benchmarks step it in-process and the ``gym_world`` node serves it to the agent over ROS.

**Frames.** The view is the environment's image observation (``frame_source: observation``,
with ``frame_key`` naming the entry of a dict observation, e.g. ViZDoom's ``screen``) or its
``render()`` (``frame_source: render``, made with ``render_mode="rgb_array"``), as
``(height, width, 3)`` RGB uint8 (grey is repeated into three channels), resized to
``frame_width`` x ``frame_height`` when those are set.

**Actions.** The agent acts with an :class:`~pamiq_ros.core.actions.Action`: a REP-103 motion
and VRChat's buttons, the same values it sends as ``cmd_vel`` and ``vrchat_input``. A table of
rules (``action_rules``, :class:`ActionMapping`) turns them into the environment's action, so
one agent drives any action space without knowing it. The rules are separated by ``;``; each is
``CONDITION -> TARGET``:

- ``CONDITION`` is ``always`` or terms joined by ``&``. A term compares a value with a number,
  ``forward > 0.1`` (``>``, ``>=``, ``<``, ``<=``), or names a button, ``jump`` (pressed) or
  ``!jump`` (not pressed). The values are ``forward`` (``forward_mps``, m/s), ``left``
  (``left_mps``, m/s), ``ccw`` (``ccw_radps``, rad/s, a left turn is positive), and ``jump``
  and ``run`` (1 when pressed, else 0).
- ``Discrete(n)``: ``TARGET`` is an action index; the first rule whose condition holds picks
  it, and ``default_action`` (an index) applies when none holds (discrete actions by
  thresholds).
- ``MultiBinary(n)`` and ``MultiDiscrete``: ``TARGET`` is ``I`` (element ``I`` becomes 1) or
  ``I=V``; every rule that holds applies, on top of ``default_action`` (comma-separated values;
  empty: zeros). Buttons pressed together (turn while walking) stay together.
- ``Box``: ``TARGET`` is ``I=V`` or ``I=K*VALUE`` (element ``I`` becomes ``K`` times a value,
  e.g. ``always -> 0=0.5*forward``); every rule that holds applies, on top of
  ``default_action`` (empty: zeros), and the result is clipped to the box (continuous actions
  by scaling).

A rule that does not fit the action space (an index or value out of range, a scaled target on
a discrete space) is refused when the world is built, naming ``action_rules`` and the rule.

**Time.** One :meth:`GymWorld.step` is one environment step, whatever ``dt`` says: how much
game time a step lasts is the environment's own setting (ViZDoom's ``frame_skip``).

**Ground truth, for evaluation only** (never shown to the agent). Where the environment
exposes it, :attr:`WorldStep.position` and ``info`` carry where the agent is: ViZDoom's game
variables ``POSITION_X``/``POSITION_Y`` (map units) and ``ANGLE`` (``yaw``, rad,
counter-clockwise), MiniGrid's ``agent_pos`` (cells, ``y`` pointing down), ``agent_dir``
(``yaw`` = ``agent_dir`` x pi/2 in that grid frame) and the room it is in (``region``, from 1, in
FourRooms and MultiRoom). ``info["goal"]`` is 1 on the step that ends an episode with a
positive reward where ``terminal_reward_is_goal`` is set (My Way Home's vest, MiniGrid's green
square). An environment that reports both ``terminated`` and ``truncated`` (ViZDoom at its
time-out) counts as truncated.

**Faults.** A spec that cannot work raises :class:`GymWorldError` naming the field (unknown
``env_id``, an environment without image observations, ``action_rules`` that do not fit). An
environment that raises during a step (or gives a frame that is not an image) does not end the
world: the step comes back truncated, with the last good frame,
with ``info["env_error"] = 1`` and the error in :attr:`GymWorld.last_error`, and the caller
resets it as after any episode end.

The shipped worlds are :data:`GYM_WORLDS` (built by :func:`make_world`):

- ``vizdoom_my_way_home``: ViZDoom's "My Way Home", the first-person maze of the curiosity
  papers (Pathak et al. 2017): 160x120 frames, four game tics per step (the papers' action
  repeat), the buttons turn left/right, forward, strafe left/right pressed together as the
  agent asks (no backward, jump or run buttons in this scenario), coverage over 64-unit cells
  (a corridor's width).
- ``minigrid_four_rooms``: MiniGrid's FourRooms, top-down and partially observable: the
  agent sees only its egocentric 7x7 view (``RGBImgPartialObsWrapper``), as 64x64 frames.
  Chosen over MultiRoom because its four fixed rooms are open to each other (MultiRoom's doors
  need the toggle action, which leaves rooms beyond the first out of a random agent's reach) and
  give a plain "rooms visited" figure; 400 steps per episode instead of 100, so a walk can
  reach the other rooms. Forward wins over a turn (a turn is a quarter turn on the spot), jump
  is MiniGrid's toggle, and no motion is ``done``, which does nothing there.
"""

import contextlib
import importlib
import json
import math
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import cv2
import gymnasium as gym
import numpy as np
import numpy.typing as npt
from typing_extensions import override

from pamiq_ros.core.actions import Action
from pamiq_ros.sim.stepped import Frame, SteppedWorld, WorldStep

FRAME_SOURCES: Final = ("observation", "render")
GROUND_TRUTHS: Final = ("auto", "vizdoom", "minigrid", "none")
ACTION_VALUES: Final = ("forward", "left", "ccw", "jump", "run")
"""The names a rule may use; see the module docstring."""

_MAX_FRAME_SIDE = 4096


class GymWorldError(ValueError):
    """A Gymnasium world that cannot be built as specified; the message names the field."""


# --- the action mapping ---------------------------------------------------------------------


def action_values(action: Action) -> dict[str, float]:
    """The values rules are written over (:data:`ACTION_VALUES`) for one action."""
    return {
        "forward": action.motion.forward_mps,
        "left": action.motion.left_mps,
        "ccw": action.motion.ccw_radps,
        "jump": 1.0 if action.buttons.jump else 0.0,
        "run": 1.0 if action.buttons.run else 0.0,
    }


_COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": lambda value, threshold: value >= threshold,
    "<=": lambda value, threshold: value <= threshold,
    ">": lambda value, threshold: value > threshold,
    "<": lambda value, threshold: value < threshold,
}
_TERM = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
_BUTTON = re.compile(r"^\s*(!?)\s*([a-z_]+)\s*$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_INDEX_TARGET = re.compile(r"^\s*(\d+)\s*$")
_VALUE_TARGET = re.compile(rf"^\s*(\d+)\s*=\s*({_NUMBER})\s*$")
_SCALED_TARGET = re.compile(rf"^\s*(\d+)\s*=\s*({_NUMBER})\s*\*\s*([a-z_]+)\s*$")


@dataclass(frozen=True)
class Condition:
    """One term of a rule's condition: ``value OP threshold``, or a button (``> 0.5``)."""

    value: str
    comparison: str
    threshold: float

    def holds(self, values: Mapping[str, float]) -> bool:
        """Whether the term is true for these action values."""
        return _COMPARISONS[self.comparison](values[self.value], self.threshold)


@dataclass(frozen=True)
class ActionRule:
    """One parsed rule: when all ``conditions`` hold, element ``index`` gets its value.

    Attributes:
        text: The rule as written (for messages).
        conditions: All must hold; none means ``always``.
        index: The discrete action (``Discrete``) or the element of a vector action.
        value: The element's value (``I=V``), or the factor of ``scale_by`` (``I=K*VALUE``);
            ``None`` for a bare index.
        scale_by: The action value that ``value`` multiplies, or ``None``.
    """

    text: str
    conditions: tuple[Condition, ...]
    index: int
    value: float | None = None
    scale_by: str | None = None

    def holds(self, values: Mapping[str, float]) -> bool:
        """Whether every condition holds."""
        return all(condition.holds(values) for condition in self.conditions)

    def element(self, values: Mapping[str, float]) -> float:
        """The value this rule gives its element."""
        if self.value is None:
            return 1.0
        if self.scale_by is None:
            return self.value
        return self.value * values[self.scale_by]


def parse_action_rules(text: str) -> tuple[ActionRule, ...]:
    """Parses ``action_rules`` (see the module docstring).

    Raises:
        GymWorldError: Naming ``action_rules`` and the rule that cannot be read.
    """
    rules = []
    for number, rule_text in enumerate((part.strip() for part in text.split(";")), start=1):
        if not rule_text:
            continue
        where = f"action_rules: rule {number} {rule_text!r}"
        condition_text, arrow, target_text = rule_text.partition("->")
        if not arrow:
            raise GymWorldError(f"{where}: expected CONDITION -> TARGET")
        conditions = _parse_condition(condition_text, where)
        rules.append(_parse_target(rule_text, conditions, target_text, where))
    if not rules:
        raise GymWorldError("action_rules: no rule given (rules are separated by ';')")
    return tuple(rules)


def _parse_condition(text: str, where: str) -> tuple[Condition, ...]:
    if text.strip() == "always":
        return ()
    conditions = []
    for term in text.split("&"):
        compared = _TERM.match(term)
        button = _BUTTON.match(term)
        if compared:
            name, comparison, number = compared.groups()
            try:
                threshold = float(number)
            except ValueError:
                raise GymWorldError(f"{where}: {number!r} is not a number") from None
            condition = Condition(name, comparison, threshold)
        elif button:
            negated, name = button.groups()
            condition = Condition(name, "<" if negated else ">", 0.5)
        else:
            raise GymWorldError(
                f"{where}: cannot read the term {term.strip()!r} (write e.g. 'forward > 0.1', "
                "'jump', '!run' or 'always')"
            )
        if condition.value not in ACTION_VALUES:
            raise GymWorldError(
                f"{where}: unknown value {condition.value!r} (values: {', '.join(ACTION_VALUES)})"
            )
        conditions.append(condition)
    return tuple(conditions)


def _parse_target(
    text: str, conditions: tuple[Condition, ...], target: str, where: str
) -> ActionRule:
    if match := _INDEX_TARGET.match(target):
        return ActionRule(text, conditions, int(match[1]))
    if match := _VALUE_TARGET.match(target):
        return ActionRule(text, conditions, int(match[1]), float(match[2]))
    if match := _SCALED_TARGET.match(target):
        if match[3] not in ACTION_VALUES:
            raise GymWorldError(
                f"{where}: unknown value {match[3]!r} (values: {', '.join(ACTION_VALUES)})"
            )
        return ActionRule(text, conditions, int(match[1]), float(match[2]), match[3])
    raise GymWorldError(
        f"{where}: cannot read the target {target.strip()!r} (write N, I=V or I=K*VALUE)"
    )


class ActionMapping:
    """Turns the agent's :class:`Action` into an action of one Gymnasium action space.

    Args:
        rules: ``action_rules`` (see the module docstring).
        default_action: What applies where no rule does: an index for ``Discrete``,
            comma-separated element values for vector spaces (empty: zeros).
        space: The environment's action space.

    Raises:
        GymWorldError: If the space is of another kind, or a rule or the default does not fit
            it; the message names the field.
    """

    def __init__(self, rules: str, default_action: str, space: gym.Space[Any]) -> None:
        self.space = space
        self.rules = parse_action_rules(rules)
        self._discrete = isinstance(space, gym.spaces.Discrete)
        if self._discrete:
            self._default: Any = self._check_discrete(default_action)
        elif isinstance(space, gym.spaces.MultiBinary | gym.spaces.MultiDiscrete | gym.spaces.Box):
            self._default = self._check_vector(default_action)
        else:
            raise GymWorldError(
                f"action_rules: the action space {space} is not supported (Discrete, "
                "MultiBinary, MultiDiscrete or a Box of one dimension)"
            )

    def __call__(self, action: Action) -> Any:
        """The environment's action for ``action``."""
        values = action_values(action)
        if self._discrete:
            for rule in self.rules:
                if rule.holds(values):
                    return np.int64(rule.index)
            return np.int64(self._default)
        vector = np.array(self._default, copy=True)
        for rule in self.rules:
            if rule.holds(values):
                vector[rule.index] = rule.element(values)
        if isinstance(self.space, gym.spaces.Box):
            vector = np.clip(vector, self.space.low, self.space.high)
        return vector.astype(self.space.dtype)

    def _check_discrete(self, default_action: str) -> int:
        space = self.space
        assert isinstance(space, gym.spaces.Discrete)
        low, count = int(space.start), int(space.n)
        valid = f"{space} takes {low}..{low + count - 1}"
        for rule in self.rules:
            if rule.value is not None:
                raise GymWorldError(
                    f"action_rules: rule {rule.text!r}: {space} takes one index per step, "
                    "write 'CONDITION -> N'"
                )
            if not low <= rule.index < low + count:
                raise GymWorldError(f"action_rules: rule {rule.text!r}: {valid}")
        text = default_action.strip() or str(low)
        try:
            default = int(text)
        except ValueError:
            raise GymWorldError(f"default_action: {text!r} is not an index ({valid})") from None
        if not low <= default < low + count:
            raise GymWorldError(f"default_action: {default} is out of range ({valid})")
        return default

    def _check_vector(self, default_action: str) -> npt.NDArray[Any]:
        space = self.space
        shape = space.shape or ()
        if len(shape) != 1:
            raise GymWorldError(
                f"action_rules: the action space {space} has shape {shape}; only one "
                "dimension is supported"
            )
        size = shape[0]
        low, high = _element_bounds(space)
        for rule in self.rules:
            if not 0 <= rule.index < size:
                raise GymWorldError(
                    f"action_rules: rule {rule.text!r}: element {rule.index} is outside {space} "
                    f"(0..{size - 1})"
                )
            if rule.scale_by is not None and not isinstance(space, gym.spaces.Box):
                raise GymWorldError(
                    f"action_rules: rule {rule.text!r}: scaling fits only a continuous Box, "
                    f"not {space}"
                )
            value = (
                rule.element(dict.fromkeys(ACTION_VALUES, 0.0)) if rule.scale_by is None else 0.0
            )
            if rule.scale_by is None and not low[rule.index] <= value <= high[rule.index]:
                raise GymWorldError(
                    f"action_rules: rule {rule.text!r}: {value:g} is outside "
                    f"{low[rule.index]:g}..{high[rule.index]:g} of {space}"
                )
            if not isinstance(space, gym.spaces.Box) and value != int(value):
                raise GymWorldError(f"action_rules: rule {rule.text!r}: {space} takes integers")
        if not default_action.strip():
            return np.clip(np.zeros(size), low, high)
        try:
            default = np.array([float(part) for part in default_action.split(",")])
        except ValueError:
            raise GymWorldError(
                f"default_action: {default_action!r} is not comma-separated numbers"
            ) from None
        if default.shape != (size,) or not np.all((low <= default) & (default <= high)):
            raise GymWorldError(
                f"default_action: {default_action!r} does not fit {space} ({size} values)"
            )
        return default


def _element_bounds(space: gym.Space[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    if isinstance(space, gym.spaces.MultiBinary):
        size = int(np.prod(space.shape))
        return np.zeros(size), np.ones(size)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.zeros(space.nvec.shape), space.nvec - 1
    assert isinstance(space, gym.spaces.Box)
    return space.low.astype(np.float64), space.high.astype(np.float64)


# --- the spec -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GymWorldSpec:
    """Everything that makes a Gymnasium environment a world (the ``gym_world`` parameters).

    Attributes:
        name: A short name for reports.
        env_id: The Gymnasium id; ``module:Id`` imports ``module`` first (where it registers).
        env_kwargs: Keyword arguments of ``gymnasium.make``.
        wrappers: ``("module:Class", kwargs)`` pairs, applied in order around the environment.
        frame_source: ``observation`` or ``render`` (see the module docstring).
        frame_key: The entry of a dict observation that is the image; empty: the observation.
        frame_width: Width of the frames handed out (px); 0: the environment's own.
        frame_height: Height of the frames handed out (px); 0: the environment's own.
        action_rules: The action mapping (see the module docstring).
        default_action: What applies where no rule does.
        cell_size: Side of a coverage cell, in the units of the position.
        ground_truth: Where position comes from: ``auto`` (by the environment's kind),
            ``vizdoom``, ``minigrid`` or ``none``.
        terminal_reward_is_goal: An episode that ends with a positive reward reached its goal.
    """

    name: str
    env_id: str
    action_rules: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    wrappers: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    frame_source: str = "observation"
    frame_key: str = ""
    frame_width: int = 0
    frame_height: int = 0
    default_action: str = ""
    cell_size: float = 1.0
    ground_truth: str = "auto"
    terminal_reward_is_goal: bool = False

    def __post_init__(self) -> None:
        if not self.env_id.strip():
            raise GymWorldError("env_id: empty (name a Gymnasium environment, e.g. CartPole-v1)")
        if self.frame_source not in FRAME_SOURCES:
            raise GymWorldError(
                f"frame_source: must be one of {list(FRAME_SOURCES)}, got {self.frame_source!r}"
            )
        if self.ground_truth not in GROUND_TRUTHS:
            raise GymWorldError(
                f"ground_truth: must be one of {list(GROUND_TRUTHS)}, got {self.ground_truth!r}"
            )
        for name in ("frame_width", "frame_height"):
            if not 0 <= getattr(self, name) <= _MAX_FRAME_SIDE:
                raise GymWorldError(f"{name}: must be in 0..{_MAX_FRAME_SIDE} (0: the env's own)")
        if (self.frame_width == 0) != (self.frame_height == 0):
            raise GymWorldError("frame_width, frame_height: set both, or neither (0)")
        if not (math.isfinite(self.cell_size) and self.cell_size > 0):
            raise GymWorldError(f"cell_size: must be a positive number, got {self.cell_size}")
        if not isinstance(self.env_kwargs, Mapping):
            raise GymWorldError(f"env_kwargs: must be a mapping, got {self.env_kwargs!r}")

    @classmethod
    def from_json_fields(
        cls, name: str, env_kwargs: str, wrappers: str, **fields: Any
    ) -> "GymWorldSpec":
        """A spec whose ``env_kwargs`` and ``wrappers`` are JSON text (as in a ROS parameter).

        ``env_kwargs`` is a JSON object (empty text: none); ``wrappers`` a JSON list whose
        items are ``"module:Class"`` or ``["module:Class", {kwargs}]``.

        Raises:
            GymWorldError: Naming the field that is not valid JSON of that shape.
        """
        return cls(
            name=name,
            env_kwargs=_json_object(env_kwargs, "env_kwargs"),
            wrappers=_json_wrappers(wrappers),
            **fields,
        )

    def json_fields(self) -> dict[str, str]:
        """``env_kwargs`` and ``wrappers`` as the JSON text :meth:`from_json_fields` reads."""
        return {
            "env_kwargs": json.dumps(dict(self.env_kwargs)),
            "wrappers": json.dumps([[path, dict(kwargs)] for path, kwargs in self.wrappers]),
        }


def _parse_json(text: str, name: str, kind: type, kind_name: str) -> Any:
    """The JSON value of parameter ``name``, or None for empty text."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise GymWorldError(f"{name}: not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, kind):
        raise GymWorldError(f"{name}: must be a JSON {kind_name}, got {text!r}")
    return value


def _json_object(text: str, name: str) -> dict[str, Any]:
    return _parse_json(text, name, dict, "object") or {}


def _json_wrappers(text: str) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    items = _parse_json(text, "wrappers", list, "list") or []
    wrappers: list[tuple[str, Mapping[str, Any]]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            wrappers.append((item, {}))
        elif (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], dict)
        ):
            wrappers.append((item[0], item[1]))
        else:
            raise GymWorldError(
                f'wrappers[{index}]: must be "module:Class" or ["module:Class", {{kwargs}}], '
                f"got {json.dumps(item)}"
            )
    return tuple(wrappers)


# --- ground truth ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    position: tuple[float, float] | None
    info: dict[str, float]


class _GroundTruth:
    """What differs between kinds of environment: ground truth, and what their engines need.

    By default the agent's position is unknown and nothing is needed.
    """

    def prepare(self, kwargs: dict[str, Any], scratch: str) -> None:
        """Adds what the environment needs to its ``gymnasium.make`` keyword arguments."""

    def place(self, env: gym.Env[Any, Any]) -> _Place:
        """The agent's position and further ground truth now."""
        return _Place(None, {})

    def frame_missing(self, env: gym.Env[Any, Any]) -> bool:
        """Whether this step's observation is a placeholder (no image to show)."""
        return False

    def starting(self, env: gym.Env[Any, Any]) -> contextlib.AbstractContextManager[None]:
        """Wraps a reset, which may start the environment's engine."""
        return contextlib.nullcontext()


class _VizdoomTruth(_GroundTruth):
    @override
    def prepare(self, kwargs: dict[str, Any], scratch: str) -> None:
        # ViZDoom writes its ini file into the working folder unless told where.
        kwargs.setdefault("doom_config_path", f"{scratch}/_vizdoom.ini")

    @override
    def place(self, env: gym.Env[Any, Any]) -> _Place:
        import vizdoom

        game = env.unwrapped.game  # type: ignore[attr-defined]
        if game.get_state() is None:  # the episode has ended: no state to read
            return _Place(None, {})
        variable = vizdoom.GameVariable
        x = float(game.get_game_variable(variable.POSITION_X))
        y = float(game.get_game_variable(variable.POSITION_Y))
        yaw = math.radians(float(game.get_game_variable(variable.ANGLE)))
        return _Place((x, y), {"yaw": math.atan2(math.sin(yaw), math.cos(yaw))})

    @override
    def frame_missing(self, env: gym.Env[Any, Any]) -> bool:
        return env.unwrapped.game.get_state() is None  # type: ignore[attr-defined]

    @override
    @contextlib.contextmanager
    def starting(self, env: gym.Env[Any, Any]) -> Iterator[None]:
        """Starts ViZDoom's engine process deaf to Ctrl-C.

        Ctrl-C reaches the whole process group, and the engine must not die under a step
        before the node closes it; an ignored signal stays ignored across exec. The engine
        still ends when closed, and with its process group's SIGKILL.
        """
        starts_engine = not env.unwrapped.game.is_running()  # type: ignore[attr-defined]
        if not starts_engine or threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be changed from the main thread
            return
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _MinigridTruth(_GroundTruth):
    @override
    def place(self, env: gym.Env[Any, Any]) -> _Place:
        grid_env = env.unwrapped
        x, y = (int(value) for value in grid_env.agent_pos)  # type: ignore[attr-defined]
        info = {"yaw": int(grid_env.agent_dir) * math.pi / 2}  # type: ignore[attr-defined]
        room = _minigrid_room(grid_env, x, y)
        if room is not None:
            info["region"] = float(room)  # the key the sim world's floor regions use
        return _Place((float(x), float(y)), info)


def _minigrid_room(grid_env: Any, x: int, y: int) -> int | None:
    """The room (from 1) of cell ``(x, y)`` in MultiRoom and FourRooms; None elsewhere."""
    rooms = getattr(grid_env, "rooms", None)
    if rooms:  # MultiRoom: rooms with their top-left corner and size, walls included
        for number, room in enumerate(rooms, start=1):
            (left, top), (width, height) = room.top, room.size
            if left <= x < left + width and top <= y < top + height:
                return number
        return None
    from minigrid.envs import FourRoomsEnv

    if isinstance(grid_env, FourRoomsEnv):  # walls split the grid through its middle
        return 1 + int(x >= grid_env.width // 2) + 2 * int(y >= grid_env.height // 2)
    return None


def _ground_truth_for(kind: str, env_id: str) -> _GroundTruth:
    if kind == "auto":
        lowered = env_id.lower()
        kind = (
            "vizdoom" if "vizdoom" in lowered else "minigrid" if "minigrid" in lowered else "none"
        )
    if kind == "vizdoom":
        return _VizdoomTruth()
    if kind == "minigrid":
        return _MinigridTruth()
    return _GroundTruth()


# --- the world ------------------------------------------------------------------------------


class GymWorld(SteppedWorld):
    """A Gymnasium environment as a stepped world (see the module docstring).

    Args:
        spec: Which environment, and how frames, actions and ground truth are read.
        seed: The seed of the first :meth:`reset` that names none (later ones go on from the
            environment's own generator, as Gymnasium's resets do).

    Raises:
        GymWorldError: If the environment cannot be built as ``spec`` says; the message names
            the field. Nothing is left running then.
    """

    def __init__(self, spec: GymWorldSpec, seed: int | None = None) -> None:
        self.spec = spec
        self._first_seed = seed
        self.name = spec.name
        self.cell_size = spec.cell_size
        self.errors = 0
        """Steps in which the environment raised (each was followed by a reset)."""
        self.last_error = ""
        """The last such error, ``Type: message``."""
        self._scratch = tempfile.TemporaryDirectory(prefix="pamiq-gym-")
        self._truth = _ground_truth_for(spec.ground_truth, spec.env_id)
        self._frame: Frame | None = None
        self._place = _Place(None, {})
        self._closed = False
        self.env = self._make_env()
        try:
            self._check_frame_space()
            self.mapping = ActionMapping(
                spec.action_rules, spec.default_action, self.env.action_space
            )
        except Exception:
            self.close()
            raise

    def _make_env(self) -> gym.Env[Any, Any]:
        spec = self.spec
        kwargs = dict(spec.env_kwargs)
        if spec.frame_source == "render":
            kwargs.setdefault("render_mode", "rgb_array")
        self._truth.prepare(kwargs, self._scratch.name)
        try:
            env = gym.make(spec.env_id, **kwargs)
        except (gym.error.Error, ModuleNotFoundError) as error:
            self._scratch.cleanup()
            raise GymWorldError(f"env_id: cannot make {spec.env_id!r}: {error}") from None
        except TypeError as error:
            self._scratch.cleanup()
            raise GymWorldError(f"env_kwargs: {spec.env_id!r} refused them: {error}") from None
        try:
            for index, (path, wrapper_kwargs) in enumerate(spec.wrappers):
                env = _wrap(env, index, path, wrapper_kwargs)
        except Exception:
            env.close()
            self._scratch.cleanup()
            raise
        return env

    def _check_frame_space(self) -> None:
        spec = self.spec
        if spec.frame_source == "render":
            if self.env.render_mode != "rgb_array":
                raise GymWorldError(
                    f"frame_source: render needs render_mode 'rgb_array', {spec.env_id!r} has "
                    f"{self.env.render_mode!r}"
                )
            return
        space = self.env.observation_space
        if spec.frame_key:
            if not isinstance(space, gym.spaces.Dict) or spec.frame_key not in space.spaces:
                keys = list(space.spaces) if isinstance(space, gym.spaces.Dict) else []
                raise GymWorldError(
                    f"frame_key: {spec.env_id!r} has no observation entry {spec.frame_key!r} "
                    f"(observation space {space}; entries {keys})"
                )
            space = space.spaces[spec.frame_key]
        if not _is_image_space(space):
            where = f" entry {spec.frame_key!r}" if spec.frame_key else ""
            raise GymWorldError(
                f"frame_source: the observation{where} "
                f"of {spec.env_id!r} is {space}, not an image (uint8, height x width x 1 or 3); "
                "name an image entry with frame_key, add a wrapper that gives images, or use "
                "frame_source: render"
            )

    # --- SteppedWorld -------------------------------------------------------------------

    @override
    def reset(self, seed: int | None = None) -> WorldStep:
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        else:
            self._first_seed = None
        with self._truth.starting(self.env):
            observation, _ = self.env.reset(seed=seed)
        self._frame = None
        frame = self._view(observation)
        self._place = self._truth.place(self.env)
        return WorldStep(frame=frame, position=self._place.position, info=dict(self._place.info))

    @override
    def step(self, action: Action, dt: float) -> WorldStep:
        """One environment step with the mapped action; ``dt`` is not used (see the module)."""
        assert self._frame is not None, "step before reset"
        last_frame = self._frame
        try:
            observation, reward, terminated, truncated, _ = self.env.step(self.mapping(action))
            reward = float(reward)
            missing = self._truth.frame_missing(self.env)
            frame = last_frame if missing else self._view(observation)
            place = self._truth.place(self.env)
        except Exception as error:  # the environment's fault (or its frame's): reset it
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"
            self._frame = last_frame
            return WorldStep(
                frame=last_frame,
                position=self._place.position,
                truncated=True,
                info={**self._place.info, "env_error": 1.0},
            )
        truncated = bool(truncated)
        terminated = bool(terminated) and not truncated
        if place.position is not None:
            self._place = place
        info = dict(self._place.info)
        if self.spec.terminal_reward_is_goal:
            info["goal"] = 1.0 if terminated and reward > 0 else 0.0
        return WorldStep(
            frame=frame,
            position=self._place.position,
            extrinsic_reward=reward if math.isfinite(reward) else 0.0,
            terminated=terminated,
            truncated=truncated,
            info=info,
        )

    @override
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        env = getattr(self, "env", None)
        try:
            if env is not None:
                env.close()
        finally:
            self._scratch.cleanup()

    # --- frames -------------------------------------------------------------------------

    def _view(self, observation: Any) -> Frame:
        spec = self.spec
        if spec.frame_source == "render":
            image = self.env.render()
        elif spec.frame_key:
            image = observation[spec.frame_key]
        else:
            image = observation
        frame = _as_rgb(image, spec)
        if spec.frame_width and frame.shape[:2] != (spec.frame_height, spec.frame_width):
            shrinking = frame.shape[1] >= spec.frame_width
            frame = cv2.resize(  # type: ignore[assignment]
                frame,
                (spec.frame_width, spec.frame_height),
                interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST,
            )
        self._frame = np.ascontiguousarray(frame)
        return self._frame


def _is_image_space(space: gym.Space[Any]) -> bool:
    if not isinstance(space, gym.spaces.Box) or space.dtype != np.uint8:
        return False
    shape = space.shape
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3))


def _as_rgb(image: Any, spec: GymWorldSpec) -> Frame:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or min(array.shape[:2] or (0,)) < 1:
        raise GymWorldError(
            f"frame_source: {spec.env_id!r} gave {array.dtype} {array.shape} as its "
            f"{spec.frame_source}, not an image (uint8, height x width x 1 or 3)"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] != 3:
        raise GymWorldError(
            f"frame_source: {spec.env_id!r} gave {array.shape[2]} channels, not 1 or 3"
        )
    return array


def _wrap(
    env: gym.Env[Any, Any], index: int, path: str, kwargs: Mapping[str, Any]
) -> gym.Env[Any, Any]:
    where = f"wrappers[{index}] {path!r}"
    module_name, colon, class_name = path.partition(":")
    if not colon or not module_name or not class_name:
        raise GymWorldError(f"{where}: write it as module:Class")
    try:
        wrapper = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise GymWorldError(f"{where}: cannot import it: {error}") from None
    if not (isinstance(wrapper, type) and issubclass(wrapper, gym.Wrapper)):
        raise GymWorldError(f"{where}: not a gymnasium.Wrapper")
    try:
        return wrapper(env, **kwargs)
    except (TypeError, ValueError) as error:
        raise GymWorldError(f"{where}: refused its arguments {dict(kwargs)}: {error}") from None


# --- the shipped worlds ---------------------------------------------------------------------

GYM_WORLDS: Final[dict[str, GymWorldSpec]] = {
    "vizdoom_my_way_home": GymWorldSpec(
        name="vizdoom_my_way_home",
        env_id="vizdoom.gymnasium_wrapper:VizdoomMyWayHome-v1",
        # max_buttons_pressed 0: the five buttons as MultiBinary, so they combine.
        env_kwargs={"frame_skip": 4, "max_buttons_pressed": 0, "screen_resolution": "RES_160X120"},
        frame_key="screen",
        # Buttons: 0 TURN_LEFT, 1 TURN_RIGHT, 2 MOVE_FORWARD, 3 MOVE_LEFT, 4 MOVE_RIGHT.
        action_rules=(
            "ccw > 0.1 -> 0; ccw < -0.1 -> 1; forward > 0.1 -> 2; left > 0.1 -> 3; left < -0.1 -> 4"
        ),
        cell_size=64.0,
        terminal_reward_is_goal=True,
    ),
    "minigrid_four_rooms": GymWorldSpec(
        name="minigrid_four_rooms",
        env_id="minigrid:MiniGrid-FourRooms-v0",
        env_kwargs={"max_steps": 400},
        wrappers=(("minigrid.wrappers:RGBImgPartialObsWrapper", {"tile_size": 8}),),
        frame_key="image",
        frame_width=64,
        frame_height=64,
        # Actions: 0 left, 1 right, 2 forward, 3 pickup, 4 drop, 5 toggle, 6 done (no-op).
        action_rules="forward > 0.1 -> 2; ccw > 0.1 -> 0; ccw < -0.1 -> 1; jump -> 5",
        default_action="6",
        cell_size=1.0,
        terminal_reward_is_goal=True,
    ),
}
"""The shipped worlds by name (see the module docstring); ``config/<name>.yaml`` serve them."""


def make_world(name: str, seed: int | None = None, **changes: Any) -> GymWorld:
    """Builds the shipped world ``name`` of :data:`GYM_WORLDS`, with fields of its spec changed.

    Args:
        name: A key of :data:`GYM_WORLDS`.
        seed: The seed of the first :meth:`GymWorld.reset` that names none.
        changes: :class:`GymWorldSpec` fields to replace.

    Raises:
        GymWorldError: If ``name`` is not a shipped world, or the world cannot be built.
    """
    if name not in GYM_WORLDS:
        raise GymWorldError(
            f"world: no shipped Gymnasium world {name!r} (known: {sorted(GYM_WORLDS)})"
        )
    return GymWorld(replace(GYM_WORLDS[name], **changes), seed=seed)
