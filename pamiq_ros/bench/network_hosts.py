"""Two "hosts" on this machine: network namespaces joined by a veth pair, with packet loss.

Each host is a network namespace with only ``lo`` and one end of a veth pair (no route out:
nothing leaves the pair), and every process started in it gets its own host name (a UTS
namespace) and its own ``/dev/shm`` (a tmpfs in a private mount namespace), so pamiq_ros and
Fast DDS see two machines: no shared-memory path, no same-host shortcut. Loss is injected with
nftables (``numgen random mod 100 < N drop`` on the netdev ingress hook of each veth end, frame
by frame); ``tc netem`` is not in every kernel. Needs root (or CAP_NET_ADMIN and
CAP_SYS_ADMIN), ``ip`` (iproute2), ``nft`` (nftables) and ``unshare`` (util-linux):
:func:`missing_reason` says what is missing. Used by the multi-host test and
``pamiq_ros.bench.network``.
"""

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

SUBNET = "10.213.{block}.{host}"
"""Addresses of the pair: a private block no real network here uses."""

_ENTER_HOST = (
    'hostname "$0" && mount -t tmpfs -o mode=1777,size=512m pamiq_shm /dev/shm && exec "$@"'
)


def missing_reason() -> str:
    """Why namespaced hosts cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth and nftables need CAP_NET_ADMIN)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (Debian package {package}; `make setup` installs it as root)"
    probe = f"pqprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        inside = subprocess.run(
            ["ip", "netns", "exec", probe, "unshare", "--uts", "--mount", "--propagation",
             "private", "sh", "-c", _ENTER_HOST, "pqprobe", "true"],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if inside.returncode != 0:
        return f"cannot give a namespace its own host name and /dev/shm: {inside.stderr.strip()}"
    return ""


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    """One namespaced host: its namespace, host name, veth end and address."""

    namespace: str
    hostname: str
    device: str
    address: str


class NamespacedHosts:
    """Hosts (network namespaces) on one veth-joined link; a context manager that cleans up.

    Two hosts are joined by one veth pair; more hosts (a fleet) join a bridge in a namespace of
    its own, each by its own veth pair.
    """

    def __init__(self, count: int = 2, block: int = 0) -> None:
        """Creates ``count`` hosts ``host0``, ``host1``, ... with addresses 10.213.<block>.1.."""
        if not 2 <= count <= 8:
            raise ValueError(f"count must be 2..8, got {count}")
        tag = uuid.uuid4().hex[:6]
        self.hosts = [
            Host(
                f"pq{tag}h{index}",
                f"host{index}",
                f"pq{index}",
                SUBNET.format(block=block, host=index + 1),
            )
            for index in range(count)
        ]
        self._bridge = f"pq{tag}br" if count > 2 else ""
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        for host in self.hosts:
            _run("ip", "netns", "add", host.namespace)
            self._made.append(host.namespace)
            _run("ip", "-n", host.namespace, "link", "set", "lo", "up")
        if self._bridge:
            _run("ip", "netns", "add", self._bridge)
            self._made.append(self._bridge)
            _run("ip", "-n", self._bridge, "link", "add", "br0", "type", "bridge")
            _run("ip", "-n", self._bridge, "link", "set", "br0", "up")
        self.relink()

    def unlink(self) -> None:
        """Deletes every host's veth pair: the interfaces are gone (a USB adapter pulled)."""
        for host in self.hosts:  # a veth end goes with its peer: the second may be gone
            subprocess.run(["ip", "-n", host.namespace, "link", "del", host.device],
                           capture_output=True)  # fmt: skip

    def relink(self) -> None:
        """Makes the veth pairs (again), with the same names and addresses; loss is off."""
        if not self._bridge:
            first, second = self.hosts
            _run("ip", "link", "add", first.device, "netns", first.namespace, "type", "veth",
                 "peer", "name", second.device, "netns", second.namespace)  # fmt: skip
        else:
            for index, host in enumerate(self.hosts):
                port = f"port{index}"
                _run("ip", "link", "add", host.device, "netns", host.namespace, "type", "veth",
                     "peer", "name", port, "netns", self._bridge)  # fmt: skip
                _run("ip", "-n", self._bridge, "link", "set", port, "master", "br0", "up")
        for host in self.hosts:
            _run(
                "ip", "-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", host.device
            )
            _run("ip", "-n", host.namespace, "link", "set", host.device, "up", "multicast", "on")

    def set_loss(self, percent: float) -> None:
        """Drops ``percent`` % of the frames each host receives on the link (0: none, 100: all).

        The rule sits on the netdev ingress hook, which sees every Ethernet frame before IP
        reassembly, as a radio loses them (the output hook sees a datagram before it is cut into
        fragments, and would drop 64 KB at once, 2 % of datagrams rather than of frames).
        """
        for host in self.hosts:
            table = ["nft", "delete", "table", "netdev", "pamiq"]
            subprocess.run(["ip", "netns", "exec", host.namespace, *table], capture_output=True)
            if percent <= 0:
                continue
            match = "" if percent >= 100 else f"numgen random mod 100 < {round(percent)} "
            rules = (
                "table netdev pamiq {\n chain in {\n"
                f'  type filter hook ingress device "{host.device}" priority 0;\n'
                f"  {match}drop\n }}\n}}\n"
            )
            done = subprocess.run(
                ["ip", "netns", "exec", host.namespace, "nft", "-f", "-"],
                input=rules, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"nft in {host.namespace} failed: {done.stderr.strip()}")

    def counters(self, index: int) -> dict[str, int]:
        """Bytes and packets host ``index`` sent and received on its veth end."""
        host = self.hosts[index]
        shown = json.loads(
            _run("ip", "-n", host.namespace, "-s", "-j", "link", "show", host.device)
        )
        stats = shown[0]["stats64"]
        # UDP datagrams the host's sockets had no room for (a receive buffer overflowed).
        snmp = _run("ip", "netns", "exec", host.namespace, "cat", "/proc/net/snmp").splitlines()
        udp = [line.split()[1:] for line in snmp if line.startswith("Udp:")]
        udp_figures = dict(zip(udp[0], udp[1], strict=False)) if len(udp) == 2 else {}
        return {
            "tx_bytes": stats["tx"]["bytes"], "tx_packets": stats["tx"]["packets"],
            "rx_bytes": stats["rx"]["bytes"], "rx_packets": stats["rx"]["packets"],
            "udp_receive_buffer_errors": int(udp_figures.get("RcvbufErrors", 0)),
        }  # fmt: skip

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run on host ``index``: its network, its host name, its own ``/dev/shm``."""
        host = self.hosts[index]
        return [
            "ip", "netns", "exec", host.namespace,
            "unshare", "--uts", "--mount", "--propagation", "private",
            "sh", "-c", _ENTER_HOST, host.hostname, *argv,
        ]  # fmt: skip

    def close(self) -> None:
        """Deletes the namespaces (their veth ends go with them); idempotent."""
        while self._made:
            subprocess.run(["ip", "netns", "del", self._made.pop()], capture_output=True)

    def __enter__(self) -> "NamespacedHosts":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
