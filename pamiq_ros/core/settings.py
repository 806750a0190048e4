"""Settings dataclasses: the one declaration of a node's parameters, defaults and descriptions.

A node's settings are a frozen dataclass whose fields are made with :func:`setting`. The node
file declares each field as a ROS parameter (see ``pamiq_ros.nodes._runtime``); the
``pamiq-ros params`` command and the config tests read the same dataclass, so the YAML files,
the help text and the code cannot disagree. No ROS import here.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, TypeVar

SettingValue = bool | int | float | str
"""The parameter types the project uses (ROS parameter scalars)."""

T = TypeVar("T")


class SettingsError(ValueError):
    """A parameter value that the node cannot work with; the message names the parameter."""


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """What a node declares for one setting besides its name.

    Attributes:
        default: The value used when no parameter overrides it; its type is the parameter's.
        description: What it means, with its unit.
        low: Least allowed value of a number (inclusive), None: no bound declared.
        high: Greatest allowed value of a number (inclusive), None: no bound declared.
        runtime: Whether the node applies a change while running; otherwise it is read-only
            (set at start-up only).
    """

    default: SettingValue
    description: str
    low: float | None = None
    high: float | None = None
    runtime: bool = False


def setting(
    default: SettingValue,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    runtime: bool = False,
) -> Any:
    """Declares one setting: a dataclass field with a default, a description and its limits.

    Args:
        default: The value used when no parameter overrides it; its type is the parameter's.
        description: What the parameter means, with its unit, shown by ``pamiq-ros params``.
        low: Least allowed value of a number (inclusive; a ROS parameter range).
        high: Greatest allowed value of a number (inclusive).
        runtime: Whether the node applies changes while running (else read-only).

    Returns:
        A dataclass field.
    """
    if (low is not None or high is not None) and (
        isinstance(default, bool) or not isinstance(default, int | float)
    ):
        raise TypeError(f"a range needs a numeric default, got {default!r}")
    spec = SettingSpec(default, description, low, high, runtime)
    return dataclasses.field(default=default, metadata={"description": description, "spec": spec})


def specs(settings_type: type) -> dict[str, SettingSpec]:
    """The declared spec of every field of a settings dataclass, by name."""
    found = {}
    for name, default, description in describe(settings_type):
        field = next(f for f in dataclasses.fields(settings_type) if f.name == name)
        found[name] = field.metadata.get("spec") or SettingSpec(default, description)
    return found


def describe(settings_type: type) -> list[tuple[str, SettingValue, str]]:
    """Lists ``(name, default, description)`` for every field of a settings dataclass."""
    described = []
    for field in dataclasses.fields(settings_type):
        default = field.default
        if default is dataclasses.MISSING or not isinstance(default, bool | int | float | str):
            raise TypeError(f"{settings_type.__name__}.{field.name} needs a scalar default")
        described.append((field.name, default, str(field.metadata.get("description", ""))))
    return described


def build_settings(settings_type: type[T], values: dict[str, SettingValue]) -> T:
    """Creates the settings from values, checked against the declared types.

    Ints are accepted where a float is declared (``rate_hz: 10`` in YAML means 10.0).

    Raises:
        SettingsError: If a value has the wrong type, a name is unknown, or the dataclass's
            ``__post_init__`` refuses a value.
    """
    declared = {name: default for name, default, _ in describe(settings_type)}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise SettingsError(f"unknown parameter(s) {unknown} for {settings_type.__name__}")
    checked: dict[str, SettingValue] = {}
    for name, value in values.items():
        default = declared[name]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise SettingsError(
                f"parameter {name!r} must be {type(default).__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        checked[name] = value
    try:
        settings = settings_type(**checked)
    except (TypeError, ValueError) as error:
        raise SettingsError(str(error)) from error
    for name, spec in specs(settings_type).items():
        value = getattr(settings, name)
        if not _in_range(value, spec):
            raise SettingsError(f"{name} must be in {range_text(spec)}, got {value!r}")
    return settings


def _in_range(value: SettingValue, spec: SettingSpec) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return (spec.low is None or value >= spec.low) and (spec.high is None or value <= spec.high)


def range_text(spec: SettingSpec) -> str:
    """The declared range as ``low..high`` (``-inf``/``inf`` for a missing bound)."""
    low = "-inf" if spec.low is None else _number(spec.low)
    high = "inf" if spec.high is None else _number(spec.high)
    return f"{low}..{high}"


def _number(value: float) -> str:
    """A bound as written in a declaration: 2147483647, not 2.14748e+09; 1e-09 stays."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def require_positive(settings: object, *names: str) -> None:
    """Refuses any of the named settings that is not a finite number above zero.

    Raises:
        ValueError: Naming the first setting that is not positive.
    """
    for name in names:
        value = getattr(settings, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")


def require_in_range(settings: object, low: float, high: float, *names: str) -> None:
    """Refuses any of the named settings outside ``low..high`` (inclusive).

    Raises:
        ValueError: Naming the first setting out of range.
    """
    for name in names:
        value = getattr(settings, name)
        if not low <= value <= high:
            raise ValueError(f"{name} must be in {low:g}..{high:g}, got {value}")


def require_one_of(settings: object, **allowed: Sequence[str]) -> None:
    """Refuses any named setting whose value is not among its allowed ones.

    Raises:
        ValueError: Naming the first setting with another value, and the allowed ones.
    """
    for name, choices in allowed.items():
        value = getattr(settings, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def markdown_table(settings_type: type) -> str:
    """A Markdown table of a settings dataclass: name, type, default, range, run-time, meaning."""
    rows = [
        "| Parameter | Type | Default | Range | Run-time | Description |",
        "|---|---|---|---|---|---|",
    ]
    for name, spec in specs(settings_type).items():
        bounded = spec.low is not None or spec.high is not None
        rows.append(
            f"| `{name}` | {type(spec.default).__name__} | `{spec.default!r}` | "
            f"{range_text(spec) if bounded else ''} | {'yes' if spec.runtime else 'no'} | "
            f"{spec.description.replace('|', '/')} |"
        )
    return "\n".join(rows)
