"""ROS 2 bags in MCAP, written and read through ``rosbags`` (pure Python, no ROS needed).

A recording is one rosbag2 folder, as ``ros2 bag record -s mcap`` writes it: numbered MCAP
files ``<name>_<N>.mcap`` and a ``metadata.yaml`` that lists them, so ``ros2 bag info`` and
MCAP tools (Foxglove, ``mcap info``) read it. :class:`BagWriter` takes serialized (CDR)
messages, starts a new file when one reaches ``max_file_bytes`` or spans ``max_file_seconds``,
and keeps the folder under ``disk_budget_bytes`` by removing the oldest files first. Each file
is written by ``rosbags``' own writer (in a hidden folder while open, moved in when closed);
this module only merges the per-file metadata into the folder's ``metadata.yaml``.

:class:`BagReader` opens one or more folders, checks each file before anything is read
(present, MCAP magic at both ends, so a truncated or overwritten file is named), and yields
messages in time order. Every problem is a :class:`BagError` naming the file and the reason.

The project's own messages (``pamiq_ros_interfaces``) are added to the ``rosbags`` type store
from their ``.msg`` files (:func:`project_typestore`). No ROS import here.
"""

import math
import shutil
import sysconfig
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

METADATA_FILE = "metadata.yaml"
BAG_FORMAT_VERSION: Literal[9] = 9
"""rosbag2 metadata version written (Jazzy and Kilted read it)."""
MCAP_MAGIC = b"\x89MCAP0\r\n"
"""Starts and ends every complete MCAP file; a truncated file lacks the closing one."""
INTERFACES_PACKAGE = "pamiq_ros_interfaces"
_WRITING_DIR = ".writing"  # the open file's rosbags folder, inside the bag folder
# Bytes an open file may still grow by when closed, beyond its messages: MCAP header and
# footer, the per-file metadata, schemas repeated in the summary, chunk and message indexes.
_FILE_OVERHEAD = 64 * 1024
_MESSAGE_OVERHEAD = 64  # message record header plus its index entry, rounded up
_CHUNK_BYTES = 1 << 20  # rosbags closes an MCAP chunk past 1 MiB
_CHUNK_OVERHEAD = 1024

CUSTOM_MIND = "pamiq_ros.mind"
CUSTOM_PRESET = "pamiq_ros.preset"
CUSTOM_COMPRESSED = "pamiq_ros.compressed_images"
"""custom_data keys: the mind and preset recorded, and ``raw=compressed`` topic pairs."""


class BagError(ValueError):
    """A bag that cannot be written or read as asked; the message names the file and why."""


@cache
def project_typestore() -> Typestore:
    """ROS 2 Kilted's standard messages plus ``pamiq_ros_interfaces`` from its ``.msg`` files.

    Raises:
        BagError: If the project's ``.msg`` files are found nowhere.
    """
    store = get_typestore(Stores.ROS2_KILTED)
    folder = _interfaces_msg_folder()
    types: dict[str, Any] = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{INTERFACES_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def _interfaces_msg_folder() -> Path:
    candidates = [
        Path(__file__).resolve().parents[2] / "msg" / "msg",
        Path(sysconfig.get_path("data")) / "share" / INTERFACES_PACKAGE / "msg",
    ]
    for candidate in candidates:
        if any(candidate.glob("*.msg")):
            return candidate
    raise BagError(f"no {INTERFACES_PACKAGE} .msg files in {', '.join(map(str, candidates))}")


def known_type(msgtype: str) -> bool:
    """Whether :func:`project_typestore` can describe ``msgtype`` (``pkg/msg/Name``)."""
    return msgtype in project_typestore().fielddefs


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitPolicy:
    """When a recording starts a new file, and how much disk it may take.

    Attributes:
        max_file_bytes: Start a new file before one would pass this size; 0: no size limit.
        max_file_seconds: Start a new file when one would span more than this (message time);
            0: no time limit.
        disk_budget_bytes: The folder never holds more than this; the oldest closed files are
            removed to make room. 0: no budget. Needs ``max_file_bytes`` at most half of it.
    """

    max_file_bytes: int = 0
    max_file_seconds: float = 0.0
    disk_budget_bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_file_bytes < 0 or self.disk_budget_bytes < 0:
            raise ValueError("max_file_bytes and disk_budget_bytes must not be negative")
        if not (math.isfinite(self.max_file_seconds) and self.max_file_seconds >= 0):
            raise ValueError(f"max_file_seconds must be >= 0, got {self.max_file_seconds}")
        if self.disk_budget_bytes:
            if not self.max_file_bytes or 2 * self.max_file_bytes > self.disk_budget_bytes:
                raise ValueError(
                    f"a disk budget of {self.disk_budget_bytes} bytes needs max_file_bytes "
                    f"between 1 and half of it, got {self.max_file_bytes}"
                )
            if self.max_file_bytes < 4 * _FILE_OVERHEAD:
                raise ValueError(
                    f"max_file_bytes must be at least {4 * _FILE_OVERHEAD} with a disk budget "
                    f"(a file's own overhead is up to {_FILE_OVERHEAD}), got {self.max_file_bytes}"
                )


@dataclass
class _ClosedFile:
    path: Path
    size: int
    start_ns: int
    duration_ns: int
    message_count: int
    topic_counts: dict[str, int]


@dataclass
class _TopicInfo:
    msgtype: str
    qos: list[Any] = field(default_factory=list)


class BagWriter:
    """Writes one rosbag2 folder of MCAP files from serialized messages.

    Args:
        path: The bag folder to create; an existing path is refused (nothing is overwritten).
        policy: File splitting and the disk budget.
        custom_data: Strings stored in ``metadata.yaml``'s ``custom_data`` (and each file's).
        typestore: Message definitions; :func:`project_typestore` by default.

    Raises:
        BagError: If ``path`` exists or cannot be created.
    """

    def __init__(
        self,
        path: Path | str,
        policy: SplitPolicy | None = None,
        custom_data: Mapping[str, str] | None = None,
        typestore: Typestore | None = None,
    ) -> None:
        self.path = Path(path)
        self.policy = policy or SplitPolicy()
        self.custom_data = dict(custom_data or {})
        self._typestore = typestore or project_typestore()
        if self.path.exists():
            raise BagError(f"{self.path}: exists already; a recording never overwrites one")
        try:
            self.path.mkdir(parents=True)
        except OSError as error:
            raise BagError(f"{self.path}: cannot create the bag folder: {error}") from error
        self._topics: dict[str, _TopicInfo] = {}
        self._closed: list[_ClosedFile] = []
        self._removed: list[Path] = []
        self._index = 0
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}
        self._file_start_ns = 0
        self._file_estimate = 0
        self._chunk_fill = 0
        self._topic_metadata: dict[str, dict[str, Any]] = {}
        self.messages_written = 0
        """Messages written so far (removed files included)."""
        self._closed_for_good = False

    @property
    def files(self) -> list[Path]:
        """The closed files still in the folder, oldest first."""
        return [closed.path for closed in self._closed]

    @property
    def removed_files(self) -> list[Path]:
        """Files removed to keep within the disk budget, oldest first."""
        return list(self._removed)

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Any] = ()) -> None:
        """Declares a topic and its type before its first message.

        Raises:
            BagError: If the type is unknown to the type store or the topic has another type.
        """
        if msgtype not in self._typestore.fielddefs:
            raise BagError(f"{self.path}: topic {topic!r} has type {msgtype!r}, which is unknown")
        known = self._topics.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise BagError(
                    f"{self.path}: topic {topic!r} is {known.msgtype}, cannot add it as {msgtype}"
                )
            return
        self._topics[topic] = _TopicInfo(msgtype, list(qos))

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Appends one serialized message, splitting and freeing space as the policy says.

        Raises:
            BagError: If the topic was not added, the writer is closed, or one message is
                larger than a file may be.
        """
        if self._closed_for_good:
            raise BagError(f"{self.path}: the bag is closed")
        if topic not in self._topics:
            raise BagError(f"{self.path}: topic {topic!r} was not added before writing")
        size = len(data)
        policy = self.policy
        if policy.max_file_bytes and size + _MESSAGE_OVERHEAD + _FILE_OVERHEAD > (
            policy.max_file_bytes
        ):
            raise BagError(
                f"{self.path}: a {size}-byte message on {topic!r} exceeds max_file_bytes "
                f"{policy.max_file_bytes}"
            )
        if self._writer is not None and self._should_split(timestamp_ns, size):
            self._close_file()
        if self._writer is None:
            self._open_file(timestamp_ns)
        self._make_room(size)
        writer = self._writer
        assert writer is not None
        connection = self._connection(writer, topic)
        writer.write(connection, timestamp_ns, data)
        self._grow(size)
        self.messages_written += 1

    def close(self) -> None:
        """Closes the open file and writes the final ``metadata.yaml``; safe to call twice."""
        if self._closed_for_good:
            return
        self._closed_for_good = True
        if self._writer is not None:
            self._close_file()
        else:
            self._write_metadata()
        shutil.rmtree(self.path / _WRITING_DIR, ignore_errors=True)

    def disk_usage(self) -> int:
        """Bytes the folder takes now (every file in it, the open one included)."""
        return sum(path.stat().st_size for path in self.path.rglob("*") if path.is_file())

    def budget_estimate(self) -> int:
        """What the folder may take once the open file is closed: the budget is kept on this."""
        closed = sum(closed.size for closed in self._closed)
        metadata_path = self.path / METADATA_FILE
        metadata = metadata_path.stat().st_size if metadata_path.exists() else 0
        return closed + metadata + self._file_estimate

    # --- files --------------------------------------------------------------------------------

    def _should_split(self, timestamp_ns: int, size: int) -> bool:
        policy = self.policy
        if policy.max_file_seconds and (
            timestamp_ns - self._file_start_ns > policy.max_file_seconds * 1e9
        ):
            return True
        return bool(policy.max_file_bytes) and (self._estimate_after(size) > policy.max_file_bytes)

    def _estimate_after(self, size: int) -> int:
        return self._file_estimate + size + _MESSAGE_OVERHEAD + _CHUNK_OVERHEAD

    def _grow(self, size: int) -> None:
        self._file_estimate += size + _MESSAGE_OVERHEAD
        self._chunk_fill += size + _MESSAGE_OVERHEAD
        if self._chunk_fill > _CHUNK_BYTES:
            self._chunk_fill = 0
            self._file_estimate += _CHUNK_OVERHEAD

    def _make_room(self, size: int) -> None:
        budget = self.policy.disk_budget_bytes
        if not budget:
            return
        while self._closed and self.budget_estimate() + size + _MESSAGE_OVERHEAD > budget:
            oldest = self._closed.pop(0)
            oldest.path.unlink(missing_ok=True)
            self._removed.append(oldest.path)
            self._write_metadata()

    def _open_file(self, timestamp_ns: int) -> None:
        name = f"{self.path.name}_{self._index}"
        folder = self.path / _WRITING_DIR / name
        folder.parent.mkdir(exist_ok=True)
        writer = Writer(folder, version=BAG_FORMAT_VERSION, storage_plugin=StoragePlugin.MCAP)
        for key, value in self.custom_data.items():
            writer.set_custom_data(key, value)
        writer.open()
        self._writer = writer
        self._connections = {}
        self._file_start_ns = timestamp_ns
        self._chunk_fill = 0
        self._file_estimate = _FILE_OVERHEAD

    def _connection(self, writer: Writer, topic: str) -> Connection:
        connection = self._connections.get(topic)
        if connection is None:
            info = self._topics[topic]
            connection = writer.add_connection(
                topic, info.msgtype, typestore=self._typestore, offered_qos_profiles=info.qos
            )
            self._connections[topic] = connection
            # The definition is stored in the chunk and again in the summary.
            self._file_estimate += 2 * len(connection.msgdef.data) + 512
        return connection

    def _close_file(self) -> None:
        writer = self._writer
        assert writer is not None
        self._writer = None
        writer.close()
        folder = Path(writer.path)
        written = next(folder.glob("*.mcap"))
        target = self.path / written.name
        file_metadata = _load_metadata(folder / METADATA_FILE)
        written.replace(target)
        shutil.rmtree(folder, ignore_errors=True)
        self._closed.append(
            _ClosedFile(
                path=target,
                size=target.stat().st_size,
                start_ns=int(file_metadata["starting_time"]["nanoseconds_since_epoch"]),
                duration_ns=int(file_metadata["duration"]["nanoseconds"]),
                message_count=int(file_metadata["message_count"]),
                topic_counts={
                    entry["topic_metadata"]["name"]: int(entry["message_count"])
                    for entry in file_metadata["topics_with_message_count"]
                },
            )
        )
        for entry in file_metadata["topics_with_message_count"]:
            topic_metadata = entry["topic_metadata"]
            self._topic_metadata.setdefault(topic_metadata["name"], topic_metadata)
        self._index += 1
        self._file_estimate = 0
        self._write_metadata()
        # Closing may have grown the file past the estimate: free room at once.
        self._make_room(0)

    def _write_metadata(self) -> None:
        files = self._closed
        start = min((closed.start_ns for closed in files), default=0)
        end = max((closed.start_ns + closed.duration_ns for closed in files), default=0)
        counts: dict[str, int] = {}
        for closed in files:
            for topic, count in closed.topic_counts.items():
                counts[topic] = counts.get(topic, 0) + count
        information = {
            "version": BAG_FORMAT_VERSION,
            "storage_identifier": "mcap",
            "relative_file_paths": [closed.path.name for closed in files],
            "duration": {"nanoseconds": max(0, end - start)},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": sum(counts.values()),
            "topics_with_message_count": [
                {"topic_metadata": self._topic_metadata[topic], "message_count": count}
                for topic, count in counts.items()
                if topic in self._topic_metadata
            ],
            "compression_format": "",
            "compression_mode": "",
            "files": [
                {
                    "path": closed.path.name,
                    "starting_time": {"nanoseconds_since_epoch": closed.start_ns},
                    "duration": {"nanoseconds": closed.duration_ns},
                    "message_count": closed.message_count,
                }
                for closed in files
            ],
            "custom_data": dict(self.custom_data) or None,
            "ros_distro": "kilted",
        }
        text = yaml.safe_dump({"rosbag2_bagfile_information": information}, sort_keys=False)
        temporary = self.path / f".{METADATA_FILE}.tmp"
        temporary.write_text(text)
        temporary.replace(self.path / METADATA_FILE)


def _load_metadata(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    return dict(document["rosbag2_bagfile_information"])


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: its topic, type, log time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes


@dataclass(frozen=True)
class BagInfo:
    """What a bag folder holds, from its ``metadata.yaml`` (checked against its files).

    Attributes:
        path: The folder.
        topics: Topic -> message type.
        counts: Topic -> messages.
        start_ns: First message's log time.
        duration_ns: Last minus first log time.
        files: Its MCAP files.
        custom_data: Its ``custom_data`` strings.
    """

    path: Path
    topics: dict[str, str]
    counts: dict[str, int]
    start_ns: int
    duration_ns: int
    files: tuple[Path, ...]
    custom_data: dict[str, str]

    @property
    def message_count(self) -> int:
        """Messages in the bag."""
        return sum(self.counts.values())


def inspect_bag(path: Path | str) -> BagInfo:
    """Checks a bag folder and describes it, without reading its messages.

    Raises:
        BagError: If the folder, its ``metadata.yaml`` or one of its files is missing, not
            rosbag2/MCAP, or truncated; the message names the file and the reason.
    """
    folder = Path(path)
    if folder.is_file() and folder.suffix == ".mcap":
        raise BagError(
            f"{folder}: a bare MCAP file; give its bag folder (with {METADATA_FILE}) instead"
        )
    metadata_path = folder / METADATA_FILE
    if not folder.is_dir():
        raise BagError(f"{folder}: no such bag folder")
    if not metadata_path.is_file():
        raise BagError(f"{metadata_path}: missing; not a rosbag2 folder, or a recording not closed")
    try:
        information = _load_metadata(metadata_path)
        storage = information["storage_identifier"]
        relative = [str(name) for name in information["relative_file_paths"]]
        topic_entries = information["topics_with_message_count"]
        topics = {
            str(entry["topic_metadata"]["name"]): str(entry["topic_metadata"]["type"])
            for entry in topic_entries
        }
        counts = {
            str(entry["topic_metadata"]["name"]): int(entry["message_count"])
            for entry in topic_entries
        }
        start = int(information["starting_time"]["nanoseconds_since_epoch"])
        duration = int(information["duration"]["nanoseconds"])
        custom = {str(k): str(v) for k, v in (information.get("custom_data") or {}).items()}
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise BagError(f"{metadata_path}: not rosbag2 metadata ({error!r})") from error
    if storage != "mcap":
        raise BagError(f"{metadata_path}: storage {storage!r}; only mcap bags are read")
    files = tuple(folder / name for name in relative)
    for file in files:
        check_mcap_file(file)
    return BagInfo(folder, topics, counts, start, duration, files, custom)


def check_mcap_file(path: Path) -> None:
    """Checks that ``path`` is a complete MCAP file (magic at both ends).

    Raises:
        BagError: If it is missing, empty, not MCAP, or truncated.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(len(MCAP_MAGIC))
            if size >= 2 * len(MCAP_MAGIC):
                file.seek(size - len(MCAP_MAGIC))
            tail = file.read(len(MCAP_MAGIC))
    except OSError as error:
        raise BagError(f"{path}: cannot be read ({error.strerror or error})") from error
    if head != MCAP_MAGIC:
        raise BagError(f"{path}: not an MCAP file (it does not start with the MCAP magic)")
    if tail != MCAP_MAGIC or size < 2 * len(MCAP_MAGIC):
        raise BagError(f"{path}: truncated ({size} bytes, no closing MCAP magic)")


class BagReader:
    """Reads one or more bag folders, checked first, in the order of their start times.

    Args:
        paths: Bag folders.
        typestore: Message definitions; :func:`project_typestore` by default.

    Raises:
        BagError: If a folder or a file in it is unusable (see :func:`inspect_bag`).
    """

    def __init__(self, paths: Iterable[Path | str], typestore: Typestore | None = None) -> None:
        infos = [inspect_bag(path) for path in paths]
        if not infos:
            raise BagError("no bag given")
        self.infos = sorted(infos, key=lambda info: info.start_ns)
        self._typestore = typestore or project_typestore()

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> type over all bags.

        Raises:
            BagError: If two bags record one topic with different types.
        """
        topics: dict[str, str] = {}
        for info in self.infos:
            for topic, msgtype in info.topics.items():
                if topics.setdefault(topic, msgtype) != msgtype:
                    raise BagError(
                        f"{info.path}: topic {topic!r} is {msgtype}, another bag has "
                        f"{topics[topic]}"
                    )
        return topics

    def require_known_types(self, topics: Iterable[str]) -> None:
        """Refuses a topic whose type this installation cannot describe.

        Raises:
            BagError: Naming the bag, topic and type.
        """
        for topic in topics:
            for info in self.infos:
                msgtype = info.topics.get(topic)
                if msgtype is not None and msgtype not in self._typestore.fielddefs:
                    raise BagError(
                        f"{info.path}: topic {topic!r} has type {msgtype!r}, unknown here"
                    )

    def check_origin(self, mind: str = "", preset: str = "") -> None:
        """Refuses bags whose ``custom_data`` names another mind or preset than given.

        An empty ``mind`` or ``preset`` (here or in a bag) is not checked.

        Raises:
            BagError: Naming the bag and what differs.
        """
        for info in self.infos:
            recorded = {
                "mind": (info.custom_data.get(CUSTOM_MIND, ""), mind),
                "preset": (info.custom_data.get(CUSTOM_PRESET, ""), preset),
            }
            for what, (theirs, ours) in recorded.items():
                if theirs and ours and theirs != ours:
                    raise BagError(f"{info.path}: recorded by {what} {theirs!r}, not {ours!r}")

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of ``topics`` (default all), bag by bag, each bag in log-time order.

        Raises:
            BagError: If a file turns out damaged while reading (named with the reason).
        """
        wanted = set(topics) if topics is not None else None
        for info in self.infos:
            yield from self._bag_messages(info, wanted)

    def _bag_messages(self, info: BagInfo, wanted: set[str] | None) -> Iterator[BagMessage]:
        try:
            with Reader(info.path) as reader:
                connections = [
                    connection
                    for connection in reader.connections
                    if wanted is None or connection.topic in wanted
                ]
                if not connections:
                    return
                for connection, timestamp, data in reader.messages(connections=connections):
                    yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))
        except BagError:
            raise
        except Exception as error:  # rosbags raises several types for damaged files
            raise BagError(f"{info.path}: cannot be read: {error}") from error

    def deserialize(self, message: BagMessage) -> Any:
        """The message as a ``rosbags`` dataclass (no ROS needed).

        Raises:
            BagError: If the bytes do not decode as the message's type.
        """
        try:
            return self._typestore.deserialize_cdr(message.data, message.msgtype)
        except Exception as error:
            raise BagError(
                f"a {message.msgtype} message on {message.topic!r} at {message.timestamp_ns} "
                f"does not decode: {error}"
            ) from error
