"""SROS2 support: the generated policy is well-formed sros2 policy XML, grants what the trust
model says, and covers every topic and service a running stack uses (its live ROS graph).

The pip-installed Fast DDS has no security plugins, so nothing here runs with security on; the
launcher's environment for it is checked on stand-in processes.
"""

import json
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from pamiq_ros.bringup.description import (
    Bringup,
    BringupError,
    LauncherSettings,
    LaunchPlan,
    NodeDescription,
    load_bringup,
)
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.bringup.launcher import Launcher
from pamiq_ros.bringup.security import (
    CONTROL_TOOL_NODE,
    NODE_GRAPH,
    POLICY_VERSION,
    allowed,
    enclave_of,
    expand,
    policy_xml,
    security_environment,
)
from test.support.configs import config_for_test, launch_command
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe

ROS_NAME = re.compile(r"^(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
PERMISSIONS = {"topics": {"publish", "subscribe"}, "services": {"reply", "request"}}


def check_policy_format(text: str) -> ElementTree.Element:
    """The structure of sros2's policy schema (format 0.2.0), element by element."""
    root = ElementTree.fromstring(text)
    assert root.tag == "policy" and root.attrib == {"version": POLICY_VERSION}
    assert [child.tag for child in root] == ["enclaves"]
    for enclave in root[0]:
        assert enclave.tag == "enclave" and set(enclave.attrib) == {"path"}
        assert enclave.attrib["path"].startswith("/")
        assert [child.tag for child in enclave] == ["profiles"]
        for profile in enclave[0]:
            assert profile.tag == "profile" and set(profile.attrib) == {"ns", "node"}
            assert profile.attrib["ns"].startswith("/") and ROS_NAME.match(profile.attrib["node"])
            for group in profile:
                assert group.tag in PERMISSIONS, group.tag
                ((permission, value),) = group.attrib.items()
                assert permission in PERMISSIONS[group.tag] and value in ("ALLOW", "DENY")
                assert len(group) > 0
                for item in group:
                    assert item.tag == group.tag[:-1] and not len(item)
                    assert item.text and ROS_NAME.match(item.text), item.text
    return root


def test_the_policy_is_sros2_policy_xml_with_an_enclave_per_node():
    root = check_policy_format(policy_xml())
    enclaves = {enclave.attrib["path"] for enclave in root.iter("enclave")}
    assert enclaves == {enclave_of(node) for node in [*NODE_GRAPH, CONTROL_TOOL_NODE]}
    assert set(NODE_GRAPH) == set(NODE_EXECUTABLES), "every node of the project has its entry"


def holders(policy: dict[tuple[str, str], dict[str, set[str]]], permission: str, name: str):
    return {node for (_, node), granted in policy.items() if name in granted.get(permission, ())}


def test_the_policy_grants_what_the_trust_model_says():
    policy = allowed(policy_xml())
    assert holders(policy, "publish", "/cmd_vel") == {"agent"}
    assert holders(policy, "publish", "/cmd_vel_safe") == {"safety"}
    assert holders(policy, "publish", "/experience") == {"agent"}
    assert holders(policy, "publish", "/weights/announce") == {"trainer_weight_sync"}
    assert holders(policy, "reply", "/weights/get") == {"trainer_weight_sync"}
    assert holders(policy, "request", "/weights/get") == {"agent_weight_sync"}
    for node in NODE_GRAPH:
        for command in ("pause", "resume", "save", "status", "shutdown"):
            service = f"/{node}/control/{command}"
            assert holders(policy, "request", service) == {CONTROL_TOOL_NODE}, service
            assert holders(policy, "reply", service) == {node}, service


def test_the_policy_follows_a_namespace():
    policy = allowed(policy_xml(["agent"], namespace="/robot1"))
    assert "/robot1/cmd_vel" in policy["/robot1", "agent"]["publish"]
    assert "/robot1/agent/control/pause" in policy["/robot1", "agent"]["reply"]
    assert "/rosout" in policy["/robot1", "agent"]["publish"]  # absolute names stay
    assert expand("~/x", "n", "/a/b") == "/a/b/n/x" and expand("y", "n", "/") == "/y"


def test_the_names_in_the_graph_are_the_ones_the_nodes_use():
    from pamiq_ros.nodes._control import CONTROL_COMMANDS, CONTROL_NAMESPACE
    from pamiq_ros.nodes._diagnostics import DIAGNOSTICS_TOPIC
    from pamiq_ros.nodes._experience import EXPERIENCE_TOPIC
    from pamiq_ros.nodes._weight_sync import ANNOUNCE_TOPIC, WEIGHTS_SERVICE
    from pamiq_ros.nodes.agent import COMPRESSED_IMAGE_TOPIC, RAW_IMAGE_TOPIC
    from pamiq_ros.nodes.camera_sensor import CAMERA_INFO_TOPIC, IMAGE_TOPIC
    from pamiq_ros.nodes.safety import SafetySettings
    from pamiq_ros.nodes.sim_world import POSE_TOPIC, SimWorldSettings

    agent, trainer = NODE_GRAPH["agent"], NODE_GRAPH["trainer"]
    assert EXPERIENCE_TOPIC in agent.interfaces.publishes
    assert EXPERIENCE_TOPIC in trainer.interfaces.subscribes
    assert ANNOUNCE_TOPIC in trainer.side_nodes["_weight_sync"].publishes
    assert WEIGHTS_SERVICE in agent.side_nodes["_weight_sync"].calls
    assert {IMAGE_TOPIC, CAMERA_INFO_TOPIC} <= set(NODE_GRAPH["camera_sensor"].interfaces.publishes)
    assert {RAW_IMAGE_TOPIC, COMPRESSED_IMAGE_TOPIC} <= set(agent.interfaces.subscribes)
    assert POSE_TOPIC in NODE_GRAPH["sim_world"].interfaces.publishes
    from pamiq_ros.nodes import gym_world

    gym = NODE_GRAPH["gym_world"].interfaces
    assert {gym_world.IMAGE_TOPIC, gym_world.POSE_TOPIC, gym_world.REWARD_TOPIC,
            gym_world.EPISODE_TOPIC} <= set(gym.publishes)  # fmt: skip
    relay = SafetySettings()
    assert relay.output_topic in NODE_GRAPH["safety"].interfaces.publishes
    assert {relay.input_topic, relay.estop_topic} <= set(NODE_GRAPH["safety"].interfaces.subscribes)
    world = NODE_GRAPH["sim_world"].interfaces.subscribes
    assert {SimWorldSettings().cmd_vel_topic, relay.output_topic} <= set(world)
    every = allowed(policy_xml())["/", "trainer"]
    assert DIAGNOSTICS_TOPIC in every["publish"]
    assert {f"/trainer/{CONTROL_NAMESPACE}/{c}" for c in CONTROL_COMMANDS} <= every["reply"]


def test_security_settings_need_a_keystore_and_a_known_strategy(tmp_path: Path):
    with pytest.raises(ValueError, match="keystore"):
        security_environment("")
    with pytest.raises(ValueError, match="strategy"):
        security_environment("keys", "Lenient")
    config = tmp_path / "c.yaml"
    config.write_text("pamiq_launcher:\n  ros__parameters: {security: true}\nagent:\n"
                      "  ros__parameters: {}\n")  # fmt: skip
    with pytest.raises(BringupError, match="security_keystore"):
        load_bringup(config)


STAND_IN = """
import json, os, sys
name = next(arg for arg in sys.argv if arg.startswith("__node:=")).split(":=", 1)[1]
keys = [k for k in os.environ if k.startswith("ROS_SECURITY")]
with open(os.path.join(os.environ["STAND_IN_DIR"], name + ".json"), "w") as file:
    json.dump({key: os.environ[key] for key in keys}, file)
"""


def test_the_launcher_runs_each_node_in_its_enclave(tmp_path: Path, monkeypatch):
    (tmp_path / "stand_in_security.py").write_text(STAND_IN)
    monkeypatch.setenv("STAND_IN_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    nodes = tuple(NodeDescription(n, n, "stand_in_security", {}) for n in ("agent", "trainer"))
    settings = LauncherSettings(security=True, security_keystore=str(tmp_path / "keys"))
    bringup = Bringup(tmp_path / "c.yaml", nodes, settings)
    output: Any = type("Sink", (), {"write": lambda self, text: None, "flush": lambda self: 0})()
    plan = LaunchPlan(bringup, "/", tmp_path / "run", tmp_path / "parameters.yaml")
    launcher = Launcher(plan, output, sys.executable)
    assert launcher.run(duration=5.0) == 0
    for node in ("agent", "trainer"):
        environment = json.loads((tmp_path / f"{node}.json").read_text())
        assert environment == {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": str(tmp_path / "keys"),
            "ROS_SECURITY_ENCLAVE": f"/pamiq_ros/{node}",
        }


@pytest.mark.e2e
def test_every_topic_and_service_of_a_running_stack_is_covered_by_the_policy(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    light = {"mind": "autoencoder"}
    config = config_for_test(
        "robot", tmp_path, free_udp_port(), free_tcp_port(), {"agent": light, "trainer": light}
    )
    stack: NodeProcess = spawn("launch", launch_command(config))
    stack.wait_for_output("5 nodes running", timeout=60)
    expected = {
        name for node in ("sim_world", "camera_sensor", "agent", "safety", "trainer")
        for name in [node, *(node + suffix for suffix in NODE_GRAPH[node].side_nodes)]
    }  # fmt: skip

    def stack_nodes() -> set[str]:
        return {name for name, _ in probe.node.get_node_names_and_namespaces()} & expected

    assert wait_until(lambda: stack_nodes() == expected, 60.0), stack_nodes()
    policy = allowed(policy_xml())
    graph = probe.node
    # The graph fills in as discovery goes on: give the endpoints a moment.
    assert wait_until(
        lambda: any(
            name == "/weights/get"
            for name, _ in graph.get_client_names_and_types_by_node("agent_weight_sync", "/")
        ),
        30.0,
    )
    uncovered = []
    used = 0
    for node in sorted(expected):
        granted = policy["/", node]
        for permission, names in (
            ("publish", graph.get_publisher_names_and_types_by_node(node, "/")),
            ("subscribe", graph.get_subscriber_names_and_types_by_node(node, "/")),
            ("reply", graph.get_service_names_and_types_by_node(node, "/")),
            ("request", graph.get_client_names_and_types_by_node(node, "/")),
        ):
            for name, _ in names:
                used += 1
                if name not in granted.get(permission, set()):
                    uncovered.append(f"{node} {permission} {name}")
    assert not uncovered, uncovered
    assert used > 40, used
    assert stack.stop() == 0
