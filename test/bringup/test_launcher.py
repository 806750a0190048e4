"""The launcher over real processes: the deployments as `make run` brings them up."""

import math
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped

from test.support.configs import config_for_test, launch_command
from test.support.diagnostics import agent_rates
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe

pytestmark = pytest.mark.e2e


def launch(spawn: Callable[..., NodeProcess], config: Path, *extra: str) -> NodeProcess:
    return spawn("launch", launch_command(config, *extra))


def started_pids(output: str) -> dict[str, int]:
    return {
        name: int(pid)
        for name, pid in re.findall(r"\[launch\] started (\w+) \(pid (\d+)\)", output)
    }


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def distance_moved(poses: list[PoseStamped]) -> float:
    first, last = poses[0].pose.position, poses[-1].pose.position
    return math.hypot(last.x - first.x, last.y - first.y)


def test_sim_stack_moves_the_world_through_osc_and_stops_cleanly_on_ctrl_c(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    config = config_for_test("sim", tmp_path, free_udp_port(), free_tcp_port())
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 50)
    launcher = launch(spawn, config)

    output = launcher.wait_for_output("5 nodes running", timeout=30)
    pids = started_pids(output)
    assert set(pids) == {"sim_world", "camera_sensor", "osc_actuator", "agent", "trainer"}
    assert len(set(pids.values())) == 5, "each node is its own process"

    # The world's only input here is OSC (cmd_vel_enabled is false in sim.yaml), so a moving
    # pose means the actuator's OSC moved it.
    assert wait_until(lambda: len(poses) > 5 and distance_moved(poses.messages) > 0.5, 40), (
        f"pose did not move; output:\n{launcher.output()}"
    )
    assert wait_until(lambda: len(agent_rates(diagnostics)) > 0, 30), launcher.output()
    assert all(9.0 <= rate <= 11.0 for rate in agent_rates(diagnostics)), agent_rates(diagnostics)
    assert "frames received" in launcher.output()

    code = launcher.stop(signal.SIGINT, timeout=30)
    assert code == 0, launcher.output()
    assert "all 5 nodes stopped cleanly" in launcher.output()
    assert not [name for name, pid in pids.items() if group_exists(pid)], "leftover processes"


def test_robot_bringup_drives_the_world_through_cmd_vel_with_the_same_agent(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    config = config_for_test("robot", tmp_path, free_udp_port(), free_tcp_port())
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    launcher = launch(spawn, config, "--duration", "25")

    output = launcher.wait_for_output("4 nodes running", timeout=30)
    assert set(started_pids(output)) == {"sim_world", "camera_sensor", "agent", "trainer"}
    assert wait_until(lambda: len(poses) > 5 and distance_moved(poses.messages) > 0.5, 40), (
        f"pose did not move; output:\n{launcher.output()}"
    )
    assert launcher.popen.wait(timeout=60) == 0, launcher.output()
    assert "25 s passed" in launcher.output()
    assert not [name for name, pid in started_pids(output).items() if group_exists(pid)]


def test_a_bad_config_is_refused_before_anything_starts(spawn, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("agnet:\n  ros__parameters: {}\n")
    launcher = launch(spawn, config)
    assert launcher.popen.wait(timeout=30) == 2
    assert "unknown node 'agnet'" in launcher.output()
    assert "started" not in launcher.output()
