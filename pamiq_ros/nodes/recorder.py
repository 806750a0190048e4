"""The recorder node: chosen topics into a ROS 2 bag (MCAP), off everyone's critical path.

It subscribes to each chosen topic once a publisher of it appears (the type comes from the
graph), takes the messages as raw CDR bytes (nothing is deserialized on arrival), and hands
them to a writer thread through a bounded queue; a full queue drops and counts rather than
slowing anything. The writer (:class:`pamiq_ros.io.bags.BagWriter`) splits files by size or
time and keeps the folder within a disk budget, removing the oldest files first. Images may
be stored as JPEG ``sensor_msgs/CompressedImage`` on ``<topic>/compressed``.

The recorder is its own process, so acting never waits for it; ``pamiq-ros record`` runs it
alone, ``pamiq-ros launch ... --record`` (``make run RECORD=1``) beside the stack.
"""

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from typing_extensions import override

from pamiq_ros.core.health import (
    ERROR,
    WARN,
    NewCount,
    Problems,
    check_budget,
    check_grown,
    diagnostics_period_setting,
)
from pamiq_ros.core.settings import require_in_range, require_positive, setting
from pamiq_ros.io.bag_messages import (
    COMPRESSED_SUFFIX,
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    UnknownMessageTypeError,
    compress_image,
    message_class,
)
from pamiq_ros.io.bags import (
    CUSTOM_COMPRESSED,
    CUSTOM_MIND,
    CUSTOM_PRESET,
    BagError,
    BagWriter,
    SplitPolicy,
    known_type,
)
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, prepare_run_dir, run_node

DEFAULT_TOPICS = (
    "camera/image_raw,cmd_vel,vrchat_input,world/pose,experience,weights/announce,/diagnostics"
)
_MIB = 1024 * 1024
_DISCOVERY_PERIOD = 1.0  # s between looks for publishers of topics not yet subscribed


@dataclass(frozen=True)
class RecorderSettings:
    """Parameters of the recorder node."""

    run_dir: str = setting(
        "", "This start's run folder (set by pamiq-ros launch); the bag goes to its bags/ "
        "unless output is set. Empty: runs/<time>-recorder."
    )  # fmt: skip
    output: str = setting("", "The bag folder to create (never overwritten); empty: see run_dir.")
    topics: str = setting(
        DEFAULT_TOPICS,
        "Comma-separated topics to record (relative names resolve in the node's namespace).",
    )
    compress_images: bool = setting(
        False, "Store sensor_msgs/Image as JPEG sensor_msgs/CompressedImage on <topic>/compressed."
    )
    jpeg_quality: int = setting(80, "JPEG quality (1-100) of compressed images.")
    max_file_mb: float = setting(512.0, "Start a new MCAP file before one passes this (MiB).")
    max_file_seconds: float = setting(
        0.0, "Start a new MCAP file when one spans this long (s); 0: no time split."
    )
    disk_budget_mb: float = setting(
        0.0, "The bag never takes more than this (MiB), oldest files removed first; 0: no "
        "budget. Needs max_file_mb at most half of it."
    )  # fmt: skip
    queue_size: int = setting(
        2000, "Messages waiting for the writer thread; beyond it new ones are dropped (counted)."
    )
    mind: str = setting("", "The mind recorded (custom_data; pretrain checks it); empty: unknown.")
    preset: str = setting("", "The model preset recorded (custom_data); empty: unknown.")
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()

    def __post_init__(self) -> None:
        require_positive(self, "max_file_mb", "queue_size", "report_period")
        require_in_range(self, 1, 100, "jpeg_quality")
        self.split_policy()

    def split_policy(self) -> SplitPolicy:
        """The writer's split policy from these settings.

        Raises:
            ValueError: If the sizes do not fit together.
        """
        return SplitPolicy(
            max_file_bytes=int(self.max_file_mb * _MIB),
            max_file_seconds=self.max_file_seconds,
            disk_budget_bytes=int(self.disk_budget_mb * _MIB),
        )

    def topic_list(self) -> list[str]:
        """The topics named, without blanks and repeats."""
        return list(dict.fromkeys(name.strip() for name in self.topics.split(",") if name.strip()))


class RecorderNode(Node, Controllable):
    """Records chosen topics into one bag folder through a writer thread."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("recorder", **node_options)
        self.settings = declare_settings(self, RecorderSettings, self._apply_settings)
        settings = self.settings
        self._wanted = {self.resolve_topic_name(name): name for name in settings.topic_list()}
        self._path = self._bag_path()
        custom = {CUSTOM_MIND: settings.mind, CUSTOM_PRESET: settings.preset}
        self._writer = BagWriter(self._path, settings.split_policy(), custom_data=custom)
        self._queue: queue.Queue[tuple[str, int, bytes] | None] = queue.Queue(settings.queue_size)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._bytes = 0
        self._dropped = 0
        self._write_errors = 0
        self._refused: dict[str, str] = {}
        self._subscribed: dict[str, str] = {}
        self._compressed: dict[str, str] = {}
        self._paused = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._write_loop, name="bag-writer", daemon=True)
        self._thread.start()
        self._diagnostics = DiagnosticsReporter(self)
        self.create_timer(_DISCOVERY_PERIOD, self._discover)
        self.create_timer(settings.report_period, self._report)
        self._new_write_errors = NewCount()
        self._new_dropped = NewCount()
        self._period_timers = SettingTimers(self)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)
        self.get_logger().info(
            f"recording {', '.join(self._wanted)} into {self._path}"
            + (" (images as JPEG)" if settings.compress_images else "")
        )
        self._discover()

    def _bag_path(self) -> Path:
        settings = self.settings
        if settings.output:
            return Path(settings.output)
        run_dir = prepare_run_dir(settings.run_dir, "recorder")
        return run_dir / "bags" / time.strftime("%Y%m%d-%H%M%S")

    # --- subscriptions ------------------------------------------------------------------------

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic not in self._wanted or topic in self._subscribed or topic in self._refused:
                continue
            self._subscribe(topic, types[0])

    def _subscribe(self, topic: str, msgtype: str) -> None:
        try:
            message_type = message_class(msgtype)
        except UnknownMessageTypeError as error:
            self._refuse(topic, str(error))
            return
        stored_topic, stored_type = topic, msgtype
        if msgtype == IMAGE_TYPE and self.settings.compress_images:
            stored_topic, stored_type = topic + COMPRESSED_SUFFIX, COMPRESSED_TYPE
            self._compressed[topic] = stored_topic
            self._writer.custom_data[CUSTOM_COMPRESSED] = ",".join(
                f"{raw}={packed}" for raw, packed in self._compressed.items()
            )
        if not known_type(stored_type):
            self._refuse(topic, f"type {stored_type!r} has no definition for the bag")
            return
        try:
            self._writer.add_topic(stored_topic, stored_type)
        except BagError as error:
            self._refuse(topic, str(error))
            return
        publishers = self.get_publishers_info_by_topic(topic)
        reliable = bool(publishers) and all(
            info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers
        )
        qos = QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        self.create_subscription(
            message_type,
            topic,
            lambda data, topic=topic: self._on_message(topic, data),
            qos,
            raw=True,
        )
        self._subscribed[topic] = msgtype
        self.get_logger().info(f"recording {topic} ({msgtype}) as {stored_topic}")

    def _refuse(self, topic: str, reason: str) -> None:
        self._refused[topic] = reason
        self.get_logger().error(f"not recording {topic}: {reason}")

    def _on_message(self, topic: str, data: bytes) -> None:
        if self._paused.is_set():
            return
        stamp = self.get_clock().now().nanoseconds
        try:
            self._queue.put_nowait((topic, stamp, data))
        except queue.Full:
            with self._lock:
                self._dropped += 1

    # --- writer thread ------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            topic, stamp, data = item
            try:
                stored_topic = self._compressed.get(topic)
                if stored_topic is not None:
                    data = compress_image(data, self.settings.jpeg_quality)
                    topic = stored_topic
                self._writer.write(topic, stamp, data)
            except Exception as error:  # one bad message never ends the recording
                with self._lock:
                    self._write_errors += 1
                self.get_logger().error(
                    f"message on {topic} not recorded: {error}", throttle_duration_sec=5.0
                )
                continue
            with self._lock:
                self._counts[topic] = self._counts.get(topic, 0) + 1
                self._bytes += len(data)

    # --- control and reports ------------------------------------------------------------------

    @override
    def pause(self) -> str:
        self._paused.set()
        return "recording paused"

    @override
    def resume(self) -> str:
        self._paused.clear()
        return "recording"

    @override
    def status(self) -> Mapping[str, object]:
        with self._lock:
            return {
                "paused": self._paused.is_set(),
                "bag": str(self._path),
                "messages": dict(self._counts),
                "bytes_recorded": self._bytes,
                "dropped": self._dropped,
                "write_errors": self._write_errors,
                "files": len(self._writer.files),
                "removed_files": len(self._writer.removed_files),
                "refused_topics": dict(self._refused),
                "queued": self._queue.qsize(),
            }

    def _report(self) -> None:
        status = dict(self.status())
        counts = status["messages"]
        recorded = status["bytes_recorded"]
        assert isinstance(counts, dict) and isinstance(recorded, int)
        self.get_logger().info(
            "recorded "
            + (" ".join(f"{topic}={count}" for topic, count in counts.items()) or "nothing yet")
            + f" | {recorded / _MIB:.1f} MiB, dropped={status['dropped']}, "
            f"files={status['files']} removed={status['removed_files']}"
        )

    def _apply_settings(self, new: RecorderSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        self.settings = new
        self._period_timers.apply(new, changed)

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: write errors since the last one, drops, the disk budget."""
        status = dict(self.status())
        with self._lock:
            write_errors, dropped = self._write_errors, self._dropped
        budget = self._writer.policy.disk_budget_bytes
        used = self._writer.budget_estimate() if budget else 0
        status["disk_budget_used_bytes"] = used
        problems = Problems()
        check_grown(
            problems, self._new_write_errors.since_last(write_errors), ERROR, "write error(s)"
        )
        check_grown(
            problems, self._new_dropped.since_last(dropped), WARN, "message(s) dropped (queue full)"
        )
        for topic, reason in self._refused.items():
            problems.add(WARN, f"not recording {topic}: {reason}")
        check_budget(problems, used, budget, "the bag (oldest files go first)")
        if status["paused"]:
            problems.add(WARN, "paused")
        self._diagnostics.publish(problems.level, problems.summary("recording"), status)

    def close(self) -> None:
        """Writes what is queued, closes the bag (its metadata.yaml) and stops the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30.0)
        self._writer.close()
        with self._lock:
            total = sum(self._counts.values())
        self.get_logger().info(
            f"bag {self._path} closed: {total} messages, {self._dropped} dropped"
        )


def main(args: Sequence[str] | None = None) -> None:
    """Runs the recorder node until Ctrl-C."""
    run_node(RecorderNode, args)


if __name__ == "__main__":
    main()
