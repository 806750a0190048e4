"""SROS2 (DDS-Security) for the stack: each node's enclave, and a permissions policy.

The trust model (README, "Trust model"): without security, the DDS domain is the boundary:
every participant that joins it may publish, subscribe and call any service, so the stack
keeps DDS on loopback by default. On a machine with a ROS 2 distribution, SROS2 authenticates
each process (one enclave per node, ``/pamiq_ros/<node>``) and enforces a permissions policy:
only the agent may publish ``cmd_vel`` and ``experience``, only the safety relay
``cmd_vel_safe``, only the trainer may announce and serve weights, only the
``pamiq_ros_control`` tool may call the control services. (An e-stop publisher of your own
needs an enclave and a ``publish`` grant for ``e_stop`` added to the policy.)

The policy is generated from :data:`NODE_GRAPH`, the one description of what each node
publishes, subscribes, serves and calls (names as the nodes create them; ``~`` is the node's
own name). A test checks it against the graph of a running stack. The pip-installed Fast DDS
has no security plugins, so security runs only where a ROS distribution is installed::

    pamiq-ros security policy > policy.xml
    ros2 security create_keystore keys
    ros2 security create_permission keys /pamiq_ros/agent policy.xml   # ... per enclave
    # config: pamiq_launcher: {security: true, security_keystore: keys}

No ROS import here.
"""

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pamiq_ros.nodes._lifecycle import LIFECYCLE_SERVICES
from pamiq_ros.nodes.recorder import DEFAULT_TOPICS

POLICY_VERSION = "0.2.0"
ENCLAVE_ROOT = "/pamiq_ros"
CONTROL_TOOL_NODE = "pamiq_ros_control"
"""The node ``pamiq-ros pause|resume|save|status|shutdown`` runs as."""

SECURITY_STRATEGIES = ("Enforce", "Permissive")

PARAMETER_SERVICES = (
    "~/describe_parameters", "~/get_parameter_types", "~/get_parameters", "~/list_parameters",
    "~/set_parameters", "~/set_parameters_atomically",
)  # fmt: skip
"""What rclpy serves for every node that starts its parameter services."""

CONTROL_SERVICES = tuple(
    f"~/control/{command}" for command in ("pause", "resume", "save", "status", "shutdown")
)


@dataclass(frozen=True)
class NodeInterfaces:
    """What one node uses of the graph (names as created: relative, absolute or ``~/``).

    Attributes:
        publishes: Topics it publishes.
        subscribes: Topics it subscribes to.
        serves: Services it offers.
        calls: Services it calls.
    """

    publishes: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()
    serves: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()

    def merged(self, other: "NodeInterfaces") -> "NodeInterfaces":
        """Both together, each name once."""
        return NodeInterfaces(
            *(
                tuple(dict.fromkeys((*mine, *theirs)))
                for mine, theirs in zip(self.fields(), other.fields(), strict=True)
            )
        )

    def fields(self) -> tuple[tuple[str, ...], ...]:
        """``(publishes, subscribes, serves, calls)``."""
        return (self.publishes, self.subscribes, self.serves, self.calls)


EVERY_NODE = NodeInterfaces(
    publishes=("/rosout", "/parameter_events", "/diagnostics", "heartbeat"),
    serves=(*PARAMETER_SERVICES, "~/get_type_description", *CONTROL_SERVICES),
)
"""What rclpy and the project's helpers (diagnostics, control services) add to every node."""

MANAGED_NODE = NodeInterfaces(publishes=("~/transition_event",), serves=LIFECYCLE_SERVICES)
"""What rclpy's lifecycle adds to a managed node (agent, trainer, camera, actuator)."""

SYNC_NODE = NodeInterfaces(publishes=("/parameter_events",), serves=("~/get_type_description",))
"""What rclpy adds to the weight-sync side nodes (no rosout, no parameter services; the type
description service is there, as a running stack's graph showed)."""


@dataclass(frozen=True)
class NodeGraph:
    """One node of the stack and the side nodes its process runs.

    Attributes:
        interfaces: The node's own topics and services.
        side_nodes: Further nodes in its process (name suffix -> what they use).
    """

    interfaces: NodeInterfaces
    side_nodes: Mapping[str, NodeInterfaces] = field(default_factory=dict)


NODE_GRAPH: dict[str, NodeGraph] = {
    "sim_world": NodeGraph(
        NodeInterfaces(
            publishes=("world/pose", "world/camera_info", "/tf", "/tf_static"),
            subscribes=("cmd_vel", "cmd_vel_safe", "mouse"),  # cmd_vel_safe behind the relay
        )
    ),
    "gym_world": NodeGraph(
        NodeInterfaces(
            publishes=("camera/image_raw", "world/pose", "world/reward", "world/episode"),
            subscribes=("cmd_vel", "vrchat_input"),
        )
    ),
    "camera_sensor": NodeGraph(
        NodeInterfaces(publishes=("camera/image_raw", "camera/camera_info")).merged(MANAGED_NODE)
    ),
    "osc_actuator": NodeGraph(
        NodeInterfaces(subscribes=("cmd_vel", "vrchat_input")).merged(MANAGED_NODE)
    ),
    "audio_sensor": NodeGraph(NodeInterfaces(publishes=("audio/chunk",))),
    "mouse_actuator": NodeGraph(NodeInterfaces(subscribes=("mouse",))),
    "agent": NodeGraph(
        NodeInterfaces(
            publishes=("cmd_vel", "vrchat_input", "mouse", "experience"),  # mouse: vrchat space
            subscribes=(
                "camera/image_raw",
                "camera/image_raw/compressed",
                "audio/chunk",
                "heartbeat",
                "experience/ack",
            ),
        ).merged(MANAGED_NODE),
        {"_weight_sync": NodeInterfaces(subscribes=("weights/announce",), calls=("weights/get",))},
    ),
    "safety": NodeGraph(
        NodeInterfaces(publishes=("cmd_vel_safe",), subscribes=("cmd_vel", "e_stop"))
    ),
    "recorder": NodeGraph(  # its default topics (RecorderSettings.topics); it only listens
        NodeInterfaces(subscribes=tuple(DEFAULT_TOPICS.split(",")))
    ),
    "trainer": NodeGraph(
        NodeInterfaces(
            subscribes=("experience", "heartbeat"), publishes=("experience/ack",)
        ).merged(MANAGED_NODE),
        {"_weight_sync": NodeInterfaces(publishes=("weights/announce",), serves=("weights/get",))},
    ),
}
"""Every node of the project by its default name (the keys of the configs)."""

CONTROL_TOOL = NodeInterfaces(
    publishes=("/rosout", "/parameter_events"),
    serves=(*PARAMETER_SERVICES, "~/get_type_description"),
    calls=tuple(
        f"/{node}/{service.removeprefix('~/')}"
        for node in NODE_GRAPH
        for service in CONTROL_SERVICES
    ),
)


def enclave_of(node: str) -> str:
    """The SROS2 enclave a node's process runs in."""
    return f"{ENCLAVE_ROOT}/{node}"


def profiles(node: str) -> dict[str, NodeInterfaces]:
    """The node names a node's process creates, and what each uses.

    Raises:
        KeyError: If the node is not in :data:`NODE_GRAPH`.
    """
    graph = NODE_GRAPH[node]
    found = {node: EVERY_NODE.merged(graph.interfaces)}
    for suffix, interfaces in graph.side_nodes.items():
        found[f"{node}{suffix}"] = SYNC_NODE.merged(interfaces)
    return found


def policy_xml(nodes: Iterable[str] | None = None, namespace: str = "/") -> str:
    """The SROS2 permissions policy (format 0.2.0) for ``nodes`` (default: every node).

    One enclave per node, holding a profile for each node its process creates; plus the
    control tool's enclave, the only one allowed to call the control services.
    """
    root = ElementTree.Element("policy", version=POLICY_VERSION)
    enclaves = ElementTree.SubElement(root, "enclaves")
    chosen = list(NODE_GRAPH if nodes is None else nodes)
    sections = [(enclave_of(node), profiles(node)) for node in chosen]
    sections.append((enclave_of(CONTROL_TOOL_NODE), {CONTROL_TOOL_NODE: CONTROL_TOOL}))
    for path, nodes_of_enclave in sections:
        enclave = ElementTree.SubElement(enclaves, "enclave", path=path)
        profiles_element = ElementTree.SubElement(enclave, "profiles")
        for name, interfaces in nodes_of_enclave.items():
            profile = ElementTree.SubElement(profiles_element, "profile", ns=namespace, node=name)
            for kind, attribute, names in (
                ("topics", "publish", interfaces.publishes),
                ("topics", "subscribe", interfaces.subscribes),
                ("services", "reply", interfaces.serves),
                ("services", "request", interfaces.calls),
            ):
                if not names:
                    continue
                group = ElementTree.SubElement(profile, kind, {attribute: "ALLOW"})
                for item in names:
                    ElementTree.SubElement(group, kind[:-1]).text = item
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, "unicode")


def security_environment(
    keystore: str, strategy: str = "Enforce", node: str | None = None
) -> dict[str, str]:
    """The ``ROS_SECURITY_*`` variables a node (or, without ``node``, every node) runs with.

    Raises:
        ValueError: If the strategy is not ``Enforce`` or ``Permissive``, or no keystore.
    """
    if strategy not in SECURITY_STRATEGIES:
        raise ValueError(f"security strategy must be one of {SECURITY_STRATEGIES}, got {strategy}")
    if not keystore:
        raise ValueError("security needs a keystore (ros2 security create_keystore DIR)")
    environment = {
        "ROS_SECURITY_ENABLE": "true",
        "ROS_SECURITY_STRATEGY": strategy,
        "ROS_SECURITY_KEYSTORE": keystore,
    }
    if node is not None:
        environment["ROS_SECURITY_ENCLAVE"] = enclave_of(node)
    return environment


def expand(name: str, node: str, namespace: str = "/") -> str:
    """A topic or service name as the graph lists it (``~`` and relative names resolved)."""
    base = namespace.rstrip("/")
    if name.startswith("~"):
        return f"{base}/{node}{name[1:]}"
    if name.startswith("/"):
        return name
    return f"{base}/{name}"


def allowed(policy: str) -> dict[tuple[str, str], dict[str, set[str]]]:
    """Reads a policy back: (namespace, node) -> permission -> fully qualified names."""
    root = ElementTree.fromstring(policy)
    found: dict[tuple[str, str], dict[str, set[str]]] = {}
    for profile in root.iter("profile"):
        node, namespace = profile.get("node", ""), profile.get("ns", "/")
        permissions = found.setdefault((namespace, node), {})
        for group in profile:
            for permission, value in group.attrib.items():
                if value == "ALLOW":
                    names = {expand(item.text or "", node, namespace) for item in group}
                    permissions.setdefault(permission, set()).update(names)
    return found
