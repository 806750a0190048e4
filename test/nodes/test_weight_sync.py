"""Weight sync over real DDS: a trainer-side and an agent-side context in the test's domain."""

import array
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from blake3 import blake3
from pamiq_ros_interfaces.msg import WeightsAnnouncement
from pamiq_ros_interfaces.srv import GetWeights

from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.core.weight_store import SharedWeightStore, version_file_name
from pamiq_ros.core.weights import NonFiniteWeightsError, host_identity
from pamiq_ros.nodes import _weight_sync as weight_sync
from pamiq_ros.nodes._weight_sync import (
    ANNOUNCE_QOS,
    Announcement,
    NewestAnnouncements,
    SyncTiming,
    WeightPublisher,
    WeightSubscriber,
)
from test.support.processes import wait_until
from test.support.ros_probe import RosProbe
from test.support.small_model import MODEL, assert_weights, build, trained

pytestmark = pytest.mark.e2e

TIMEOUT_S = 20.0
ASK_BACKOFF_S = (0.01, 0.05)
"""Waits between asks after a refused answer: the node's default (0.05 s doubling to 1 s) spends
about 8.5 s on its 12 asks again, here about 0.5 s; the asking is the same."""
STORE_FOLDER = "pamiq_ros-1-test"
"""Named as a trainer's store folder is, so the subscriber reads files in it."""


class Agent:
    """The agent's side: a swappable model fed by a WeightSubscriber."""

    def __init__(
        self,
        probe: RosProbe,
        transport: str,
        request_timeout_s: float = 10.0,
        store_roots: tuple[Path, ...] = (),
        ask_backoff_s: tuple[float, float] = ASK_BACKOFF_S,
    ):
        self.model = SwappableModel(MODEL, build)
        self.initial = {k: v.clone() for k, v in self.model.current()[0].state_dict().items()}
        self.ready: list[tuple[int, SyncTiming]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.subscriber = WeightSubscriber(
            probe.node,
            {MODEL: self.model},
            transport=transport,
            on_ready=self._on_ready,
            on_error=self._on_error,
            request_timeout_s=request_timeout_s,
            store_roots=store_roots or None,
            ask_backoff_s=ask_backoff_s,
        )

    def _on_ready(self, name: str, version: int, timing: SyncTiming) -> None:
        assert name == MODEL
        with self._lock:
            self.ready.append((version, timing))

    def _on_error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def wait_ready(self, version: int) -> SyncTiming:
        def arrived() -> bool:
            with self._lock:
                return any(ready == version for ready, _ in self.ready)

        assert wait_until(arrived, TIMEOUT_S), f"version {version} not ready: {self.errors}"
        with self._lock:
            return next(timing for ready, timing in self.ready if ready == version)

    def wait_error(self) -> str:
        assert wait_until(lambda: bool(self.errors), TIMEOUT_S), f"no error; ready {self.ready}"
        return self.errors[0]

    def assert_acting_with_initial_weights(self) -> None:
        assert self.model.swap_if_ready() is None
        module, version = self.model.current()
        assert version == 0
        assert_weights(module, self.initial)


@pytest.fixture
def trainer_probe(domain_id: int) -> Iterator[RosProbe]:
    probe = RosProbe(domain_id, "trainer")
    yield probe
    probe.close()


@pytest.fixture
def agent_probe(domain_id: int) -> Iterator[RosProbe]:
    probe = RosProbe(domain_id, "agent")
    yield probe
    probe.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SharedWeightStore]:
    # Small chunks: the bytes path takes several requests for these weights (~10 kB).
    store = SharedWeightStore(tmp_path / STORE_FOLDER, chunk_size=4096)
    yield store
    store.close()


@pytest.fixture
def publisher(trainer_probe: RosProbe, store: SharedWeightStore) -> Iterator[WeightPublisher]:
    publisher = WeightPublisher(trainer_probe.node, store)
    yield publisher
    publisher.close()


@pytest.fixture
def make_agent(agent_probe: RosProbe, tmp_path: Path) -> Iterator[Any]:
    agents: list[Agent] = []

    def make(transport: str = "auto", **options: Any) -> Agent:
        options.setdefault("store_roots", (tmp_path,))
        agent = Agent(agent_probe, transport, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.subscriber.close()


@pytest.mark.parametrize(
    ("transport", "expected"), [("auto", "shm"), ("shm", "shm"), ("bytes", "bytes")]
)
def test_each_transport_delivers_the_weights_exactly(publisher, make_agent, transport, expected):
    agent = make_agent(transport)
    for version in (1, 2):
        state = trained(version)
        encoded = publisher.publish(MODEL, version, state)
        timing = agent.wait_ready(version)
        assert agent.model.swap_if_ready() == version
        module, acting_version = agent.model.current()
        assert acting_version == version
        assert_weights(module, state)
        assert timing.transport == expected
        assert timing.size_bytes == encoded.size_bytes
        assert 0.0 <= timing.announced_to_received_s <= timing.announced_to_ready_s < TIMEOUT_S
        assert timing.checksum_s > 0.0 and timing.load_s > 0.0
    assert agent.errors == []


def test_a_late_agent_catches_up_to_the_newest_version(publisher, make_agent):
    for version in (1, 2, 3):
        publisher.publish(MODEL, version, trained(version))
    agent = make_agent()
    agent.wait_ready(3)
    assert agent.model.swap_if_ready() == 3
    assert_weights(agent.model.current()[0], trained(3))
    assert agent.errors == []


def test_a_corrupted_shared_memory_file_is_refused_and_the_weights_stay(
    publisher, store, make_agent
):
    publisher.publish(MODEL, 1, trained(1))
    path = store.path(MODEL, 1)
    assert path is not None
    with path.open("r+b") as file:
        file.seek(-5, 2)
        last = file.read(1)
        file.seek(-5, 2)
        file.write(bytes([last[0] ^ 0xFF]))

    agent = make_agent("auto")
    error = agent.wait_error()
    assert "model 'policy' version 1: checksum mismatch" in error
    assert "still acting with version 0" in error
    agent.assert_acting_with_initial_weights()

    publisher.publish(MODEL, 2, trained(2))  # the next good version gets through
    agent.wait_ready(2)
    assert agent.model.swap_if_ready() == 2


def test_a_truncated_shared_memory_file_is_refused(publisher, store, make_agent):
    encoded = publisher.publish(MODEL, 1, trained(1))
    path = store.path(MODEL, 1)
    assert path is not None
    with path.open("r+b") as file:
        file.truncate(encoded.size_bytes - 100)
    agent = make_agent("shm")
    error = agent.wait_error()
    assert f"holds {encoded.size_bytes - 100} bytes, the announcement says" in error
    agent.assert_acting_with_initial_weights()


class FakeTrainer:
    """A deliberately bad trainer: announces one blob, and serves whatever it is given."""

    def __init__(self, probe: RosProbe, announced: bytes, served: bytes, directory: Path):
        self.served = served
        folder = directory / STORE_FOLDER
        folder.mkdir(mode=0o700, exist_ok=True)
        self.path = folder / version_file_name(MODEL, 1)
        self.path.write_bytes(served)
        self.failure = ""
        self.chunk_size = 4096
        self.first_answer_delay_s = 0.0
        self.slow_chunk: int | None = None  # its first answer comes first_answer_delay_s late
        self.requests = 0
        self._host_id = host_identity()
        probe.node.create_service(GetWeights, "weights/get", self._serve)
        announcer = probe.node.create_publisher(
            WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
        )
        message = WeightsAnnouncement(
            model_name=MODEL,
            version=1,
            checksum="blake3:" + blake3(announced).hexdigest(),
            size_bytes=len(announced),
            host_id=self._host_id,
        )
        message.published = probe.node.get_clock().now().to_msg()
        announcer.publish(message)
        self.checksum = message.checksum

    def _serve(self, request: Any, response: Any) -> Any:
        self.requests += 1
        if self.slow_chunk is None and self.requests == 1:
            time.sleep(self.first_answer_delay_s)
        elif request.bytes_only and request.chunk_index == self.slow_chunk:
            self.slow_chunk = -1  # once
            time.sleep(self.first_answer_delay_s)
        if self.failure:
            response.success = False
            response.message = self.failure
            return response
        response.success = True
        response.version = 1
        response.checksum = self.checksum
        response.size_bytes = len(self.served)
        if request.host_id == self._host_id and not request.bytes_only:
            response.shm_path = str(self.path)
            return response
        count = -(-len(self.served) // self.chunk_size)
        start = request.chunk_index * self.chunk_size
        response.chunk = array.array("B", self.served[start : start + self.chunk_size])
        response.chunk_index = request.chunk_index
        response.chunk_count = count
        return response


def encoded_blob(state: dict[str, torch.Tensor]) -> bytes:
    return safetensors.torch.save(state, metadata={"model_name": MODEL, "version": "1"})


@pytest.mark.parametrize("transport", ["shm", "bytes"])
def test_weights_with_nan_served_anyway_are_refused(trainer_probe, make_agent, tmp_path, transport):
    state = trained(1)
    state["2.weight"][3, 7] = float("nan")
    blob = encoded_blob(state)
    FakeTrainer(trainer_probe, blob, blob, tmp_path)
    agent = make_agent(transport)
    error = agent.wait_error()
    assert "version 1: tensor '2.weight' holds 1 NaN/Inf value(s)" in error
    agent.assert_acting_with_initial_weights()


def test_an_altered_chunk_is_refused(trainer_probe, make_agent, tmp_path):
    good = encoded_blob(trained(1))
    altered = bytearray(good)
    altered[len(good) - 4100] ^= 0x10  # inside the second chunk from the end
    FakeTrainer(trainer_probe, good, bytes(altered), tmp_path)
    agent = make_agent("bytes")
    assert "version 1: checksum mismatch" in agent.wait_error()
    agent.assert_acting_with_initial_weights()


def test_a_service_failure_is_reported(trainer_probe, make_agent, tmp_path):
    blob = encoded_blob(trained(1))
    fake = FakeTrainer(trainer_probe, blob, blob, tmp_path)
    fake.failure = "disk on fire"
    agent = make_agent("auto")
    assert "the trainer did not serve it: disk on fire" in agent.wait_error()
    agent.assert_acting_with_initial_weights()


def test_a_request_left_unanswered_is_sent_again(trainer_probe, make_agent, tmp_path):
    state = trained(1)
    blob = encoded_blob(state)
    fake = FakeTrainer(trainer_probe, blob, blob, tmp_path)
    # The first answer comes 1.5 s late, after the agent stopped waiting for it (1 s). The
    # probe serves one request at a time, so the second request waits out that delay and is
    # answered at about 1.5 s, half a second inside its own 1 s wait. (0.5 s waits against a
    # 1.5 s delay left no slack: on a loaded CI machine all three waits ran out.)
    fake.first_answer_delay_s = 1.5
    agent = make_agent("bytes", request_timeout_s=1.0)
    agent.wait_ready(1)
    assert agent.errors == []
    assert fake.requests >= 2
    assert agent.model.swap_if_ready() == 1
    assert_weights(agent.model.current()[0], state)


def test_no_answer_from_the_service_is_reported(trainer_probe, make_agent):
    # Announced, but nobody serves: the agent gives up after its request timeout.
    announcer = trainer_probe.node.create_publisher(
        WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
    )
    announcer.publish(WeightsAnnouncement(model_name=MODEL, version=1, checksum="0" * 64))
    agent = make_agent("auto", request_timeout_s=1.0)
    assert "version 1: the weights service is not available" in agent.wait_error()
    agent.assert_acting_with_initial_weights()


def test_weights_with_nan_are_never_announced(publisher, store, agent_probe):
    announcements = agent_probe.subscribe(WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS)
    bad = trained(1)
    bad["0.bias"][5] = float("inf")
    with pytest.raises(NonFiniteWeightsError, match=r"tensor '0\.bias'"):
        publisher.publish(MODEL, 1, bad)
    assert store.versions(MODEL) == []
    publisher.publish(MODEL, 2, trained(2))
    announcements.wait_for(1, TIMEOUT_S)
    time.sleep(0.2)  # anything announced before version 2 would have arrived first
    received = announcements.messages
    assert [message.version for message in received] == [2]
    assert received[0].host_id == host_identity()
    stored = store.info(MODEL, 2)
    assert stored is not None and received[0].checksum == stored.checksum


def test_the_service_explains_what_it_cannot_serve(publisher, agent_probe):
    publisher.publish(MODEL, 1, trained(1))
    client = agent_probe.node.create_client(GetWeights, "weights/get")
    assert client.wait_for_service(timeout_sec=TIMEOUT_S)

    def call(**fields: Any) -> Any:
        done = threading.Event()
        future = client.call_async(GetWeights.Request(**fields))
        future.add_done_callback(lambda _: done.set())
        assert done.wait(TIMEOUT_S)
        return future.result()

    unknown = call(model_name="nobody")
    assert not unknown.success and "no weights of model 'nobody' are stored" in unknown.message
    old = call(model_name=MODEL, version=7)
    assert not old.success and "has no version 7 stored (kept: 1)" in old.message
    beyond = call(model_name=MODEL, bytes_only=True, chunk_index=99)
    assert not beyond.success and "chunk 99 is out of range" in beyond.message
    newest = call(model_name=MODEL, version=0, host_id=host_identity())
    assert newest.success and newest.version == 1 and newest.shm_path and not len(newest.chunk)


def announcement(model: str, version: int) -> Announcement:
    return Announcement(model, version, "", 0, "", 0.0, 0.0)


def test_only_the_newest_announcement_of_a_model_waits_and_models_take_turns():
    queue = NewestAnnouncements()
    assert queue.offer(announcement("a", 1))
    assert queue.offer(announcement("b", 1))
    assert queue.offer(announcement("a", 2))  # replaces a1, and a goes behind b
    assert not queue.offer(announcement("a", 1))  # older than the waiting one
    assert len(queue) == 2
    first, second = queue.take(0.1), queue.take(0.1)
    assert (first.model_name, first.version) == ("b", 1)  # type: ignore[union-attr]
    assert (second.model_name, second.version) == ("a", 2)  # type: ignore[union-attr]
    assert queue.take(0.01) is None
    queue.close()
    assert queue.take(1.0) is None


def test_announcements_from_a_node_other_than_the_trainer_are_refused(
    domain_id, publisher, make_agent
):
    agent = make_agent("auto")
    impostor = RosProbe(domain_id, "impostor")
    try:
        announcer = impostor.node.create_publisher(
            WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
        )
        announcer.publish(WeightsAnnouncement(model_name=MODEL, version=10**6, checksum="0" * 64))
        error = agent.wait_error()
        assert "version 1000000 refused: announced by a node other than the trainer" in error
        assert agent.subscriber.refusals() == {"forged_announcement": 1}
        publisher.publish(MODEL, 1, trained(1))  # the trainer's own still gets through
        agent.wait_ready(1)
    finally:
        impostor.close()


def test_after_an_unreadable_file_the_agent_fetches_bytes_then_shared_memory_again(
    trainer_probe, make_agent, tmp_path, monkeypatch
):
    monkeypatch.setattr(weight_sync, "SHM_RETRY_S", 0.0)
    blobs = {version: encoded_blob_of(version) for version in (1, 2)}
    folder = tmp_path / STORE_FOLDER
    folder.mkdir(mode=0o700)
    (folder / version_file_name(MODEL, 2)).write_bytes(blobs[2])  # version 1's file is missing
    host = host_identity()

    def serve(request: Any, response: Any) -> Any:
        blob = blobs[request.version]
        response.success, response.version = True, request.version
        response.checksum, response.size_bytes = "blake3:" + blake3(blob).hexdigest(), len(blob)
        if request.host_id == host and not request.bytes_only:
            response.shm_path = str(folder / version_file_name(MODEL, request.version))
        else:
            response.chunk, response.chunk_count = array.array("B", blob), 1
        return response

    trainer_probe.node.create_service(GetWeights, "weights/get", serve)
    announcer = trainer_probe.node.create_publisher(
        WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
    )
    agent = make_agent("auto")
    for version, transport in ((1, "bytes"), (2, "shm")):
        blob = blobs[version]
        announcer.publish(
            WeightsAnnouncement(
                model_name=MODEL, version=version, checksum="blake3:" + blake3(blob).hexdigest(),
                size_bytes=len(blob), host_id=host,
            )
        )  # fmt: skip
        assert agent.wait_ready(version).transport == transport
    assert agent.subscriber.refusals() == {"shm_unreadable": 1}
    assert agent.model.swap_if_ready() == 2


def encoded_blob_of(version: int) -> bytes:
    return safetensors.torch.save(
        trained(version), metadata={"model_name": MODEL, "version": str(version)}
    )


def test_a_version_jump_beyond_the_bound_is_refused(publisher, make_agent):
    agent = make_agent("auto")
    publisher.publish(MODEL, 1, trained(1))
    agent.wait_ready(1)
    jump = 1 + weight_sync.MAX_VERSION_JUMP + 1
    publisher.publish(MODEL, jump, trained(2))
    assert f"a jump to version {jump} (newest so far 1) is implausible" in agent.wait_error()
    assert agent.subscriber.refusals() == {"implausible_announcement": 1}
    assert agent.model.swap_if_ready() == 1


def test_a_chunk_lost_midway_costs_one_retry_of_that_chunk(trainer_probe, make_agent, tmp_path):
    blob = encoded_blob(trained(1))
    fake = FakeTrainer(trainer_probe, blob, blob, tmp_path)
    assert len(blob) > 2 * fake.chunk_size
    fake.slow_chunk, fake.first_answer_delay_s = 1, 1.5
    agent = make_agent("bytes", request_timeout_s=1.0)
    timing = agent.wait_ready(1)
    assert timing.transport == "bytes" and timing.chunk_retries == 1
    chunks = -(-len(blob) // fake.chunk_size)
    assert fake.requests == chunks + 1  # every chunk once, the lost one twice
    assert timing.transferred_bytes == len(blob) == timing.size_bytes
    status = agent.subscriber.status()
    assert status["weights_path"] == "bytes" and status["weights_bytes_per_version"] == len(blob)
    assert status["weights_chunk_retries"] == 1
    assert 0.0 < timing.received_to_ready_s < TIMEOUT_S
