import math

import pytest

from pamiq_ros.core.actions import Motion
from pamiq_ros.core.safety import SafetyGate, SafetyLimits

FORWARD = Motion(1.0, 0.0, 0.0)


def test_a_command_passes_until_it_is_older_than_the_timeout_then_zero():
    gate = SafetyGate(SafetyLimits(input_timeout_s=0.3), now=0.0)
    assert gate.tick(0.0) == Motion() and gate.state(0.0) == "no_input"

    gate.command(FORWARD, 1.0)
    assert gate.tick(1.0) == FORWARD
    assert gate.tick(1.29) == FORWARD  # just within the timeout it still counts
    assert gate.tick(1.31) == Motion()
    assert gate.state(1.31) == "timeout"

    gate.command(FORWARD, 2.0)
    assert gate.tick(2.0) == FORWARD and gate.state(2.0) == "active"


def test_speeds_are_clamped_per_axis():
    gate = SafetyGate(SafetyLimits(max_linear_mps=0.5, max_angular_radps=0.2), now=0.0)
    gate.command(Motion(3.0, -2.0, -9.0), 0.0)
    assert gate.tick(0.0) == Motion(0.5, -0.5, -0.2)
    assert gate.limited == 1


def test_speeding_up_is_limited_but_braking_and_reversing_to_zero_are_not():
    gate = SafetyGate(
        SafetyLimits(10.0, max_linear_mps=2.0, max_linear_accel=1.0, max_angular_accel=2.0), 0.0
    )
    gate.command(Motion(2.0, 0.0, 1.0), 0.0)
    assert gate.tick(0.0) == Motion()  # no time has passed yet
    assert gate.tick(0.5) == Motion(0.5, 0.0, 1.0)
    out = gate.tick(1.0)
    assert math.isclose(out.forward_mps, 1.0) and out.ccw_radps == 1.0

    gate.command(Motion(0.2, 0.0, 0.0), 1.0)
    assert gate.tick(1.1) == Motion(0.2, 0.0, 0.0)  # braking is immediate
    gate.command(Motion(-2.0, 0.0, 0.0), 1.1)
    reversed_ = gate.tick(1.2)  # through zero at once, then at most 0.1 m/s more
    assert math.isclose(reversed_.forward_mps, -0.1)


def test_the_estop_holds_zero_until_released_and_silence_engages_it_when_asked():
    gate = SafetyGate(SafetyLimits(input_timeout_s=10.0), now=0.0)
    gate.command(FORWARD, 0.0)
    gate.estop(True, 0.1)
    assert gate.tick(0.2) == Motion() and gate.state(0.2) == "estop"
    gate.estop(False, 0.3)
    assert gate.tick(0.3) == FORWARD

    watched = SafetyGate(SafetyLimits(input_timeout_s=10.0, estop_timeout_s=1.0), now=0.0)
    watched.command(FORWARD, 0.0)
    assert watched.tick(0.5) == FORWARD
    assert watched.tick(1.5) == Motion()  # the e-stop topic fell silent
    watched.estop(False, 1.6)
    assert watched.tick(1.6) == FORWARD


def test_non_finite_commands_are_refused_and_do_not_count():
    gate = SafetyGate(SafetyLimits(), now=0.0)
    gate.command(FORWARD, 0.0)
    assert not gate.command(Motion(math.nan, 0.0, 0.0), 0.1)
    assert gate.commands_refused == 1
    assert gate.tick(0.1) == FORWARD


@pytest.mark.parametrize(
    "change",
    [{"input_timeout_s": 0.0}, {"max_linear_mps": -1.0}, {"max_linear_accel": -1.0},
     {"estop_timeout_s": math.inf}],
)  # fmt: skip
def test_invalid_limits_are_refused(change):
    with pytest.raises(ValueError):
        SafetyLimits(**change)
