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


def setting(default: SettingValue, description: str) -> Any:
    """Declares one setting: a dataclass field with a default and a description.

    Args:
        default: The value used when no parameter overrides it; its type is the parameter's.
        description: What the parameter means, with its unit, shown by ``pamiq-ros params``.

    Returns:
        A dataclass field.
    """
    return dataclasses.field(default=default, metadata={"description": description})


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
        return settings_type(**checked)
    except (TypeError, ValueError) as error:
        raise SettingsError(str(error)) from error


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
