"""The mouse driver and actuation against a plain recording device; uinput's absence."""

import os

import pytest

from pamiq_ros.core.actions import MouseAction
from pamiq_ros.io.mouse import (
    EV_KEY,
    EV_REL,
    REL_X,
    REL_Y,
    MouseActuation,
    MouseButton,
    MouseDeviceError,
    MouseDriver,
    open_uinput_mouse,
)
from pamiq_ros.io.osc_output import Deadman


class RecordingDevice:
    """A plain object with uinput's three calls, keeping what was written."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int]] = []
        self.reports = 0
        self.closed = False

    def write(self, etype: int, code: int, value: int) -> None:
        self.events.append((etype, code, value))

    def syn(self) -> None:
        self.reports += 1

    def close(self) -> None:
        self.closed = True

    def moved(self, code: int) -> int:
        return sum(value for etype, c, value in self.events if etype == EV_REL and c == code)

    def buttons(self) -> list[tuple[int, int]]:
        return [(code, value) for etype, code, value in self.events if etype == EV_KEY]


def test_velocity_eases_in_with_a_first_order_lag_and_fractions_carry_over():
    device = RecordingDevice()
    driver = MouseDriver(device, time_constant=0.1)
    driver.command(MouseAction(velocity_x=100.0, velocity_y=-50.0))
    driver.tick(0.1)
    assert driver.velocity[0] == pytest.approx(100.0 * (1 - 1 / 2.718281828), rel=1e-6)
    for _ in range(99):
        driver.tick(0.01)
    # After 1.09 s the velocity is all but the target; distance ~ v * (t - tau) for a lag
    # (within the discrete steps' error: each tick moves at the velocity reached at its end).
    assert driver.velocity[0] == pytest.approx(100.0, rel=1e-3)
    assert device.moved(REL_X) == pytest.approx(100.0 * (1.09 - 0.1), abs=3)
    assert device.moved(REL_Y) == pytest.approx(-50.0 * (1.09 - 0.1), abs=2)
    # 10 px/s at 100 Hz is 0.1 px per tick: whole pixels still come, one every 10 ticks.
    slow = RecordingDevice()
    creeping = MouseDriver(slow, time_constant=0.0)
    creeping.command(MouseAction(velocity_x=10.0))
    for _ in range(100):
        creeping.tick(0.01)
    assert slow.moved(REL_X) in (9, 10)


def test_buttons_are_written_on_change_only_and_bad_input_is_refused():
    device = RecordingDevice()
    driver = MouseDriver(device, max_speed=500.0)
    driver.command(MouseAction(left=True))
    driver.command(MouseAction(left=True))
    driver.command(MouseAction(right=True))
    assert device.buttons() == [
        (MouseButton.LEFT, 1),
        (MouseButton.LEFT, 0),
        (MouseButton.RIGHT, 1),
    ]
    with pytest.raises(ValueError, match="finite"):
        driver.command(MouseAction(velocity_x=float("nan")))
    driver.command(MouseAction(velocity_x=1e9))  # clamped to max_speed
    driver.tick(1.0)
    assert 0 < device.moved(REL_X) <= 500


def test_the_mouse_is_released_on_deadman_pause_and_close():
    device = RecordingDevice()
    actuation = MouseActuation(MouseDriver(device, time_constant=0.0), Deadman(0.5))
    actuation.tick(0.0)
    actuation.on_command(MouseAction(velocity_x=200.0, left=True, middle=True), now=0.0)
    actuation.tick(0.1)
    assert device.moved(REL_X) == 20 and not released(actuation)
    # Deadman: silence for 0.5 s stops the pointer and lifts both buttons, once.
    assert not actuation.tick(0.4)
    assert actuation.tick(0.6)
    assert released(actuation)
    assert (MouseButton.LEFT, 0) in device.buttons() and (MouseButton.MIDDLE, 0) in device.buttons()
    moved = device.moved(REL_X)
    assert not actuation.tick(0.7) and device.moved(REL_X) == moved
    assert actuation.deadman_releases == 1
    # Pause: released at once; commands are ignored until resume.
    actuation.on_command(MouseAction(velocity_x=200.0, right=True), now=1.0)
    actuation.pause()
    assert released(actuation)
    actuation.on_command(MouseAction(velocity_x=200.0, right=True), now=1.1)
    actuation.tick(1.2)
    assert released(actuation) and device.moved(REL_X) == moved
    actuation.resume()
    actuation.on_command(MouseAction(right=True), now=1.3)
    assert actuation.driver.pressed[MouseButton.RIGHT]
    # Close: released, then the device removed.
    actuation.close()
    assert released(actuation) and device.closed
    assert device.buttons()[-1] == (MouseButton.RIGHT, 0)


def test_a_missing_uinput_is_a_clear_error(tmp_path):
    with pytest.raises(MouseDeviceError, match=r"does not exist.*modprobe uinput"):
        open_uinput_mouse(path=str(tmp_path / "uinput"))
    unwritable = tmp_path / "uinput_ro"
    unwritable.touch(mode=0o400)
    if os.access(unwritable, os.W_OK):  # root writes anything
        return
    with pytest.raises(MouseDeviceError, match="not writable"):
        open_uinput_mouse(path=str(unwritable))


def released(actuation: MouseActuation) -> bool:
    """Whether the pointer and buttons are released (a call: mypy keeps no narrowing)."""
    return actuation.driver.is_released
