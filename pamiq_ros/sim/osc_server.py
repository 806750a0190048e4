"""Receives VRChat-style OSC input over UDP and feeds it to an :class:`InputState`.

One thread reads the socket; every datagram is parsed with python-osc (messages and bundles,
nested bundles included; bundle time tags are ignored and messages applied at once). Nothing
that arrives can stop the thread: malformed packets, unknown addresses, wrong types and
out-of-range values are counted and handed to a callback with the reason and the sender.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pythonosc.osc_packet import OscPacket

from pamiq_ros.io.vrchat_osc import DEFAULT_VRCHAT_INPUT_PORT
from pamiq_ros.sim.osc_input import InputState, OscInputError, RejectionKind

_logger = logging.getLogger(__name__)
_MAX_DATAGRAM = 65535
_BUNDLE_TAG = b"#bundle\x00"
_BUNDLE_HEADER = len(_BUNDLE_TAG) + 8  # the tag and a 64-bit time tag
_FIXED_ARGUMENT_SIZES = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "h": 8, "d": 8, "t": 8}
_NO_DATA_TAGS = frozenset("TFNI[]")
_POLL_SECONDS = 0.2  # how soon the thread notices close()


@dataclass(frozen=True)
class OscRejection:
    """One refused packet or message.

    Attributes:
        sender: ``host:port`` it came from.
        kind: The category (see :data:`~pamiq_ros.sim.osc_input.RejectionKind`).
        reason: What was wrong, naming the address when there is one.
    """

    sender: str
    kind: RejectionKind
    reason: str


class OscInputServer:
    """A UDP socket bound to ``host:port`` whose thread applies OSC messages to ``state``.

    The socket is bound in the constructor, so a port in use fails there with ``OSError``.

    Args:
        state: Where valid messages go.
        host: Address to bind; loopback by default.
        port: UDP port; 0 picks a free one (see :attr:`port`).
        on_reject: Called (on the server thread) for every refused packet or message; an
            exception it raises is logged and otherwise ignored.
        taps: Addresses handled by a callable of their own instead of ``state`` (the latency
            benchmark's ``/pamiq/answers``), called on the server thread with the message's
            arguments; counted as accepted, or rejected (``wrong_type``) if it raises
            ``ValueError``.
    """

    def __init__(
        self,
        state: InputState,
        host: str = "127.0.0.1",
        port: int = DEFAULT_VRCHAT_INPUT_PORT,
        on_reject: Callable[[OscRejection], None] | None = None,
        taps: Mapping[str, Callable[[Sequence[object]], None]] | None = None,
    ) -> None:
        self._state = state
        self._taps = dict(taps or {})
        self._on_reject = on_reject
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self._socket.settimeout(_POLL_SECONDS)
        self._stop = threading.Event()
        self._count_lock = threading.Lock()
        self._accepted = 0
        self._rejected = 0
        self._thread = threading.Thread(target=self._serve, name="osc-input", daemon=True)

    @property
    def host(self) -> str:
        """The address the socket is bound to."""
        return str(self._socket.getsockname()[0])

    @property
    def port(self) -> int:
        """The UDP port the socket is bound to (the chosen one when 0 was asked)."""
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``udp://host:port``, for log lines."""
        return f"udp://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        """Messages applied so far."""
        with self._count_lock:
            return self._accepted

    @property
    def rejected(self) -> int:
        """Packets that could not be parsed plus messages refused, so far."""
        with self._count_lock:
            return self._rejected

    def start(self) -> None:
        """Starts reading in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stops the thread and closes the socket; safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._socket.close()

    def handle_datagram(self, data: bytes, sender: str) -> None:
        """Parses one datagram and applies its messages (what the thread does per packet)."""
        try:
            check_complete_packet(data)
            packet = OscPacket(data)
        except Exception as error:
            self._reject(
                OscRejection(
                    sender,
                    "malformed",
                    f"malformed OSC packet ({len(data)} bytes, starts {data[:16]!r}): {error}",
                )
            )
            return
        for timed in packet.messages:
            message = timed.message
            try:
                tap = self._taps.get(message.address)
                if tap is not None:
                    tap(list(message.params))
                else:
                    self._state.apply(message.address, list(message.params))
            except OscInputError as error:
                self._reject(OscRejection(sender, error.kind, str(error)))
            except ValueError as error:
                self._reject(OscRejection(sender, "wrong_type", f"{message.address}: {error}"))
            else:
                with self._count_lock:
                    self._accepted += 1

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, (host, port) = self._socket.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError as error:
                if self._stop.is_set():
                    return
                # E.g. ICMP "port unreachable" surfacing on the socket; keep listening.
                _logger.debug("OSC socket error (ignored): %s", error)
                time.sleep(0.01)
                continue
            self.handle_datagram(data, f"{host}:{port}")

    def _reject(self, rejection: OscRejection) -> None:
        with self._count_lock:
            self._rejected += 1
        if self._on_reject is None:
            return
        try:
            self._on_reject(rejection)
        except Exception:
            _logger.exception("OSC rejection callback failed")


class RejectionLogThrottle:
    """Decides which rejections to log: at most one per kind every ``period`` seconds.

    Keeping one budget per kind means a flood of one kind of garbage cannot hide the first
    report of another kind.

    Args:
        period: Minimum seconds between two logged rejections of the same kind.
        clock: Monotonic time source (for tests).
    """

    def __init__(self, period: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, kind: str) -> int | None:
        """Returns None to stay quiet, or how many of this kind were kept quiet since the last."""
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(kind)
            if last is not None and now - last < self._period:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return None
            self._last_logged[kind] = now
            return self._suppressed.pop(kind, 0)


def check_complete_packet(data: bytes) -> None:
    """Checks that ``data`` is exactly one whole OSC message or bundle, to the byte.

    python-osc pads a cut-short numeric argument with zeros, so a truncated ``/input/Vertical
    0.5`` could reach the world as 0.0; this refuses such packets first. Unknown type tags and
    other oddities are left to python-osc's parser, which reports them.

    Raises:
        ValueError: If the packet is cut short or has bytes after its end.
    """
    if data.startswith(_BUNDLE_TAG):
        if len(data) < _BUNDLE_HEADER:
            raise ValueError(f"bundle header cut short ({len(data)} of {_BUNDLE_HEADER} bytes)")
        index = _BUNDLE_HEADER
        while index < len(data):
            size = _int32_at(data, index, "bundle element size")
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise ValueError(
                    f"bundle element at byte {index - 4} declares {size} bytes; "
                    f"{len(data) - index} are left (sizes are positive multiples of 4)"
                )
            check_complete_packet(data[index : index + size])
            index += size
        return
    index = _string_end(data, 0, "address")
    if index == len(data):
        return  # a message with neither type tags nor arguments
    tags_start = index
    index = _string_end(data, index, "type tag string")
    tags = data[tags_start:index].rstrip(b"\x00").decode("ascii", errors="replace")
    if not tags.startswith(","):
        return
    for tag in tags[1:]:
        if tag in _FIXED_ARGUMENT_SIZES:
            index += _FIXED_ARGUMENT_SIZES[tag]
        elif tag == "s":
            index = _string_end(data, index, "string argument")
        elif tag == "b":
            size = _int32_at(data, index, "blob size")
            index += 4 + (size + 3) // 4 * 4
        elif tag not in _NO_DATA_TAGS:
            return
        if index > len(data):
            raise ValueError(
                f"message cut short: its type tags {tags!r} need at least {index} bytes, "
                f"got {len(data)}"
            )
    if index != len(data):
        raise ValueError(f"{len(data) - index} unexpected bytes after the last argument")


def _string_end(data: bytes, start: int, what: str) -> int:
    """Index just past the NUL-terminated, 4-byte-padded string starting at ``start``."""
    end = data.find(b"\x00", start)
    if end < 0:
        raise ValueError(f"{what} at byte {start} has no terminating NUL (cut short?)")
    padded_end = (end // 4 + 1) * 4
    if padded_end > len(data):
        raise ValueError(f"{what} at byte {start} is cut short (padding missing)")
    return padded_end


def _int32_at(data: bytes, index: int, what: str) -> int:
    if index + 4 > len(data):
        raise ValueError(f"{what} at byte {index} cut short")
    return int.from_bytes(data[index : index + 4], "big", signed=True)
