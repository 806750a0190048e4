"""Network exposure: every socket the stack opens binds to loopback unless a parameter says so.

The sim stack is launched as a user would (``pamiq-ros launch``) and every socket of every one
of its processes is listed once all nodes report: DDS (through the launcher's loopback Fast DDS
profile), the sim world's OSC and video servers, the camera's stream client and the actuator's
OSC sender must all be bound to 127.0.0.0/8 and talk only to loopback peers. The actuator is then
pointed at another loopback address, 127.0.0.2, and must send there and nowhere else.
"""

import dataclasses
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist

from pamiq_ros.bringup.description import (
    FASTDDS_PROFILE_VARIABLE,
    LOOPBACK_PROFILE,
    LauncherSettings,
    load_bringup,
)
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.cli import settings_type_of
from test.support.configs import CONFIG_DIR, config_for_test, launch_command
from test.support.diagnostics import figure, statuses
from test.support.processes import NodeProcess, node_command, wait_until
from test.support.ros_probe import RosProbe

STACK_NODES = ("sim_world", "camera_sensor", "osc_actuator", "agent", "trainer")
REPORT_EVERY_SECOND = {"report_period": 1.0}
SOCKET_SAMPLES = 3  # sockets come and go (senders open lazily): look a few times, a second apart


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def started_pids(launcher_output: str) -> dict[str, int]:
    """Each node's pid (also its process group) as the launcher reported it."""
    pids = {
        name: int(pid)
        for name, pid in re.findall(r"\[launch\] started (\w+) \(pid (\d+)\)", launcher_output)
    }
    assert set(pids) == set(STACK_NODES), launcher_output
    return pids


def sockets_of(pid: int) -> list[tuple[str, Any]]:
    """Every inet socket of ``pid`` and of everything it started, with the owner's description."""
    found = []
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [(f"pid {process.pid} ({process.name()})", conn) for conn in connections]
    return found


def exposures(node: str, pid: int) -> tuple[list[str], int]:
    """What of ``node``'s sockets is not on loopback, and how many sockets it has."""
    problems = []
    owned = sockets_of(pid)
    for owner, conn in owned:
        kind = "udp" if conn.type == socket.SOCK_DGRAM else "tcp"
        # A socket with no local address yet (created, not bound, never used) cannot receive
        # or send; it shows up bound once it does, in a later sample.
        if conn.laddr and not is_loopback(conn.laddr.ip):
            problems.append(f"{node} {owner}: {kind} bound to {conn.laddr.ip}:{conn.laddr.port}")
        if conn.raddr and not is_loopback(conn.raddr.ip):
            peer = f"{conn.raddr.ip}:{conn.raddr.port}"
            problems.append(f"{node} {owner}: {kind} {conn.laddr} connected to {peer}")
    return problems, len(owned)


def test_the_defaults_keep_every_socket_on_loopback(monkeypatch):
    """Only a parameter opens a socket beyond loopback: every default host is 127.0.0.1."""
    hosts = {
        f"{executable}.{field.name}": field.default
        for executable in NODE_EXECUTABLES
        for field in dataclasses.fields(settings_type_of(executable))
        if field.name.endswith("host")
    }
    assert {"sim_world.osc_host", "sim_world.video_host", "osc_actuator.host"} <= set(hosts)
    assert all(value == "127.0.0.1" for value in hosts.values()), hosts
    assert LauncherSettings().discovery_range == "LOCALHOST"
    # A config without a launcher section gets the loopback Fast DDS profile.
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    minimal = load_bringup(CONFIG_DIR / "sim.yaml")
    assert minimal.node_environment({})[FASTDDS_PROFILE_VARIABLE] == str(LOOPBACK_PROFILE)


@pytest.mark.e2e
def test_every_socket_of_the_launched_sim_stack_is_bound_to_loopback(
    spawn, probe: RosProbe, tmp_path, free_udp_port, free_tcp_port
):
    udp_port, tcp_port = free_udp_port(), free_tcp_port()
    overrides = {node: REPORT_EVERY_SECOND for node in STACK_NODES}
    config = config_for_test("sim", tmp_path, udp_port, tcp_port, overrides)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 200)
    launcher = spawn("launch", launch_command(config))
    launcher.wait_for_output("5 nodes running", timeout=30)
    assert "every DDS socket binds to 127.0.0.1" in launcher.output(), launcher.output()
    pids = started_pids(launcher.output())
    # The probe is a plain LOCALHOST participant: hearing every node also proves the profiled
    # nodes still discover ordinary loopback peers.
    assert wait_until(lambda: all(statuses(diagnostics, n) for n in STACK_NODES), 60), (
        {n: len(statuses(diagnostics, n)) for n in STACK_NODES},
        launcher.output(),
    )
    # The actuator has sent OSC (its socket opens on the first send) and the camera is reading.
    assert wait_until(lambda: figure(diagnostics, "osc_actuator", "osc_sent", 0.0) > 0, 20), (
        launcher.output()
    )

    problems: set[str] = set()
    counts: dict[str, int] = dict.fromkeys(STACK_NODES, 0)
    local_ports: set[int] = set()
    for sample in range(SOCKET_SAMPLES):
        if sample:
            time.sleep(1.0)
        problems |= set(exposures("launcher", launcher.pid)[0])
        for node, pid in pids.items():
            found, count = exposures(node, pid)
            problems |= set(found)
            counts[node] = max(counts[node], count)
            local_ports |= {conn.laddr.port for _, conn in sockets_of(pid) if conn.laddr}
    assert not problems, "sockets beyond loopback:\n" + "\n".join(sorted(problems))
    # Not vacuous: every node has its DDS sockets, and the sim world's servers were seen.
    assert all(counts.values()), counts
    assert {udp_port, tcp_port} <= local_ports, (udp_port, tcp_port, sorted(local_ports))
    assert launcher.is_running(), launcher.output()


@pytest.fixture
def listeners(free_udp_port) -> Iterator[Callable[[], tuple[int, dict[str, socket.socket]]]]:
    """UDP sockets on one free port at 127.0.0.1 and 127.0.0.2 (never beyond loopback)."""
    with ExitStack() as stack:

        def open_listeners() -> tuple[int, dict[str, socket.socket]]:
            port = free_udp_port()
            opened = {}
            for address in ("127.0.0.1", "127.0.0.2"):
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                sock.bind((address, port))
                sock.setblocking(False)
                opened[address] = sock
            return port, opened

        yield open_listeners


def drain(sock: socket.socket) -> list[tuple[str, int]]:
    """The senders of every datagram waiting on ``sock``."""
    senders: list[tuple[str, int]] = []
    while True:
        try:
            _, sender = sock.recvfrom(65536)
        except BlockingIOError:
            return senders
        senders.append((str(sender[0]), int(sender[1])))


@pytest.mark.e2e
def test_the_actuator_sends_only_to_its_configured_host(
    spawn, ros_env, probe: RosProbe, listeners, tmp_path: Path
):
    port, listening = listeners()
    # As the launcher runs it: the loopback Fast DDS profile of a LOCALHOST deployment.
    env = load_bringup(CONFIG_DIR / "sim.yaml").node_environment(ros_env)
    command = node_command(
        "osc_actuator", {"host": "127.0.0.2", "port": port, "report_period": 1.0}
    )
    actuator: NodeProcess = spawn("osc_actuator", command, env)
    cmd_vel = probe.publisher(Twist, "cmd_vel", 10)
    forward = Twist()
    forward.linear.x = 1.0

    received: dict[str, list[tuple[str, int]]] = {address: [] for address in listening}

    def drive_until_packets() -> bool:
        cmd_vel.publish(forward)
        for address, sock in listening.items():
            received[address] += drain(sock)
        return len(received["127.0.0.2"]) >= 20

    assert wait_until(drive_until_packets, 30, interval=0.05), actuator.output()
    end = time.monotonic() + 1.0  # keep driving a while: nothing may reach the other address
    while time.monotonic() < end:
        drive_until_packets()
        time.sleep(0.05)
    assert received["127.0.0.1"] == [], received["127.0.0.1"][:5]

    sockets = sockets_of(actuator.pid)
    problems, _ = exposures("osc_actuator", actuator.pid)
    assert not problems, problems
    senders = set(received["127.0.0.2"])
    assert all(is_loopback(host) for host, _ in senders), senders
    local = {(conn.laddr.ip, conn.laddr.port) for _, conn in sockets if conn.laddr}
    assert senders <= local, (senders, sorted(local))
    assert actuator.is_running(), actuator.output()
