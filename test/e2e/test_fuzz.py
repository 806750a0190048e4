"""The fuzz pass (issues 5 and 10): at least 1000 malformed inputs of each kind, each refused.

OSC packets to the world, images (small and extreme) to the agent, Experience records to the
trainer, control-service calls, GetWeights requests to the trainer, HTTP to the world's video
server all go to real node processes; forged weight announcements and answers go through the
real weight subscriber over real DDS; weights and checkpoints also through the agent's decode
path and the learner's load, in this process. Each test checks the count of refusals, that the
refusal says what was wrong, that the process still works, that no good state was overwritten
and (issue 10) that the node's resident memory stayed within a stated budget. The memory
figures are printed (``pytest -s``) and written to ``$PAMIQ_FUZZ_FIGURES`` when set.
"""

import array
import json
import os
import random
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]
import pytest
import torch
from blake3 import blake3
from geometry_msgs.msg import PoseStamped, Twist
from pamiq_ros_interfaces.msg import Experience, NamedTensor, WeightsAnnouncement
from pamiq_ros_interfaces.srv import GetWeights
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.checkpoint import CheckpointError, CheckpointStore
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.core.weight_store import (
    SHARED_MEMORY_ROOT,
    ChunkAssembler,
    SharedWeightStore,
    version_file_name,
)
from pamiq_ros.core.weights import (
    WeightsError,
    decode_weights,
    encode_weights,
    host_identity,
    parse_weights,
    verify_checksum,
)
from pamiq_ros.io.image_codec import ImageFields, ImageFormatError, decode_image, encode_image
from pamiq_ros.models.autoencoder import MODEL_NAME, build_autoencoder_learner
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from pamiq_ros.nodes._weight_sync import (
    ANNOUNCE_QOS,
    ASK_ATTEMPTS,
    WeightPublisher,
    WeightSubscriber,
)
from pamiq_ros.sim.osc_input import InputState
from pamiq_ros.sim.osc_server import OscInputServer, OscRejection
from test.support.experience import synthetic_experience
from test.support.fuzz import (
    WEIGHT_ANSWER_KINDS,
    ExperienceSpec,
    ImageSpec,
    damage_checkpoint,
    damaged_weights,
    extreme_images,
    malformed_experience,
    malformed_images,
    malformed_osc_packets,
    osc_message,
    weight_answer_kinds,
    weight_requests,
)
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe
from test.support.small_model import MODEL as MODEL_SYNC
from test.support.small_model import assert_weights, build, trained

FUZZ_COUNT = 1000
SEED = 5
IMAGE_WIDTH, IMAGE_HEIGHT = 32, 24
MEMORY_BUDGET_MB = 64.0
"""Most a node's resident memory may grow under one flood (the nodes start at about 400 MB)."""


def rss_mb(process: NodeProcess) -> float:
    """Resident memory of a node process, in MiB."""
    return float(psutil.Process(process.pid).memory_info().rss) / (1 << 20)


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Prints a flood's figures, and appends them to ``$PAMIQ_FUZZ_FIGURES`` (JSON lines)."""
    line = json.dumps({"flood": name, **figures})
    print(line)
    target = os.environ.get("PAMIQ_FUZZ_FIGURES")
    if target:
        with open(target, "a") as file:
            file.write(line + "\n")


class StatusClient:
    """Asks a node for ``/<node>/control/status`` (one client, reused: discovery is slow)."""

    def __init__(self, probe: RosProbe, node: str, timeout: float = 20.0) -> None:
        self._node = node
        self._client: Any = probe.node.create_client(Trigger, f"/{node}/control/status")
        assert self._client.wait_for_service(timeout_sec=timeout), f"no status service on {node}"

    def __call__(self, timeout: float = 10.0) -> dict[str, Any]:
        """The node's status, parsed."""
        future = self._client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout), f"{self._node} did not answer its status call"
        response = future.result()
        assert response is not None and response.success, response
        return dict(json.loads(response.message))


def _counted(status: Callable[[], dict[str, Any]], key: str, count: int) -> bool:
    return int(status()[key]) >= count


# --- OSC packets to the world ---------------------------------------------------------------


def test_every_generated_osc_packet_is_refused_exactly_once() -> None:
    """The generator's promise, checked on the server's own parsing (no socket)."""
    state = InputState()
    rejections: list[OscRejection] = []
    server = OscInputServer(state, port=0, on_reject=rejections.append)
    try:
        packets = malformed_osc_packets(SEED, FUZZ_COUNT)
        for kind, packet in packets:
            before = len(rejections)
            server.handle_datagram(packet, "127.0.0.1:1")
            assert len(rejections) == before + 1, (kind, packet[:64])
            assert rejections[-1].reason, kind
        assert server.accepted == 0
        assert server.rejected == FUZZ_COUNT
        assert {kind for kind, _ in packets} >= {"huge", "bundle", "truncated", "out_of_range"}
        # Nothing got through to the held input.
        command = state.motion_command(2.0, 1.5)
        assert (command.forward, command.left, command.yaw_rate, command.jump) == (0, 0, 0, False)
    finally:
        server.close()


def _pose(poses: Any) -> tuple[float, float]:
    message = poses.messages[-1]
    return message.pose.position.x, message.pose.position.y


@pytest.mark.e2e
def test_world_refuses_a_thousand_bad_osc_packets_and_still_obeys_a_good_one(
    spawn_node: Callable[..., NodeProcess],
    probe: RosProbe,
    free_udp_port: Callable[[], int],
    free_tcp_port: Callable[[], int],
) -> None:
    osc_port = free_udp_port()
    world = spawn_node(
        "sim_world",
        {"osc_port": osc_port, "video_port": free_tcp_port(), "frame_width": 32,
         "frame_height": 24, "report_period": 1.0},
    )  # fmt: skip
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    poses.wait_for(1)
    world_status = StatusClient(probe, "sim_world")
    start = _pose(poses)
    packets = malformed_osc_packets(SEED + 1, FUZZ_COUNT)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        batch_bytes = 0
        for sent, (_, packet) in enumerate(packets, start=1):
            sender.sendto(packet, ("127.0.0.1", osc_port))
            batch_bytes += len(packet) + 512
            if batch_bytes > 64_000 or sent == len(packets):
                # Let the server drain its socket: UDP drops what overflows the buffer.
                batch_bytes = 0
                assert wait_until(
                    partial(_counted, world_status, "osc_rejected", sent),
                    10.0,
                    interval=0.02,
                ), (sent, world_status())
        status = world_status()
        assert (status["osc_rejected"], status["osc_accepted"]) == (FUZZ_COUNT, 0)
        assert world.is_running()
        time.sleep(0.3)
        assert _pose(poses) == pytest.approx(start, abs=1e-9)  # nothing moved the avatar

        forward = osc_message("/input/Vertical", "f", struct.pack(">f", 1.0))
        sender.sendto(forward, ("127.0.0.1", osc_port))
        assert wait_until(lambda: _pose(poses)[0] > start[0] + 0.5, 10.0), _pose(poses)
        sender.sendto(osc_message("/input/Vertical", "f", bytes(4)), ("127.0.0.1", osc_port))
    world.wait_for_output(f"osc accepted=2 rejected={FUZZ_COUNT}")
    output = world.output()
    assert "rejected OSC from 127.0.0.1:" in output
    for reason in ("malformed OSC packet", "unknown address", "expects a float in [-1, 1]"):
        assert reason in output
    assert output.count("rejected OSC from") < 100  # the log is rate-limited per kind
    assert world.stop() == 0
    assert "Traceback" not in world.output()


# --- images to the agent --------------------------------------------------------------------


def _agent_refuses(spec: ImageSpec) -> str:
    """The agent's checks of the fields; returns the reason."""
    fields = ImageFields(spec.height, spec.width, spec.encoding, 0, spec.step, spec.data)
    with pytest.raises(ImageFormatError) as refused:
        decode_image(fields)
    return str(refused.value)


def test_every_generated_image_is_malformed() -> None:
    specs = malformed_images(SEED, FUZZ_COUNT, IMAGE_WIDTH, IMAGE_HEIGHT)
    reasons = [_agent_refuses(spec) for spec in specs]
    assert all(reasons)
    assert len({spec.kind for spec in specs}) == 7


def _image_message(spec: ImageSpec) -> Image:
    message = Image(
        height=spec.height, width=spec.width, encoding=spec.encoding, is_bigendian=0,
        step=spec.step,
    )  # fmt: skip
    message.data = spec.data
    return message


@pytest.mark.e2e
def test_agent_refuses_a_thousand_bad_images_and_keeps_acting(
    spawn_node: Callable[..., NodeProcess], probe: RosProbe
) -> None:
    rate_hz = 20.0
    agent = spawn_node(
        "agent",
        {"rate_hz": rate_hz, "image_width": IMAGE_WIDTH, "image_height": IMAGE_HEIGHT,
         "report_period": 1.0, "send_experience": False},
    )  # fmt: skip
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 50)
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    assert wait_until(lambda: camera.get_subscription_count() > 0, 20.0)
    cmd_vel.wait_for(1)
    agent_status = StatusClient(probe, "agent")
    good = encode_image(np.full((IMAGE_HEIGHT, IMAGE_WIDTH, 3), 90, np.uint8))

    def good_frame() -> Image:
        message = Image()
        good.fill(message)
        return message

    camera.publish(good_frame())
    assert wait_until(lambda: agent_status()["frames_received"] > 0, 10.0)
    received_before = agent_status()["frames_received"]

    # Sensor QoS is best effort with a short queue: publish in small batches and let the
    # agent catch up, so (almost) every bad frame is received and counted.
    specs = iter(malformed_images(SEED + 2, 2 * FUZZ_COUNT, IMAGE_WIDTH, IMAGE_HEIGHT))
    sent = 0
    started = time.monotonic()
    steps_before = len(cmd_vel)
    rejected = 0
    while rejected < FUZZ_COUNT and sent < FUZZ_COUNT * 1.2:
        for _ in range(4):
            camera.publish(_image_message(next(specs)))
            sent += 1
        wait_until(partial(_counted, agent_status, "frames_rejected", sent), 1.0, 0.005)
        rejected = agent_status()["frames_rejected"]
    elapsed = time.monotonic() - started
    acted = len(cmd_vel) - steps_before
    status = agent_status()
    assert status["frames_rejected"] >= FUZZ_COUNT, (sent, status)
    assert status["frames_received"] == received_before  # no bad frame was taken
    assert agent.is_running()
    # It kept acting at its rate while it refused them.
    assert acted >= 0.8 * rate_hz * elapsed, (acted, elapsed)
    assert status["step_errors"] == 0

    camera.publish(good_frame())
    assert wait_until(lambda: agent_status()["frames_received"] > received_before, 10.0)
    output = agent.wait_for_output("camera/image_raw frame refused:")
    for reason in ("empty image", "unsupported encoding", "step ", "data holds"):
        assert reason in output, reason
    assert agent.stop() == 0
    assert "Traceback" not in agent.output()


# --- weights --------------------------------------------------------------------------------


def _snapshot(module: torch.nn.Module) -> dict[str, bytes]:
    return {name: value.numpy().tobytes() for name, value in module.state_dict().items()}


def _trained_weights(model: SwappableModel, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    module, _ = model.current()
    return {
        name: torch.randn(value.shape, generator=generator).to(value.dtype) * 0.1
        for name, value in module.state_dict().items()
    }


def _load_as_agent(model: SwappableModel, data: bytes, checksum: str, version: int) -> None:
    """The agent's load: checksum, parse (views, NaN/Inf check), prepare into the spare."""
    buffer = bytearray(data)  # the agent parses from its own writable buffer
    verify_checksum(buffer, checksum, MODEL_NAME, version)
    tensors = parse_weights(buffer, MODEL_NAME, version, copy=False)
    model.prepare(tensors, version, check_finite=False)


def _small_model() -> torch.nn.Module:
    from pamiq_ros.models.autoencoder import build_acting_model

    return build_acting_model(0, input_height=16, input_width=16, latent_dim=4)


def test_damaged_weights_are_refused_and_the_acting_weights_stay() -> None:
    model = SwappableModel(MODEL_NAME, _small_model)
    # A good version 3 is active, a good version 4 waits: neither may be disturbed.
    for version in (3, 4):
        good = encode_weights(MODEL_NAME, version, _trained_weights(model, version))
        _load_as_agent(model, good.data, good.checksum, version)
        if version == 3:
            assert model.swap_if_ready() == 3
    active = _snapshot(model.current()[0])
    target = encode_weights(MODEL_NAME, 5, _trained_weights(model, 5))
    reference = parse_weights(target.data, MODEL_NAME, 5)

    def damaged(seed: int, structural_only: bool) -> Iterator[tuple[str, bytes]]:
        return damaged_weights(seed, FUZZ_COUNT, target.data, structural_only)

    refused: dict[str, int] = {}
    harmless = 0
    cases = [
        *((kind, data, target.checksum) for kind, data in damaged(SEED, False)),
        # A sender that hashes what it damaged: the checks behind the checksum must hold.
        *((kind, data, encode_checksum(data)) for kind, data in damaged(SEED + 1, True)),
    ]
    for kind, data, checksum in cases:
        try:
            _load_as_agent(model, data, checksum, 5)
        except WeightsError as error:
            message = str(error)
            assert f"model {MODEL_NAME!r} version 5" in message, message
            refused[kind] = refused.get(kind, 0) + 1
        else:
            # Accepted only if it decodes to the very same weights (e.g. a flip in an
            # unchecked metadata field); then the pending version is now 5: start over.
            decoded = parse_weights(data, MODEL_NAME, 5)
            assert decoded.keys() == reference.keys(), kind
            assert all(torch.equal(decoded[n], reference[n]) for n in reference), kind
            harmless += 1
            model = _model_at(active, pending=4)
        assert model.version == 3
        assert _snapshot(model.current()[0]) == active  # bit-identical, every time
    assert sum(refused.values()) >= 2 * FUZZ_COUNT - harmless
    assert harmless <= 20, harmless
    assert {"truncated", "bit_flip", "non_finite", "tensor_renamed", "length_prefix"} <= set(
        refused
    )
    # The waiting version 4 is intact and still the one that swaps in.
    assert model.pending_version() == 4
    assert model.swap_if_ready() == 4
    expected = _trained_weights(model, 4)
    assert all(torch.equal(v, expected[n]) for n, v in model.current()[0].state_dict().items())


def encode_checksum(data: bytes) -> str:

    return "blake3:" + blake3(data).hexdigest()


def _model_at(active: dict[str, bytes], pending: int) -> SwappableModel:
    """A fresh model with the given active weights as version 3 and version 4 pending."""
    model = SwappableModel(MODEL_NAME, _small_model)
    module = model.current()[0]
    weights = {
        name: torch.from_numpy(np.frombuffer(active[name], dtype=np.float32).copy()).reshape(
            value.shape
        )
        for name, value in module.state_dict().items()
    }
    model.load_state_dict({"version": 3, "weights": weights})
    model.prepare(_trained_weights(model, pending), pending)
    return model


def test_damaged_shared_memory_files_and_chunks_are_refused(tmp_path: Path) -> None:
    """The trainer's file changed after its announcement, or its chunks served wrong."""
    model = SwappableModel(MODEL_NAME, _small_model)
    active = _snapshot(model.current()[0])
    rng = random.Random(SEED)
    with SharedWeightStore(tmp_path / "shm", keep_versions=1, chunk_size=64 << 10) as store:
        encoded = encode_weights(MODEL_NAME, 1, _trained_weights(model, 1))
        path = store.put(encoded)
        chunks = store.chunk_count(encoded.size_bytes)
        assert chunks >= 3
        refused = 0
        for _, damaged in damaged_weights(SEED + 2, FUZZ_COUNT // 2, encoded.data):
            path.write_bytes(damaged)  # the announced file, changed under its name
            served = store.get(MODEL_NAME, 1)
            assert served is not None
            with pytest.raises(WeightsError, match="version 1: checksum mismatch"):
                decode_weights(served.data, encoded.checksum, MODEL_NAME, 1)
            refused += 1
        path.write_bytes(encoded.data)
        for case in range(FUZZ_COUNT // 2):
            assembler = ChunkAssembler(encoded.size_bytes, chunks, where=f"case {case}")
            responses = [store.chunk(MODEL_NAME, 1, index) for index in range(chunks)]
            bad = rng.randrange(chunks)
            data, count = responses[bad]
            fault = rng.choice(["short", "long", "count", "skip", "repeat", "flip"])
            if fault == "short":
                responses[bad] = (data[: rng.randrange(len(data))], count)
            elif fault == "long":
                responses[bad] = (data + rng.randbytes(rng.randint(1, 64)), count)
            elif fault == "count":
                responses[bad] = (data, count + rng.choice([-1, 1, 5]))
            elif fault == "skip":
                del responses[bad]
            elif fault == "repeat":
                responses.insert(bad, responses[bad])
            else:
                flipped = bytearray(data)
                flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                responses[bad] = (bytes(flipped), count)
            indices = list(range(chunks))
            if fault == "skip":
                del indices[bad]
            elif fault == "repeat":
                indices.insert(bad, bad)
            with pytest.raises(WeightsError):
                for index, (chunk, chunk_count) in zip(indices, responses, strict=True):
                    assembler.add(index, chunk, chunk_count)
                _load_as_agent(model, bytes(assembler.data()), encoded.checksum, 1)
            refused += 1
    assert refused == FUZZ_COUNT
    assert model.version == 0 and model.pending_version() is None
    assert _snapshot(model.current()[0]) == active


# --- checkpoints ----------------------------------------------------------------------------


def _learner() -> Learner:
    return build_autoencoder_learner(
        8, input_height=16, input_width=16, latent_dim=4, batch_size=2, steps_per_run=1,
        min_buffer_size=2, min_new_samples=1,
    )  # fmt: skip


def _feed_and_train(learner: Learner, steps: range) -> None:
    rng = np.random.default_rng(steps.start)
    for step in steps:
        frame = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        action = np.zeros(len(ACTION_SIZES), np.int64)
        learner.add(ExperienceRecord(step, frame, action, MODEL_NAME, 0))
    assert learner.train_next() is not None


def _learner_state(learner: Learner) -> tuple[Any, ...]:
    weights = {name: value.clone() for name, value in learner.weights(MODEL_NAME).items()}
    optimizer = json.dumps(learner.trainers[0].state_dict(), default=repr, sort_keys=True)
    frames = learner.buffers["frames"].snapshot()
    return learner.versions, learner.buffer_sizes(), weights, optimizer, repr(frames)


def _same_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return (
        a[0] == b[0]
        and a[1] == b[1]
        and a[2].keys() == b[2].keys()
        and all(torch.equal(a[2][n], b[2][n]) for n in a[2])
        and a[3:] == b[3:]
    )


def test_damaged_checkpoints_are_refused_and_the_learner_stays_as_it_was(tmp_path: Path) -> None:
    learner = _learner()
    _feed_and_train(learner, range(3))  # the checkpoint: version 1, 3 frames
    store = CheckpointStore(tmp_path / "store")
    saved = store.save(learner.save_state, "fuzz")
    _feed_and_train(learner, range(3, 8))  # the learner moves on: version 2, 8 frames
    current = _learner_state(learner)
    assert current[0] == {MODEL_NAME: 2} and current[1] == {"frames": 8}

    def load(folder: Path) -> None:  # what a resume does: verify, then load
        store.verify(folder)
        learner.load_state(folder)

    rng = random.Random(SEED)
    kinds: dict[str, int] = {}
    for case in range(FUZZ_COUNT):
        folder = tmp_path / f"case{case % 8}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(saved, folder, copy_function=os.link)  # damage replaces, never writes
        kind, damaged = damage_checkpoint(rng, folder)
        relative = damaged.relative_to(folder).as_posix()
        with pytest.raises(CheckpointError) as refused:
            load(folder)
        message = str(refused.value)
        assert relative in message or "manifest.json" in message, (kind, relative, message)
        kinds[kind] = kinds.get(kind, 0) + 1
        if case % 50 == 0:  # the full comparison is slow; the cheap figures every time
            assert _same_state(_learner_state(learner), current), (kind, relative)
        assert learner.versions == current[0] and learner.buffer_sizes() == current[1]
    assert len(kinds) == 8
    assert _same_state(_learner_state(learner), current)

    # Damage the learner reads itself (as if the manifest were written over damaged files).
    structural = _structural_damage(learner, saved, tmp_path / "structural", rng)
    assert structural >= 70
    assert _same_state(_learner_state(learner), current)

    # And the pristine checkpoint still loads: the test would see a load that did nothing.
    load(saved)
    assert learner.versions == {MODEL_NAME: 1} and learner.buffer_sizes() == {"frames": 3}


def _structural_damage(learner: Learner, saved: Path, folder: Path, rng: random.Random) -> int:
    """Loads (no manifest check) copies with cut, missing or contradictory files."""
    edits: list[tuple[Path, bytes | None]] = []  # (file, its new bytes, or None: deleted)
    for file in sorted(p.relative_to(saved) for p in saved.rglob("*") if p.is_file()):
        if file.name == "manifest.json":
            continue
        original = (saved / file).read_bytes()
        meaningful = len(original.rstrip())  # a cut must remove more than trailing whitespace
        edits += [(file, original[:cut]) for cut in rng.sample(range(meaningful), 12)]
        edits.append((file, None))
    meta = json.loads((saved / "learner.json").read_text())
    for key, value in [
        ("format", 2), ("models", ["other"]), ("buffers", []), ("trainers", ["x"]),
        ("versions", {MODEL_NAME: -1}), ("versions", {MODEL_NAME: "1"}), ("versions", []),
        ("runner", None),
    ]:  # fmt: skip
        edits.append((Path("learner.json"), json.dumps({**meta, key: value}).encode()))
    for file, data in edits:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(saved, folder, copy_function=os.link)
        (folder / file).unlink()  # replaced, not written through the link
        if data is not None:
            (folder / file).write_bytes(data)
        with pytest.raises(CheckpointError) as refused:
            learner.load_state(folder)
        message = str(refused.value)
        assert file.name in message or f"{file.parent.name}'" in message, (file, message)
    return len(edits)


# --- Experience records into a live trainer (issue 10) --------------------------------------


def _experience_message(spec: ExperienceSpec) -> Experience:
    message = Experience(step=7, model_name=spec.model_name, weight_version=0)
    message.observation = _image_message(spec.observation)
    message.action = spec.action
    message.tensors = [
        NamedTensor(name=name, shape=shape, data=np.asarray(data, np.float32))
        for name, shape, data in spec.tensors
    ]
    return message


def _trainer_parameters(tmp_path: Path) -> dict[str, object]:
    return {
        "mind": "autoencoder", "image_width": IMAGE_WIDTH, "image_height": IMAGE_HEIGHT,
        "buffer_size": 64, "batch_size": 4, "min_buffer_size": 8, "min_new_samples": 4,
        "report_period": 1.0, "run_dir": str(tmp_path / "run"), "niceness": 0,
        "checkpoint_period": 3600.0,
    }  # fmt: skip


def _send_good(publisher: Any, steps: range, status: Callable[[], dict[str, Any]]) -> None:
    """Sends good records 16 at a time, each batch counted before the next.

    The trainer's reader keeps the newest 32 (EXPERIENCE_DEPTH): a faster flood on a loaded
    machine loses the oldest by design (a real agent's outbox sends those again; these records
    carry no agent id, so nothing resends them).
    """
    for start in range(steps.start, steps.stop, 16):
        batch = range(start, min(start + 16, steps.stop))
        for step in batch:
            publisher.publish(synthetic_experience(step, IMAGE_WIDTH, IMAGE_HEIGHT))
        assert wait_until(partial(_counted, status, "experience_received", batch.stop), 20.0), (
            batch, status(),
        )  # fmt: skip


@pytest.mark.e2e
def test_trainer_refuses_a_thousand_bad_records_and_keeps_learning(
    spawn_node: Callable[..., NodeProcess], probe: RosProbe, tmp_path: Path
) -> None:
    trainer = spawn_node("trainer", _trainer_parameters(tmp_path))
    publisher = probe.publisher(Experience, EXPERIENCE_TOPIC, EXPERIENCE_QOS)
    assert wait_until(lambda: publisher.get_subscription_count() > 0, 30.0)
    status = StatusClient(probe, "trainer")
    _send_good(publisher, range(40), status)
    assert wait_until(lambda: status()["experience_received"] == 40, 20.0), status()
    assert wait_until(lambda: status()["runs"] > 0, 30.0), status()
    rss_before = rss_mb(trainer)

    specs = list(malformed_experience(SEED, FUZZ_COUNT, IMAGE_WIDTH, IMAGE_HEIGHT, ACTION_SIZES))
    sent = 0
    peak = rss_before
    for batch_start in range(0, FUZZ_COUNT, 16):  # within the trainer's queue of 32
        for spec in specs[batch_start : batch_start + 16]:
            publisher.publish(_experience_message(spec))
            sent += 1
        assert wait_until(partial(_counted, status, "experience_rejected", sent), 20.0), (
            sent, status(), trainer.output()[-3000:],
        )  # fmt: skip
        peak = max(peak, rss_mb(trainer))
    time.sleep(1.0)
    rss_after = rss_mb(trainer)
    figures = status()
    assert trainer.is_running(), trainer.output()[-3000:]
    assert figures["experience_rejected"] == FUZZ_COUNT
    assert figures["experience_received"] == 40  # nothing bad got in
    assert figures["callback_errors"] == 0
    assert figures["buffers"] == {"frames": 40}
    kinds = {spec.kind for spec in specs}
    assert {"oversized", "scalar_not_scalar", "tensor_too_big", "wrong_size"} <= kinds
    record_figures(
        "experience", {"count": FUZZ_COUNT, "oversized": sum(s.kind == "oversized" for s in specs),
                       "rss_before_mb": rss_before, "rss_peak_mb": peak, "rss_after_mb": rss_after},
    )  # fmt: skip
    assert rss_after - rss_before < MEMORY_BUDGET_MB, (rss_before, rss_after)

    # It still learns from good records: the buffer grows and new versions are published.
    published = dict(figures["published_versions"])
    _send_good(publisher, range(40, 80), status)
    assert wait_until(lambda: status()["experience_received"] == 80, 20.0), status()
    assert wait_until(lambda: status()["published_versions"] != published, 30.0), status()
    trainer.wait_for_output("experience refused: ")  # said with a reason, rate-limited
    assert trainer.stop() == 0
    assert "Traceback" not in trainer.output()


# --- extreme images into the agent (issue 10) -----------------------------------------------


@pytest.mark.e2e
def test_agent_refuses_a_thousand_images_of_extreme_sizes(
    spawn_node: Callable[..., NodeProcess], probe: RosProbe
) -> None:
    agent = spawn_node(
        "agent",
        {"mind": "autoencoder", "rate_hz": 20.0, "image_width": IMAGE_WIDTH,
         "image_height": IMAGE_HEIGHT, "report_period": 1.0, "send_experience": False},
    )  # fmt: skip
    camera = probe.publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    assert wait_until(lambda: camera.get_subscription_count() > 0, 30.0)
    agent_status = StatusClient(probe, "agent")
    rss_before = rss_mb(agent)
    specs = iter(extreme_images(SEED + 3, 2 * FUZZ_COUNT))
    sent = rejected = 0
    peak = rss_before
    while rejected < FUZZ_COUNT and sent < 1.3 * FUZZ_COUNT:
        for _ in range(4):  # best effort: small batches, then let the agent catch up
            camera.publish(_image_message(next(specs)))
            sent += 1
        wait_until(partial(_counted, agent_status, "frames_rejected", rejected + 4), 1.0, 0.005)
        rejected = agent_status()["frames_rejected"]
        if sent % 100 < 4:
            peak = max(peak, rss_mb(agent))
    time.sleep(1.0)
    rss_after = rss_mb(agent)
    status = agent_status()
    assert agent.is_running()
    assert status["frames_rejected"] >= FUZZ_COUNT, (sent, status)
    assert status["frames_received"] == 0 and status["step_errors"] == 0
    record_figures(
        "extreme_images", {"count": status["frames_rejected"], "sent": sent,
                           "rss_before_mb": rss_before, "rss_peak_mb": peak,
                           "rss_after_mb": rss_after},
    )  # fmt: skip
    assert rss_after - rss_before < MEMORY_BUDGET_MB, (rss_before, rss_after)
    good = encode_image(np.full((IMAGE_HEIGHT, IMAGE_WIDTH, 3), 90, np.uint8))
    message = Image()
    good.fill(message)
    camera.publish(message)
    assert wait_until(lambda: agent_status()["frames_received"] == 1, 10.0)
    assert agent.stop() == 0
    assert "Traceback" not in agent.output()


# --- GetWeights requests to the trainer, control calls (issue 10) ----------------------------


def _all_done(futures: list[Any]) -> bool:
    return all(future.done() for future in futures)


def _call(client: Any, request: Any, timeout: float = 10.0) -> Any:
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    assert done.wait(timeout), "no answer"
    return future.result()


@pytest.mark.e2e
def test_trainer_refuses_a_thousand_bad_weight_requests_and_control_calls(
    spawn_node: Callable[..., NodeProcess], probe: RosProbe, tmp_path: Path
) -> None:
    trainer = spawn_node("trainer", _trainer_parameters(tmp_path))
    weights: Any = probe.node.create_client(GetWeights, "weights/get")
    assert weights.wait_for_service(timeout_sec=30.0)
    ask = GetWeights.Request(model_name=MODEL_NAME, host_id=host_identity())
    assert wait_until(lambda: _call(weights, ask).success, 20.0)  # version 0 is stored first
    newest = _call(weights, ask)
    assert newest.shm_path
    rss_before = rss_mb(trainer)

    refused = 0
    for request in weight_requests(SEED + 4, FUZZ_COUNT, MODEL_NAME):
        answer = _call(weights, GetWeights.Request(**request))
        assert not answer.success and answer.message, request
        assert not answer.shm_path and not len(answer.chunk)
        refused += 1
    rss_weights = rss_mb(trainer)
    again = _call(weights, ask)
    assert (again.success, again.version, again.checksum) == (True, newest.version, newest.checksum)

    # Control calls in random order, some in bursts that overlap.
    rng = random.Random(SEED)
    clients: dict[str, Any] = {
        command: probe.node.create_client(Trigger, f"/trainer/control/{command}")
        for command in ("pause", "resume", "save", "status")
    }
    for client in clients.values():
        assert client.wait_for_service(timeout_sec=20.0)
    answered = 0
    while answered < FUZZ_COUNT:
        # Bursts of up to 8: a service keeps the last 10 answers per client (DDS depth).
        burst = [rng.choice(list(clients)) for _ in range(rng.choice([1, 1, 4, 8]))]
        futures = [clients[command].call_async(Trigger.Request()) for command in burst]
        assert wait_until(partial(_all_done, futures), 30.0)
        for command, future in zip(burst, futures, strict=True):
            response = future.result()
            assert response is not None and response.success, (command, response)
            answered += 1
    status = StatusClient(probe, "trainer")
    _call(clients["resume"], Trigger.Request())
    figures = status()
    calls = figures["control_calls"]
    assert sum(calls.values()) >= FUZZ_COUNT
    # Saves are coalesced: a flood of save calls is not a flood of checkpoints.
    assert figures["checkpoints_written"] <= 1 + calls["save"] // 2, figures
    assert trainer.is_running() and not figures["paused"]
    rss_after = rss_mb(trainer)
    record_figures(
        "weight_requests_and_control", {"weight_requests": refused, "control_calls": answered,
                                        "rss_before_mb": rss_before,
                                        "rss_after_weight_requests_mb": rss_weights,
                                        "rss_after_mb": rss_after},
    )  # fmt: skip
    assert rss_after - rss_before < MEMORY_BUDGET_MB, (rss_before, rss_after)
    assert trainer.stop() == 0
    assert "Traceback" not in trainer.output()


# --- forged announcements and answers through the real weight subscriber (issue 10) ---------


class Forger:
    """A second ``weights/get`` server and a second announcer, in a node of its own."""

    def __init__(self, probe: RosProbe, folder: Path, kinds: list[str]) -> None:
        self.kinds = iter(kinds)
        self.answered: dict[str, int] = {}
        self.folder = folder
        self.announcer = probe.node.create_publisher(
            WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
        )
        self.mode = "kinds"  # or "no": answer every request with a refusal
        probe.node.create_service(GetWeights, "weights/get", self._serve)

    def prepare_files(self, name: str, size: int, tmp_path: Path) -> dict[str, str]:
        """Forged files under names the subscriber expects; returns kind -> path."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(mode=0o700)
        tmp_path.mkdir(parents=True)
        own = self.folder / "pamiq_ros-1-forged"  # a store-like folder of this user
        own.mkdir(mode=0o700)
        (own / name).write_bytes(os.urandom(size))  # the right name and size, wrong bytes
        links = self.folder / "pamiq_ros-2-links"
        links.mkdir(mode=0o700)
        (links / name).symlink_to("/etc/passwd")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        (elsewhere / name).write_bytes(os.urandom(size))
        (self.folder / "pamiq_ros-3-dirlink").symlink_to(elsewhere)
        fifo = self.folder / "pamiq_ros-4-fifo"
        fifo.mkdir(mode=0o700)
        os.mkfifo(fifo / name)
        huge = self.folder / "pamiq_ros-5-huge"
        huge.mkdir(mode=0o700)
        with open(huge / name, "wb") as file:
            file.truncate(1 << 30)  # sparse: 1 GiB announced by the file system, no RAM
        writable = self.folder / "pamiq_ros-6-writable"
        writable.mkdir(mode=0o700)
        (writable / name).write_bytes(os.urandom(size))
        (writable / name).chmod(0o666)
        return {
            "other_store": str(own / name),
            "file_symlink": str(links / name),
            "folder_symlink": str(self.folder / "pamiq_ros-3-dirlink" / name),
            "fifo": str(fifo / name),
            "oversized_file": str(huge / name),
            "world_writable": str(writable / name),
            "outside_store": str(elsewhere / name),
            "wrong_name": str(own / "policy-v999999.safetensors"),
            "relative_path": f"pamiq_ros-1-forged/{name}",
            "dot_dot": f"{own}/../pamiq_ros-1-forged/{name}",
        }

    def _serve(self, request: Any, response: Any) -> Any:
        if self.mode == "no":
            response.success, response.message = False, "not here"
            return response
        kind = next(self.kinds, "no")
        self.answered[kind] = self.answered.get(kind, 0) + 1
        announced = self.announced
        response.success = kind != "no"
        response.message = "refused by the forger" if kind == "no" else ""
        response.version = announced.version + (kind == "wrong_version")
        response.checksum = "0" * 64 if kind == "wrong_checksum" else announced.checksum
        response.size_bytes = announced.size_bytes + (kind == "wrong_size")
        if kind in self.paths:
            response.shm_path = self.paths[kind]
        elif kind in ("garbage_chunk", "huge_chunk_count", "chunk_out_of_order"):
            response.chunk = array.array("B", os.urandom(min(announced.size_bytes, 4096)))
            response.chunk_count = (1 << 32) - 1 if kind == "huge_chunk_count" else 1
            response.chunk_index = 5 if kind == "chunk_out_of_order" else 0
        return response

    announced: Any = None
    paths: dict[str, str] = {}


@pytest.fixture
def shm_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pamiq_fuzz-", dir="/dev/shm"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.e2e
def test_weights_come_only_from_the_trainer(
    domain_id: int, tmp_path: Path, shm_folder: Path
) -> None:
    """1000 forged answers, 1000 forged announcements and a second server: none is used."""
    trainer, agent, forger_probe = (
        RosProbe(domain_id, name) for name in ("trainer", "agent", "forger")
    )
    store = SharedWeightStore(chunk_size=4096)  # the trainer's real store in /dev/shm
    ready: list[int] = []
    errors: list[str] = []
    model = SwappableModel(MODEL_SYNC, build)
    initial = {name: value.clone() for name, value in model.current()[0].state_dict().items()}
    subscriber = WeightSubscriber(
        agent.node, {MODEL_SYNC: model}, on_ready=lambda _, version, __: ready.append(version),
        on_error=errors.append, request_timeout_s=5.0, ask_backoff_s=(0.001, 0.004),
        store_roots=(SHARED_MEMORY_ROOT, shm_folder),
    )  # fmt: skip
    rss_before = float(psutil.Process().memory_info().rss) / (1 << 20)
    try:
        # 1. Forged answers: the trainer's node announces, but only the forger serves; every
        #    answer is refused and asked again (13 times per version), never used.
        encoded = encode_weights(MODEL_SYNC, 1, trained(1))
        forger = Forger(forger_probe, shm_folder, weight_answer_kinds(SEED, FUZZ_COUNT))
        announcer = trainer.node.create_publisher(
            WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS
        )
        version = 1
        while sum(forger.answered.values()) < FUZZ_COUNT:
            blob = encode_weights(MODEL_SYNC, version, trained(version))
            forger.paths = forger.prepare_files(
                version_file_name(MODEL_SYNC, version), blob.size_bytes, tmp_path / str(version)
            )
            message = WeightsAnnouncement(
                model_name=MODEL_SYNC, version=version, checksum=blob.checksum,
                size_bytes=blob.size_bytes, host_id=host_identity(),
            )  # fmt: skip
            message.published = trainer.node.get_clock().now().to_msg()
            forger.announced = message
            reported = len(errors)
            announcer.publish(message)
            assert wait_until(partial(_grew, errors, reported), 30.0), (version, forger.answered)
            version += 1
        answered = dict(forger.answered)
        refusals = subscriber.refusals()
        assert sum(answered.values()) >= FUZZ_COUNT, answered
        assert set(answered) == set(WEIGHT_ANSWER_KINDS), answered
        assert refusals["refused_answer"] >= FUZZ_COUNT, refusals
        # Each forged kind met the check meant for it (symlinks: O_NOFOLLOW, never followed).
        assert refusals["answer_link"] == answered["file_symlink"] + answered["folder_symlink"]
        assert refusals["answer_not_regular"] == answered["fifo"]
        assert refusals["answer_owner"] == answered["world_writable"]
        assert refusals["answer_size"] == answered["oversized_file"]
        assert refusals["answer_checksum"] == answered["other_store"]
        assert refusals["answer_chunks"] == sum(
            answered[kind] for kind in ("garbage_chunk", "huge_chunk_count", "chunk_out_of_order")
        )
        assert refusals["answer_mismatch"] == sum(
            answered[kind] for kind in ("wrong_checksum", "wrong_version", "wrong_size")
        )
        assert refusals["answer_no"] == answered["no"]
        assert refusals["answer_path"] == sum(
            answered[kind] for kind in ("relative_path", "outside_store", "wrong_name", "dot_dot")
        )
        assert model.version == 0 and model.pending_version() is None and not ready
        assert_weights(model.current()[0], initial)
        assert all(f"asked {ASK_ATTEMPTS + 1} times" in line for line in errors), errors[:3]
        leaked = [line for line in errors if str(shm_folder) in line or "/etc/" in line]
        assert not leaked, leaked[:3]  # no file path in what others can read

        # 2. Forged announcements from a node that is not the trainer: all refused.
        top = version + 10
        for forged in range(FUZZ_COUNT):
            message = WeightsAnnouncement(
                model_name=MODEL_SYNC, version=top + 1_000_000 + forged, checksum="f" * 64,
                size_bytes=encoded.size_bytes, host_id=host_identity(),
            )  # fmt: skip
            forger.announcer.publish(message)
            if forged % 5 == 4:  # the announcement queue keeps 10: let the subscriber take them
                time.sleep(0.02)
        assert wait_until(
            lambda: subscriber.refusals().get("forged_announcement", 0) >= FUZZ_COUNT, 30.0
        ), subscriber.refusals()
        assert not ready

        # 3. The real trainer, with the forger as a second server answering "no" to every
        #    request: the agent asks again and acts with the trainer's newest version.
        forger.mode = "no"
        publisher = WeightPublisher(trainer.node, store)
        try:
            for step in range(3):
                publisher.publish(MODEL_SYNC, top + step, trained(top + step))
                time.sleep(0.3)
            newest = top + 2
            assert wait_until(lambda: newest in ready, 30.0), (errors[-3:], ready[-3:])
        finally:
            publisher.close()
        assert model.swap_if_ready() == newest
        assert_weights(model.current()[0], trained(newest))
        rss_after = float(psutil.Process().memory_info().rss) / (1 << 20)
        refusals = subscriber.refusals()
        record_figures(
            "weight_answers", {"answers": sum(answered.values()), "by_kind": answered,
                               "refusals": refusals, "test_process_rss_before_mb": rss_before,
                               "test_process_rss_after_mb": rss_after},
        )  # fmt: skip
        assert refusals.get("second_server", 0) == 1, refusals
        # The 1 GiB file was never read into memory.
        assert rss_after - rss_before < MEMORY_BUDGET_MB, (rss_before, rss_after)
    finally:
        subscriber.close()
        store.close()
        for probe in (trainer, agent, forger_probe):
            probe.close()


def _grew(items: list[str], before: int) -> bool:
    return len(items) > before


# --- HTTP to the world's video server (issue 10) --------------------------------------------


def _bad_http_requests(seed: int, count: int) -> list[bytes]:
    """Requests the video server must answer with an error (or close), never serve."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        kind = rng.randrange(7)
        if kind == 0:
            requests.append(rng.randbytes(rng.randint(1, 2048)).replace(b"\n", b"x") + b"\r\n\r\n")
        elif kind == 1:
            method = rng.choice([b"POST", b"PUT", b"DELETE", b"BREW", b"HEAD"])
            requests.append(method + b" /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        elif kind == 2:
            requests.append(b"GET /" + b"a" * rng.randint(70_000, 100_000) + b" HTTP/1.1\r\n\r\n")
        elif kind == 3:
            headers = b"".join(b"X-%d: y\r\n" % number for number in range(rng.randint(101, 300)))
            requests.append(b"GET /stream.mjpg HTTP/1.1\r\n" + headers + b"\r\n")
        elif kind == 4:
            path = rng.choice([b"/", b"/etc/passwd", b"/../../x", b"/stream.mjpgX", b"/%00"])
            requests.append(b"GET " + path + b" HTTP/1.1\r\n\r\n")
        elif kind == 5:
            requests.append(b"GET /stream.mjpg HTTP/9.9\r\n\r\n")
        else:
            tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64)
            requests.append(tls_hello.replace(b"\n", b"x") + b"\r\n\r\n")
    return requests


def _exchange(port: int, request: bytes) -> bytes:
    """Sends one request; the first bytes of the answer (empty if the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as connection:
        try:
            connection.sendall(request)
            return connection.recv(64)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def _first_frame(port: int, timeout: float = 10.0) -> bytes:
    """Reads one JPEG from the stream."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while b"\xff\xd9" not in data[data.find(b"\xff\xd8") + 2 :] or b"\xff\xd8" not in data:
            assert time.monotonic() < deadline, data[:200]
            chunk = connection.recv(65536)
            assert chunk, data[:200]
            data += chunk
        assert data.startswith(b"HTTP/1.0 200"), data[:200]
        start = data.find(b"\xff\xd8")
        return data[start : data.find(b"\xff\xd9", start) + 2]


@pytest.mark.e2e
def test_video_server_survives_bad_requests_slow_and_many_clients(
    spawn_node: Callable[..., NodeProcess],
    probe: RosProbe,
    free_udp_port: Callable[[], int],
    free_tcp_port: Callable[[], int],
) -> None:
    port = free_tcp_port()
    world = spawn_node(
        "sim_world",
        {"osc_port": free_udp_port(), "video_port": port, "frame_width": 64,
         "frame_height": 48, "report_period": 1.0},
    )  # fmt: skip
    StatusClient(probe, "sim_world")  # up and serving
    assert _first_frame(port)
    rss_before = rss_mb(world)

    answers: dict[bytes, int] = {}
    for request in _bad_http_requests(SEED + 5, FUZZ_COUNT):
        answer = _exchange(port, request)[:12]
        assert not answer.startswith(b"HTTP/1.0 200"), (request[:80], answer)
        answers[answer] = answers.get(answer, 0) + 1
    assert sum(answers.values()) == FUZZ_COUNT
    rss_requests = rss_mb(world)

    # Slow clients that never send a request, and stream clients that never read: more than
    # the server serves at once. They cost it a bounded number of threads for a bounded time.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    stalled = []
    for _ in range(12):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.sendall(b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
        stalled.append(connection)
    time.sleep(1.0)
    rss_clients = rss_mb(world)
    try:
        assert world.is_running()
        # Within the client timeout the idle ones are dropped, and the stalled ones once their
        # small send buffers are full; then a camera gets in.
        deadline = time.monotonic() + 60.0
        while True:
            try:
                frame = _first_frame(port, timeout=3.0)
                break
            except (AssertionError, OSError):
                assert time.monotonic() < deadline, "no stream after the abusive clients"
                time.sleep(0.5)
        assert frame.startswith(b"\xff\xd8") and len(frame) > 100
    finally:
        for connection in idle + stalled:
            connection.close()
    rss_after = rss_mb(world)
    record_figures(
        "http", {"bad_requests": FUZZ_COUNT, "answers": {k.decode(errors="replace"): v
                 for k, v in answers.items()}, "idle_clients": len(idle),
                 "stalled_stream_clients": len(stalled), "rss_before_mb": rss_before,
                 "rss_after_requests_mb": rss_requests, "rss_with_clients_mb": rss_clients,
                 "rss_after_mb": rss_after},
    )  # fmt: skip
    assert rss_after - rss_before < MEMORY_BUDGET_MB, (rss_before, rss_after)
    assert world.stop() == 0
    assert "Traceback" not in world.output()
