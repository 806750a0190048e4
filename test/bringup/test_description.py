from pathlib import Path

import pytest

from pamiq_ros.bringup.description import BringupError, load_bringup
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
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
    assert bringup.discovery_environment() == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    for node in bringup.nodes:
        for name, value in node.parameters.items():
            if name.endswith("host"):
                assert value == "127.0.0.1", f"{config.name}: {node.name}.{name}"


def test_deployments_differ_in_how_the_agent_acts():
    sim = {node.name for node in load_bringup(CONFIG_DIR / "sim.yaml").nodes}
    robot_bringup = load_bringup(CONFIG_DIR / "robot.yaml")
    robot = {node.name for node in robot_bringup.nodes}
    assert sim == set(NODE_EXECUTABLES)
    assert "osc_actuator" not in robot and "agent" in robot
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
    loopback = load_bringup(CONFIG_DIR / "sim.yaml").node_environment({"ROS_STATIC_PEERS": "x"})
    assert loopback["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert "ROS_STATIC_PEERS" not in loopback


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
