"""Faults over real processes: SIGKILL each node of a running sim stack in turn.

One ``pamiq-ros launch`` of the sim stack; each node in turn has its process group killed. The
launcher must say it died and restart it; the agent must keep its rate while another node is
down; the trainer must come back from its newest checkpoint of this run, so that no version
saved before the kill is lost.
"""

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from pamiq_ros_interfaces.msg import WeightsAnnouncement
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from pamiq_ros.core.checkpoint import CheckpointStore
from pamiq_ros.core.learner import LEARNER_FILE
from test.support.configs import config_for_test, launch_command
from test.support.diagnostics import statuses
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import Received, RosProbe

pytestmark = pytest.mark.e2e

NODES_IN_KILL_ORDER = ("sim_world", "camera_sensor", "osc_actuator", "agent", "trainer")
QUICK_RESTARTS = {
    "restart_delay": 0.5,
    "restart_delay_max": 2.0,
    "restart_stable_time": 10.0,
    "max_restarts": 3,
    "restart_window": 120.0,
}
FAST_TRAINER = {
    "min_buffer_size": 16,
    "min_new_samples": 4,
    "batch_size": 16,
    "steps_per_run": 2,
    "checkpoint_period": 5.0,
}
REPORT_EVERY_SECOND = {"report_period": 1.0}
ANNOUNCE_QOS = QoSProfile(
    depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
MIN_AGENT_STEPS = 20  # as test.support.diagnostics.agent_rates: skip a fresh agent's first steps


def current_pid(output: str, node: str) -> int:
    """The pid the launcher last started ``node`` with (also its process group)."""
    found = re.findall(rf"\[launch\] (?:started {node}|{node} restarted) \(pid (\d+)\)", output)
    assert found, f"no pid for {node} in:\n{output}"
    return int(found[-1])


def agent_rates_since(diagnostics: Received, first_status: int) -> list[float]:
    """The agent's measured rates from its ``first_status``-th status on."""
    return [
        float(status["rate_hz"])
        for status in statuses(diagnostics, "agent")[first_status:]
        if "rate_hz" in status and int(status.get("steps", "0")) >= MIN_AGENT_STEPS
    ]


def saved_versions(checkpoint: Path) -> dict[str, int]:
    versions = json.loads((checkpoint / LEARNER_FILE).read_text())["versions"]
    return {str(name): int(version) for name, version in versions.items()}


def stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def trained_checkpoint_exists(store: CheckpointStore) -> bool:
    for path in store.checkpoints():
        try:
            if max(saved_versions(path).values()) > 0:
                return True
        except OSError:  # pruned while we looked
            continue
    return False


def kill(launcher: NodeProcess, node: str) -> int:
    """SIGKILLs ``node``'s process group; returns its pid once the launcher saw it die."""
    pid = current_pid(launcher.output(), node)
    os.killpg(pid, signal.SIGKILL)
    launcher.wait_for_output(f"[launch] {node} died (killed by SIGKILL) after", timeout=10)
    died = rf"\[launch\] {node} died \(killed by SIGKILL\) after [\d.]+ s; restart 1 in 0.5 s"
    assert re.search(died, launcher.output()), launcher.output()
    return pid


class RunningStack:
    """The launched stack and what the test sees of it."""

    def __init__(self, launcher: NodeProcess, probe: RosProbe, run_dir: Path) -> None:
        self.launcher = launcher
        self.diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 200)
        self.announcements = probe.subscribe(WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS)
        self.images = probe.subscribe(Image, "camera/image_raw", qos_profile_sensor_data)
        self.run_dir = run_dir

    @property
    def trainer_checkpoints(self) -> CheckpointStore:
        (run_dir,) = self.run_dir.iterdir()
        return CheckpointStore(run_dir / "trainer" / "checkpoints")

    def reports(self, node: str) -> int:
        return len(statuses(self.diagnostics, node))

    def kill_and_check_the_restart(self, node: str) -> None:
        """Kills ``node``; checks it comes back, the agent keeps its rate and frames flow."""
        launcher = self.launcher
        agent_seen = self.reports("agent")
        killed_at = time.time()
        old_pid = kill(launcher, node)
        # What the dead trainer saved (the restarted one has not written anything yet).
        newest = self.trainer_checkpoints.checkpoints()[-1] if node == "trainer" else None
        launcher.wait_for_output(f"[launch] {node} restarted (pid", timeout=20)
        assert current_pid(launcher.output(), node) != old_pid
        node_seen = self.reports(node)
        assert wait_until(lambda: self.reports(node) > node_seen, 30), (
            f"{node} did not report after its restart:\n{launcher.output()}"
        )
        if node == "agent":
            # Its rate counts again once the new agent has stepped a while.
            assert wait_until(
                lambda: len(agent_rates_since(self.diagnostics, agent_seen)) >= 2, 20
            ), launcher.output()
        else:
            # The agent stepped on while the node was down and while it came back.
            assert wait_until(lambda: self.reports("agent") >= agent_seen + 3, 20), (
                launcher.output()
            )
        rates = agent_rates_since(self.diagnostics, agent_seen)
        assert rates and all(9.0 <= rate <= 11.0 for rate in rates), (node, rates)
        images_seen = len(self.images)
        assert wait_until(lambda: len(self.images) > images_seen + 5, 20), (
            f"no camera frames after {node} restarted:\n{launcher.output()}"
        )
        if newest is not None:
            self.check_the_trainer_resumed(newest, killed_at)

    def check_the_trainer_resumed(self, newest: Path, killed_at: float) -> None:
        saved = saved_versions(newest)
        self.launcher.wait_for_output(f"[trainer] [INFO] restored from {newest}", timeout=30)
        after_restart = [
            message
            for message in self.announcements.messages
            if stamp_seconds(message.published) > killed_at
        ]
        assert after_restart, "the restarted trainer announced nothing"
        for message in after_restart:
            assert message.version >= saved[message.model_name], (message, saved)


def test_each_node_killed_in_turn_is_restarted_while_the_agent_keeps_its_rate(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    overrides = {
        "pamiq_launcher": QUICK_RESTARTS,
        "trainer": {**FAST_TRAINER, **REPORT_EVERY_SECOND},
        # The agent's state is saved too, so its restart has something to resume from.
        "agent": {"checkpoint_period": 5.0, **REPORT_EVERY_SECOND},
        **{node: REPORT_EVERY_SECOND for node in ("sim_world", "camera_sensor", "osc_actuator")},
    }
    config = config_for_test("sim", tmp_path, free_udp_port(), free_tcp_port(), overrides)
    stack = RunningStack(spawn("launch", launch_command(config)), probe, tmp_path / "runs")
    stack.launcher.wait_for_output("5 nodes running", timeout=30)
    assert wait_until(lambda: len(agent_rates_since(stack.diagnostics, 0)) >= 2, 60), (
        stack.launcher.output()
    )

    for node in NODES_IN_KILL_ORDER:
        if node == "trainer":
            # Something worth keeping first: a checkpoint of this run holding trained weights.
            assert wait_until(lambda: trained_checkpoint_exists(stack.trainer_checkpoints), 60), (
                stack.launcher.output()
            )
        stack.kill_and_check_the_restart(node)

    assert stack.launcher.stop(signal.SIGINT, timeout=40) == 0, stack.launcher.output()
    output = stack.launcher.output()
    assert "all 5 nodes stopped cleanly" in output
    restarts = output.rsplit("(restarts: ", 1)[-1].split(")", 1)[0].split(", ")
    assert sorted(restarts) == sorted(f"{node} 1" for node in NODES_IN_KILL_ORDER), output
