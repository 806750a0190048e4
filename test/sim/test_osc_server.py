import socket
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from pamiq_ros.sim.osc_input import InputState
from pamiq_ros.sim.osc_server import (
    OscInputServer,
    OscRejection,
    RejectionLogThrottle,
    check_complete_packet,
)
from test.support.processes import wait_until


def message(address: str, *args: str | bytes | bool | int | float) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


class Rejections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[OscRejection] = []

    def __call__(self, rejection: OscRejection) -> None:
        with self._lock:
            self.items.append(rejection)

    def kinds(self) -> list[str]:
        with self._lock:
            return [item.kind for item in self.items]


@pytest.fixture
def state() -> InputState:
    return InputState()


@pytest.fixture
def rejections() -> Rejections:
    return Rejections()


@pytest.fixture
def server(
    state: InputState, rejections: Rejections, free_udp_port: Callable[[], int]
) -> Iterator[OscInputServer]:
    server = OscInputServer(state, "127.0.0.1", free_udp_port(), on_reject=rejections)
    server.start()
    yield server
    server.close()


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_valid_messages_over_udp_change_the_state(
    server: OscInputServer, state: InputState
) -> None:
    client = SimpleUDPClient("127.0.0.1", server.port)
    client.send_message("/input/Vertical", 0.75)
    client.send_message("/input/Run", 1)
    client.send_message("/input/Jump", True)
    assert wait_until(lambda: server.accepted == 3, 5.0)
    assert state.axis("/input/Vertical") == 0.75
    assert state.button("/input/Run") == 1
    assert state.motion_command(2.0, 1.5).jump is True
    assert server.rejected == 0
    assert server.url == f"udp://127.0.0.1:{server.port}"


def test_bundles_nested_ones_included_are_applied(
    server: OscInputServer, state: InputState, sender: socket.socket
) -> None:
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(OscMessageBuilder("/input/Run").build())
    outer = OscBundleBuilder(IMMEDIATELY)
    vertical = OscMessageBuilder("/input/Vertical")
    vertical.add_arg(-0.5)
    outer.add_content(vertical.build())
    outer.add_content(inner.build())  # /input/Run without an argument: refused, alone
    horizontal = OscMessageBuilder("/input/Horizontal")
    horizontal.add_arg(0.25)
    outer.add_content(horizontal.build())
    sender.sendto(outer.build().dgram, ("127.0.0.1", server.port))
    assert wait_until(lambda: server.accepted + server.rejected == 3, 5.0)
    assert state.axis("/input/Vertical") == -0.5
    assert state.axis("/input/Horizontal") == 0.25
    assert server.accepted == 2 and server.rejected == 1


def test_garbage_is_counted_reported_and_the_server_keeps_working(
    server: OscInputServer, state: InputState, rejections: Rejections, sender: socket.socket
) -> None:
    valid = message("/input/Vertical", 0.5)
    bad_packets = [
        b"\xff\xfe\x00garbage\x01\x02",  # random bytes
        b"",  # empty datagram
        valid[:10],  # cut inside the address
        valid[:22],  # cut inside the float
        valid[:20],  # the float missing altogether (python-osc alone would read 0.0)
        valid + b"\x00\x00\x00\x01",  # trailing bytes
        b"#bundle\x00\x00\x00",  # bundle header cut short
        message("/input/Fly", 1),  # unknown address
        message("/input/Jump", "yes"),  # wrong type
        message("/input/Vertical", 1),  # wrong type: int for an axis
        message("/input/Vertical", 3.5),  # out of range
        message("/input/Jump", 2),  # out of range
        message("/input/Jump", 1, 1),  # two arguments
    ]
    for packet in bad_packets:
        sender.sendto(packet, ("127.0.0.1", server.port))
    assert wait_until(lambda: server.rejected == len(bad_packets), 5.0), server.rejected
    assert server.accepted == 0
    assert rejections.kinds() == (
        ["malformed"] * 7
        + ["unknown_address"]
        + ["wrong_type"] * 2
        + ["out_of_range"] * 2
        + ["wrong_argument_count"]
    )
    own_port = sender.getsockname()[1]
    assert {item.sender for item in rejections.items} == {f"127.0.0.1:{own_port}"}
    assert "malformed OSC packet" in rejections.items[0].reason
    assert "/input/Fly" in rejections.items[7].reason

    sender.sendto(valid, ("127.0.0.1", server.port))
    assert wait_until(lambda: server.accepted == 1, 5.0)
    assert state.axis("/input/Vertical") == 0.5


def test_a_failing_callback_does_not_stop_the_server(
    state: InputState, free_udp_port: Callable[[], int], sender: socket.socket
) -> None:
    def explode(rejection: OscRejection) -> None:
        raise RuntimeError("callback bug")

    server = OscInputServer(state, port=free_udp_port(), on_reject=explode)
    server.start()
    try:
        sender.sendto(b"junk", ("127.0.0.1", server.port))
        sender.sendto(message("/input/Vertical", 0.5), ("127.0.0.1", server.port))
        assert wait_until(lambda: server.accepted == 1, 5.0)
        assert server.rejected == 1
    finally:
        server.close()


def test_close_stops_the_thread_and_frees_the_port(
    state: InputState, free_udp_port: Callable[[], int]
) -> None:
    port = free_udp_port()
    server = OscInputServer(state, port=port)
    server.start()
    server.close()
    assert not any(thread.name == "osc-input" for thread in threading.enumerate())
    server.close()  # twice is harmless
    again = OscInputServer(state, port=port)  # the port is free again
    again.close()


def test_a_port_in_use_fails_at_construction(
    state: InputState, free_udp_port: Callable[[], int]
) -> None:
    port = free_udp_port()
    first = OscInputServer(state, port=port)
    try:
        with pytest.raises(OSError):
            OscInputServer(state, port=port)
    finally:
        first.close()


def test_completeness_check_accepts_whole_packets_and_refuses_every_cut() -> None:
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder("/input/Run").build())
    # Each packet with the lengths of its prefixes that are whole packets themselves:
    # an address without type tags, an empty bundle.
    cases = [
        (message("/input/Vertical", 0.5), {16}),
        (message("/a", "text", 1, 2.0, True, b"blob"), {4}),
        (bytes(bundle.build().dgram), {16}),
    ]
    for packet, whole_prefixes in cases:
        check_complete_packet(packet)
        for length in set(range(len(packet))) - whole_prefixes:
            with pytest.raises(ValueError):
                check_complete_packet(packet[:length])


def test_rejection_log_throttle_limits_each_kind_separately() -> None:
    now = [100.0]
    throttle = RejectionLogThrottle(period=2.0, clock=lambda: now[0])
    assert throttle.admit("malformed") == 0
    assert throttle.admit("malformed") is None
    assert throttle.admit("out_of_range") == 0  # another kind is not held back
    assert throttle.admit("malformed") is None
    now[0] += 2.5
    assert throttle.admit("malformed") == 2  # with the count kept quiet meanwhile
    assert throttle.admit("malformed") is None


def test_a_tapped_address_goes_to_its_callable_and_a_bad_one_is_rejected(
    state: InputState, rejections: Rejections
) -> None:
    seen: list[list[object]] = []

    def tap(args: Sequence[object]) -> None:
        if list(args) != [42]:
            raise ValueError("expects 42")
        seen.append(list(args))

    server = OscInputServer(state, "127.0.0.1", 0, on_reject=rejections, taps={"/tap": tap})
    try:
        server.handle_datagram(message("/tap", 42), "test:1")
        server.handle_datagram(message("/tap", 7), "test:1")
        server.handle_datagram(message("/input/Jump", 1), "test:1")
    finally:
        server.close()
    assert seen == [[42]]
    assert (server.accepted, server.rejected) == (2, 1)
    assert rejections.kinds() == ["wrong_type"]
    assert "/tap: expects 42" in rejections.items[0].reason
    assert state.button("/input/Jump") == 1
