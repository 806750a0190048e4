"""End-to-end: the osc_actuator process, checked on the wire by a UDP listener of the test's own."""

import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest
from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import VRChatInput
from pythonosc.osc_packet import OscPacket
from std_srvs.srv import Trigger

from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES, BUTTON_ADDRESSES
from test.support.processes import wait_until
from test.support.services import call_service

pytestmark = pytest.mark.e2e

DEADMAN_TIMEOUT = 0.5
SLACK = 0.3
ALL_INPUTS = (*BUTTON_ADDRESSES, *AXIS_ADDRESSES)

Received = tuple[float, str, object]  # arrival (monotonic s), address, value


class OscListener:
    """Receives and parses every OSC datagram sent to its port, with arrival times."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port: int = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._running:
            try:
                datagram = self._socket.recv(65536)
            except TimeoutError:
                continue
            now = time.monotonic()
            for timed in OscPacket(datagram).messages:
                (value,) = timed.message.params  # VRChat inputs carry exactly one argument
                with self._lock:
                    self._received.append((now, timed.message.address, value))

    def since(self, start: float) -> list[Received]:
        with self._lock:
            return [item for item in self._received if item[0] >= start]

    def wait_for(
        self, condition: Callable[[list[Received]], bool], start: float, timeout: float = 10.0
    ) -> list[Received]:
        if not wait_until(lambda: condition(self.since(start)), timeout):
            raise AssertionError(f"not seen on the wire within {timeout} s: {self.since(start)}")
        return self.since(start)

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self._socket.close()


@pytest.fixture
def listener():
    osc = OscListener()
    yield osc
    osc.close()


def released_at(received: list[Received]) -> float | None:
    """When every input had been released (buttons int 0, axes float 0.0) in ``received``.

    Each input must have been sent as released and not been set otherwise since, so a
    random action that happens to be all zero does not count as a release.
    """
    state: dict[str, object] = {}
    for arrival, address, value in received:
        state[address] = value
        if all(
            state.get(address) == 0
            and type(state.get(address)) is (int if address in BUTTON_ADDRESSES else float)
            for address in ALL_INPUTS
        ):
            return arrival
    return None


def values_of(received: list[Received], address: str) -> list[object]:
    return [value for _, name, value in received if name == address]


def twist(forward: float, left: float, ccw: float) -> Twist:
    message = Twist()
    message.linear.x, message.linear.y, message.angular.z = forward, left, ccw
    return message


def test_actions_go_out_as_vrchat_osc_and_silence_releases_everything(spawn_node, probe, listener):
    start = time.monotonic()
    actuator = spawn_node(
        "osc_actuator",
        {
            "port": listener.port,
            "deadman_timeout": DEADMAN_TIMEOUT,
            "report_period": 0.5,
        },
    )
    # Whatever an earlier actuator left pressed is released at start.
    listener.wait_for(lambda got: released_at(got) is not None, start, timeout=20.0)

    cmd_vel = probe.publisher(Twist, "cmd_vel", 10)
    vrchat_input = probe.publisher(VRChatInput, "vrchat_input", 10)
    assert wait_until(
        lambda: cmd_vel.get_subscription_count() > 0 and vrchat_input.get_subscription_count() > 0,
        20.0,
    )

    # Axes: forward 1 m/s, left 0.5 m/s, CCW 0.75 rad/s at 2 m/s and 1.5 rad/s per full axis.
    mark = time.monotonic()
    cmd_vel.publish(twist(1.0, 0.5, 0.75))
    got = listener.wait_for(lambda got: len(got) >= 3, mark)
    assert [(address, value) for _, address, value in got] == [
        ("/input/Vertical", 0.5),
        ("/input/Horizontal", -0.25),
        ("/input/LookHorizontal", -0.5),
    ]
    assert all(type(value) is float for _, _, value in got)

    # Beyond the full axis: clamped to [-1, 1].
    mark = time.monotonic()
    cmd_vel.publish(twist(-5.0, -4.0, 3.0))
    got = listener.wait_for(lambda got: len(got) >= 3, mark)
    assert [(address, value) for _, address, value in got] == [
        ("/input/Vertical", -1.0),
        ("/input/Horizontal", 1.0),
        ("/input/LookHorizontal", -1.0),
    ]

    # Buttons: Run held as int, Jump an edge that is released before it is pressed again.
    mark = time.monotonic()
    vrchat_input.publish(VRChatInput(jump=True, run=True))
    got = listener.wait_for(lambda got: len(got) >= 2, mark)
    assert [(address, value) for _, address, value in got] == [
        ("/input/Run", 1),
        ("/input/Jump", 1),
    ]
    assert all(type(value) is int for _, _, value in got)
    mark = time.monotonic()
    vrchat_input.publish(VRChatInput(jump=True, run=True))
    got = listener.wait_for(lambda got: len(got) >= 3, mark)
    assert [(address, value) for _, address, value in got] == [
        ("/input/Run", 1),
        ("/input/Jump", 0),
        ("/input/Jump", 1),
    ]
    mark = time.monotonic()
    vrchat_input.publish(VRChatInput(jump=False, run=True))
    got = listener.wait_for(lambda got: len(got) >= 2, mark)
    assert [(address, value) for _, address, value in got] == [
        ("/input/Run", 1),
        ("/input/Jump", 0),
    ]
    last_action = got[-1][0]

    # Silence: every input released once, within the deadman timeout (checked on the wire).
    got = listener.wait_for(lambda got: released_at(got) is not None, last_action, timeout=5.0)
    release = released_at(got)
    assert release is not None
    assert DEADMAN_TIMEOUT - 0.05 <= release - last_action <= DEADMAN_TIMEOUT + SLACK
    actuator.wait_for_output(f"no cmd_vel for {DEADMAN_TIMEOUT} s: centred the axes")
    actuator.wait_for_output(f"no vrchat_input for {DEADMAN_TIMEOUT} s: released the buttons")
    time.sleep(1.0)
    assert len(listener.since(release + 0.01)) == 0, "the release must not repeat"

    # Actions resume: they are sent again.
    mark = time.monotonic()
    vrchat_input.publish(VRChatInput(jump=False, run=True))
    got = listener.wait_for(lambda got: ("/input/Run", 1) in [(a, v) for _, a, v in got], mark)
    actuator.wait_for_output("vrchat_input resumed after")
    assert actuator.wait_for_output("osc sent=")
    assert actuator.is_running()


@pytest.mark.parametrize("how", ["ctrl_c", "shutdown_service"])
def test_stopping_releases_every_input_before_exiting(spawn_node, probe, listener, how):
    """Ctrl-C releases on close; the shutdown service also releases when it answers."""
    start = time.monotonic()
    actuator = spawn_node("osc_actuator", {"port": listener.port, "deadman_timeout": 5.0})
    listener.wait_for(lambda got: released_at(got) is not None, start, timeout=20.0)
    cmd_vel = probe.publisher(Twist, "cmd_vel", 10)
    vrchat_input = probe.publisher(VRChatInput, "vrchat_input", 10)
    assert wait_until(
        lambda: cmd_vel.get_subscription_count() > 0 and vrchat_input.get_subscription_count() > 0,
        20.0,
    )
    mark = time.monotonic()
    cmd_vel.publish(twist(2.0, 0.0, 1.5))
    vrchat_input.publish(VRChatInput(jump=False, run=True))
    listener.wait_for(
        lambda got: (
            ("/input/Run", 1) in [(a, v) for _, a, v in got]
            and ("/input/Vertical", 1.0) in [(a, v) for _, a, v in got]
        ),
        mark,
    )

    interrupted = time.monotonic()
    if how == "ctrl_c":
        assert actuator.stop(signal.SIGINT) == 0
    else:
        answer = call_service(probe, Trigger, "/osc_actuator/control/shutdown", Trigger.Request())
        assert answer.success, answer.message
        assert wait_until(lambda: not actuator.is_running(), 15.0)
        assert actuator.stop() == 0
    got = listener.wait_for(lambda got: released_at(got) is not None, interrupted, timeout=2.0)
    # Released once on close; after a shutdown request also when it was answered, before the
    # SIGTERM the node sends itself SHUTDOWN_DELAY_S later.
    assert values_of(got, "/input/Run") == ([0] if how == "ctrl_c" else [0, 0])
    assert "closed: released all inputs" in actuator.output()


def test_killed_agent_leaves_every_input_released_within_the_deadman_timeout(spawn_node, listener):
    """The acceptance test: a real agent drives a real actuator, then dies without a word."""
    start = time.monotonic()
    spawn_node("osc_actuator", {"port": listener.port, "deadman_timeout": DEADMAN_TIMEOUT})
    agent = spawn_node("agent", {"rate_hz": 10.0})  # no camera: it acts without observation

    def agent_is_driving(got: list[Received]) -> bool:
        return len(values_of(got, "/input/Vertical")) >= 10

    listener.wait_for(agent_is_driving, start, timeout=30.0)
    killed = time.monotonic()
    agent.signal_group(signal.SIGKILL)
    got = listener.wait_for(lambda got: released_at(got) is not None, killed, timeout=5.0)
    release = released_at(got)
    assert release is not None
    assert release - killed <= DEADMAN_TIMEOUT + SLACK, f"released {release - killed:.3f} s late"
    assert not agent.is_running() or wait_until(lambda: not agent.is_running(), 2.0)


def test_axis_smoothing_eases_toward_the_command_and_releases_at_once(spawn_node, probe, listener):
    start = time.monotonic()
    spawn_node(
        "osc_actuator",
        {"port": listener.port, "axis_time_constant": 0.2, "smoothing_period": 0.05,
         "deadman_timeout": 1.0},
    )  # fmt: skip
    listener.wait_for(lambda got: released_at(got) is not None, start, timeout=20.0)
    cmd_vel = probe.publisher(Twist, "cmd_vel", 10)
    assert wait_until(lambda: cmd_vel.get_subscription_count() > 0, 20.0)

    # Commands at 10 Hz until the axis has settled at 1.0 (six time constants after the first
    # command arrives: 1.2 s on a quiet machine). Not a fixed 1.2 s of publishing: under load
    # the first commands can reach the actuator late, and the axis would not yet have settled.
    mark = time.monotonic()
    deadline = mark + 15.0
    while time.monotonic() < deadline and not any(
        address == "/input/Vertical" and value >= 0.995
        for _, address, value in listener.since(mark)
    ):
        cmd_vel.publish(twist(2.0, 0.0, 0.0))  # Vertical 1.0
        time.sleep(0.1)
    got = listener.since(mark)
    vertical = [value for _, address, value in got if address == "/input/Vertical"]
    assert vertical[0] < 0.5, vertical  # one 50 ms step of a 0.2 s lag: about 0.22
    assert vertical == sorted(vertical), "a first-order lag rises monotonically"
    assert vertical[-1] == pytest.approx(1.0, abs=0.01)
    eased = next(t for t, address, value in got if address == "/input/Vertical" and value > 0.63)
    first = next(t for t, address, _ in got if address == "/input/Vertical")
    assert 0.1 <= eased - first <= 0.4, eased - first  # about one time constant

    # Silence: the deadman centres the axes in one message, not eased.
    last = time.monotonic()
    got = listener.wait_for(
        lambda got: ("/input/Vertical", 0.0) in [(a, v) for _, a, v in got], last, timeout=5.0
    )
    values = [v for _, a, v in got if a == "/input/Vertical"]
    released = values.index(0.0)
    assert all(value > 0.9 for value in values[:released]), values  # no easing down
    time.sleep(0.3)
    after = [v for _, a, v in listener.since(last) if a == "/input/Vertical"][released:]
    assert not any(after), "nothing eases the axis back after its release"
