"""Weight sync over ROS: the trainer announces versions and serves them, the agent fetches them.

The trainer's :class:`WeightPublisher` stores each new version (``pamiq_ros.core.weight_store``)
and announces it on ``weights/announce`` (``WeightsAnnouncement``: model, version, checksum,
size, host identity, time). The announcement QoS is reliable and transient-local, so an agent
that starts late still sees the newest versions. The agent's :class:`WeightSubscriber` fetches
each version it can use through the ``weights/get`` service (``GetWeights``):

- same host (equal host identities): the response names the version's shared-memory file and
  carries no bytes; the agent reads the file itself;
- other host, or ``bytes_only``: the response carries the bytes, one chunk per request.

For bad links (WiFi, a robot's computer): only the newest version of a model is fetched (an
older one is dropped unseen, and a fetch in progress stops between two chunks when a newer
version is announced); each chunk has its own timeout, which grows with its size
(``request_timeout_s`` plus the chunk's bytes at ``MIN_TRANSFER_RATE``), and is asked for again
up to ``CHUNK_ATTEMPTS`` times, so a lost answer costs one chunk's retry, not the version; a
version whose chunks stay unanswered is tried again later from the chunk where it stopped
(resumable). :meth:`WeightSubscriber.status` says the path used (``shm`` or ``bytes``), the bytes
that crossed per version (announced size, and what the answers carried, retries included) and the
sync time on the agent's own clock (announcement received to weights ready), never the trainer's
clock minus the agent's.

Fetching, checking (checksum, format, NaN/Inf) and loading into the model's spare copy run in
the subscriber's own loader thread, never in an executor callback and never in the acting
thread; the acting thread swaps the prepared weights in between steps
(``pamiq_ros.core.swappable``). Weights that fail a check are refused with a message and the
model keeps acting with the weights it has.

Trust (see the README's trust model): the subscriber takes announcements only from the trainer
it follows (``trainer_node``): each announcement's publisher GID, from rclpy's message info,
must be one of the announce-topic endpoints the ROS graph lists for that node or its sync node.
Anyone in the DDS domain may still answer ``weights/get`` (a service has no caller-visible
server identity in rclpy), so an answer is never trusted by itself: the announced checksum
(BLAKE3, cryptographic), from the trainer, binds the bytes; every server's answer to a request
is taken and a success wins over a refusal; a "no", a mismatch or a refused file is asked
again (with backoff) while the version is still the newest; a shared-memory path is read only
inside a store folder (``pamiq_ros-<pid>-*`` under an allowed root, owned by this user, mode
0700, the one the trainer used last while it exists), through ``O_NOFOLLOW``, from a regular file
of this user no larger than the model's expected size. Paths never go into log messages.

Both sides put their topic, service and client on a small node of their own
(``<node>_weight_sync``, same namespace, names resolved through the host node so remappings
apply) spun by a single-threaded executor in its own thread. rclpy's MultiThreadedExecutor,
which the project's nodes run on, was measured delivering callbacks up to about a second late
on a 2-core machine (a single-threaded executor: under 6 ms); the sync latency must not
depend on it, nor on how busy the host node's callbacks are.
"""

import array
import atexit
import contextlib
import errno
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
import torch
from pamiq_ros_interfaces.msg import WeightsAnnouncement
from pamiq_ros_interfaces.srv import GetWeights
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.core.weight_store import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_BYTES
from pamiq_ros.core.weight_store import (
    ChunkAssembler,
    SharedWeightStore,
    StoredWeights,
    default_store_roots,
    is_store_directory_name,
    version_file_name,
)
from pamiq_ros.core.weights import (
    HASH_BLOCK_BYTES,
    Checksummer,
    WeightsError,
    compare_checksum,
    host_identity,
    parse_weights,
)

ANNOUNCE_TOPIC = "weights/announce"
WEIGHTS_SERVICE = "weights/get"

ANNOUNCE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""Reliable and transient-local: a late-joining agent receives the newest announcements."""

TRANSPORTS = ("auto", "shm", "bytes")

MAX_WEIGHTS_BYTES = 8 << 30
"""Largest announced size the subscriber accepts (a bad size must not exhaust memory)."""

HEADER_ALLOWANCE_BYTES = 64 << 10
"""Room for the safetensors header on top of a model's tensor bytes (its expected size)."""

HEADER_BYTES_PER_TENSOR = 512
"""Further header room per tensor (names, shapes, offsets as JSON)."""

MAX_VERSION = 1 << 53
"""Versions above this are refused: no trainer publishes that many, and JSON keeps them exact."""

MAX_VERSION_JUMP = 1_000_000
"""Largest step over the newest version the trainer announced before (days of training)."""

ASK_ATTEMPTS = 12
"""Times a version is asked for again after an answer that was refused ("no", a mismatch, a
file or bytes that fail their checks): anyone in the domain can answer, so one bad answer does
not drop a version the trainer announced (a success from any server wins over refusals within
one ask: :class:`_Answers`)."""

ASK_BACKOFF_S = (0.05, 1.0)
"""First and longest wait between two asks (doubling)."""

SHM_RETRY_S = 30.0
"""After a shared-memory file could not be read, versions come as bytes for this long, then
shared memory is tried again (and kept after a success)."""

REFUSAL_GRACE_S = 0.5
"""After a refusal, how long a request still waits for another server's success, when not
every server answered yet."""

MIN_CHUNK_BYTES = 1024
"""Smallest chunk a server may cut the bytes into (bounds the number of requests)."""

IDENTITY_WAIT_S = 2.0
"""How long an announcement from a publisher the graph does not list yet waits to be checked
again (discovery may lag the first message)."""

UNVERIFIED_LIMIT = 16
"""Announcements waiting for their publisher to appear in the graph; older ones are dropped."""

DEFAULT_TRAINER_NODE = "trainer"

CHUNK_ATTEMPTS = 4
"""Times one request (a chunk, or the shared-memory path) is sent before the fetch pauses: an
answer that does not come within its timeout (lost to the link, or among large ones on loopback)
is asked for again; after that the version is tried again later, from the chunk it stopped at."""

DEFAULT_REQUEST_TIMEOUT_S = 1.5
"""Wait for an answer carrying no bytes; a chunk's wait adds its bytes at ``MIN_TRANSFER_RATE``."""

MIN_TRANSFER_RATE = 1_000_000
"""Bytes per second a chunk is given to arrive before it is asked for again (a slow WiFi link
moves a few MB/s; loopback 100 MB/s and more)."""

RETRY_AFTER_NO_ANSWER_S = 1.0
"""Pause before a version whose requests went unanswered is tried again (if still the newest)."""

SYNC_HISTORY = 64
"""Recent versions whose sync figures :meth:`WeightSubscriber.status` summarises."""

POLL_PERIOD_S = 0.05
"""How often waits in the loader thread check whether the subscriber is closing."""

SPIN_TIMEOUT_S = 0.1
"""How often the sync node's spinning thread checks whether it should stop."""


def _stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


class SyncNode:
    """A node of its own next to a host node, spun by a single-threaded executor in a thread.

    Entities are created with names resolved through the host node, so the host's namespace
    and remappings apply; the sync node itself ignores the process's global arguments (a
    ``__node`` remapping would otherwise give it the host's name).
    """

    def __init__(self, host: Node, suffix: str = "weight_sync") -> None:
        """Creates the node in the host's context and starts spinning it."""
        self.host = host
        self.node = rclpy.create_node(
            f"{host.get_name()}_{suffix}",
            namespace=host.get_namespace(),
            context=host.context,
            use_global_arguments=False,
            enable_rosout=False,
            start_parameter_services=False,
        )
        self._executor = SingleThreadedExecutor(context=host.context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._closed = False
        self.errors = 0
        """Callbacks that raised (logged, then spinning went on)."""
        self._thread = threading.Thread(target=self._spin, name=f"{suffix}-spin", daemon=True)
        self._thread.start()
        # Should the owner not close it: the thread stops when the context shuts down, and the
        # interpreter waits for it at exit (a thread still in rclpy's C++ code then aborts it).
        host.context.on_shutdown(self._stop.set)
        atexit.register(self._thread.join, 2.0)

    def topic(self, name: str) -> str:
        """The host's fully resolved name of a topic."""
        return self.host.resolve_topic_name(name)

    def service(self, name: str) -> str:
        """The host's fully resolved name of a service."""
        return self.host.resolve_service_name(name)

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
            except ExternalShutdownException:  # the context shut down: nothing left to serve
                return
            except Exception as error:  # a callback's bug must not stop serving: say it, go on
                self.errors += 1
                self.node.get_logger().error(
                    f"weight sync callback failed: {type(error).__name__}: {error}",
                    throttle_duration_sec=2.0,
                )

    def close(self) -> None:
        """Stops spinning and destroys the node; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        with contextlib.suppress(Exception):  # the context may already be shut down
            self._executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()


@dataclass(frozen=True)
class PublishTiming:
    """Where the time of one :meth:`WeightPublisher.publish` went (seconds).

    Attributes:
        store_s: Encoding with the finiteness check, writing the file and hashing (in parallel).
        announce_s: Publishing the announcement.
        total_s: The whole call.
        size_bytes: Size of the encoded weights.
        encode_s: Part of ``store_s``: the header and the NaN/Inf check.
        write_s: Part of ``store_s``: writing the file.
        hash_s: Part of ``store_s``: the hashing (block by block, inside the write).
        preallocated: Whether the file had been allocated ahead of time.
    """

    store_s: float
    announce_s: float
    total_s: float
    size_bytes: int
    encode_s: float = 0.0
    write_s: float = 0.0
    hash_s: float = 0.0
    preallocated: bool = False


class WeightPublisher:
    """The trainer's side: stores, announces and serves versions of model weights."""

    def __init__(
        self,
        node: Node,
        store: SharedWeightStore,
        announce_topic: str = ANNOUNCE_TOPIC,
        service: str = WEIGHTS_SERVICE,
    ) -> None:
        """Creates the announcement publisher and the service (on a sync node next to ``node``).

        Args:
            node: The trainer's node: its name, namespace, remappings and clock are used.
            store: Where versions are kept (the caller closes it).
            announce_topic: Topic of the announcements (relative names follow the namespace).
            service: Name of the ``GetWeights`` service.
        """
        self._node = node
        self._store = store
        self._host_id = host_identity()
        self._lock = threading.Lock()  # keeps announcements in version order
        self._closed = False
        self.last_timing: PublishTiming | None = None
        self._sync = SyncNode(node)
        self._announcer = self._sync.node.create_publisher(
            WeightsAnnouncement, self._sync.topic(announce_topic), ANNOUNCE_QOS
        )
        self._service = self._sync.node.create_service(
            GetWeights, self._sync.service(service), self._serve
        )

    @property
    def host_id(self) -> str:
        """The host identity sent with announcements."""
        return self._host_id

    def publish(
        self, model_name: str, version: int, state_dict: Mapping[str, torch.Tensor]
    ) -> StoredWeights:
        """Encodes, stores and announces one version; thread-safe (the training thread calls it).

        Returns:
            What was stored and announced: version, checksum, size and the shared-memory file
            (the bytes are not read back: that would cost as much as writing them).

        Raises:
            NonFiniteWeightsError: If a tensor holds NaN or Inf; nothing is stored or announced.
            WeightsError: If the weights cannot be encoded or the version is not newer than the
                stored one.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the weight publisher is closed")
            started = time.perf_counter()
            stored = self._store.put_state_dict(model_name, version, state_dict)
            stored_at = time.perf_counter()
            announcement = WeightsAnnouncement(
                model_name=model_name,
                version=version,
                checksum=stored.checksum,
                size_bytes=stored.size_bytes,
                host_id=self._host_id,
            )
            announcement.published = self._node.get_clock().now().to_msg()
            self._announcer.publish(announcement)
            finished = time.perf_counter()
            put = self._store.last_timing
            self.last_timing = PublishTiming(
                store_s=stored_at - started,
                announce_s=finished - stored_at,
                total_s=finished - started,
                size_bytes=stored.size_bytes,
                encode_s=put.encode_s if put else 0.0,
                write_s=put.write_s if put else 0.0,
                hash_s=put.hash_s if put else 0.0,
                preallocated=put.preallocated if put else False,
            )
        return stored

    def _serve(self, request: Any, response: Any) -> Any:
        """Answers ``GetWeights``: a file path on the same host, else one chunk of bytes."""
        stored = self._store.info(request.model_name, request.version)
        if self._closed or stored is None:
            response.success = False
            response.message = (
                "the trainer is shutting down"
                if self._closed
                else self._store.describe_missing(request.model_name, request.version)
            )
            return response
        response.version = stored.version
        response.checksum = stored.checksum
        response.size_bytes = stored.size_bytes
        if request.host_id == self._host_id and not request.bytes_only:
            response.shm_path = str(stored.path)
            response.chunk_count = 0
            response.success = True
            return response
        try:
            data, count = self._store.chunk(stored.model_name, stored.version, request.chunk_index)
        except WeightsError as error:
            response.success = False
            response.message = str(error)
            return response
        chunk = array.array("B")
        chunk.frombytes(data)  # one copy; assigning bytes would go element by element
        response.chunk = chunk
        response.chunk_index = request.chunk_index
        response.chunk_count = count
        response.success = True
        return response

    def close(self) -> None:
        """Stops announcing and serving; idempotent."""
        with self._lock:
            self._closed = True
        self._sync.close()


@dataclass(frozen=True)
class SyncTiming:
    """How long one version took from the trainer's announcement to ready-to-swap.

    ``received_to_ready_s`` is measured on this process's own clock (monotonic), from the
    announcement's arrival here; the ``announced_to_*`` figures compare the trainer's stamp with
    this node's clock, which means something only when both share one clock (one host). The
    stage figures are measured in the loader thread.

    Attributes:
        announced_to_received_s: Announcement stamp to the encoded bytes being in hand.
        announced_to_ready_s: Announcement stamp to the weights prepared for the swap.
        transport: ``"shm"`` or ``"bytes"``.
        size_bytes: Size of the encoded weights.
        announcement_s: Announcement stamp to its arrival in this node.
        request_s: Time spent in service calls.
        read_s: Reading the shared-memory file, or assembling the chunks.
        checksum_s: Comparing the checksum (hashed during the read or the chunks).
        decode_s: Parsing the header and checking NaN/Inf.
        load_s: Copying into the model's spare copy.
        received_to_ready_s: The announcement's arrival here to the weights prepared (own clock).
        transferred_bytes: Bytes the answers carried for this version (repeats included).
        chunk_retries: Requests sent again because their answer did not come in time.
        resumed: Whether the fetch went on from chunks received by an earlier try.
    """

    announced_to_received_s: float
    announced_to_ready_s: float
    transport: str
    size_bytes: int = 0
    announcement_s: float = 0.0
    request_s: float = 0.0
    read_s: float = 0.0
    checksum_s: float = 0.0
    decode_s: float = 0.0
    load_s: float = 0.0
    received_to_ready_s: float = 0.0
    transferred_bytes: int = 0
    chunk_retries: int = 0
    resumed: bool = False


@dataclass(frozen=True)
class Announcement:
    """The fields of one ``WeightsAnnouncement``, and when it arrived (node clock, seconds)."""

    model_name: str
    version: int
    checksum: str
    size_bytes: int
    host_id: str
    published_s: float
    received_s: float
    arrived_monotonic: float = 0.0

    @property
    def where(self) -> str:
        """Names the weights in messages."""
        return f"weights of model {self.model_name!r} version {self.version}"


class NewestAnnouncements:
    """Per model, the newest announcement not yet loaded; older ones are dropped unseen.

    The subscription's callback offers, the loader thread takes. Thread-safe.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: dict[str, Announcement] = {}
        self._closed = False

    def offer(self, announcement: Announcement) -> bool:
        """Keeps the announcement unless a newer one of its model waits; returns whether kept."""
        with self._condition:
            held = self._pending.get(announcement.model_name)
            if held is not None and held.version > announcement.version:
                return False
            # A model re-offered goes to the back of the queue, so models take turns.
            self._pending.pop(announcement.model_name, None)
            self._pending[announcement.model_name] = announcement
            self._condition.notify()
            return True

    def take(self, timeout: float | None = None) -> Announcement | None:
        """The oldest-queued model's newest announcement; None on timeout or after close."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._pending or self._closed, timeout):
                return None
            if self._closed:
                return None
            name = next(iter(self._pending))
            return self._pending.pop(name)

    def pending_version(self, model_name: str) -> int | None:
        """The version of the model's waiting announcement, if one waits."""
        with self._condition:
            held = self._pending.get(model_name)
            return None if held is None else held.version

    def __len__(self) -> int:
        with self._condition:
            return len(self._pending)

    def close(self) -> None:
        """Wakes the taker; ``take`` returns None from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class _ClosingError(Exception):
    """The subscriber closed while a fetch was in progress."""


class _Answers:
    """Every answer to one request, as the executor delivers them (duck-typing its future)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._success: Any = None
        self._refusals: list[Any] = []
        self._first_refusal_at: float | None = None

    def _set_executor(self, executor: Any) -> None:
        """Called by the executor before :meth:`set_result`; nothing to keep."""

    def set_result(self, response: Any) -> None:
        """Executor thread: one server's answer."""
        if response is None:
            return
        with self._condition:
            if response.success:
                if self._success is None:
                    self._success = response
            else:
                self._refusals.append(response)
                if self._first_refusal_at is None:
                    self._first_refusal_at = time.monotonic()
            self._condition.notify_all()

    def decided(self, servers: int, grace_s: float, wait_s: float) -> Any:
        """The answer to use, once it is decided.

        Returns:
            A success; else a refusal once ``servers`` answered or ``grace_s`` passed since the
            first; else None after waiting up to ``wait_s``.
        """
        with self._condition:
            self._condition.wait_for(lambda: self._success is not None, wait_s)
            if self._success is not None:
                return self._success
            if self._refusals and (
                len(self._refusals) >= servers
                or time.monotonic() - (self._first_refusal_at or 0.0) >= grace_s
            ):
                return self._refusals[-1]
            return None

    def refusal(self) -> Any:
        """The last refusal, or None."""
        with self._condition:
            return self._refusals[-1] if self._refusals else None


class _NoAnswerError(WeightsError):
    """A request went unanswered ``CHUNK_ATTEMPTS`` times (the link, or the trainer, is away)."""


class _SupersededError(Exception):
    """A newer version of the model was announced while this one was being fetched."""


class _RefusedAnswerError(WeightsError):
    """An answer (or the file it names) that fails its checks; anyone may have sent it.

    Attributes:
        kind: What failed, counted in :meth:`WeightSubscriber.refusals` as ``answer_<kind>``.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _qualified(name: str, namespace: str) -> str:
    """``name`` fully qualified in ``namespace`` (unchanged when it starts with ``/``)."""
    if name.startswith("/"):
        return name
    return f"{namespace.rstrip('/')}/{name}"


def _expected_size(model: SwappableModel) -> int:
    """The largest encoded size a model's weights may have: its tensors plus header room."""
    state = model.current()[0].state_dict()
    tensor_bytes = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    return tensor_bytes + HEADER_ALLOWANCE_BYTES + HEADER_BYTES_PER_TENSOR * len(state)


class WeightSubscriber:
    """The agent's side: fetches announced versions in a loader thread and prepares them."""

    def __init__(
        self,
        node: Node,
        models: Mapping[str, SwappableModel],
        transport: str = "auto",
        on_ready: Callable[[str, int, SyncTiming], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        announce_topic: str = ANNOUNCE_TOPIC,
        service: str = WEIGHTS_SERVICE,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        trainer_node: str = DEFAULT_TRAINER_NODE,
        store_roots: Sequence[Path] | None = None,
        ask_backoff_s: tuple[float, float] = ASK_BACKOFF_S,
    ) -> None:
        """Subscribes to announcements and starts the loader thread.

        Args:
            node: The agent's node: its name, namespace, remappings, clock and logger are used.
            models: Model name -> the model its weights go to.
            transport: ``"auto"`` (the shared-memory file when the trainer is on this host,
                else bytes), ``"shm"`` or ``"bytes"``.
            on_ready: Called from the loader thread after a version is prepared.
            on_error: Called from the loader thread with the reason a version was refused;
                logged as an error when None.
            announce_topic: Topic of the announcements.
            service: Name of the ``GetWeights`` service.
            request_timeout_s: Wait for a service answer that carries no bytes (each of
                ``CHUNK_ATTEMPTS`` tries); a chunk is given its bytes at
                ``MIN_TRANSFER_RATE`` on top.
            trainer_node: The trainer whose announcements are taken (a name in the host's
                namespace, or fully qualified); its own node and its ``<name>_weight_sync``
                node may announce.
            store_roots: Folders whose ``pamiq_ros-<pid>-*`` store folders may hold
                shared-memory files; default ``/dev/shm`` and the temporary folder.
            ask_backoff_s: First and longest wait before asking again after a refused answer.
        """
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        if request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be positive, got {request_timeout_s}")
        self._node = node
        self._models = dict(models)
        self._transport = transport
        self._on_ready = on_ready
        self._on_error = on_error
        self._request_timeout_s = request_timeout_s
        self._host_id = host_identity()
        self._shm_retry_at = 0.0  # auto: bytes until then (monotonic), after a failed file read
        self._buffers: dict[str, bytearray] = {}
        # Model -> ((version, checksum), chunks so far): resumed on the next try of that version.
        self._partial: dict[str, tuple[tuple[int, str], ChunkAssembler]] = {}
        self._recent: deque[SyncTiming] = deque(maxlen=SYNC_HISTORY)
        self._synced = 0
        self._trainer = _qualified(trainer_node, node.get_namespace())
        self._ask_backoff_s = ask_backoff_s
        self._store_roots = tuple(
            Path(root).resolve() for root in (store_roots or default_store_roots())
        )
        self._trainer_store: Path | None = None  # the store folder the trainer's files were in
        self._last_folder: Path | None = None  # the folder of the file read last
        self._expected_bytes = {name: _expected_size(model) for name, model in models.items()}
        self._newest_announced: dict[str, int] = {}
        self._unverified: deque[tuple[float, Any, Any]] = deque(maxlen=UNVERIFIED_LIMIT)
        self._counts_lock = threading.Lock()
        self._accept_lock = threading.Lock()
        self._warned_servers = False
        self._refused: dict[str, int] = {}
        self._announcements = NewestAnnouncements()
        self._stop = threading.Event()
        self._sync = SyncNode(node)
        self._client: Any = self._sync.node.create_client(GetWeights, self._sync.service(service))
        self._answers: dict[int, _Answers] = {}
        # The executor hands each answer to get_pending_request's result: ours keeps taking
        # answers after the first, so a second server's quick "no" cannot hide the trainer's.
        setattr(self._client, "get_pending_request", self._pending_answers)  # noqa: B010
        self._topic = self._sync.topic(announce_topic)
        self._service_name = self._sync.service(service)
        self._subscription = self._sync.node.create_subscription(
            WeightsAnnouncement, self._topic, self._on_announcement, ANNOUNCE_QOS
        )
        self._thread = threading.Thread(target=self._run, name="weights-loader", daemon=True)
        self._thread.start()

    def _now(self) -> float:
        return float(self._node.get_clock().now().nanoseconds) * 1e-9

    def _count(self, kind: str) -> None:
        with self._counts_lock:
            self._refused[kind] = self._refused.get(kind, 0) + 1

    def refusals(self) -> dict[str, int]:
        """What was refused so far, by kind (forged announcement, refused answer, ...)."""
        with self._counts_lock:
            return dict(self._refused)

    def _trusted_gids(self) -> set[bytes]:
        """The announce-topic publisher GIDs of the trainer's node and its sync node."""
        namespace, _, name = self._trainer.rpartition("/")
        names = {name, f"{name}_weight_sync"}
        infos = self._sync.node.get_publishers_info_by_topic(self._topic)
        return {
            bytes(info.endpoint_gid)
            for info in infos
            if info.node_name in names and (info.node_namespace or "/") == (namespace or "/")
        }

    def _on_announcement(self, message: Any, info: Any) -> None:
        """Executor callback: checks who sent it, notes it; the loader thread does the work."""
        try:
            gid = bytes((info.get("publisher_gid") or {}).get("data") or b"")
            if gid and gid in self._trusted_gids():
                self._accept(message)
            else:  # unknown publisher: the graph may lag; checked again shortly
                if len(self._unverified) == UNVERIFIED_LIMIT:
                    self._count("forged_announcement")  # the oldest falls out, unchecked
                self._unverified.append((time.monotonic(), message, gid))
        except Exception as error:  # nothing from outside may end the sync node
            self._count("announcement_errors")
            self._report(f"weight announcement dropped: {type(error).__name__}: {error}")

    def _recheck_unverified(self) -> None:
        """Loader thread: announcements whose publisher was not in the graph yet."""
        if not self._unverified:
            return
        trusted = self._trusted_gids()
        now = time.monotonic()
        for _ in range(len(self._unverified)):
            arrived, message, gid = self._unverified.popleft()
            if gid and gid in trusted:
                self._accept(message)
            elif now - arrived < IDENTITY_WAIT_S:
                self._unverified.append((arrived, message, gid))
            else:
                self._count("forged_announcement")
                self._report(
                    f"weights of model {message.model_name!r} version {message.version} "
                    f"refused: announced by a node other than the trainer {self._trainer}"
                )

    def _accept(self, message: Any) -> None:
        """Queues an announcement of the trainer, if its model, version and size are plausible."""
        model = self._models.get(message.model_name)
        if model is None or self._stop.is_set():
            return
        with self._accept_lock:
            self._accept_locked(message, model)

    def _accept_locked(self, message: Any, model: SwappableModel) -> None:
        version, size = int(message.version), int(message.size_bytes)
        newest = self._newest_announced.get(message.model_name)
        problem = ""
        if version > MAX_VERSION or (newest is not None and version - newest > MAX_VERSION_JUMP):
            problem = f"a jump to version {version} (newest so far {newest}) is implausible"
        elif size > self._size_cap(message.model_name):
            problem = (
                f"announced size {size} bytes is over the model's expected "
                f"{self._size_cap(message.model_name)}"
            )
        if problem:
            self._count("implausible_announcement")
            self._report(f"weights of model {message.model_name!r} refused: {problem}")
            return
        self._newest_announced[message.model_name] = max(version, newest or 0)
        if not model.accepts(version):
            return
        self._announcements.offer(
            Announcement(
                model_name=message.model_name,
                version=message.version,
                checksum=message.checksum,
                size_bytes=message.size_bytes,
                host_id=message.host_id,
                published_s=_stamp_seconds(message.published),
                received_s=self._now(),
                arrived_monotonic=time.monotonic(),
            )
        )

    # --- the loader thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            announcement = self._announcements.take(timeout=0.2 if self._unverified else 1.0)
            try:
                self._recheck_unverified()
            except Exception as error:  # the graph query failed: try again on the next turn
                self._report(f"checking a weight announcement's sender failed: {error}")
            if announcement is None or self._stop.is_set():
                continue
            model = self._models[announcement.model_name]
            if not model.accepts(announcement.version):
                continue  # loaded meanwhile, or a newer one is already prepared
            try:
                self._load(announcement, model)
            except _ClosingError:
                return
            except _SupersededError:
                self._count("superseded")
            except _NoAnswerError as error:
                self._count("no_answer")
                self._report(
                    f"{error}; still acting with version {model.version}, trying again in "
                    f"{RETRY_AFTER_NO_ANSWER_S:g} s from where it stopped"
                )
                with contextlib.suppress(_ClosingError):
                    self._wait_or_close(RETRY_AFTER_NO_ANSWER_S)
                self._announcements.offer(announcement)  # kept only if still the newest
            except (WeightsError, OSError) as error:
                self._report(f"{error}; still acting with version {model.version}")
            except Exception as error:  # a bug must not end the thread: report and go on
                self._report(
                    f"{announcement.where} refused: {type(error).__name__}: {error}; "
                    f"still acting with version {model.version}"
                )

    def _report(self, message: str) -> None:
        if self._stop.is_set():
            return
        if self._on_error is not None:
            self._on_error(message)
        else:
            self._node.get_logger().error(message)

    def _note_servers(self) -> None:
        """Says once when more than one node serves the weights service (someone may forge)."""
        servers = self._sync.node.count_services(self._service_name)
        if servers > 1 and not self._warned_servers:
            self._warned_servers = True
            self._count("second_server")
            self._node.get_logger().warning(
                f"{servers} servers answer {self._service_name}; only answers that match the "
                f"trainer {self._trainer}'s announcements are used"
            )

    def _size_cap(self, model_name: str) -> int:
        return min(MAX_WEIGHTS_BYTES, self._expected_bytes.get(model_name, MAX_WEIGHTS_BYTES))

    def _load(self, announcement: Announcement, model: SwappableModel) -> None:
        """Fetches and checks a version, asking again after a refused answer; prepares it."""
        self._note_servers()
        delay, longest = self._ask_backoff_s
        for attempt in range(ASK_ATTEMPTS + 1):
            try:
                data, transport, stages, actual = self._fetch(announcement)
                received = self._now()
                started = time.perf_counter()
                try:
                    compare_checksum(
                        actual,
                        announcement.checksum,
                        data.nbytes,
                        announcement.model_name,
                        announcement.version,
                    )
                except WeightsError as error:
                    raise _RefusedAnswerError(str(error), "checksum") from None
                if transport == "shm":  # the trainer's bytes came from there: its store
                    self._trainer_store = self._last_folder
                break
            except _RefusedAnswerError as error:
                self._partial.pop(announcement.model_name, None)  # start the next try afresh
                self._count("refused_answer")
                self._count(f"answer_{error.kind}")
                newer = self._announcements.pending_version(announcement.model_name)
                if attempt == ASK_ATTEMPTS or (newer is not None and newer > announcement.version):
                    raise WeightsError(
                        f"{error} (asked {attempt + 1} times; answers anyone can give are checked "
                        "against the trainer's announcement)"
                    ) from None
                self._wait_or_close(delay)
                delay = min(delay * 2.0, longest)
        checked = time.perf_counter()
        # Views into our buffer (no copy); the NaN/Inf check runs here, once. The checksum was
        # the trainer's: what fails from here on is the trainer's data, not worth asking again.
        tensors = parse_weights(data, announcement.model_name, announcement.version, copy=False)
        parsed = time.perf_counter()
        model.prepare(tensors, announcement.version, announcement.published_s, check_finite=False)
        loaded = time.perf_counter()
        del tensors  # the buffer is reused for the next version

        timing = SyncTiming(
            received_to_ready_s=time.monotonic() - announcement.arrived_monotonic,
            transferred_bytes=int(stages.get("transferred_bytes", 0)),
            chunk_retries=int(stages.get("chunk_retries", 0)),
            resumed=bool(stages.get("resumed", 0)),
            announced_to_received_s=received - announcement.published_s,
            announced_to_ready_s=self._now() - announcement.published_s,
            transport=transport,
            size_bytes=announcement.size_bytes,
            announcement_s=announcement.received_s - announcement.published_s,
            request_s=stages["request_s"],
            read_s=stages.get("read_s", 0.0),
            checksum_s=checked - started,
            decode_s=parsed - checked,
            load_s=loaded - parsed,
        )
        with self._counts_lock:
            self._recent.append(timing)
            self._synced += 1
        if self._on_ready is not None:
            self._on_ready(announcement.model_name, announcement.version, timing)

    def status(self) -> dict[str, object]:
        """Sync figures for the node's status: path, bytes per version, time on this clock.

        ``weights_sync_ms_p50``/``_max`` are announcement arrival to ready over the recent
        versions, measured on this process's clock; ``weights_bytes_per_version`` is what the
        answers carried per version (the announced size on the shared-memory path, whose bytes
        never cross the network) against ``weights_size_bytes``, the announced size.
        """
        with self._counts_lock:
            recent = list(self._recent)
            synced = self._synced
            refused = dict(self._refused)
        if not recent:
            return {"weights_synced": 0, "weights_path": "none"}
        last = recent[-1]
        sync_ms = sorted(timing.received_to_ready_s * 1000.0 for timing in recent)
        return {
            "weights_synced": synced,
            "weights_path": last.transport,
            "weights_size_bytes": last.size_bytes,
            "weights_bytes_per_version": round(
                sum(timing.transferred_bytes for timing in recent) / len(recent)
            ),
            "weights_sync_ms_p50": round(sync_ms[len(sync_ms) // 2], 1),
            "weights_sync_ms_max": round(sync_ms[-1], 1),
            "weights_chunk_retries": sum(timing.chunk_retries for timing in recent),
            "weights_superseded": refused.get("superseded", 0),
            "weights_no_answer": refused.get("no_answer", 0),
        }

    def _fetch(self, announcement: Announcement) -> tuple[memoryview, str, dict[str, float], str]:
        """One ask: the encoded bytes (not yet checked), the transport, stage times, checksum.

        Raises:
            _RefusedAnswerError: If the answer or the file it names is refused (ask again).
            WeightsError: If no answer came, or the transport cannot work here.
        """
        where = announcement.where
        stages: dict[str, float] = {"request_s": 0.0, "transferred_bytes": 0, "chunk_retries": 0}
        use_shm = self._transport == "shm" or (
            self._transport == "auto"
            and announcement.host_id == self._host_id
            and time.monotonic() >= self._shm_retry_at
        )
        first_chunk: Any = None
        if use_shm:
            response = self._request(announcement, 0, bytes_only=False, stages=stages)
            if response.shm_path:
                try:
                    data, checksum = self._read_file(announcement, response.shm_path, stages)
                except OSError as error:
                    if self._transport == "shm":
                        raise _RefusedAnswerError(
                            f"{where}: cannot read the shared-memory file the answer names "
                            f"({error.strerror or error})",
                            "unreadable",
                        ) from None
                    self._shm_retry_at = time.monotonic() + SHM_RETRY_S
                    self._count("shm_unreadable")
                    self._node.get_logger().warning(
                        f"the trainer's shared-memory file is not readable here "
                        f"({error.strerror or error}); fetching weights as bytes for "
                        f"{SHM_RETRY_S:g} s, then trying shared memory again"
                    )
                else:
                    self._shm_retry_at = 0.0
                    return data, "shm", stages, checksum
            elif self._transport == "shm":
                raise WeightsError(
                    f"{where}: the trainer answered with bytes, not a shared-memory file (it "
                    "is on another host); use transport 'auto' or 'bytes'"
                )
            else:
                first_chunk = response  # the trainer chose bytes: this is chunk 0
        data, checksum = self._fetch_chunks(announcement, first_chunk, stages)
        return data, "bytes", stages, checksum

    def _buffer(self, model_name: str, size: int) -> bytearray:
        """A receive buffer per model, reused: its pages are already mapped after the first use."""
        buffer = self._buffers.get(model_name)
        if buffer is None or len(buffer) < size:
            buffer = bytearray(size)
            self._buffers[model_name] = buffer
        return buffer

    def _read_file(
        self, announcement: Announcement, path: str, stages: dict[str, float]
    ) -> tuple[memoryview, str]:
        """Reads the version's file into the model's buffer (a private copy), hashing as it goes.

        Only a file named for this model and version, in a store folder of this user under an
        allowed root (the trainer's own while it exists), opened without following links.

        Raises:
            _RefusedAnswerError: If the path or the file is refused.
            OSError: If the file cannot be opened or read (another host's file system).
        """
        started = time.perf_counter()
        where = announcement.where
        folder = self._store_folder(announcement, path)
        # O_NOFOLLOW on the folder and the file: a link is refused, never followed; O_NONBLOCK:
        # a FIFO or device under that name must not hang the loader.
        try:
            directory_fd = os.open(
                folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _RefusedAnswerError(
                    f"{where}: the named store folder is a link", "link"
                ) from None
            raise
        try:
            folder_status = os.fstat(directory_fd)
            if folder_status.st_uid != os.getuid() or folder_status.st_mode & 0o077:
                raise _RefusedAnswerError(
                    f"{where}: the store folder the answer names is not private to this user "
                    f"(mode {stat.S_IMODE(folder_status.st_mode):o})",
                    "owner",
                )
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(Path(path).name, flags, dir_fd=directory_fd)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise _RefusedAnswerError(
                        f"{where}: the named file is a link", "link"
                    ) from None
                raise
        finally:
            os.close(directory_fd)
        with open(fd, "rb", buffering=0, closefd=True) as file:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise _RefusedAnswerError(
                    f"{where}: the named file is not a regular file", "not_regular"
                )
            if status.st_uid != os.getuid() or status.st_mode & 0o022:
                raise _RefusedAnswerError(
                    f"{where}: the named file is not this user's, or others may write it", "owner"
                )
            if status.st_size != announcement.size_bytes:
                raise _RefusedAnswerError(
                    f"{where}: the file holds {status.st_size} bytes, the announcement says "
                    f"{announcement.size_bytes} (truncated or replaced)",
                    "size",
                )
            view = memoryview(self._buffer(announcement.model_name, status.st_size))
            view = view[: status.st_size]
            checksummer = Checksummer()
            position = 0
            while position < status.st_size:
                block = view[position : position + HASH_BLOCK_BYTES]
                count = file.readinto(block)
                if not count:
                    raise _RefusedAnswerError(
                        f"{where}: the file ended after {position} of {status.st_size} bytes",
                        "size",
                    )
                checksummer.update(block[:count])  # while the block is still in the cache
                position += count
        self._last_folder = folder
        stages["read_s"] = time.perf_counter() - started
        stages["transferred_bytes"] += status.st_size
        return view, checksummer.hexdigest()

    def _store_folder(self, announcement: Announcement, path: str) -> Path:
        """The store folder of an answered path, if the path may be read at all.

        Raises:
            _RefusedAnswerError: Naming what is wrong (never the path: logs are readable by others).
        """
        where = announcement.where
        expected = version_file_name(announcement.model_name, announcement.version)
        if "\x00" in path or not os.path.isabs(path) or os.path.normpath(path) != path:
            raise _RefusedAnswerError(
                f"{where}: the answer names a relative or unnormalised path", "path"
            )
        file = Path(path)
        folder = file.parent
        if file.name != expected:
            raise _RefusedAnswerError(
                f"{where}: the answer names a file other than {expected!r}", "path"
            )
        if not is_store_directory_name(folder.name) or folder.parent not in self._store_roots:
            raise _RefusedAnswerError(
                f"{where}: the answer names a file outside any weight store", "path"
            )
        trainer_store = self._trainer_store
        if trainer_store is not None and folder != trainer_store and trainer_store.is_dir():
            raise _RefusedAnswerError(
                f"{where}: the answer names another store than the trainer's", "path"
            )
        return folder

    def _fetch_chunks(
        self, announcement: Announcement, first: Any, stages: dict[str, float]
    ) -> tuple[memoryview, str]:
        """Fetches the chunks of the version still missing and assembles them, hashing each.

        Goes on from chunks an earlier try received; stops between two chunks if a newer version
        is announced meanwhile.

        Raises:
            _SupersededError: If a newer version of the model waits.
            _NoAnswerError: If a chunk went unanswered ``CHUNK_ATTEMPTS`` times (the chunks so
                far are kept for the next try).
            _RefusedAnswerError: If an answer does not fit the announced version.
        """
        where = announcement.where
        name = announcement.model_name
        key = (announcement.version, announcement.checksum)
        assemble_started = time.perf_counter()
        request_before = stages["request_s"]
        partial = self._partial.get(name)
        assembler = partial[1] if partial is not None and partial[0] == key else None
        stages["resumed"] = float(assembler is not None and assembler.next_index > 0)
        try:
            if assembler is None:
                response = first or self._request(
                    announcement, 0, bytes_only=True, stages=stages,
                    expected_bytes=min(announcement.size_bytes, DEFAULT_CHUNK_BYTES),
                )  # fmt: skip
                most_chunks = max(1, -(-announcement.size_bytes // MIN_CHUNK_BYTES))
                if not 1 <= response.chunk_count <= most_chunks:
                    raise _RefusedAnswerError(
                        f"{where}: {response.chunk_count} chunks for {announcement.size_bytes} "
                        f"bytes (1..{most_chunks} accepted)",
                        "chunks",
                    )
                assembler = ChunkAssembler(
                    announcement.size_bytes,
                    response.chunk_count,
                    self._buffer(name, announcement.size_bytes),
                    where,
                )
                self._partial[name] = (key, assembler)
                assembler.add(response.chunk_index, response.chunk, response.chunk_count)
            chunk_bytes = -(-announcement.size_bytes // assembler.chunk_count)
            while not assembler.complete:
                newer = self._announcements.pending_version(name)
                if newer is not None and newer > announcement.version:
                    raise _SupersededError
                response = self._request(
                    announcement, assembler.next_index, bytes_only=True, stages=stages,
                    expected_bytes=chunk_bytes,
                )  # fmt: skip
                assembler.add(response.chunk_index, response.chunk, response.chunk_count)
        except (_RefusedAnswerError, _NoAnswerError, _SupersededError):
            raise
        except WeightsError as error:
            raise _RefusedAnswerError(str(error), "chunks") from None
        self._partial.pop(name, None)
        waiting = stages["request_s"] - request_before
        stages["read_s"] = time.perf_counter() - assemble_started - waiting
        return assembler.data(), assembler.checksum

    def _request(
        self,
        announcement: Announcement,
        chunk_index: int,
        bytes_only: bool,
        stages: dict[str, float],
        expected_bytes: int = 0,
    ) -> Any:
        """One request, sent up to ``CHUNK_ATTEMPTS`` times; checks the answer matches.

        Each try waits ``request_timeout_s`` plus ``expected_bytes`` at ``MIN_TRANSFER_RATE``.

        Raises:
            _NoAnswerError: If no try was answered.
            _RefusedAnswerError: If the answer does not fit the announcement.
        """
        where = announcement.where
        started = time.perf_counter()
        request = GetWeights.Request(
            model_name=announcement.model_name,
            version=announcement.version,
            host_id=self._host_id,
            bytes_only=bytes_only,
            chunk_index=chunk_index,
        )
        timeout = self._request_timeout_s + expected_bytes / MIN_TRANSFER_RATE
        deadline = time.monotonic() + timeout
        while not self._client.service_is_ready():
            self._wait_or_close(POLL_PERIOD_S)
            if time.monotonic() > deadline:
                raise _NoAnswerError(f"{where}: the weights service is not available")
        for _ in range(CHUNK_ATTEMPTS):
            response = self._call(request, timeout)
            if response is not None:
                break
            stages["chunk_retries"] += 1
        else:
            stages["request_s"] += time.perf_counter() - started
            raise _NoAnswerError(
                f"{where}: chunk {chunk_index} had no answer from the weights service within "
                f"{timeout:.1f} s, {CHUNK_ATTEMPTS} times"
            )
        stages["request_s"] += time.perf_counter() - started
        stages["transferred_bytes"] += len(response.chunk)
        if not response.success:
            raise _RefusedAnswerError(
                f"{where}: the trainer did not serve it: {str(response.message)[:200]}",
                "no",
            )
        if response.version != announcement.version or response.checksum != announcement.checksum:
            raise _RefusedAnswerError(
                f"{where}: the trainer served version {response.version} with checksum "
                f"{response.checksum[:16]}..., not the announced {announcement.checksum[:16]}...",
                "mismatch",
            )
        if response.size_bytes != announcement.size_bytes:
            raise _RefusedAnswerError(
                f"{where}: the trainer served {response.size_bytes} bytes, the announcement "
                f"says {announcement.size_bytes}",
                "mismatch",
            )
        return response

    def _call(self, request: Any, timeout: float) -> Any:
        """Sends one request; the answer, or None if none came within the timeout.

        Every server on the name answers, and rclpy would keep only the first answer. Here all
        answers to the request are collected (:class:`_Answers`): a success wins over refusals,
        and a refusal is taken only once every server answered or ``REFUSAL_GRACE_S`` passed.
        """
        answers = _Answers()
        servers = max(1, self._sync.node.count_services(self._service_name))
        with self._client.handle:
            sequence = self._client.handle.send_request(request)
        self._answers[sequence] = answers
        try:
            deadline = time.monotonic() + timeout
            while True:
                answer = answers.decided(servers, REFUSAL_GRACE_S, POLL_PERIOD_S)
                if answer is not None:
                    return answer
                if self._stop.is_set():
                    raise _ClosingError
                if time.monotonic() > deadline:
                    return answers.refusal()  # a refusal, or None: no answer at all
        finally:
            self._answers.pop(sequence, None)

    def _pending_answers(self, sequence: int) -> "_Answers":
        """Where the executor delivers an answer (in place of rclpy's one-shot future)."""
        return self._answers[sequence]  # KeyError: not asked, or given up: dropped

    def _wait_or_close(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _ClosingError

    def close(self) -> None:
        """Stops the loader thread (an interrupted fetch is dropped); idempotent."""
        self._stop.set()
        self._announcements.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        self._sync.close()
