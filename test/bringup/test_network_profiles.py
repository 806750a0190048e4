from pathlib import Path
from xml.etree import ElementTree

import pytest

from pamiq_ros.bringup.description import LauncherSettings, load_bringup
from pamiq_ros.bringup.network_profiles import (
    FASTDDS_PROFILE_VARIABLE,
    WIFI_MESSAGE_BYTES,
    describe,
    network_environment,
    parse_peers,
    profile_xml,
    shell_profile_warning,
    socket_buffer_warning,
)

NS = "{http://www.eprosima.com}"


def test_the_wifi_profile_keeps_udp_messages_within_one_ethernet_frame():
    root = ElementTree.fromstring(profile_xml("wifi", ["10.0.0.2"]))
    sizes = [int(e.text or 0) for e in root.iter(f"{NS}maxMessageSize")]
    assert sizes == [WIFI_MESSAGE_BYTES] and WIFI_MESSAGE_BYTES + 28 <= 1500
    peers = [e.text for e in root.iter(f"{NS}address")]
    assert peers == ["239.255.0.1", "10.0.0.2"]
    heartbeat = root.find(f".//{NS}heartbeat_period/{NS}nanosec")
    assert heartbeat is not None and int(heartbeat.text or 0) == 100_000_000


def test_the_lan_profile_has_no_message_limit_and_both_transports():
    root = ElementTree.fromstring(profile_xml("lan"))
    assert not list(root.iter(f"{NS}maxMessageSize"))
    kinds = sorted(e.text or "" for e in root.iter(f"{NS}type"))
    assert kinds == ["SHM", "UDPv4"]


def test_the_environment_names_a_private_file_with_the_profile(tmp_path):
    environment = network_environment("wifi", "10.0.0.2; 10.0.0.3")
    assert environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    text = Path(environment[FASTDDS_PROFILE_VARIABLE]).read_text()
    assert "10.0.0.3" in text and str(WIFI_MESSAGE_BYTES) in text
    assert parse_peers(" a ;; b ") == ["a", "b"]


def test_a_shell_profiles_file_is_never_passed_on_silently():
    assert shell_profile_warning({}, {}) == ""
    replaced = shell_profile_warning(
        {FASTDDS_PROFILE_VARIABLE: "/x.xml"}, {FASTDDS_PROFILE_VARIABLE: "/y.xml"}
    )
    assert "IGNORED" in replaced and "/x.xml" in replaced
    passed = shell_profile_warning(
        {FASTDDS_PROFILE_VARIABLE: "/x.xml"}, {FASTDDS_PROFILE_VARIABLE: "/x.xml"}
    )
    assert "passed to every node" in passed
    assert describe("wifi", {}).startswith("network profile wifi")


def test_the_config_picks_a_profile_and_refuses_a_contradiction():
    assert LauncherSettings(network_profile="lan").network_profile == "lan"
    with pytest.raises(ValueError, match="network_profile"):
        LauncherSettings(network_profile="satellite")
    with pytest.raises(ValueError, match="discovery_range applies"):
        LauncherSettings(network_profile="wifi", discovery_range="SUBNET")


def test_a_deployment_on_the_wifi_profile_gets_its_file_not_the_loopback_one(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "pamiq_launcher:\n  ros__parameters:\n    network_profile: wifi\n"
        "    static_peers: 10.0.0.9\n"
        "agent:\n  ros__parameters: {}\n"
    )
    bringup = load_bringup(config)
    assert not bringup.uses_loopback_profile({})
    environment = bringup.node_environment({FASTDDS_PROFILE_VARIABLE: "/left/in/shell.xml"})
    used = environment[FASTDDS_PROFILE_VARIABLE]
    assert used != "/left/in/shell.xml" and "10.0.0.9" in Path(used).read_text()
    assert environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"


def test_kernel_caps_below_the_profile_buffers_are_said(tmp_path):
    (tmp_path / "rmem_max").write_text("212992\n")
    (tmp_path / "wmem_max").write_text(f"{8 << 20}\n")
    warning = socket_buffer_warning(tmp_path)
    assert "net.core.rmem_max=212992" in warning and "wmem_max" not in warning.split("caps")[0]
    (tmp_path / "rmem_max").write_text(f"{4 << 20}\n")
    assert socket_buffer_warning(tmp_path) == ""
