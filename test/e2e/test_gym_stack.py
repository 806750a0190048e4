"""The full stack in a world we did not write: `pamiq-ros launch minigrid` until the agent acts."""

import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped

from test.support.configs import config_for_test, launch_command
from test.support.diagnostics import figure
from test.support.processes import wait_until
from test.support.ros_probe import RosProbe

pytestmark = pytest.mark.e2e

WAIT_S = 30.0


def test_the_curiosity_agent_acts_in_minigrid_through_gym_world(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
) -> None:
    config = config_for_test(
        "minigrid", tmp_path, free_udp_port(), free_tcp_port(),
        {"agent": {"report_period": 1.0}, "gym_world": {"report_period": 1.0},
         "trainer": {"report_period": 1.0}},
    )  # fmt: skip
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 200)
    poses = probe.subscribe(PoseStamped, "world/pose", 200)
    launcher = spawn("launch", launch_command(config))
    launcher.wait_for_output("3 nodes running", timeout=30)

    # The agent sees gym_world's frames and acts; its actions step the world and move the body.
    assert wait_until(lambda: figure(diagnostics, "agent", "steps") >= 50, WAIT_S), (
        launcher.output()[-3000:]
    )
    assert wait_until(lambda: figure(diagnostics, "gym_world", "actions_received") >= 50, 10.0)
    # Steps without a new frame (gaps) count as steps too, so frames received can trail steps
    # (47 at 50 steps in one CI run): wait for them rather than read them at once.
    assert wait_until(lambda: figure(diagnostics, "agent", "frames_received") >= 50, 10.0)  # 64x64
    assert figure(diagnostics, "agent", "frames_rejected") == 0
    assert figure(diagnostics, "gym_world", "env_errors") == 0
    places = {(pose.pose.position.x, pose.pose.position.y) for pose in poses.messages}
    assert len(places) > 1, places  # the body went somewhere

    # Ctrl-C ends the launch cleanly (--duration does too: test_launcher's robot bringup).
    assert launcher.stop(signal.SIGINT, timeout=60) == 0, launcher.output()[-3000:]
    assert "all 3 nodes stopped cleanly" in launcher.output(), launcher.output()[-3000:]
