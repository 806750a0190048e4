"""One description of a deployment's nodes, read from a ``config/*.yaml`` parameter file.

The file is a plain ROS 2 parameter file: each top-level key is a node name whose
``ros__parameters`` that node reads, and which nodes run is exactly which keys are there.
One extra section, ``pamiq_launcher``, holds bring-up settings (which DDS peers to reach, how
dead nodes are restarted); no node reads it. ``pamiq-ros launch`` and the ``launch/*.launch.py``
files both build their node lists here, so the two bring-ups cannot drift apart.
"""

import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.bringup.network_profiles import NETWORK_PROFILES, network_environment
from pamiq_ros.core.checkpoint import PRIVATE_FILE_MODE, PRIVATE_FOLDER_MODE
from pamiq_ros.core.settings import (
    SettingsError,
    build_settings,
    require_one_of,
    require_positive,
    setting,
)

LAUNCHER_SECTION = "pamiq_launcher"
PARAMETERS_KEY = "ros__parameters"
REMAPPINGS_KEY = "remappings"
ROS_NAME = re.compile(r"~?/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
"""A topic or service name as remappings take it: relative, absolute or private (``~/``)."""
NODE_PARAMETERS_FILE = "node_parameters.yaml"
"""In the run folder: every node's parameters under its fully qualified name, as the nodes
read them (written at each start; ``ros2 run ... --params-file`` takes it as it is)."""
TF_TOPICS = ("/tf", "/tf_static")
DISCOVERY_RANGES = ("LOCALHOST", "SUBNET", "SYSTEM_DEFAULT", "OFF")
FASTDDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
LOOPBACK_PROFILE = Path(__file__).with_name("fastdds_loopback.xml")
"""Fast DDS profile binding every DDS socket to 127.0.0.1 (why: see the file's comment)."""


class BringupError(ValueError):
    """A configuration file that cannot be brought up; the message names the file and key."""


@dataclass(frozen=True)
class LauncherSettings:
    """Bring-up settings from a config's ``pamiq_launcher`` section."""

    discovery_range: str = setting(
        "LOCALHOST",
        "ROS_AUTOMATIC_DISCOVERY_RANGE for every node: LOCALHOST keeps DDS on this machine "
        "(on Fast DDS through a profile binding every socket to 127.0.0.1); SUBNET or "
        "SYSTEM_DEFAULT (your own FASTDDS_DEFAULT_PROFILES_FILE) reach other hosts.",
    )
    network_profile: str = setting(
        "loopback", "DDS set-up: loopback (this machine; see discovery_range), lan (wired hosts) "
        "or wifi (lossy links: UDP messages fit one frame); see the README's network profiles."
    )  # fmt: skip
    static_peers: str = setting(
        "", "ROS_STATIC_PEERS: semicolon-separated hosts to reach even with LOCALHOST discovery."
    )
    shutdown_timeout: float = setting(
        10.0, "Seconds a node gets to exit after Ctrl-C before it is killed."
    )
    restart: bool = setting(
        True,
        "Restart a node that dies on its own (non-zero exit or a signal); false: a death "
        "stops the whole launch.",
    )
    restart_delay: float = setting(
        1.0, "Seconds before a dead node's first restart; doubled after each restart."
    )
    restart_delay_max: float = setting(30.0, "Seconds the doubled restart delay is capped at.")
    restart_stable_time: float = setting(
        30.0, "Seconds a node must stay up for its restart delay to go back to restart_delay."
    )
    max_restarts: int = setting(
        5, "Restarts of one node within restart_window after which the launch gives up (exit 1)."
    )
    restart_window: float = setting(300.0, "Seconds over which max_restarts is counted.")
    stack_shutdown_window: float = setting(
        5.0, "A node that exits 0 is part of a stack-wide shutdown (pamiq-ros shutdown) only if "
        "every node exits within these seconds; otherwise it counts as a death (restarted)."
    )  # fmt: skip
    log_budget_mb: float = setting(
        50.0, "MiB the ROS log files (ROS_LOG_DIR, inside the run folder) may take; beyond "
        "it the oldest are deleted and a live one over half of it is truncated."
    )  # fmt: skip
    checkpoint_budget_mb: float = setting(
        4096.0, "MiB each node's checkpoints may take; beyond it the oldest unpinned go (the "
        "newest always stays)."
    )  # fmt: skip
    tensorboard_budget_mb: float = setting(
        512.0, "MiB the TensorBoard event files may take; beyond it the oldest files go (the "
        "one being written stays)."
    )  # fmt: skip
    security: bool = setting(
        False, "SROS2: run every node in its enclave /pamiq_ros/<node> with the keystore's "
        "permissions (needs a ROS distribution's Fast DDS; see pamiq_ros/bringup/security.py)."
    )  # fmt: skip
    security_keystore: str = setting("", "SROS2 keystore folder (ROS_SECURITY_KEYSTORE).")
    security_strategy: str = setting(
        "Enforce", "ROS_SECURITY_STRATEGY: Enforce (refuse unauthenticated) or Permissive."
    )

    def __post_init__(self) -> None:
        require_one_of(
            self, discovery_range=DISCOVERY_RANGES, security_strategy=("Enforce", "Permissive"),
            network_profile=NETWORK_PROFILES,
        )  # fmt: skip
        if self.network_profile != "loopback" and self.discovery_range != "LOCALHOST":
            raise ValueError(
                f"discovery_range applies to network_profile loopback only; {self.network_profile}"
                " discovers by multicast plus static_peers (leave discovery_range out)"
            )
        require_positive(
            self, "shutdown_timeout", "restart_delay", "restart_delay_max",
            "restart_stable_time", "max_restarts", "restart_window", "stack_shutdown_window",
            "log_budget_mb", "checkpoint_budget_mb", "tensorboard_budget_mb",
        )  # fmt: skip
        if self.security and not self.security_keystore:
            raise ValueError("security needs security_keystore (ros2 security create_keystore)")
        if self.restart_delay_max < self.restart_delay:
            raise ValueError(
                f"restart_delay_max ({self.restart_delay_max}) must be at least "
                f"restart_delay ({self.restart_delay})"
            )


@dataclass(frozen=True)
class NodeDescription:
    """One node of a deployment.

    Attributes:
        name: The node's name, also its key in the parameter file.
        executable: The ``ros2 run pamiq_ros <executable>`` name.
        module: The Python module whose ``main`` runs it.
        parameters: Its parameters as written in the file.
        remappings: ``(from, to)`` topic and service names, from the node's ``remappings``
            section (e.g. ``camera/image_raw: /camera/color/image_raw``).
    """

    name: str
    executable: str
    module: str
    parameters: Mapping[str, Any]
    remappings: tuple[tuple[str, str], ...] = ()


def loopback_dds_environment() -> dict[str, str]:
    """Variables that make Fast DDS open sockets on 127.0.0.1 only (:data:`LOOPBACK_PROFILE`).

    For any process on this machine that must talk DDS with the stack (tests, benchmarks,
    tools); ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` alone still listens on 0.0.0.0.
    """
    return {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
        FASTDDS_PROFILE_VARIABLE: str(LOOPBACK_PROFILE),
    }


@dataclass(frozen=True)
class Bringup:
    """A deployment: its parameter file, its nodes in start order, and launcher settings."""

    config_path: Path
    nodes: tuple[NodeDescription, ...]
    launcher: LauncherSettings

    def discovery_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The DDS discovery variables every node of this deployment runs with.

        ``LOCALHOST`` without static peers on Fast DDS (the RMW unless ``RMW_IMPLEMENTATION``
        in ``base``, default this process's environment, names another) becomes
        :data:`LOOPBACK_PROFILE` with ``SYSTEM_DEFAULT``: rmw_fastrtps's own ``LOCALHOST``
        binds its UDP receivers to 0.0.0.0, the profile binds every socket to 127.0.0.1.
        Other RMWs get ``LOCALHOST`` as written. The lan and wifi network profiles get their
        own Fast DDS XML (``pamiq_ros.bringup.network_profiles``).
        """
        if self.launcher.network_profile != "loopback":
            return network_environment(self.launcher.network_profile, self.launcher.static_peers)
        if self.uses_loopback_profile(base):
            return loopback_dds_environment()
        environment = {"ROS_AUTOMATIC_DISCOVERY_RANGE": self.launcher.discovery_range}
        if self.launcher.static_peers:
            environment["ROS_STATIC_PEERS"] = self.launcher.static_peers
        return environment

    def uses_loopback_profile(self, base: Mapping[str, str] | None = None) -> bool:
        """Whether nodes run with :data:`LOOPBACK_PROFILE` (see :meth:`discovery_environment`)."""
        rmw = (os.environ if base is None else base).get("RMW_IMPLEMENTATION") or ""
        return (
            self.launcher.network_profile == "loopback"
            and self.launcher.discovery_range == "LOCALHOST"
            and not self.launcher.static_peers
            and (not rmw or rmw.startswith("rmw_fastrtps"))
        )

    def node_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the discovery variables set."""
        environment = dict(os.environ if base is None else base)
        if not self.launcher.static_peers:
            environment.pop("ROS_STATIC_PEERS", None)
        environment.update(self.discovery_environment(environment))
        return environment


RUN_PARAMETER = "run_dir"
RESUME_PARAMETER = "resume_from"


def create_run_dir(runs_root: Path, config_path: Path) -> Path:
    """Creates this start's run folder, ``<runs_root>/<YYYYmmdd-HHMMSS>-<config>``, with the config.

    Nodes with state (agent, trainer) write checkpoints and metrics below it; a copy of the
    config records what ran.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        run_dir = runs_root / f"{stamp}-{config_path.stem}{suffix}"
        try:
            run_dir.mkdir(parents=True, mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:
            continue
        run_dir.chmod(PRIVATE_FOLDER_MODE)  # whatever the umask
        shutil.copyfile(config_path, run_dir / "config.yaml")
        (run_dir / "config.yaml").chmod(PRIVATE_FILE_MODE)
        return run_dir.resolve()
    raise BringupError(f"cannot create a new run folder under {runs_root}")


def run_parameters(run_dir: Path, resume_from: str = "") -> dict[str, str]:
    """The parameters every node of a start gets: its run folder and what to resume from."""
    parameters = {RUN_PARAMETER: str(run_dir)}
    if resume_from:
        parameters[RESUME_PARAMETER] = resume_from
    return parameters


def normalize_namespace(namespace: str) -> str:
    """``robot1``, ``/robot1`` or ``/robot1/`` as ``/robot1``; empty or ``/`` as ``/``.

    Raises:
        BringupError: If it is not a ROS namespace (letters, digits and ``_``, in ``/`` parts).
    """
    text = namespace.strip().strip("/")
    if not text:
        return "/"
    if not ROS_NAME.fullmatch(text):
        raise BringupError(
            f"namespace {namespace!r}: use letters, digits and _ in /-separated parts, "
            "each starting with a letter or _ (e.g. /robot1)"
        )
    return f"/{text}"


def fully_qualified(namespace: str, name: str) -> str:
    """``/robot1/agent`` from ``/robot1`` and ``agent``; ``/agent`` in the root namespace.

    A name that starts with ``/`` is fully qualified already and comes back unchanged.
    """
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"


@dataclass(frozen=True)
class NodeLaunch:
    """One node as both launchers start it: name, namespace, parameter file and remappings.

    Attributes:
        node: The node's description.
        namespace: Its namespace (``/`` or ``/robot1``).
        parameters_file: The start's :data:`NODE_PARAMETERS_FILE`, keyed by fully qualified
            names, so that a namespace does not make the config's node keys miss.
        remappings: The config's ``remappings`` of this node; under a namespace also ``/tf`` and
            ``/tf_static`` into it (as Nav2 does), so that two robots' trees stay apart.
    """

    node: NodeDescription
    namespace: str
    parameters_file: Path
    remappings: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """The node's name (its key in the config)."""
        return self.node.name

    @property
    def fully_qualified_name(self) -> str:
        """``/robot1/agent``: the node's name in the graph, and its key in the file."""
        return fully_qualified(self.namespace, self.node.name)

    def ros_arguments(self, parameters: Mapping[str, str] | None = None) -> list[str]:
        """``--ros-args`` for the node's command line: name, namespace, then configuration."""
        arguments = ["--ros-args", "-r", f"__node:={self.node.name}"]
        if self.namespace != "/":
            arguments += ["-r", f"__ns:={self.namespace}"]
        return arguments + self.configuration_arguments(parameters)

    def configuration_arguments(self, parameters: Mapping[str, str] | None = None) -> list[str]:
        """The parameter file, the remappings, then ``parameters`` as ``-p``.

        ``parameters`` (run folder, resume) override the file. ``launch_ros`` gives the name
        and namespace itself.
        """
        arguments = ["--params-file", str(self.parameters_file)]
        for source, target in self.remappings:
            arguments += ["-r", f"{source}:={target}"]
        for name, value in (parameters or {}).items():
            arguments += ["-p", f"{name}:={value}"]
        return arguments


@dataclass(frozen=True)
class LaunchPlan:
    """One start of a deployment, the same for ``pamiq-ros launch`` and ``ros2 launch``.

    Attributes:
        bringup: The deployment.
        namespace: Where every node runs (``/`` or ``/robot1``).
        run_dir: This start's run folder (with a copy of the config).
        parameters_file: Every node's parameters, keyed by fully qualified name.
        resume_from: What the first start of each node restores from ('' for nothing).
    """

    bringup: Bringup
    namespace: str
    run_dir: Path
    parameters_file: Path
    resume_from: str = ""

    @property
    def nodes(self) -> tuple[NodeLaunch, ...]:
        """Every node, in start order."""
        return tuple(
            NodeLaunch(node, self.namespace, self.parameters_file, self._remappings_of(node))
            for node in self.bringup.nodes
        )

    def parameters(self) -> dict[str, str]:
        """What every node's first start gets on its command line: run folder, resume."""
        return run_parameters(self.run_dir, self.resume_from)

    def restart_parameters(self) -> dict[str, str]:
        """What a restarted node gets: it resumes from its own newest checkpoint of this run."""
        return run_parameters(self.run_dir, str(self.run_dir))

    def _remappings_of(self, node: NodeDescription) -> tuple[tuple[str, str], ...]:
        remapped = {source for source, _ in node.remappings}
        tf = () if self.namespace == "/" else tuple(
            (topic, topic.lstrip("/")) for topic in TF_TOPICS if topic not in remapped
        )  # fmt: skip
        return (*node.remappings, *tf)


def prepare_launch(
    bringup: Bringup, runs_root: Path, namespace: str = "/", resume_from: str = ""
) -> LaunchPlan:
    """Creates the run folder (a copy of the config in it) and the nodes' parameter file.

    Raises:
        BringupError: If the namespace is not one, or no run folder can be made.
    """
    namespace = normalize_namespace(namespace)
    run_dir = create_run_dir(runs_root, bringup.config_path)
    parameters_file = run_dir / NODE_PARAMETERS_FILE
    document = {
        fully_qualified(namespace, node.name): {PARAMETERS_KEY: dict(node.parameters)}
        for node in bringup.nodes
    }
    parameters_file.write_text(yaml.safe_dump(document, sort_keys=False))
    parameters_file.chmod(PRIVATE_FILE_MODE)
    return LaunchPlan(bringup, namespace, run_dir, parameters_file, resume_from)


def load_bringup(config_path: str | os.PathLike[str]) -> Bringup:
    """Reads a deployment from its parameter file.

    Raises:
        BringupError: If the file is missing, is not YAML, or names an unknown node or an
            invalid launcher setting.
    """
    path = Path(config_path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BringupError(f"cannot read config {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise BringupError(f"config {path} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not document:
        raise BringupError(f"config {path} must map node names to {PARAMETERS_KEY}")

    launcher = LauncherSettings()
    nodes: list[NodeDescription] = []
    for key, section in document.items():
        parameters = _parameters_of(path, key, section)
        if key == LAUNCHER_SECTION:
            try:
                launcher = build_settings(LauncherSettings, dict(parameters))
            except SettingsError as error:
                raise BringupError(f"{path}: {LAUNCHER_SECTION}: {error}") from error
            continue
        if key not in NODE_EXECUTABLES:
            known = ", ".join(sorted(NODE_EXECUTABLES))
            raise BringupError(f"{path}: unknown node {key!r} (known nodes: {known})")
        remappings = _remappings_of(path, key, section)
        nodes.append(NodeDescription(key, key, NODE_EXECUTABLES[key], parameters, remappings))
    if not nodes:
        raise BringupError(f"config {path} names no node")
    return Bringup(config_path=path.resolve(), nodes=tuple(nodes), launcher=launcher)


def _parameters_of(path: Path, key: object, section: object) -> Mapping[str, Any]:
    if not isinstance(key, str):
        raise BringupError(f"{path}: node names must be strings, got {key!r}")
    if not isinstance(section, dict) or PARAMETERS_KEY not in section:
        raise BringupError(f"{path}: {key!r} must hold a {PARAMETERS_KEY} mapping")
    unknown = sorted(str(name) for name in section if name not in (PARAMETERS_KEY, REMAPPINGS_KEY))
    if unknown:
        raise BringupError(
            f"{path}: {key}: unknown section(s) {', '.join(unknown)} (a node holds "
            f"{PARAMETERS_KEY} and, optionally, {REMAPPINGS_KEY})"
        )
    parameters = section[PARAMETERS_KEY] or {}
    if not isinstance(parameters, dict):
        raise BringupError(f"{path}: {key}.{PARAMETERS_KEY} must be a mapping")
    return parameters


def _remappings_of(path: Path, key: str, section: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    remappings = section.get(REMAPPINGS_KEY) or {}
    if not isinstance(remappings, dict):
        raise BringupError(f"{path}: {key}.{REMAPPINGS_KEY} must map names to new names")
    pairs = []
    for source, target in remappings.items():
        if not all(isinstance(name, str) and ROS_NAME.fullmatch(name) for name in (source, target)):
            raise BringupError(
                f"{path}: {key}.{REMAPPINGS_KEY}: {source!r}: {target!r} is not a remapping of "
                "one topic or service name to another (letters, digits, _ and / only)"
            )
        pairs.append((source, target))
    return tuple(pairs)


def on_ports(document: Mapping[str, Any], udp_port: int, tcp_port: int) -> dict[str, Any]:
    """A deep copy of a config document whose nodes talk to each other on other ports.

    Every OSC port (``osc_port``, ``port``) becomes ``udp_port``, the video server's port
    ``tcp_port``, and a camera ``source`` the stream URL on it; so several copies of a stack
    (tests, benchmark arms) run side by side on loopback.
    """
    copied: dict[str, Any] = json.loads(json.dumps(document))  # plain YAML data
    video_path = copied.get("sim_world", {}).get("ros__parameters", {}).get("video_path")
    for section in copied.values():
        parameters = section.get("ros__parameters", {}) if isinstance(section, dict) else {}
        for key in ("osc_port", "port"):
            if key in parameters:
                parameters[key] = udp_port
        if "video_port" in parameters:
            parameters["video_port"] = tcp_port
        if "source" in parameters:
            parameters["source"] = f"http://127.0.0.1:{tcp_port}{video_path or '/stream.mjpg'}"
    return copied
