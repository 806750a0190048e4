"""Fixtures shared by the suite: a DDS domain per test, node processes, a probe node, ports."""

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from itertools import count
from pathlib import Path

import pytest

from pamiq_ros.bringup import shared_memory
from pamiq_ros.bringup.description import loopback_dds_environment
from test.support.processes import NodeProcess, node_command
from test.support.ros_probe import RosProbe

# Nothing this suite starts may reach beyond loopback, nor listen beyond it: the loopback
# profile binds every DDS socket of the tests' processes to 127.0.0.1.
os.environ.update(loopback_dds_environment())
os.environ.pop("ROS_STATIC_PEERS", None)
os.environ.pop("RMW_IMPLEMENTATION", None)
os.environ["PYTHONUNBUFFERED"] = "1"

# Domain IDs 1..200 keep Fast DDS's port arithmetic inside the valid range. Each test run starts
# at a different place (from the PID) and each test takes the next one, so concurrent runs on one
# machine and consecutive tests of one run do not see each other.
_DOMAIN_IDS = count(os.getpid() % 200)


@pytest.fixture
def domain_id() -> int:
    return 1 + next(_DOMAIN_IDS) % 200


@pytest.fixture
def ros_env(domain_id: int, tmp_path: Path) -> dict[str, str]:
    """The environment for node processes of this test."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env.update(loopback_dds_environment())
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    return env


@pytest.fixture
def spawn(ros_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Starts processes; every one is stopped by its process group when the test ends."""
    started: list[NodeProcess] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def start(name: str, command: Sequence[str], env: dict[str, str] | None = None) -> NodeProcess:
        process = NodeProcess(name, command, env or ros_env, log_dir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(timeout=10.0)


@pytest.fixture
def spawn_node(spawn: Callable[..., NodeProcess]) -> Callable[..., NodeProcess]:
    """Starts one of the project's nodes: ``spawn_node("agent", {"rate_hz": 10.0})``."""

    def start(
        executable: str,
        parameters: dict[str, object] | None = None,
        params_file: Path | None = None,
        name: str | None = None,
    ) -> NodeProcess:
        command = node_command(executable, parameters, params_file, name)
        return spawn(name or executable, command)

    return start


@pytest.fixture
def probe(domain_id: int) -> Iterator[RosProbe]:
    probe = RosProbe(domain_id)
    yield probe
    probe.close()


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_udp_port() -> Callable[[], int]:
    return lambda: _free_port(socket.SOCK_DGRAM)


@pytest.fixture
def free_tcp_port() -> Callable[[], int]:
    return lambda: _free_port(socket.SOCK_STREAM)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Frees the Fast DDS shared memory that killed processes of earlier runs left behind.

    A node the suite kills on purpose leaves a 16 MiB segment in /dev/shm, which is memory; on a
    machine that ran the suite again and again those filled it until nodes could not start.
    """
    shared_memory.sweep()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Frees what this run's killed processes left, and says how much that was."""
    report = shared_memory.sweep()
    terminalreporter.write_line(f"DDS shared memory after the run: {report.describe()}")
