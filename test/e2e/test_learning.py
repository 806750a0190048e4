"""Learning while acting, over real processes: sim world, camera, actuator, agent and trainer."""

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import WeightsAnnouncement
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from test.support.configs import config_for_test, launch_command
from test.support.diagnostics import agent_rates, figure, statuses
from test.support.experience import feed_synthetic_experience
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe

pytestmark = pytest.mark.e2e

LIGHT = {"mind": "autoencoder"}
"""These tests are about the stack (experience, training, sync, checkpoints, control), so they
run the light mind; test_curiosity.py runs the curiosity mind."""
FAST_TRAINER = {
    **LIGHT,
    "min_buffer_size": 16,
    "min_new_samples": 4,
    "batch_size": 16,
    "steps_per_run": 2,
    "report_period": 1.0,
    "checkpoint_period": 2.0,
}
SMALL = {"image_width": 64, "image_height": 48}
ANNOUNCE_QOS = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def loss_curve(run_dir: Path) -> list[float]:
    events = EventAccumulator(str(run_dir / "trainer" / "tensorboard"))
    events.Reload()
    return [event.value for event in events.Scalars("autoencoder/loss")]


def run_cli(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pamiq_ros.cli", *arguments],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


STACK_NODES = ("/sim_world", "/camera_sensor", "/agent", "/trainer", "/osc_actuator")


def run_cli_on_stack(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    """Runs a control command on every node of the stack, waiting for all of them to be found
    (a loaded machine can take a while to discover the whole graph)."""
    nodes = ",".join(node.lstrip("/") for node in STACK_NODES)
    return run_cli(env, command, "--nodes", nodes, "--discovery-timeout", "30")


def test_trainer_learns_while_the_agent_keeps_its_rate_and_the_command_line_controls_the_stack(
    spawn, probe: RosProbe, ros_env, tmp_path, free_udp_port, free_tcp_port
):
    """One stack (each start costs 10-15 s): it learns with fresh weights reaching the agent on
    time, then ``pamiq-ros`` status, pause, save, resume and shutdown act on every node."""
    config = config_for_test(
        "sim", tmp_path, free_udp_port(), free_tcp_port(),
        {"trainer": FAST_TRAINER, "agent": {**LIGHT, "report_period": 1.0}},
    )  # fmt: skip
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 200)
    actions = probe.subscribe(Twist, "cmd_vel", 10)
    launcher = spawn("launch", launch_command(config))
    launcher.wait_for_output("5 nodes running", timeout=30)

    # Several new versions reach the acting model (version 0 is the trainer's initial weights).
    assert wait_until(lambda: figure(diagnostics, "agent", "weight_version") >= 4, 120), (
        launcher.output()
    )
    assert figure(diagnostics, "agent", "weight_swaps") >= 4
    assert wait_until(lambda: len(agent_rates(diagnostics)) >= 5, 30)
    rates = agent_rates(diagnostics)
    assert all(9.0 <= rate <= 11.0 for rate in rates), rates
    assert wait_until(lambda: figure(diagnostics, "agent", "experience_sent") > 50, 30)
    assert figure(diagnostics, "trainer", "experience_rejected") == 0
    assert wait_until(lambda: figure(diagnostics, "trainer", "runs") >= 25, 90)
    # Each record says which version it acted with, so the trainer measures the policy lag.
    assert 0.0 <= figure(diagnostics, "trainer", "policy_lag_mean") < 3.0

    # The command line, on every node of the running stack.
    assert len(actions) > 10, "the agent publishes cmd_vel"
    status = run_cli_on_stack(ros_env, "status")
    assert status.returncode == 0, status
    for node in STACK_NODES:
        assert f"{node}: ok: {{" in status.stdout, status.stdout

    paused = run_cli_on_stack(ros_env, "pause")
    assert paused.returncode == 0 and paused.stdout.count(": ok:") == 5, paused
    launcher.wait_for_output("paused: released all inputs", timeout=10)
    count = len(actions)
    wait_until(lambda: False, 2.0)
    assert len(actions) - count <= 1, "the agent kept acting while paused"
    assert '"paused": true' in run_cli_on_stack(ros_env, "status").stdout

    saved = run_cli_on_stack(ros_env, "save")
    assert saved.returncode == 0, saved
    assert "/trainer: ok: checkpoint" in saved.stdout and "/agent: ok: agent state" in saved.stdout

    resumed = run_cli_on_stack(ros_env, "resume")
    assert resumed.returncode == 0, resumed
    count = len(actions)
    assert wait_until(lambda: len(actions) > count + 10, 10), "acting did not resume"

    shutdown = run_cli(ros_env, "shutdown")
    assert shutdown.returncode == 0, shutdown
    if not wait_until(lambda: launcher.popen.poll() is not None, 20):
        run_cli(ros_env, "shutdown")  # a node the first call did not discover yet
    assert launcher.popen.wait(timeout=40) == 0, launcher.output()
    assert "every node shut down" in launcher.output()

    (run_dir,) = (tmp_path / "runs").iterdir()
    losses = loss_curve(run_dir)
    assert len(losses) >= 10
    head, tail = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert tail < 0.8 * head, f"loss did not fall: first {losses[:5]}, last {losses[-5:]}"
    assert list((run_dir / "trainer" / "checkpoints").iterdir()), "no trainer checkpoint"
    assert list((run_dir / "agent" / "checkpoints").iterdir()), "no agent checkpoint"


def test_killed_trainer_leaves_the_agent_acting_and_resumes_from_its_checkpoint(
    spawn_node: Callable[..., NodeProcess], probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    config = config_for_test(
        "sim", tmp_path, free_udp_port(), free_tcp_port(),
        {"trainer": FAST_TRAINER, "agent": {**LIGHT, "report_period": 1.0}},
    )  # fmt: skip
    runs = tmp_path / "runs"
    first, second = runs / "1-first", runs / "2-second"
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 200)
    for node in ("sim_world", "camera_sensor", "agent"):
        spawn_node(node, {"run_dir": str(first)}, params_file=config)
    trainer = spawn_node("trainer", {"run_dir": str(first)}, params_file=config)

    checkpoints = first / "trainer" / "checkpoints"
    assert wait_until(
        lambda: (
            figure(diagnostics, "agent", "weight_version") >= 3
            and checkpoints.is_dir()
            and any(path.name[0].isdigit() for path in checkpoints.iterdir())
        ),
        120,
    ), trainer.output()

    trainer.signal_group(signal.SIGKILL)
    trainer.popen.wait(timeout=10)
    seen = len(statuses(diagnostics, "agent"))
    # A version announced just before the kill may still arrive; after that, nothing changes.
    assert wait_until(lambda: len(statuses(diagnostics, "agent")) >= seen + 2, 20)
    version_before = figure(diagnostics, "agent", "weight_version")
    assert wait_until(lambda: len(statuses(diagnostics, "agent")) >= seen + 7, 20)
    after_kill = statuses(diagnostics, "agent")[seen:]
    rates = [float(status["rate_hz"]) for status in after_kill]
    assert all(9.0 <= rate <= 11.0 for rate in rates), rates
    assert [float(status["weight_version"]) for status in after_kill[2:]] == [version_before] * (
        len(after_kill) - 2
    ), "the agent kept acting with its last weights"

    resumed = spawn_node(
        "trainer", {"run_dir": str(second), "resume_from": "latest"}, params_file=config,
        name="trainer",
    )  # fmt: skip
    output = resumed.wait_for_output("restored from", timeout=60)
    assert str(first) in output
    assert "frames=0" not in output.split("restored from", 1)[1].split("\n", 1)[0]
    assert wait_until(
        lambda: figure(diagnostics, "agent", "weight_version") > version_before, 120
    ), resumed.output()


def test_a_corrupt_newest_checkpoint_is_refused_and_the_one_before_is_used(
    spawn_node, probe: RosProbe, ros_env, tmp_path
):
    runs = tmp_path / "runs"
    trainer = spawn_node("trainer", {**SMALL, **FAST_TRAINER, "run_dir": str(runs / "1-first")})
    feed_synthetic_experience(probe, width=64, height=48)
    trainer.wait_for_output("runs=", timeout=30)

    saved = run_cli(ros_env, "save")
    assert saved.returncode == 0 and "/trainer: ok: checkpoint" in saved.stdout, saved
    assert trainer.stop(signal.SIGINT) == 0  # writes a last checkpoint on the way out
    store = runs / "1-first" / "trainer" / "checkpoints"
    checkpoints = sorted(path for path in store.iterdir() if path.name[0].isdigit())
    assert len(checkpoints) >= 2
    newest, before = checkpoints[-1], checkpoints[-2]
    damaged = max((p for p in newest.rglob("*") if p.is_file() and p.name != "manifest.json"),
                  key=lambda p: p.stat().st_size)  # fmt: skip
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])

    resumed = spawn_node(
        "trainer", {**SMALL, **FAST_TRAINER, "run_dir": str(runs / "2-second"),
                    "resume_from": "latest"},
    )  # fmt: skip
    output = resumed.wait_for_output("restored from", timeout=60)
    assert f"checkpoint {newest} refused" in output
    assert damaged.name in output
    assert f"restored from {before}" in output


def test_weights_with_nan_are_never_published(spawn_node, probe: RosProbe, tmp_path):
    announcements = probe.subscribe(WeightsAnnouncement, "weights/announce", ANNOUNCE_QOS)
    trainer = spawn_node(
        "trainer", {**SMALL, **FAST_TRAINER, "learning_rate": 1e6, "run_dir": str(tmp_path / "r")}
    )
    feed_synthetic_experience(probe, width=64, height=48)
    output = trainer.wait_for_output("holds NaN/Inf", timeout=60)
    assert "not published" in output
    assert wait_until(lambda: output.count("holds NaN/Inf") >= 1 and len(announcements) >= 1, 10)
    trainer.wait_for_output("runs=", timeout=20)
    assert [message.version for message in announcements.messages] == [0], (
        "only the finite initial weights may be announced"
    )
    assert trainer.is_running()


def test_control_commands_say_when_nothing_answers(ros_env):
    result = run_cli(ros_env, "status", "--discovery-timeout", "1")
    assert result.returncode == 1
    assert "no pamiq_ros node answered" in result.stderr
