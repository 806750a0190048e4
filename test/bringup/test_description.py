from pathlib import Path

import pytest

from pamiq_ros.bringup.description import (
    FASTDDS_PROFILE_VARIABLE,
    LOOPBACK_PROFILE,
    BringupError,
    load_bringup,
)
from pamiq_ros.cli import resolve_config, settings_type_of
from pamiq_ros.core.settings import build_settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


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
