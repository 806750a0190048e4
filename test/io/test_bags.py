"""Bags: MCAP files with rosbag2 metadata, split by size and time, a disk budget, refusals."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from pamiq_ros.io.bags import (
    BagError,
    BagReader,
    BagWriter,
    SplitPolicy,
    inspect_bag,
    project_typestore,
)

TOPIC = "camera/image_raw"
IMAGE = "sensor_msgs/msg/Image"


def image_bytes(index: int, side: int = 32) -> bytes:
    store = project_typestore()
    types = store.types
    pixels = np.random.default_rng(index).integers(0, 255, (side, side, 3), dtype=np.uint8)
    message = types[IMAGE](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=index, nanosec=0), frame_id="camera"
        ),
        height=side, width=side, encoding="rgb8", is_bigendian=0, step=3 * side,
        data=pixels.ravel(),
    )  # fmt: skip
    return bytes(store.serialize_cdr(message, IMAGE))


def write_images(path: Path, count: int, policy: SplitPolicy | None = None, **kw) -> BagWriter:
    writer = BagWriter(path, policy, **kw)
    writer.add_topic(TOPIC, IMAGE)
    for index in range(count):
        writer.write(TOPIC, (index + 1) * 100_000_000, image_bytes(index))
    writer.close()
    return writer


def test_messages_come_back_byte_for_byte_and_rosbags_own_reader_agrees(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 20, custom_data={"pamiq_ros.mind": "curiosity"})
    messages = list(BagReader([bag]).messages())
    assert [message.data for message in messages] == [image_bytes(i) for i in range(20)]
    assert [message.timestamp_ns for message in messages] == [(i + 1) * 10**8 for i in range(20)]
    info = inspect_bag(bag)
    assert info.counts == {TOPIC: 20} and info.custom_data == {"pamiq_ros.mind": "curiosity"}
    # The reader of rosbags (not this project's code) reads the folder through metadata.yaml.
    with Reader(bag) as reader:
        assert reader.message_count == 20
        assert [connection.msgtype for connection in reader.connections] == [IMAGE]
        assert sum(1 for _ in reader.messages()) == 20


def test_files_split_by_size_each_within_the_limit(tmp_path: Path):
    limit = 300_000
    writer = write_images(tmp_path / "bag", 120, SplitPolicy(max_file_bytes=limit))
    assert len(writer.files) >= 2
    assert all(path.stat().st_size <= limit for path in writer.files)
    info = inspect_bag(tmp_path / "bag")
    assert [path.name for path in info.files] == [path.name for path in writer.files]
    assert info.message_count == 120


def test_files_split_by_time(tmp_path: Path):
    writer = write_images(tmp_path / "bag", 50, SplitPolicy(max_file_seconds=1.0))
    assert len(writer.files) == 5  # 10 Hz: each file spans at most 1 s
    with Reader(tmp_path / "bag") as reader:
        assert reader.message_count == 50


def test_disk_budget_is_never_exceeded_and_oldest_files_go_first(tmp_path: Path):
    budget, limit = 700_000, 280_000
    bag = tmp_path / "bag"
    writer = BagWriter(bag, SplitPolicy(max_file_bytes=limit, disk_budget_bytes=budget))
    writer.add_topic(TOPIC, IMAGE)
    usage = []
    for index in range(300):
        writer.write(TOPIC, (index + 1) * 100_000_000, image_bytes(index))
        usage.append(writer.disk_usage())
    writer.close()
    usage.append(writer.disk_usage())
    assert max(usage) <= budget
    assert writer.removed_files, "the budget never had to remove anything"
    assert writer.removed_files[0].name.endswith("_0.mcap")
    assert not any(path.exists() for path in writer.removed_files)
    kept = list(BagReader([bag]).messages())
    assert kept[-1].data == image_bytes(299)  # the newest is kept
    assert kept[0].timestamp_ns > 10**8  # the oldest went
    assert inspect_bag(bag).message_count == len(kept)


def test_split_policy_refuses_sizes_that_cannot_keep_a_budget():
    with pytest.raises(ValueError, match="half"):
        SplitPolicy(max_file_bytes=600_000, disk_budget_bytes=1_000_000)
    with pytest.raises(ValueError, match="max_file_seconds"):
        SplitPolicy(max_file_seconds=-1.0)


def test_an_existing_bag_is_never_overwritten(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 3)
    before = {path.name: path.read_bytes() for path in bag.iterdir()}
    with pytest.raises(BagError, match="exists already"):
        BagWriter(bag)
    assert {path.name: path.read_bytes() for path in bag.iterdir()} == before


def test_truncated_file_is_refused_naming_it(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 10)
    file = next(bag.glob("*.mcap"))
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=rf"{file.name}: truncated"):
        BagReader([bag])


def test_a_file_that_is_not_mcap_is_refused(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 3)
    file = next(bag.glob("*.mcap"))
    file.write_bytes(b"garbage" * 100)
    with pytest.raises(BagError, match=rf"{file.name}: not an MCAP file"):
        inspect_bag(bag)


def test_corruption_inside_a_file_is_refused_while_reading(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 10)
    file = next(bag.glob("*.mcap"))
    data = bytearray(file.read_bytes())
    end = len(data) - 8  # the closing magic stays: only the summary and footer are damaged
    data[end - 300 : end] = b"\xff" * 300
    file.write_bytes(bytes(data))
    with pytest.raises(BagError, match=rf"{bag}: cannot be read"):
        list(BagReader([bag]).messages())


def test_missing_metadata_or_folder_is_refused(tmp_path: Path):
    with pytest.raises(BagError, match="no such bag folder"):
        BagReader([tmp_path / "nothing"])
    bag = tmp_path / "bag"
    write_images(bag, 2)
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match=r"metadata\.yaml: missing"):
        BagReader([bag])
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [1, 2]\n")
    with pytest.raises(BagError, match="not rosbag2 metadata"):
        BagReader([bag])
    with pytest.raises(BagError, match="bare MCAP file"):
        BagReader([next(bag.glob("*.mcap"))])


def test_a_topic_of_unknown_type_is_refused(tmp_path: Path):
    with pytest.raises(BagError, match="unknown"):
        BagWriter(tmp_path / "a").add_topic("x", "nobody_msgs/msg/Thing")
    # A bag written elsewhere with a type this installation lacks.
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("int32 value", "nobody_msgs/msg/Thing"))
    bag = tmp_path / "foreign"
    writer = BagWriter(bag, typestore=store)
    writer.add_topic("thing", "nobody_msgs/msg/Thing")
    message = store.types["nobody_msgs/msg/Thing"](value=3)
    writer.write("thing", 1, bytes(store.serialize_cdr(message, "nobody_msgs/msg/Thing")))
    writer.close()
    with pytest.raises(BagError, match=r"'thing' has type 'nobody_msgs/msg/Thing', unknown"):
        BagReader([bag]).require_known_types(["thing"])


def test_bags_are_read_in_the_order_of_their_start(tmp_path: Path):
    write_images(tmp_path / "first", 3)
    later = BagWriter(tmp_path / "second")
    later.add_topic(TOPIC, IMAGE)
    later.write(TOPIC, 10**10, image_bytes(99))
    later.close()
    shutil.copytree(tmp_path / "second", tmp_path / "copy")
    reader = BagReader([tmp_path / "second", tmp_path / "first"])
    assert [message.data for message in reader.messages()][-1] == image_bytes(99)


def test_bags_of_another_mind_or_preset_are_refused(tmp_path: Path):
    bag = tmp_path / "bag"
    write_images(bag, 1, custom_data={"pamiq_ros.mind": "curiosity", "pamiq_ros.preset": "tiny"})
    reader = BagReader([bag])
    reader.check_origin("curiosity", "tiny")
    reader.check_origin()  # nothing asked, nothing checked
    with pytest.raises(BagError, match=rf"{bag}: recorded by preset 'tiny', not 'small'"):
        reader.check_origin("curiosity", "small")
    with pytest.raises(BagError, match="recorded by mind 'curiosity', not 'autoencoder'"):
        reader.check_origin("autoencoder")
