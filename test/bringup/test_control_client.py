"""The control client: finding control services, and waiting for named nodes."""

import subprocess
import sys

import pytest

from pamiq_ros.bringup.control_client import control_service_names
from pamiq_ros.cli import build_parser

TRIGGER = ["std_srvs/srv/Trigger"]


def test_finds_each_nodes_control_service_of_the_right_type():
    graph = [
        ("/agent/control/pause", TRIGGER),
        ("/trainer/control/pause", TRIGGER),
        ("/trainer/control/save", TRIGGER),
        ("/robot/agent/control/pause", TRIGGER),
        ("/other/control/pause", ["example/srv/Other"]),
        ("/agent/control/pause_extra", TRIGGER),
    ]
    assert control_service_names(graph, "pause") == [
        "/agent/control/pause",
        "/robot/agent/control/pause",
        "/trainer/control/pause",
    ]
    assert control_service_names(graph, "resume") == []


def test_a_namespace_reaches_only_its_own_nodes():
    graph = [
        ("/robot1/agent/control/pause", TRIGGER),
        ("/robot1/arm/trainer/control/pause", TRIGGER),
        ("/robot10/agent/control/pause", TRIGGER),
        ("/agent/control/pause", TRIGGER),
    ]
    assert control_service_names(graph, "pause", "/robot1") == [
        "/robot1/agent/control/pause",
        "/robot1/arm/trainer/control/pause",
    ]
    assert len(control_service_names(graph, "pause", "/")) == 4


def test_every_control_command_is_on_the_command_line():
    parser = build_parser()
    for command in ("pause", "resume", "save", "status", "shutdown"):
        arguments = parser.parse_args([command, "--timeout", "3"])
        assert arguments.command == command and arguments.timeout == 3.0
    launch = parser.parse_args(["launch", "sim", "--resume"])
    assert launch.resume == "latest" and launch.runs_dir == "runs"
    assert parser.parse_args(["launch", "sim", "--resume", "runs/x"]).resume == "runs/x"
    assert parser.parse_args(["launch", "sim"]).resume is None
    assert parser.parse_args(["launch", "sim"]).namespace == "/"
    assert parser.parse_args(["launch", "sim", "--namespace", "/r1"]).namespace == "/r1"
    assert parser.parse_args(["status", "--namespace", "/r1"]).namespace == "/r1"


@pytest.mark.e2e
def test_named_nodes_are_waited_for_and_a_missing_one_is_a_failure(
    spawn_node, ros_env, free_udp_port
):
    spawn_node("osc_actuator", {"port": free_udp_port(), "report_period": 60.0})
    result = subprocess.run(
        [sys.executable, "-m", "pamiq_ros.cli", "status", "--nodes", "osc_actuator,ghost",
         "--discovery-timeout", "8"],
        env=ros_env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result
    assert "/osc_actuator: ok: {" in result.stdout
    assert "/ghost: FAILED: not found within 8 s" in result.stdout
