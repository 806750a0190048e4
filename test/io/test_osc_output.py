import math
import socket

import pytest
from pythonosc.osc_message import OscMessage

from pamiq_ros.core.actions import Motion, VRChatButtons
from pamiq_ros.io.osc_output import (
    AxisSmoother,
    Deadman,
    OscInput,
    OscSender,
    OscSendError,
    ReleaseHold,
    VRChatOscMapper,
    encode_osc,
)
from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES, BUTTON_ADDRESSES


def axes(inputs):
    return {message.address: message.value for message in inputs}


def test_axis_signs_follow_rep103_to_vrchat():
    mapper = VRChatOscMapper(linear_speed_at_full_axis=2.0, angular_speed_at_full_axis=1.5)
    values = axes(mapper.motion_inputs(Motion(forward_mps=1.0, left_mps=0.5, ccw_radps=0.75)))
    # forward -> +Vertical; left -> -Horizontal (+1 is right); CCW -> -LookHorizontal.
    assert values == {
        "/input/Vertical": 0.5,
        "/input/Horizontal": -0.25,
        "/input/LookHorizontal": -0.5,
    }
    values = axes(mapper.motion_inputs(Motion(-1.0, -0.5, -0.75)))
    assert values == {
        "/input/Vertical": -0.5,
        "/input/Horizontal": 0.25,
        "/input/LookHorizontal": 0.5,
    }
    assert all(isinstance(value, float) for value in values.values())


def test_axes_are_clamped_to_the_unit_range():
    mapper = VRChatOscMapper(2.0, 1.5)
    assert axes(mapper.motion_inputs(Motion(4.0, -10.0, math.inf))) == {
        "/input/Vertical": 1.0,
        "/input/Horizontal": 1.0,
        "/input/LookHorizontal": -1.0,
    }


def test_nan_motion_is_refused():
    with pytest.raises(ValueError, match="left_mps is NaN"):
        VRChatOscMapper().motion_inputs(Motion(0.0, math.nan, 0.0))


def test_run_is_held_as_int():
    mapper = VRChatOscMapper()
    assert mapper.button_inputs(VRChatButtons(run=True)) == [OscInput("/input/Run", 1)]
    assert mapper.button_inputs(VRChatButtons(run=True)) == [OscInput("/input/Run", 1)]
    assert mapper.button_inputs(VRChatButtons(run=False)) == [OscInput("/input/Run", 0)]
    assert all(
        type(message.value) is int for message in mapper.button_inputs(VRChatButtons(run=True))
    )


def test_jump_is_an_edge_released_on_the_next_update():
    mapper = VRChatOscMapper()
    jumps = lambda inputs: [m.value for m in inputs if m.address == "/input/Jump"]  # noqa: E731
    assert jumps(mapper.button_inputs(VRChatButtons(jump=True))) == [1]
    assert jumps(mapper.button_inputs(VRChatButtons(jump=False))) == [0]
    assert jumps(mapper.button_inputs(VRChatButtons(jump=False))) == []


def test_jump_requested_while_pressed_is_released_before_being_pressed_again():
    mapper = VRChatOscMapper()
    jumps = lambda inputs: [m.value for m in inputs if m.address == "/input/Jump"]  # noqa: E731
    assert jumps(mapper.button_inputs(VRChatButtons(jump=True))) == [1]
    assert jumps(mapper.button_inputs(VRChatButtons(jump=True))) == [0, 1]
    assert jumps(mapper.button_inputs(VRChatButtons(jump=True))) == [0, 1]


def test_release_all_covers_every_button_and_axis_and_forgets_the_jump():
    mapper = VRChatOscMapper()
    mapper.button_inputs(VRChatButtons(jump=True, run=True))
    released = mapper.release_all()
    assert {m.address for m in released} == set(BUTTON_ADDRESSES) | set(AXIS_ADDRESSES)
    for message in released:
        if message.address in BUTTON_ADDRESSES:
            assert message.value == 0 and type(message.value) is int
        else:
            assert message.value == 0.0 and type(message.value) is float
    # After the release, a new jump request is a plain press.
    jumps = [m.value for m in mapper.button_inputs(VRChatButtons(jump=True)) if "Jump" in m.address]
    assert jumps == [1]


def test_encoding_types_floats_and_ints():
    axis = OscMessage(encode_osc(OscInput("/input/Vertical", -0.5)))
    button = OscMessage(encode_osc(OscInput("/input/Jump", 1)))
    assert (axis.address, axis.params) == ("/input/Vertical", [-0.5])
    assert (button.address, button.params) == ("/input/Jump", [1])
    assert b",f" in axis.dgram
    assert b",i" in button.dgram


def test_sender_sends_one_datagram_per_input_to_the_configured_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(2.0)
        sender = OscSender("127.0.0.1", listener.getsockname()[1])
        sender.send([OscInput("/input/Vertical", 0.25), OscInput("/input/Run", 1)])
        received = [OscMessage(listener.recv(1024)) for _ in range(2)]
        sender.close()
    assert [(m.address, m.params) for m in received] == [
        ("/input/Vertical", [0.25]),
        ("/input/Run", [1]),
    ]
    assert sender.sent == 2


def test_sender_reports_an_unresolvable_host_clearly(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    # No real lookup: nothing may leave loopback, not even a DNS query.
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    sender = OscSender("no-such-host.invalid", 9000)
    with pytest.raises(OscSendError, match=r"cannot resolve OSC host no-such-host\.invalid:9000"):
        sender.send([OscInput("/input/Run", 0)])
    assert sender.sent == 0


def test_deadman_releases_once_per_silence():
    deadman = Deadman(timeout_s=0.5)
    assert not deadman.should_release(100.0)  # nothing pressed before the first action
    assert not deadman.action_received(10.0)
    assert not deadman.should_release(10.4)
    assert deadman.action_received(10.3) is False  # not a resume: no release happened
    assert not deadman.should_release(10.7)
    assert deadman.should_release(10.8)
    assert deadman.released
    assert not deadman.should_release(10.9)
    assert not deadman.should_release(20.0)
    assert deadman.action_received(21.0)  # actions resume after a release
    assert not bool(deadman.released)  # bool(): mypy narrowed the property above
    assert not deadman.should_release(21.4)
    assert deadman.should_release(21.5)


def test_deadman_timeout_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Deadman(0.0)


def test_an_int_beyond_32_bits_is_sent_as_int64():
    stamp_ns = 1_790_000_000_123_400_000
    tag = OscMessage(encode_osc(OscInput("/pamiq/answers", stamp_ns)))
    assert tag.params == [stamp_ns]
    assert b",h" in tag.dgram


# --- release hold and axis smoothing ------------------------------------------------------


def test_a_press_right_after_a_release_waits_the_hold():
    hold = ReleaseHold(0.05)
    mapper = VRChatOscMapper()
    first = hold.schedule(mapper.button_inputs(VRChatButtons(jump=True)), now=1.0)
    assert (1.0, OscInput("/input/Jump", 1)) in first

    again = hold.schedule(mapper.button_inputs(VRChatButtons(jump=True)), now=1.1)
    jumps = [(due, message.value) for due, message in again if message.address == "/input/Jump"]
    assert jumps == [(1.1, 0), (pytest.approx(1.15), 1)]

    # Long after a release, a press goes at once.
    hold.schedule(mapper.button_inputs(VRChatButtons()), now=2.0)
    later = hold.schedule(mapper.button_inputs(VRChatButtons(jump=True)), now=3.0)
    assert (3.0, OscInput("/input/Jump", 1)) in later


def test_inputs_for_one_address_keep_their_order_and_axes_are_never_held():
    hold = ReleaseHold(0.2)
    hold.schedule([OscInput("/input/Run", 0)], now=0.0)
    pressed = hold.schedule([OscInput("/input/Run", 1), OscInput("/input/Vertical", 0.5)], 0.05)
    assert pressed == [
        (pytest.approx(0.2), OscInput("/input/Run", 1)),
        (0.05, OscInput("/input/Vertical", 0.5)),
    ]
    # A release asked for before the held press went out follows it, never overtakes it.
    released = hold.schedule([OscInput("/input/Run", 0)], now=0.1)
    assert released == [(pytest.approx(0.2), OscInput("/input/Run", 0))]


def test_after_a_reset_every_press_waits_the_hold():
    hold = ReleaseHold(0.05)
    hold.reset(now=5.0)
    assert hold.schedule([OscInput("/input/Jump", 1)], 5.01) == [
        (pytest.approx(5.05), OscInput("/input/Jump", 1))
    ]


def test_axis_smoother_is_a_first_order_lag_that_settles_exactly():
    smoother = AxisSmoother(0.2)
    smoother.set_targets([OscInput("/input/Vertical", 1.0)])
    first = smoother.step(0.2)
    assert [message.address for message in first] == ["/input/Vertical"]
    assert first[0].value == pytest.approx(1 - math.exp(-1))
    second = smoother.step(0.2)
    assert second[0].value == pytest.approx(1 - math.exp(-2))
    for _ in range(40):
        smoother.step(0.2)
    assert smoother.step(0.2) == []  # settled on the target: nothing more to send
    smoother.reset()
    smoother.set_targets([OscInput("/input/Run", 1)])  # not an axis: ignored
    assert smoother.step(0.2) == []


def test_release_axes_and_buttons_separately():
    mapper = VRChatOscMapper()
    assert {m.address for m in mapper.release_axes()} == set(AXIS_ADDRESSES)
    assert {m.address for m in mapper.release_buttons()} == set(BUTTON_ADDRESSES)
    assert all(m.value == 0 for m in mapper.release_buttons())
