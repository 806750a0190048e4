"""Record the sim camera into bags with the recorder node, replay them, compare the frames.

Real processes over real DDS: sim_world serves video, camera_sensor publishes it, two
recorders (raw and JPEG) write bags; ``pamiq-ros replay`` publishes the raw bag again and a
probe subscriber stands in for the agent. The issue's acceptance names a 2-minute run;
``PAMIQ_MEMORY_RECORD_SECONDS`` (default 120 s, about 1200 frames, that run) sets the length
here; a shorter one checks the same property (every recorded frame delivered, byte-identical, in
order) faster.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from pamiq_ros.io.bags import BagReader, inspect_bag
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe

pytestmark = pytest.mark.e2e

RECORD_SECONDS = float(os.environ.get("PAMIQ_MEMORY_RECORD_SECONDS", "120"))
TOPIC = "camera/image_raw"


def recorded_checksums(bag: Path) -> list[str]:
    reader = BagReader([bag])
    return [
        hashlib.sha256(np.asarray(reader.deserialize(message).data).tobytes()).hexdigest()
        for message in reader.messages([f"/{TOPIC}"])
    ]


def replay_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pamiq_ros.cli", "replay", *arguments]


@pytest.mark.timeout(180 + 3 * RECORD_SECONDS)
def test_recorded_frames_replay_byte_identical_and_jpeg_bags_decode(
    spawn_node: Callable[..., NodeProcess],
    probe: RosProbe,
    ros_env: dict[str, str],
    tmp_path: Path,
    free_udp_port: Callable[[], int],
    free_tcp_port: Callable[[], int],
):
    video_port = free_tcp_port()
    spawn_node("sim_world", {"osc_port": free_udp_port(), "video_port": video_port,
                             "frame_width": 64, "frame_height": 48, "fps": 10.0})  # fmt: skip
    spawn_node("camera_sensor", {"source": f"http://127.0.0.1:{video_port}/stream.mjpg",
                                 "width": 64, "height": 48, "rate_hz": 10.0})  # fmt: skip
    raw_bag, jpeg_bag = tmp_path / "raw", tmp_path / "jpeg"
    raw = spawn_node("recorder", {"output": str(raw_bag), "topics": f"{TOPIC},world/pose",
                                  "mind": "curiosity", "preset": "tiny"})  # fmt: skip
    jpeg = spawn_node(
        "recorder",
        {"output": str(jpeg_bag), "topics": TOPIC, "compress_images": True},
        name="recorder_jpeg",
    )
    raw.wait_for_output(f"recording /{TOPIC}", timeout=60.0)
    jpeg.wait_for_output(f"recording /{TOPIC}", timeout=60.0)
    frames = probe.subscribe(Image, TOPIC)
    assert wait_until(lambda: len(frames) >= RECORD_SECONDS * 10 * 0.8, RECORD_SECONDS + 60.0)
    assert raw.stop() == 0 and jpeg.stop() == 0

    info = inspect_bag(raw_bag)
    assert info.custom_data["pamiq_ros.mind"] == "curiosity"
    # Full names, as rosbag2 records them.
    assert info.topics == {f"/{TOPIC}": "sensor_msgs/msg/Image",
                           "/world/pose": "geometry_msgs/msg/PoseStamped"}  # fmt: skip
    checksums = recorded_checksums(raw_bag)
    assert len(checksums) >= RECORD_SECONDS * 10 * 0.5
    jpeg_info = inspect_bag(jpeg_bag)
    assert jpeg_info.topics == {f"/{TOPIC}/compressed": "sensor_msgs/msg/CompressedImage"}
    jpeg_frames = jpeg_info.counts[f"/{TOPIC}/compressed"]
    raw_size = sum(path.stat().st_size for path in info.files)
    jpeg_size = sum(path.stat().st_size for path in jpeg_info.files)
    assert jpeg_size / jpeg_frames < 0.5 * raw_size / len(checksums)

    # Both bags replay at once, on their own topics. The raw bag: the subscriber (the agent's
    # stand-in) gets every frame, unchanged. The JPEG bag: sensor_msgs/Image of the recorded size.
    reliable = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)
    replayed = probe.subscribe(Image, f"replayed/{TOPIC}", reliable)
    decoded = probe.subscribe(Image, TOPIC, reliable)
    remapped = tmp_path / "remapped"
    shutil.copytree(raw_bag, remapped)
    _rename_topic(remapped, f"/{TOPIC}", f"/replayed/{TOPIC}")
    replays = [start_replay(bag, ros_env) for bag in (remapped, jpeg_bag)]
    try:
        for replay in replays:
            _, errors = replay.communicate(timeout=RECORD_SECONDS / 8 + 120)
            assert replay.returncode == 0, errors
    finally:
        for replay in replays:
            if replay.poll() is None:
                os.killpg(replay.pid, signal.SIGKILL)
                replay.wait()
    assert wait_until(lambda: len(replayed) >= len(checksums), 20.0)
    received = [hashlib.sha256(bytes(m.data)).hexdigest() for m in replayed.messages]
    assert received == checksums
    assert wait_until(lambda: len(decoded) >= jpeg_frames, 20.0)
    image = decoded.messages[-1]
    assert (image.width, image.height, image.encoding) == (64, 48, "rgb8")


def start_replay(bag: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``pamiq-ros replay`` of ``bag`` at 8x, in its own process group."""
    command = replay_command(str(bag), "--rate", "8", "--wait-for-subscribers", "30")
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _rename_topic(bag: Path, old: str, new: str) -> None:
    """Moves a recorded topic to another name (metadata and MCAP channel) via rosbags."""
    from rosbags.rosbag2 import Reader, Writer
    from rosbags.rosbag2.enums import StoragePlugin

    source = bag.with_name(bag.name + "-source")
    bag.rename(source)
    with Reader(source) as reader, Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        connections = {}
        for connection in reader.connections:
            connections[connection.id] = w.add_connection(
                new if connection.topic == old else connection.topic,
                connection.msgtype,
                msgdef=connection.msgdef.data,
                rihs01=connection.digest,
            )
        for connection, timestamp, data in reader.messages():
            w.write(connections[connection.id], timestamp, data)


def test_replay_refuses_a_truncated_bag_naming_the_file(tmp_path: Path, ros_env: dict[str, str]):
    from test.io.test_bags import write_images

    bag = tmp_path / "bag"
    write_images(bag, 10)
    file = next(bag.glob("*.mcap"))
    file.write_bytes(file.read_bytes()[:-100])
    before = file.read_bytes()
    done = subprocess.run(
        replay_command(str(bag)), env=ros_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert f"{file}: truncated" in done.stderr
    assert file.read_bytes() == before


def test_pamiq_ros_record_closes_its_bag_on_ctrl_c(
    spawn: Callable[..., NodeProcess], tmp_path: Path
):
    bag = tmp_path / "bag"
    command = [sys.executable, "-m", "pamiq_ros.cli", "record", "--output", str(bag),
               "--topics", "/diagnostics", "--mind", "curiosity"]  # fmt: skip
    recorder = spawn("record", command)
    recorder.wait_for_output("recorded /diagnostics=", timeout=60.0)  # its own diagnostics
    assert recorder.stop() == 0
    info = inspect_bag(bag)
    assert info.counts["/diagnostics"] >= 1 and info.custom_data["pamiq_ros.mind"] == "curiosity"
