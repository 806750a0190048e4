"""Network profiles: the Fast DDS set-up a deployment's nodes run with, chosen in the config.

``pamiq_launcher.network_profile`` picks one:

- ``loopback`` (the default): this machine only. With ``discovery_range: LOCALHOST`` every DDS
  socket binds to 127.0.0.1 (``fastdds_loopback.xml``); another ``discovery_range`` keeps
  rmw_fastrtps's own transports (a ``FASTDDS_DEFAULT_PROFILES_FILE`` of the shell then applies,
  and the launcher says so loudly).
- ``lan``: other hosts on a wired network. UDP on every interface with Fast DDS's usual 64 KB
  messages (a large sample goes as IP fragments, which a clean link carries well), shared
  memory between processes of one host, discovery by multicast plus ``static_peers``.
- ``wifi``: lossy links (WiFi, a robot's radio). As ``lan``, but every UDP message fits one
  Ethernet frame (``WIFI_MESSAGE_BYTES``): no IP fragmentation, so one lost frame costs one
  small fragment's resend instead of a whole 64 KB message's (at 2 % loss a 64 KB message made
  of 45 frames is lost 60 % of the time, and its resends flooded the link); and writers send
  heartbeats every ``WIFI_HEARTBEAT_MS`` so losses are repaired in a tenth of a second instead
  of Fast DDS's 3 s.

The lan and wifi profiles are written as XML into a private folder of the user (one file per
profile and peer list) and handed to the nodes as ``FASTDDS_DEFAULT_PROFILES_FILE`` with
``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT`` (rmw_fastrtps leaves the profile alone). No ROS
import here.
"""

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

NETWORK_PROFILES = ("loopback", "lan", "wifi")
FASTDDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
DISCOVERY_MULTICAST = "239.255.0.1"
"""The DDS standard's discovery multicast group, kept beside static peers."""

WIFI_MESSAGE_BYTES = 1400
"""Largest UDP message on the wifi profile: an Ethernet frame's 1500 bytes less IP/UDP headers
and room for tunnels (VPN, PPPoE)."""

WIFI_HEARTBEAT_MS = 100
"""How often a reliable writer asks its readers what they miss, on the wifi profile."""

SOCKET_BUFFER_BYTES = 4 << 20
"""UDP socket buffers asked for on lan and wifi (the kernel caps them at net.core.rmem_max and
wmem_max: raise those on both hosts for bursts of weights, see the README)."""

PEER_PARTICIPANTS = 32
"""Participants per peer address tried (one per ROS process on that host)."""

_NAMESPACE = "http://www.eprosima.com"


def _element(parent: ElementTree.Element, tag: str, text: str | None = None) -> ElementTree.Element:
    child = ElementTree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def _locator(parent: ElementTree.Element, address: str) -> None:
    _element(_element(_element(parent, "locator"), "udpv4"), "address", address)


def parse_peers(static_peers: str) -> list[str]:
    """The peer hosts of a ``static_peers`` setting (semicolon-separated, blanks ignored)."""
    return [peer.strip() for peer in static_peers.split(";") if peer.strip()]


def profile_xml(profile: str, peers: Sequence[str] = ()) -> str:
    """The Fast DDS XML of the ``lan`` or ``wifi`` profile, with ``peers`` as initial peers.

    Raises:
        ValueError: For another profile name.
    """
    if profile not in ("lan", "wifi"):
        raise ValueError(f"no generated XML for network profile {profile!r} (lan or wifi)")
    root = ElementTree.Element("dds", xmlns=_NAMESPACE)
    profiles = _element(root, "profiles")
    descriptors = _element(profiles, "transport_descriptors")
    udp = _element(descriptors, "transport_descriptor")
    _element(udp, "transport_id", f"pamiq_{profile}_udp")
    _element(udp, "type", "UDPv4")
    _element(udp, "sendBufferSize", str(SOCKET_BUFFER_BYTES))
    _element(udp, "receiveBufferSize", str(SOCKET_BUFFER_BYTES))
    _element(udp, "maxInitialPeersRange", str(PEER_PARTICIPANTS))
    if profile == "wifi":
        _element(udp, "maxMessageSize", str(WIFI_MESSAGE_BYTES))
    shm = _element(descriptors, "transport_descriptor")
    _element(shm, "transport_id", f"pamiq_{profile}_shm")
    _element(shm, "type", "SHM")
    _element(shm, "segment_size", str(16 << 20))
    participant = _element(profiles, "participant")
    participant.set("profile_name", f"pamiq_{profile}")
    participant.set("is_default_profile", "true")
    rtps = _element(participant, "rtps")
    builtin = _element(rtps, "builtin")
    initial = _element(builtin, "initialPeersList")
    for address in (DISCOVERY_MULTICAST, *peers):
        _locator(initial, address)
    transports = _element(rtps, "userTransports")
    _element(transports, "transport_id", f"pamiq_{profile}_shm")
    _element(transports, "transport_id", f"pamiq_{profile}_udp")
    _element(rtps, "useBuiltinTransports", "false")
    writer = _element(profiles, "data_writer")
    writer.set("profile_name", f"pamiq_{profile}_writer")
    writer.set("is_default_profile", "true")
    times = _element(writer, "times")
    heartbeat_ms = WIFI_HEARTBEAT_MS if profile == "wifi" else 1000
    period = _element(times, "heartbeat_period")
    _element(period, "sec", str(heartbeat_ms // 1000))
    _element(period, "nanosec", str((heartbeat_ms % 1000) * 1_000_000))
    reader = _element(profiles, "data_reader")
    reader.set("profile_name", f"pamiq_{profile}_reader")
    reader.set("is_default_profile", "true")
    _element(reader, "historyMemoryPolicy", "DYNAMIC")
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n{body}\n'


def profile_file(profile: str, peers: Sequence[str] = (), folder: Path | None = None) -> Path:
    """Writes the profile's XML (once per content) into a private folder; returns the file."""
    text = profile_xml(profile, peers)
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"pamiq_ros-fastdds-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} is not a private folder of this user")
    path = folder / f"{profile}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.xml"
    if not path.exists():
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    return path


def network_environment(profile: str, static_peers: str = "") -> dict[str, str]:
    """The DDS variables for the ``lan`` or ``wifi`` profile (its XML written if needed)."""
    return {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
        FASTDDS_PROFILE_VARIABLE: str(profile_file(profile, parse_peers(static_peers))),
    }


def shell_profile_warning(shell: Mapping[str, str], used: Mapping[str, str]) -> str:
    """A loud line when the shell holds a Fast DDS profiles file, saying what becomes of it.

    Returns:
        "" when the shell has none; else whether it is replaced or passed on to every node.
    """
    left = shell.get(FASTDDS_PROFILE_VARIABLE, "")
    if not left:
        return ""
    given = used.get(FASTDDS_PROFILE_VARIABLE, "")
    if given and given != left:
        return (
            f"WARNING: {FASTDDS_PROFILE_VARIABLE}={left} in your shell is IGNORED: the config's "
            f"network profile uses {given} (unset it, or pick the profile in the config)"
        )
    return (
        f"WARNING: {FASTDDS_PROFILE_VARIABLE}={left} from your shell is passed to every node "
        "and decides the DDS transports (not a pamiq_ros network profile)"
    )


def socket_buffer_warning(limits: Path = Path("/proc/sys/net/core")) -> str:
    """A line when the kernel caps UDP buffers below what lan and wifi ask for ("" if not).

    Capped buffers overflow when a weights chunk arrives as a burst of datagrams, and Fast DDS
    resends what was dropped: 3x the bytes on a clean link was measured with the default 208 KB.
    """
    short = []
    for name in ("rmem_max", "wmem_max"):
        try:
            value = int((limits / name).read_text())
        except (OSError, ValueError):
            continue
        if value < SOCKET_BUFFER_BYTES:
            short.append(f"net.core.{name}={value}")
    if not short:
        return ""
    return (
        f"WARNING: {', '.join(short)} caps the {SOCKET_BUFFER_BYTES >> 20} MiB UDP buffers this "
        "profile asks for; bursts of weights will overflow and be resent (sysctl -w "
        f"net.core.rmem_max={SOCKET_BUFFER_BYTES} net.core.wmem_max={SOCKET_BUFFER_BYTES})"
    )


def describe(profile: str, environment: Mapping[str, str]) -> str:
    """One line naming the profile in effect and what the nodes get (and a buffer warning)."""
    used = environment.get(FASTDDS_PROFILE_VARIABLE, "")
    details = {
        "loopback": "this machine only" if used else "rmw_fastrtps's own transports",
        "lan": "UDP on every interface, multicast discovery plus static peers",
        "wifi": f"UDP messages <= {WIFI_MESSAGE_BYTES} bytes (no IP fragmentation), "
        f"heartbeats every {WIFI_HEARTBEAT_MS} ms",
    }[profile]
    file = f", {FASTDDS_PROFILE_VARIABLE}={used}" if used else ""
    warning = socket_buffer_warning() if profile != "loopback" else ""
    return f"network profile {profile}: {details}{file}" + (f"\n{warning}" if warning else "")
