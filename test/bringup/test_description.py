from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from std_msgs.msg import String

from pamiq_ros.bringup.description import (
    FASTDDS_PROFILE_VARIABLE,
    LOOPBACK_PROFILE,
    BringupError,
    load_bringup,
    normalize_namespace,
    prepare_launch,
)
from pamiq_ros.cli import resolve_config, settings_type_of
from pamiq_ros.core.settings import build_settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
AGENT = "agent:\n  ros__parameters: {}\n"


def test_every_deployment_has_a_config():
    assert {path.stem for path in CONFIGS} >= {"sim", "vrchat", "robot"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_config_names_only_declared_parameters_of_the_right_type(config: Path):
    bringup = load_bringup(config)
    for node in bringup.nodes:
        # Raises SettingsError naming the parameter if the YAML drifted from the code.
        build_settings(settings_type_of(node.executable), dict(node.parameters))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_configs_keep_dds_and_sockets_on_loopback(config: Path):
    bringup = load_bringup(config)
    assert bringup.launcher.discovery_range == "LOCALHOST"
    assert bringup.discovery_environment({}) == {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
        FASTDDS_PROFILE_VARIABLE: str(LOOPBACK_PROFILE),
    }
    for node in bringup.nodes:
        for name, value in node.parameters.items():
            if name.endswith("host"):
                assert value == "127.0.0.1", f"{config.name}: {node.name}.{name}"


def test_deployments_differ_in_how_the_agent_acts():
    sim = {node.name for node in load_bringup(CONFIG_DIR / "sim.yaml").nodes}
    robot_bringup = load_bringup(CONFIG_DIR / "robot.yaml")
    robot = {node.name for node in robot_bringup.nodes}
    assert sim == {"sim_world", "camera_sensor", "osc_actuator", "agent", "trainer"}
    assert "osc_actuator" not in robot and {"agent", "safety"} <= robot
    world = next(node for node in robot_bringup.nodes if node.name == "sim_world")
    assert world.parameters["cmd_vel_enabled"] is True


def test_nodes_start_in_file_order(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "agent:\n  ros__parameters: {rate_hz: 5.0}\nsim_world:\n  ros__parameters: {}\n"
    )
    bringup = load_bringup(config)
    assert [node.name for node in bringup.nodes] == ["agent", "sim_world"]
    assert bringup.nodes[0].module == "pamiq_ros.nodes.agent"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must map node names"),
        ("teleporter:\n  ros__parameters: {}\n", "unknown node 'teleporter'"),
        ("agent:\n  rate_hz: 3\n", "must hold a ros__parameters mapping"),
        ("agent: {ros__parameters: {}\n", "not valid YAML"),
        ("pamiq_launcher:\n  ros__parameters: {discovery_range: EVERYWHERE}\n", "discovery_range"),
        ("pamiq_launcher:\n  ros__parameters: {shutdown_timeout: fast}\n", "shutdown_timeout"),
        ("pamiq_launcher:\n  ros__parameters: {restart_delay: 0}\n", "restart_delay must be"),
        (
            "pamiq_launcher:\n  ros__parameters: {restart_delay: 5, restart_delay_max: 1}\n",
            r"restart_delay_max \(1.0\) must be at least restart_delay \(5.0\)",
        ),
        ("pamiq_launcher:\n  ros__parameters: {max_restarts: 2.5}\n", "'max_restarts' must be int"),
        ("pamiq_launcher:\n  ros__parameters: {restart: 'yes'}\n", "'restart' must be bool"),
        ("pamiq_launcher:\n  ros__parameters: {restart_window: -1.0}\n", "restart_window"),
        ("pamiq_launcher:\n  ros__parameters: {}\n", "names no node"),
        (f"{AGENT}  remappings: [camera/image_raw]\n", "agent.remappings must map names"),
        (f"{AGENT}  remappings: {{camera/image_raw: 'bad name'}}\n", "is not a remapping"),
        (f"{AGENT}  remappings: {{'': /camera}}\n", "agent.remappings: '': '/camera' is not"),
        (f"{AGENT}  remapings: {{a: b}}\n", "agent: unknown section.*remapings"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(tmp_path: Path, text: str, message: str):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(BringupError, match=message) as raised:
        load_bringup(config)
    assert "bad.yaml" in str(raised.value)


def test_missing_config_is_named(tmp_path: Path):
    with pytest.raises(BringupError, match=r"nothing\.yaml"):
        load_bringup(tmp_path / "nothing.yaml")
    with pytest.raises(BringupError, match="no config 'nothing'"):
        resolve_config("nothing")


def test_config_names_resolve_to_files():
    assert resolve_config("sim") == CONFIG_DIR / "sim.yaml"
    assert resolve_config("robot.yaml") == CONFIG_DIR / "robot.yaml"


def test_other_hosts_only_by_configuration(tmp_path: Path):
    config = tmp_path / "multi.yaml"
    config.write_text(
        "pamiq_launcher:\n  ros__parameters: {discovery_range: SUBNET, static_peers: 'a;b'}\n"
        "agent:\n  ros__parameters: {}\n"
    )
    bringup = load_bringup(config)
    environment = bringup.node_environment({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert environment["ROS_STATIC_PEERS"] == "a;b"
    assert FASTDDS_PROFILE_VARIABLE not in environment
    loopback = load_bringup(CONFIG_DIR / "sim.yaml").node_environment({"ROS_STATIC_PEERS": "x"})
    assert loopback["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert loopback[FASTDDS_PROFILE_VARIABLE] == str(LOOPBACK_PROFILE)
    assert "ROS_STATIC_PEERS" not in loopback


def test_localhost_uses_the_loopback_profile_only_on_fast_dds_without_peers(tmp_path: Path):
    sim = load_bringup(CONFIG_DIR / "sim.yaml")
    for rmw in ("", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"):
        assert sim.uses_loopback_profile({"RMW_IMPLEMENTATION": rmw}), rmw
    # Another RMW cannot read a Fast DDS profile: it gets LOCALHOST as written.
    cyclone = sim.node_environment({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})
    assert cyclone["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert FASTDDS_PROFILE_VARIABLE not in cyclone
    # Static peers are other hosts: the loopback-only profile would cut them off.
    config = tmp_path / "peers.yaml"
    config.write_text(
        "pamiq_launcher:\n  ros__parameters: {static_peers: 192.0.2.7}\n"
        "agent:\n  ros__parameters: {}\n"
    )
    peers = load_bringup(config).node_environment({})
    assert peers["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert peers["ROS_STATIC_PEERS"] == "192.0.2.7"
    assert FASTDDS_PROFILE_VARIABLE not in peers


def test_the_loopback_profile_allows_only_127_0_0_1():
    import xml.etree.ElementTree as ElementTree

    namespace = {"dds": "http://www.eprosima.com"}
    root = ElementTree.parse(LOOPBACK_PROFILE).getroot()
    allowed = [
        element.get("name")
        for element in root.iterfind(".//dds:allowlist/dds:interface", namespace)
    ]
    assert allowed == ["127.0.0.1"]
    participant = root.find(".//dds:participant", namespace)
    assert participant is not None and participant.get("is_default_profile") == "true"
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", None, namespace) == "false"
    addresses = {element.text for element in participant.iterfind(".//dds:address", namespace)}
    assert addresses == {"127.0.0.1"}
    assert participant.find(".//dds:metatrafficMulticastLocatorList", namespace) is None


def test_restart_settings_come_from_the_launcher_section(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "pamiq_launcher:\n  ros__parameters: {restart: false, restart_delay: 0.5, "
        "restart_delay_max: 4, restart_stable_time: 10.0, max_restarts: 3, "
        "restart_window: 60.0}\nagent:\n  ros__parameters: {}\n"
    )
    launcher = load_bringup(config).launcher
    assert (launcher.restart, launcher.restart_delay, launcher.restart_delay_max) == (
        False, 0.5, 4.0
    )  # fmt: skip
    assert (launcher.restart_stable_time, launcher.max_restarts, launcher.restart_window) == (
        10.0, 3, 60.0
    )  # fmt: skip
    config.write_text("agent:\n  ros__parameters: {}\n")
    defaults = load_bringup(config).launcher
    assert defaults.restart and defaults.restart_delay < defaults.restart_delay_max


# --- namespaces, remappings and the launch plan both launchers read ------------------------------

NAMESPACED = """\
osc_actuator:
  ros__parameters: {port: 9123, report_period: 2.0}
agent:
  ros__parameters: {rate_hz: 5.0}
  remappings:
    camera/image_raw: /camera/color/image_raw
    /tf: /robot1/tf_agent
"""


def test_remappings_are_read_per_node(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(NAMESPACED)
    nodes = {node.name: node for node in load_bringup(config).nodes}
    assert nodes["agent"].remappings == (
        ("camera/image_raw", "/camera/color/image_raw"),
        ("/tf", "/robot1/tf_agent"),
    )
    assert nodes["osc_actuator"].remappings == ()


@pytest.mark.parametrize(
    ("given", "namespace"),
    [("", "/"), ("/", "/"), ("robot1", "/robot1"), ("/robot1/", "/robot1"), ("/a/b_2", "/a/b_2")],
)
def test_namespaces_are_written_one_way(given: str, namespace: str):
    assert normalize_namespace(given) == namespace


@pytest.mark.parametrize("given", ["/robot 1", "/1robot", "/a//b", "/a-b"])
def test_a_namespace_that_is_none_is_refused(given: str):
    with pytest.raises(BringupError, match="namespace"):
        normalize_namespace(given)


def test_a_plan_makes_the_run_folder_with_the_config_and_restarts_resume_from_it(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(NAMESPACED)
    plan = prepare_launch(load_bringup(config), tmp_path / "runs", "robot1", "latest")
    assert plan.run_dir.parent == tmp_path / "runs" and plan.run_dir.name.endswith("-c")
    assert (plan.run_dir / "config.yaml").read_text() == NAMESPACED
    assert plan.parameters() == {"run_dir": str(plan.run_dir), "resume_from": "latest"}
    assert plan.restart_parameters() == {
        "run_dir": str(plan.run_dir),
        "resume_from": str(plan.run_dir),
    }
    document = yaml.safe_load(plan.parameters_file.read_text())
    assert document == {
        "/robot1/osc_actuator": {"ros__parameters": {"port": 9123, "report_period": 2.0}},
        "/robot1/agent": {"ros__parameters": {"rate_hz": 5.0}},
    }
    actuator, agent = plan.nodes
    assert actuator.ros_arguments({"run_dir": "/r"}) == [
        "--ros-args", "-r", "__node:=osc_actuator", "-r", "__ns:=/robot1",
        "--params-file", str(plan.parameters_file),
        "-r", "/tf:=tf", "-r", "/tf_static:=tf_static", "-p", "run_dir:=/r",
    ]  # fmt: skip
    # The config's own /tf remapping wins over the namespace's.
    assert agent.remappings == (
        ("camera/image_raw", "/camera/color/image_raw"),
        ("/tf", "/robot1/tf_agent"),
        ("/tf_static", "tf_static"),
    )
    root = prepare_launch(load_bringup(config), tmp_path / "runs")
    assert root.nodes[0].ros_arguments()[:4] == [
        "--ros-args",
        "-r",
        "__node:=osc_actuator",
        "--params-file",
    ]
    assert "/osc_actuator" in yaml.safe_load(root.parameters_file.read_text())


def test_under_a_namespace_rcl_gives_each_node_its_parameters_and_remappings(
    tmp_path: Path, domain_id: int
):
    """The issue's case: with __ns set by hand, the config's keys missed and a port set in the
    file was ignored. Checked with rcl's own argument and parameter-file parsing."""
    config = tmp_path / "c.yaml"
    config.write_text(NAMESPACED)
    plan = prepare_launch(load_bringup(config), tmp_path / "runs", "/robot1")
    nodes = {launch.name: launch for launch in plan.nodes}
    for name, launch in nodes.items():
        context = Context()
        rclpy.init(
            args=launch.ros_arguments(plan.parameters()), context=context, domain_id=domain_id
        )
        try:
            node = rclpy.create_node(
                "unnamed", context=context, automatically_declare_parameters_from_overrides=True
            )
            assert node.get_fully_qualified_name() == f"/robot1/{name}"
            assert node.get_parameter("run_dir").value == str(plan.run_dir)
            if name == "osc_actuator":
                assert node.get_parameter("port").value == 9123
            else:
                assert node.get_parameter("rate_hz").value == 5.0
                camera = node.create_publisher(String, "camera/image_raw", 1)
                assert camera.topic_name == "/camera/color/image_raw"
            tf = node.create_publisher(String, "/tf_static", 1)
            assert tf.topic_name == "/robot1/tf_static"
            node.destroy_node()
        finally:
            context.try_shutdown()
