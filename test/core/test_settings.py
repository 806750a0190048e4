from dataclasses import dataclass

import pytest

from pamiq_ros.core.settings import (
    SettingsError,
    build_settings,
    describe,
    require_in_range,
    require_one_of,
    require_positive,
    setting,
)


@dataclass(frozen=True)
class ExampleSettings:
    rate_hz: float = setting(10.0, "Steps per second.")
    name: str = setting("agent", "A name.")
    enabled: bool = setting(True, "On or off.")
    count: int = setting(3, "How many.")

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")


def test_describe_lists_defaults_and_descriptions():
    assert describe(ExampleSettings)[0] == ("rate_hz", 10.0, "Steps per second.")
    assert [name for name, _, _ in describe(ExampleSettings)] == [
        "rate_hz",
        "name",
        "enabled",
        "count",
    ]


def test_int_is_accepted_for_float():
    settings = build_settings(ExampleSettings, {"rate_hz": 20})
    assert settings.rate_hz == 20.0 and isinstance(settings.rate_hz, float)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate_hz": "fast"}, "'rate_hz' must be float, got str 'fast'"),
        ({"count": 2.5}, "'count' must be int"),
        ({"enabled": 1}, "'enabled' must be bool"),
        ({"count": True}, "'count' must be int"),
        ({"colour": "red"}, r"unknown parameter\(s\) \['colour'\]"),
        ({"rate_hz": -1.0}, "rate_hz must be positive"),
    ],
)
def test_wrong_values_name_the_parameter(values, message):
    with pytest.raises(SettingsError, match=message):
        build_settings(ExampleSettings, values)


@dataclass(frozen=True)
class Limits:
    speed: float = 1.0
    port: int = 9000


@pytest.mark.parametrize("speed", [0.0, -2.0, float("nan"), float("inf")])
def test_require_positive_names_the_setting(speed: float):
    with pytest.raises(ValueError, match="speed must be a positive number"):
        require_positive(Limits(speed=speed), "port", "speed")
    require_positive(Limits(), "port", "speed")


def test_require_in_range_is_inclusive():
    require_in_range(Limits(port=65535), 1, 65535, "port")
    with pytest.raises(ValueError, match=r"port must be in 1\.\.65535, got 0"):
        require_in_range(Limits(port=0), 1, 65535, "port")


def test_require_one_of_names_the_setting_and_the_choices():
    class Chosen:
        mind = "curiosity"
        preset = "huge"

    require_one_of(Chosen(), mind=("curiosity", "autoencoder"))
    with pytest.raises(ValueError, match=r"preset must be one of \['tiny', 'small'\], got 'huge'"):
        require_one_of(Chosen(), mind=("curiosity",), preset=("tiny", "small"))
