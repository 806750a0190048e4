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


def test_every_control_command_is_on_the_command_line():
    parser = build_parser()
    for command in ("pause", "resume", "save", "status", "shutdown"):
        arguments = parser.parse_args([command, "--timeout", "3"])
        assert arguments.command == command and arguments.timeout == 3.0
    launch = parser.parse_args(["launch", "sim", "--resume"])
    assert launch.resume == "latest" and launch.runs_dir == "runs"
    assert parser.parse_args(["launch", "sim", "--resume", "runs/x"]).resume == "runs/x"
    assert parser.parse_args(["launch", "sim"]).resume is None
