"""The launcher: its restart schedule, restarts of small stand-in processes, and the
deployments as `make run` brings them up (e2e)."""

import io
import itertools
import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from std_srvs.srv import Trigger

from pamiq_ros.bringup.description import (
    Bringup,
    LauncherSettings,
    LaunchPlan,
    NodeDescription,
)
from pamiq_ros.bringup.launcher import Launcher, RestartSchedule, death_verdict, describe_exit
from pamiq_ros.core.checkpoint import CheckpointStore
from pamiq_ros.nodes._shutdown import StopRequest
from test.support.configs import config_for_test, launch_command
from test.support.diagnostics import agent_rates
from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe


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


# --- the restart schedule (pure) -------------------------------------------------------------


def schedule(**overrides: float) -> RestartSchedule:
    values: dict[str, Any] = {
        "initial_delay": 1.0, "max_delay": 5.0, "stable_time": 30.0, "max_restarts": 100,
        "window": 1000.0, **overrides,
    }  # fmt: skip
    return RestartSchedule(**values)


def test_restart_delay_doubles_after_each_restart_up_to_the_cap():
    restarts = schedule()
    delays = [restarts.next_delay(died_at=float(t), uptime=2.0) for t in range(6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert restarts.restarts == 6


def test_restart_delay_goes_back_to_the_first_once_the_node_stayed_up():
    restarts = schedule(stable_time=10.0)
    assert [restarts.next_delay(float(t), uptime=9.9) for t in range(3)] == [1.0, 2.0, 4.0]
    assert restarts.next_delay(100.0, uptime=10.0) == 1.0
    assert restarts.next_delay(101.0, uptime=0.5) == 2.0


def test_too_many_restarts_within_the_window_give_up_until_old_ones_leave_it():
    restarts = schedule(max_restarts=3, window=60.0)
    assert all(restarts.next_delay(float(t), uptime=1.0) is not None for t in (0, 1, 2))
    assert restarts.next_delay(59.0, uptime=1.0) is None, "a 4th restart within 60 s"
    assert restarts.restarts == 3
    # The restarts at t=0 and t=1 are more than 60 s ago at t=61.5: room for two more.
    assert restarts.next_delay(61.5, uptime=1.0) is not None
    assert restarts.next_delay(61.6, uptime=1.0) is not None
    assert restarts.next_delay(61.7, uptime=1.0) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"initial_delay": 0.0},
        {"max_delay": 0.5},
        {"max_restarts": 0},
        {"window": 0.0},
        {"stable_time": -1.0},
    ],
)
def test_a_schedule_that_cannot_work_is_refused(overrides: dict[str, float]):
    with pytest.raises(ValueError, match=r"must be positive|<="):
        schedule(**overrides)


def test_the_schedule_follows_the_launcher_settings():
    settings = LauncherSettings(restart_delay=0.5, restart_delay_max=1.5, max_restarts=2)
    restarts = RestartSchedule.from_settings(settings)
    assert [restarts.next_delay(float(t), 1.0) for t in range(3)] == [0.5, 1.0, None]


def test_both_launchers_judge_a_death_the_same_way():
    """pamiq-ros launch and the ros2 launch files both ask death_verdict."""
    settings = LauncherSettings(restart_delay=0.5, restart_delay_max=1.0, max_restarts=2)
    schedule = RestartSchedule.from_settings(settings)
    assert death_verdict(settings, schedule, "agent died", 10.0, 3.0) == (
        0.5, "agent died; restart 1 in 0.5 s"
    )  # fmt: skip
    assert death_verdict(settings, schedule, "agent died", 11.0, 1.0)[0] == 1.0
    assert death_verdict(settings, schedule, "agent died", 12.0, 1.0) == (
        None, "agent died; giving up: it was restarted 2 times within 300 s"
    )  # fmt: skip
    off = LauncherSettings(restart=False)
    verdict = death_verdict(off, RestartSchedule.from_settings(off), "agent died", 1.0, 1.0)
    assert verdict == (None, "agent died; restart is off")


def test_exit_descriptions_name_the_code_or_the_signal():
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"


# --- restarts of stand-in processes (no ROS) ---------------------------------------------------

# A stand-in node: records each start (time, command line), then does what its plan says for
# that start: crash (exit 3), kill (SIGKILL itself), exit0, dds-kill (SIGKILL itself with a
# DDS participant up, its shared-memory segments listed in <name>.segments) or run until SIGINT.
REPOSITORY = Path(__file__).resolve().parents[2]
"""The repository's root, where the stand-in finds ``test.support``."""

STAND_IN = """
import json, os, signal, sys, time
from pathlib import Path

signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # before its start is seen: no race
folder = Path(os.environ["STAND_IN_DIR"])
name = next(arg for arg in sys.argv if arg.startswith("__node:=")).split(":=", 1)[1]
starts = folder / f"{name}.starts"
with starts.open("a") as file:
    file.write(json.dumps({"time": time.monotonic(), "argv": sys.argv}) + "\\n")
number = len(starts.read_text().splitlines())
plan = (folder / f"{name}.plan").read_text().split()
action = plan[min(number, len(plan)) - 1]
print(f"start {number}: {action}", flush=True)
if action == "crash":
    sys.exit(3)
if action == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if action == "exit0":
    sys.exit(0)
if action == "dds-kill":  # a real DDS participant, killed: its shared memory stays behind
    import rclpy
    rclpy.init(args=[])
    node = rclpy.create_node("stand_in")
    from test.support.dds_memory import segments_of
    segments = sorted(str(path) for path in segments_of(os.getpid()))
    (folder / f"{name}.segments").write_text("\\n".join(segments))
    os.kill(os.getpid(), signal.SIGKILL)
while True:
    time.sleep(0.02)
"""


class StandIns:
    """Stand-in nodes with per-node plans, and a launcher over them."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        (folder / "stand_in_node.py").write_text(STAND_IN)
        monkeypatch.setenv("STAND_IN_DIR", str(folder))
        # The stand-in imports itself from the folder and test.support from the repository.
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPOSITORY)]))
        self.run_dir = folder / "runs" / "1-test"
        self.output = io.StringIO()

    def launcher(
        self, plans: dict[str, str], process_stop: StopRequest | None = None, **settings: Any
    ) -> Launcher:
        for name, plan in plans.items():
            (self.folder / f"{name}.plan").write_text(plan)
        nodes = tuple(NodeDescription(name, name, "stand_in_node", {}) for name in plans)
        bringup = Bringup(self.folder / "c.yaml", nodes, LauncherSettings(**settings))
        launch_plan = LaunchPlan(bringup, "/", self.run_dir, self.folder / "parameters.yaml")
        return Launcher(launch_plan, self.output, process_stop=process_stop)

    def starts(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / f"{name}.starts"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def run(
        self,
        launcher: Launcher,
        until: Callable[[], bool],
        then: Callable[[], None] | None = None,
        timeout: float = 20.0,
    ) -> int:
        """Runs the launcher in this (main) thread; once ``until`` holds, calls ``then``
        (default: asks the launcher to stop)."""
        finished = threading.Event()

        def stop_when_done() -> None:
            if wait_until(lambda: finished.is_set() or until(), timeout) and then is not None:
                then()
            else:
                launcher.request_stop("test done")

        stopper = threading.Thread(target=stop_when_done, daemon=True)
        stopper.start()
        try:
            return launcher.run(duration=timeout + 10)
        finally:
            finished.set()
            stopper.join()


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIns:
    return StandIns(tmp_path, monkeypatch)


def test_a_dead_node_is_restarted_with_backoff_and_resumes_from_the_run_folder(
    stand_ins: StandIns,
):
    launcher = stand_ins.launcher(
        {"alpha": "crash kill run", "beta": "run"}, restart_delay=0.3, restart_delay_max=10.0
    )
    code = stand_ins.run(launcher, lambda: "start 3: run" in stand_ins.output.getvalue())
    output = stand_ins.output.getvalue()

    assert code == 0, output
    died = r"\[launch\] alpha died \(exit code 3\) after [\d.]+ s; restart 1 in 0.3 s"
    assert re.search(died, output), output
    assert re.search(r"alpha died \(killed by SIGKILL\) after [\d.]+ s; restart 2 in 0.6 s", output)
    restarted_line = (
        rf"alpha restarted \(pid (\d+)\) with resume_from={re.escape(str(stand_ins.run_dir))}"
    )
    pids = re.findall(restarted_line, output)
    starts = stand_ins.starts("alpha")
    assert len(pids) == 2 and len(starts) == 3
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, f"restarts came sooner than the backoff: {gaps}"
    first, *restarted = [" ".join(start["argv"]) for start in starts]
    assert f"run_dir:={stand_ins.run_dir}" in first and "resume_from" not in first
    assert all(f"resume_from:={stand_ins.run_dir}" in argv for argv in restarted)
    assert len(stand_ins.starts("beta")) == 1, "the other node was left alone"
    assert "all 2 nodes stopped cleanly" in output and "(restarts: alpha 2)" in output


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="Linux shared memory only")
def test_a_killed_node_s_shared_memory_is_freed_before_it_is_restarted(
    stand_ins: StandIns, monkeypatch: pytest.MonkeyPatch, domain_id: int
):
    """A node killed with its DDS participant up leaves a 16 MiB segment in /dev/shm; the
    launcher frees it when it sees the death, so a crash loop cannot fill the memory."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    launcher = stand_ins.launcher({"crashy": "dds-kill run"}, restart_delay=0.1)
    listed = stand_ins.folder / "crashy.segments"
    code = stand_ins.run(launcher, until=lambda: len(stand_ins.starts("crashy")) >= 2, timeout=60)
    assert code == 0, stand_ins.output.getvalue()
    segments = [Path(line) for line in listed.read_text().splitlines()]
    assert segments, "the participant held no shared-memory segment"
    assert not any(path.exists() for path in segments), segments
    output = stand_ins.output.getvalue()
    died = output.index("crashy died (killed by SIGKILL)")
    freed = output.find("of shared memory left by dead Fast DDS processes", died)
    assert died < freed < output.index("crashy restarted"), output


def test_a_node_that_keeps_dying_stops_the_launch_after_max_restarts(stand_ins: StandIns):
    launcher = stand_ins.launcher(
        {"alpha": "crash", "beta": "run"}, restart_delay=0.05, max_restarts=2
    )
    code = stand_ins.run(launcher, lambda: False)
    output = stand_ins.output.getvalue()
    assert code == 1, output
    assert "alpha died (exit code 3)" in output
    assert "giving up: it was restarted 2 times within 300 s" in output
    assert len(stand_ins.starts("alpha")) == 3
    assert re.search(r"beta exited \(exit code 0\) [\d.]+ s after SIGINT", output), output


def test_with_restart_off_a_death_stops_the_launch(stand_ins: StandIns):
    launcher = stand_ins.launcher({"alpha": "kill", "beta": "run"}, restart=False)
    code = stand_ins.run(launcher, lambda: False)
    output = stand_ins.output.getvalue()
    assert code == 1, output
    assert "alpha died (killed by SIGKILL)" in output and "restart is off" in output
    assert len(stand_ins.starts("alpha")) == 1


def test_ctrl_c_during_a_backoff_wait_restarts_nothing(stand_ins: StandIns):
    launcher = stand_ins.launcher({"alpha": "crash run", "beta": "run"}, restart_delay=5.0)

    code = stand_ins.run(
        launcher,
        lambda: "restart 1 in 5.0 s" in stand_ins.output.getvalue(),
        then=lambda: os.kill(os.getpid(), signal.SIGINT),  # as Ctrl-C: the launcher's handler
    )
    output = stand_ins.output.getvalue()
    assert code == 0, output
    assert "stopping: Interrupt" in output
    assert "restarted" not in output and len(stand_ins.starts("alpha")) == 1
    assert "(restarts" not in output


def test_a_node_that_exits_0_alone_is_restarted_not_silently_removed(stand_ins: StandIns):
    """An outsider's call of one node's control shutdown exits it with 0: not a finished launch."""
    launcher = stand_ins.launcher(
        {"alpha": "exit0 run", "beta": "run"}, restart_delay=0.05, stack_shutdown_window=0.3
    )
    code = stand_ins.run(launcher, lambda: "start 2: run" in stand_ins.output.getvalue())
    output = stand_ins.output.getvalue()
    assert code == 0, output
    assert "alpha finished (exit code 0); restarted unless every node stops within 0.3 s" in output
    assert re.search(r"alpha exited 0 on its own after [\d.]+ s; restart 1 in 0.1 s", output)
    assert len(stand_ins.starts("alpha")) == 2 and len(stand_ins.starts("beta")) == 1


def test_every_node_exiting_0_together_ends_the_launch_cleanly(stand_ins: StandIns):
    launcher = stand_ins.launcher({"alpha": "exit0", "beta": "exit0"}, stack_shutdown_window=3.0)
    code = stand_ins.run(launcher, lambda: False)
    output = stand_ins.output.getvalue()
    assert code == 0, output
    assert "stopping: every node shut down" in output
    assert "restart 1" not in output
    assert len(stand_ins.starts("alpha")) == 1 and len(stand_ins.starts("beta")) == 1


def _checkpoint(store: CheckpointStore, label: str, content: str) -> Path:
    def write(folder: Path) -> None:
        (folder / "state.txt").write_text(content)

    return store.save(write, label)


def test_a_crash_loop_keeps_the_last_checkpoint_from_before_the_first_crash(stand_ins: StandIns):
    store = CheckpointStore(stand_ins.run_dir / "alpha" / "checkpoints", keep_last=2)
    _checkpoint(store, "periodic", "early")
    before = _checkpoint(store, "periodic", "before the crash")
    _checkpoint(store, "shutdown", "at the crash")  # written on the way out of the crash
    launcher = stand_ins.launcher({"alpha": "crash run", "beta": "run"}, restart_delay=0.05)
    code = stand_ins.run(launcher, lambda: "start 2: run" in stand_ins.output.getvalue())
    output = stand_ins.output.getvalue()
    assert code == 0, output
    assert f"pinned {before}" in output
    for number in range(6):  # the crash loop goes on writing shutdown checkpoints
        _checkpoint(store, "shutdown", f"loop {number}")
    kept = store.checkpoints()
    assert before in kept and (before / "state.txt").read_text() == "before the crash"
    assert len(kept) == 3, kept  # keep_last=2 newest, plus the pinned one
    assert store.pinned() == {before.name: "last checkpoint before alpha first died"}


def test_the_run_folder_and_the_ros_logs_are_private_to_the_user(stand_ins: StandIns):
    stand_ins.run_dir.mkdir(parents=True)
    launcher = stand_ins.launcher({"alpha": "run"})
    assert stand_ins.run(launcher, lambda: len(stand_ins.starts("alpha")) == 1) == 0
    argv = " ".join(stand_ins.starts("alpha")[0]["argv"])
    assert f"run_dir:={stand_ins.run_dir}" in argv
    log_dir = stand_ins.run_dir / "ros_logs"
    assert log_dir.is_dir() and stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((stand_ins.folder / "alpha.starts").stat().st_mode) == 0o600


@pytest.mark.e2e
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
    # The agent logs every report_period; its /diagnostics (1 s) can come first.
    assert wait_until(lambda: "frames received" in launcher.output(), 30), launcher.output()

    code = launcher.stop(signal.SIGINT, timeout=30)
    assert code == 0, launcher.output()
    assert "all 5 nodes stopped cleanly" in launcher.output()
    assert not [name for name, pid in pids.items() if group_exists(pid)], "leftover processes"


@pytest.mark.e2e
def test_robot_bringup_drives_the_world_through_cmd_vel_with_the_same_agent(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    config = config_for_test("robot", tmp_path, free_udp_port(), free_tcp_port())
    poses = probe.subscribe(PoseStamped, "world/pose", 10)
    launcher = launch(spawn, config, "--duration", "25")

    output = launcher.wait_for_output("5 nodes running", timeout=30)
    assert set(started_pids(output)) == {"sim_world", "camera_sensor", "safety", "agent", "trainer"}
    assert wait_until(lambda: len(poses) > 5 and distance_moved(poses.messages) > 0.5, 40), (
        f"pose did not move; output:\n{launcher.output()}"
    )
    assert launcher.popen.wait(timeout=60) == 0, launcher.output()
    assert "25 s passed" in launcher.output()
    assert not [name for name, pid in started_pids(output).items() if group_exists(pid)]


@pytest.mark.e2e
def test_nodes_stop_when_the_launcher_is_killed_outright(
    spawn, tmp_path, free_udp_port, free_tcp_port
):
    """SIGKILL gives the launcher no chance to stop its nodes; the kernel's parent-death signal
    must, or they would run on in their own process groups."""
    config = config_for_test("robot", tmp_path, free_udp_port(), free_tcp_port())
    launcher = launch(spawn, config, "--duration", "120")
    pids = started_pids(launcher.wait_for_output("5 nodes running", timeout=30))
    assert len(pids) == 5
    os.kill(launcher.popen.pid, signal.SIGKILL)  # the launcher process only, not its group
    assert wait_until(lambda: not [p for p in pids.values() if group_exists(p)], 30), (
        f"left running: {[name for name, pid in pids.items() if group_exists(pid)]}"
    )


@pytest.mark.e2e
def test_a_bad_config_is_refused_before_anything_starts(spawn, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("agnet:\n  ros__parameters: {}\n")
    launcher = launch(spawn, config)
    assert launcher.popen.wait(timeout=30) == 2
    assert "unknown node 'agnet'" in launcher.output()
    assert "started" not in launcher.output()


@pytest.mark.e2e
def test_a_node_shut_down_by_an_outsider_is_restarted_not_silently_removed(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    """Anyone in the domain may call /<node>/control/shutdown; the launch must not go on
    without that node (issue 10)."""
    config = config_for_test(
        "robot", tmp_path, free_udp_port(), free_tcp_port(),
        {"agent": {"mind": "autoencoder"}, "trainer": {"mind": "autoencoder"}},
    )  # fmt: skip
    launcher = launch(spawn, config, "--duration", "90")
    pids = started_pids(launcher.wait_for_output(" nodes running for", timeout=60))
    client: Any = probe.node.create_client(Trigger, "/camera_sensor/control/shutdown")
    assert client.wait_for_service(timeout_sec=30.0)
    done = threading.Event()
    client.call_async(Trigger.Request()).add_done_callback(lambda _: done.set())
    assert done.wait(10.0)
    output = launcher.wait_for_output("camera_sensor restarted (pid", timeout=30)
    assert "camera_sensor finished (exit code 0); restarted unless every node stops" in output
    assert re.search(r"camera_sensor exited 0 on its own after [\d.]+ s; restart 1", output)
    restarted = int(re.findall(r"camera_sensor restarted \(pid (\d+)\)", output)[-1])
    assert restarted != pids["camera_sensor"] and group_exists(restarted)
    # Up again (its handlers installed) before the launch is stopped.
    assert wait_until(lambda: launcher.output().count("[camera_sensor] [INFO] capturing") == 2, 30)
    assert launcher.stop(signal.SIGINT, timeout=30) == 0, launcher.output()


TWO_NODE_STACK = """\
pamiq_launcher:
  ros__parameters: {{shutdown_timeout: 20.0, stack_shutdown_window: 10.0}}
osc_actuator:
  ros__parameters: {{port: {port}, report_period: 1.0}}
agent:
  ros__parameters: {{mind: autoencoder, report_period: 1.0}}
"""


def _verb(ros_env: dict[str, str], *arguments: str) -> dict[str, dict[str, Any]]:
    """Runs ``pamiq-ros VERB ...``; returns each answering node's reply (JSON, or the text)."""
    result = subprocess.run(
        [sys.executable, "-m", "pamiq_ros.cli", *arguments, "--discovery-timeout", "30"],
        env=ros_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result
    replies = {}
    for line in result.stdout.splitlines():
        node, _, message = line.partition(": ok: ")
        replies[node] = json.loads(message) if message.startswith("{") else {"text": message}
    return replies


@pytest.mark.e2e
def test_two_namespaced_stacks_in_one_domain_keep_apart(
    spawn, probe: RosProbe, ros_env, tmp_path, free_udp_port
):
    """Each stack's file keys match under its namespace (the port set there is used), each
    agent's cmd_vel reaches only its own actuator, and each verb only its own namespace."""
    launchers, ports = {}, {}
    for robot in ("robot1", "robot2"):
        ports[robot] = free_udp_port()
        config = tmp_path / robot / "stack.yaml"
        config.parent.mkdir()
        config.write_text(TWO_NODE_STACK.format(port=ports[robot]))
        launchers[robot] = spawn(
            robot, launch_command(config, "--namespace", robot, "--duration", "150")
        )
    for robot, launcher in launchers.items():
        launcher.wait_for_output(f"namespace /{robot}", timeout=30)

    both = "agent,osc_actuator"
    paused = _verb(ros_env, "pause", "--namespace", "/robot1", "--nodes", both)
    assert set(paused) == {"/robot1/agent", "/robot1/osc_actuator"}, paused
    status = _verb(ros_env, "status", "--nodes", ",".join(
        f"/{robot}/{node}" for robot in ports for node in both.split(",")
    ))  # fmt: skip
    for robot, port in ports.items():
        actuator = status[f"/{robot}/osc_actuator"]
        assert actuator["destination"] == f"127.0.0.1:{port}", actuator  # the file's port
        assert status[f"/{robot}/agent"]["paused"] is (robot == "robot1"), status
        assert actuator["paused"] is (robot == "robot1"), status
        publishers = probe.node.get_publishers_info_by_topic(f"/{robot}/cmd_vel")
        subscribers = probe.node.get_subscriptions_info_by_topic(f"/{robot}/cmd_vel")
        assert {(info.node_namespace, info.node_name) for info in publishers} == {
            (f"/{robot}", "agent")
        }
        assert {(info.node_namespace, info.node_name) for info in subscribers} == {
            (f"/{robot}", "osc_actuator")
        }

    # robot2's agent may not have acted yet when the first status was read (seen once under load).
    def robot2_actions() -> int:
        return int(_verb(ros_env, "status", "--nodes", "/robot2/osc_actuator")[
            "/robot2/osc_actuator"]["actions"])  # fmt: skip

    assert wait_until(lambda: robot2_actions() > 0, 30), "robot2's agent drives its actuator"
    assert not probe.node.get_publishers_info_by_topic("/cmd_vel")

    _verb(ros_env, "shutdown", "--namespace", "/robot1", "--nodes", both)
    assert launchers["robot1"].popen.wait(timeout=60) == 0, launchers["robot1"].output()
    assert "stopping: every node shut down" in launchers["robot1"].output()
    assert launchers["robot2"].is_running(), "a verb for /robot1 reached /robot2"
    launchers["robot2"].signal_group(signal.SIGINT)  # a terminal's Ctrl-C, twice
    time.sleep(0.2)
    launchers["robot2"].signal_group(signal.SIGINT)
    assert launchers["robot2"].popen.wait(timeout=60) == 0, launchers["robot2"].output()
    output = launchers["robot2"].output()
    assert "all 2 nodes stopped cleanly" in output
    assert re.search(r"agent exited \(exit code 0\) [\d.]+ s after SIGINT", output), output


@pytest.mark.parametrize("whose", ["process", "library"])
def test_a_late_second_ctrl_c_cannot_kill_a_launch_that_stopped(stand_ins: StandIns, whose: str):
    """A terminal's double Ctrl-C can land after every node has stopped. ``pamiq-ros launch``
    hands the launcher the process's stop request (the nodes' mechanism): its handlers stay
    installed to the end, so that press cannot kill a launch that stopped cleanly. A library
    caller gets its own handlers back after the run."""
    process_stop = StopRequest() if whose == "process" else None
    launcher = stand_ins.launcher({"alpha": "run"}, process_stop=process_stop)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def ctrl_c_once_running() -> None:
        wait_until(lambda: "start 1: run" in stand_ins.output.getvalue(), 20)  # handler set
        os.kill(os.getpid(), signal.SIGINT)

    stopper = threading.Thread(target=ctrl_c_once_running, daemon=True)
    stopper.start()
    try:
        code = launcher.run(duration=30)
        stopper.join()
        output = stand_ins.output.getvalue()
        assert code == 0, output
        assert "stopping: Interrupt" in output and "all 1 nodes stopped cleanly" in output
        if process_stop is None:
            assert {sig: signal.getsignal(sig) for sig in before} == before
        else:
            os.kill(os.getpid(), signal.SIGINT)  # the second press, after the stop
            time.sleep(0.1)  # raised KeyboardInterrupt here if the default handler were back
            assert process_stop.signals == ["SIGINT", "SIGINT"]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
