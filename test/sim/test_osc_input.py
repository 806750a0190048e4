import math

import pytest

from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES, BUTTON_ADDRESSES
from pamiq_ros.sim.osc_input import InputState, OscInputError
from pamiq_ros.sim.world import MotionCommand

WALK, TURN = 2.0, 1.5


def command(state: InputState) -> MotionCommand:
    return state.motion_command(WALK, TURN)


def test_nothing_held_means_standing_still() -> None:
    assert command(InputState()) == MotionCommand()


@pytest.mark.parametrize(
    ("address", "value", "expected"),
    [
        ("/input/Vertical", 1.0, MotionCommand(forward=2.0)),
        ("/input/Vertical", -0.5, MotionCommand(forward=-1.0)),
        ("/input/Horizontal", 1.0, MotionCommand(left=-2.0)),  # +1 is right, REP-103 -y
        ("/input/LookHorizontal", 1.0, MotionCommand(yaw_rate=-1.5)),  # turn right = CW
        ("/input/LookHorizontal", -0.4, MotionCommand(yaw_rate=0.6)),
        ("/input/MoveForward", 1, MotionCommand(forward=2.0)),
        ("/input/MoveBackward", 1, MotionCommand(forward=-2.0)),
        ("/input/MoveLeft", 1, MotionCommand(left=2.0)),
        ("/input/MoveRight", 1, MotionCommand(left=-2.0)),
        ("/input/LookLeft", 1, MotionCommand(yaw_rate=1.5)),
        ("/input/LookRight", 1, MotionCommand(yaw_rate=-1.5)),
        ("/input/MoveForward", True, MotionCommand(forward=2.0)),  # OSC bool accepted
    ],
)
def test_each_input_maps_to_rep103_motion(
    address: str, value: object, expected: MotionCommand
) -> None:
    state = InputState()
    state.apply(address, [value])
    got = command(state)
    assert (got.forward, got.left, got.yaw_rate, got.jump) == pytest.approx(
        (expected.forward, expected.left, expected.yaw_rate, expected.jump)
    )


def test_axes_hold_their_value_until_changed() -> None:
    state = InputState()
    state.apply("/input/Vertical", [0.5])
    for _ in range(3):
        assert command(state).forward == pytest.approx(1.0)
    state.apply("/input/Vertical", [0.0])
    assert command(state).forward == 0.0
    assert state.axis("/input/Vertical") == 0.0


def test_buttons_and_axes_add_up_and_are_clamped() -> None:
    state = InputState()
    state.apply("/input/MoveForward", [1])
    state.apply("/input/Vertical", [1.0])
    state.apply("/input/MoveLeft", [1])
    state.apply("/input/Horizontal", [0.25])
    state.apply("/input/LookLeft", [1])
    state.apply("/input/LookRight", [1])
    got = command(state)
    assert got.forward == pytest.approx(2.0)  # 1 + 1 clamped to 1
    assert got.left == pytest.approx(0.75 * 2.0)  # right = -1 + 0.25
    assert got.yaw_rate == pytest.approx(0.0)
    state.apply("/input/MoveBackward", [1])
    assert command(state).forward == pytest.approx(2.0)  # 1 - 1 + 1
    state.apply("/input/Vertical", [-1.0])
    assert command(state).forward == pytest.approx(-2.0)


def test_run_doubles_linear_speed_only() -> None:
    state = InputState()
    state.apply("/input/Vertical", [1.0])
    state.apply("/input/Horizontal", [-1.0])
    state.apply("/input/LookHorizontal", [1.0])
    state.apply("/input/Run", [1])
    got = command(state)
    assert (got.forward, got.left, got.yaw_rate) == pytest.approx((4.0, 4.0, -1.5))
    state.apply("/input/Run", [False])
    assert command(state).forward == pytest.approx(2.0)


def test_jump_triggers_once_per_press() -> None:
    state = InputState()
    state.apply("/input/Jump", [1])
    assert command(state).jump is True
    assert command(state).jump is False  # still held: no new jump
    state.apply("/input/Jump", [1])  # pressed again without a release: no edge
    assert command(state).jump is False
    state.apply("/input/Jump", [0])
    assert command(state).jump is False
    state.apply("/input/Jump", [True])
    assert command(state).jump is True


def test_a_press_and_release_between_two_reads_still_jumps() -> None:
    state = InputState()
    state.apply("/input/Jump", [1])
    state.apply("/input/Jump", [0])
    assert command(state).jump is True


@pytest.mark.parametrize(
    ("address", "args", "kind", "says"),
    [
        ("/input/Fly", [1], "unknown_address", "unknown address"),
        ("/avatar/parameters/Wave", [1], "unknown_address", "unknown address"),
        ("/input/vertical", [0.5], "unknown_address", "unknown address"),  # case matters
        ("/input/Vertical", [], "wrong_argument_count", "got 0"),
        ("/input/Jump", [1, 0], "wrong_argument_count", "got 2"),
        ("/input/Jump", ["1"], "wrong_type", "got str"),
        ("/input/Run", [1.0], "wrong_type", "got float"),
        ("/input/Vertical", [1], "wrong_type", "got int"),
        ("/input/Vertical", [True], "wrong_type", "got bool"),
        ("/input/Horizontal", ["left"], "wrong_type", "got str"),
        ("/input/LookHorizontal", [b"\x00"], "wrong_type", "got bytes"),
        ("/input/Vertical", [3.5], "out_of_range", "got 3.5"),
        ("/input/Horizontal", [-1.01], "out_of_range", "[-1, 1]"),
        ("/input/LookHorizontal", [math.nan], "out_of_range", "nan"),
        ("/input/Vertical", [math.inf], "out_of_range", "inf"),
        ("/input/MoveForward", [2], "out_of_range", "got 2"),
        ("/input/Jump", [-1], "out_of_range", "got -1"),
    ],
)
def test_bad_messages_are_refused_with_a_reason_and_change_nothing(
    address: str, args: list[object], kind: str, says: str
) -> None:
    state = InputState()
    state.apply("/input/Vertical", [0.25])
    before = command(state)
    with pytest.raises(OscInputError) as raised:
        state.apply(address, args)
    error = raised.value
    assert error.kind == kind
    assert error.address == address
    assert says in error.reason
    assert address in str(error)
    assert command(state) == before
    assert all(state.button(a) == 0 for a in BUTTON_ADDRESSES)
    assert [state.axis(a) for a in AXIS_ADDRESSES] == [0.25, 0.0, 0.0]


def test_axis_limits_themselves_are_accepted() -> None:
    state = InputState()
    state.apply("/input/Vertical", [-1.0])
    state.apply("/input/LookHorizontal", [1.0])
    got = command(state)
    assert (got.forward, got.yaw_rate) == pytest.approx((-2.0, -1.5))
