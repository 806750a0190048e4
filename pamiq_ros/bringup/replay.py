"""``pamiq-ros replay``: publish recorded topics again, with their timing, as if live.

Messages go out as the raw CDR bytes recorded (nothing is re-encoded), each when its log
time comes, scaled by a rate factor (2.0 plays twice as fast). Images recorded as JPEG
(``<topic>/compressed``, see the recorder) are decoded back to ``sensor_msgs/Image`` on the
original topic unless asked not to, so the agent and trainer run on a recording unchanged.
Publishers are reliable with a deep queue, which best-effort subscribers (the agent's image
subscription) accept as well.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.qos import QoSProfile, ReliabilityPolicy

from pamiq_ros.io.bag_messages import (
    IMAGE_TYPE,
    UnknownMessageTypeError,
    decompress_image,
    message_class,
)
from pamiq_ros.io.bags import CUSTOM_COMPRESSED, BagError, BagReader

_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
_LONGEST_SLEEP = 0.5  # s: sleep in slices so that Ctrl-C and a stop request are heard


@dataclass
class ReplayResult:
    """What a replay published."""

    published: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def compressed_pairs(reader: BagReader) -> dict[str, str]:
    """``<topic>/compressed`` -> ``<topic>`` for every image the bags stored as JPEG."""
    pairs: dict[str, str] = {}
    for info in reader.infos:
        for pair in filter(None, info.custom_data.get(CUSTOM_COMPRESSED, "").split(",")):
            raw, _, packed = pair.partition("=")
            pairs[packed] = raw
    return pairs


def plan_topics(
    reader: BagReader, topics: Sequence[str] | None, decode_images: bool
) -> dict[str, tuple[str, str]]:
    """Recorded topic -> (topic published, type published), checked.

    Raises:
        BagError: If a topic asked for is in no bag, or a type is unknown here.
    """
    recorded = reader.topics
    pairs = compressed_pairs(reader) if decode_images else {}
    chosen = list(recorded) if not topics else list(topics)
    plan: dict[str, tuple[str, str]] = {}
    for topic in chosen:
        if topic not in recorded and f"/{topic}" in recorded:
            topic = f"/{topic}"  # a relative name for a topic recorded in the root namespace
        if topic not in recorded:
            packed = next((p for p, raw in pairs.items() if raw in (topic, f"/{topic}")), None)
            if packed is None:
                names = ", ".join(str(info.path) for info in reader.infos)
                raise BagError(
                    f"{names}: no topic {topic!r} recorded (topics: {', '.join(sorted(recorded))})"
                )
            topic = packed
        if topic in pairs:
            plan[topic] = (pairs[topic], IMAGE_TYPE)
        else:
            plan[topic] = (topic, recorded[topic])
    reader.require_known_types(plan)
    for topic, (_, msgtype) in plan.items():
        try:
            message_class(msgtype)
        except UnknownMessageTypeError as error:
            bag = next(info.path for info in reader.infos if topic in info.topics)
            raise BagError(f"{bag}: topic {topic!r}: {error}") from error
    return plan


def replay(
    paths: Sequence[Path | str],
    rate: float = 1.0,
    topics: Sequence[str] | None = None,
    decode_images: bool = True,
    say: Callable[[str], object] = print,
    should_stop: Callable[[], bool] = lambda: False,
    wait_for_subscribers: float = 0.0,
    mind: str = "",
    preset: str = "",
) -> ReplayResult:
    """Publishes the bags' messages with their timing scaled by ``1 / rate``.

    Args:
        paths: Bag folders.
        rate: Speed factor.
        topics: Recorded topics to publish (a JPEG image's raw name selects it); default all.
        decode_images: Publish JPEG-recorded images as ``sensor_msgs/Image``.
        say: Receives progress lines.
        should_stop: Polled between messages; True ends the replay.
        wait_for_subscribers: Seconds to wait, before the first message, for every topic to
            have a subscriber (0: wait one second for discovery and go on).
        mind: Refuse bags recorded by another mind (their ``custom_data``); empty: any.
        preset: Refuse bags recorded with another preset; empty: any.

    Raises:
        BagError: If a bag is unusable (before anything is published) or turns out damaged.
        ValueError: If ``rate`` is not positive.
    """
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    reader = BagReader(paths)
    reader.check_origin(mind, preset)
    plan = plan_topics(reader, topics, decode_images)
    context = Context()
    rclpy.init(context=context)
    result = ReplayResult()
    try:
        node = rclpy.create_node("pamiq_ros_replay", context=context)
        publishers: dict[str, Any] = {}
        for recorded, (published, msgtype) in plan.items():
            publishers[recorded] = node.create_publisher(message_class(msgtype), published, _QOS)
        say(
            f"replaying {', '.join(f'{r} -> {p}' for r, (p, _) in plan.items())} from "
            f"{len(reader.infos)} bag(s) at {rate:g}x"
        )
        deadline = time.monotonic() + max(1.0, wait_for_subscribers)
        while time.monotonic() < deadline and (
            not wait_for_subscribers
            or any(publisher.get_subscription_count() == 0 for publisher in publishers.values())
        ):
            time.sleep(0.05)  # discovery: let subscribers match before the first message
        started = time.monotonic()
        first_ns: int | None = None
        for message in reader.messages(plan):
            if should_stop():
                break
            first_ns = message.timestamp_ns if first_ns is None else first_ns
            due = started + (message.timestamp_ns - first_ns) / 1e9 / rate
            while (delay := due - time.monotonic()) > 0:
                time.sleep(min(delay, _LONGEST_SLEEP))
            data = message.data
            if plan[message.topic][1] != message.msgtype:
                data = decompress_image(data)
            publishers[message.topic].publish(data)
            name = plan[message.topic][0]
            result.published[name] = result.published.get(name, 0) + 1
        result.seconds = time.monotonic() - started
        time.sleep(0.5)  # reliable samples still in flight reach their subscribers
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return result
