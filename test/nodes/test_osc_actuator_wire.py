"""End-to-end, judged by an OSC implementation the project did not write: liblo's ``oscdump``.

The actuator and ``oscdump`` run in a private network namespace (``test.support.osc_wire``);
``oscdump`` stamps each message on arrival, so addresses, argument types, the per-topic
deadman, the release hold and the releases of a shutdown are read off the wire by another
implementation.
"""

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES, BUTTON_ADDRESSES
from test.support.osc_wire import DEADMAN_TIMEOUT, RELEASE_HOLD

pytestmark = pytest.mark.e2e

NTP_TO_UNIX_S = 2_208_988_800
SLACK = 0.3
"""Deadman check period (0.05 s), DDS and process scheduling on a loaded 2-core machine."""


@dataclass(frozen=True)
class WireMessage:
    time: float  # Unix seconds, oscdump's arrival stamp
    address: str
    types: str
    value: str


def parse_oscdump(text: str) -> list[WireMessage]:
    messages = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        seconds, fraction = (int(part, 16) for part in parts[0].split("."))
        stamp = seconds - NTP_TO_UNIX_S + fraction / 2**32
        messages.append(WireMessage(stamp, parts[1], parts[2], parts[3]))
    return messages


def between(messages: list[WireMessage], start: float, end: float) -> list[WireMessage]:
    return [message for message in messages if start <= message.time < end]


def centred(message: WireMessage) -> bool:
    return message.address in AXIS_ADDRESSES and float(message.value) == 0.0


def released(message: WireMessage) -> bool:
    return message.address in BUTTON_ADDRESSES and message.value == "0"


@pytest.fixture
def wire(tmp_path: Path, ros_env: dict[str, str]) -> tuple[list[WireMessage], dict[str, float]]:
    if shutil.which("oscdump") is None:
        pytest.skip("liblo-tools' oscdump is not installed (make setup installs it as root)")
    probe = subprocess.run(
        ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private network namespace: {probe.stderr.decode().strip()}")
    out = tmp_path / "wire"
    env = dict(ros_env, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    run = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "test.support.osc_wire", str(out)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    log = (out / "osc_actuator.log").read_text() if (out / "osc_actuator.log").exists() else ""
    assert run.returncode == 0, f"{run.stderr.decode()}\nactuator:\n{log}"
    return parse_oscdump((out / "oscdump.txt").read_text()), json.loads(
        (out / "script.json").read_text()
    )


def test_oscdump_sees_vrchat_addresses_types_release_hold_and_per_topic_deadman(wire):
    messages, script = wire

    # Addresses and OSC types: axes as floats, buttons as ints.
    motion = between(messages, script["motion"], script["jump_run"])
    assert [(m.address, m.types, float(m.value)) for m in motion] == [
        ("/input/Vertical", "f", 0.5),
        ("/input/Horizontal", "f", -0.25),
        ("/input/LookHorizontal", "f", -0.5),
    ]
    buttons = between(messages, script["jump_run"], script["jump_again"])
    assert [(m.address, m.types, m.value) for m in buttons] == [
        ("/input/Run", "i", "1"),
        ("/input/Jump", "i", "1"),
    ]

    # A jump right after a jump: Jump 0, then Jump 1 no sooner than the hold after it.
    again = between(messages, script["jump_again"], script["cmd_vel_last"])
    jumps = [m for m in again if m.address == "/input/Jump"]
    assert [m.value for m in jumps] == ["0", "1"]
    hold = jumps[1].time - jumps[0].time
    assert RELEASE_HOLD - 0.005 <= hold <= RELEASE_HOLD + 0.1, f"hold on the wire {hold:.4f} s"

    # cmd_vel silent, vrchat_input alive: the axes are centred, the buttons are not released.
    window = between(messages, script["cmd_vel_last"], script["vrchat_input_last"])
    axes_centred = [m for m in window if centred(m)]
    assert {m.address for m in axes_centred} == set(AXIS_ADDRESSES)
    axes_delay = axes_centred[0].time - script["cmd_vel_last"]
    assert DEADMAN_TIMEOUT - 0.05 <= axes_delay <= DEADMAN_TIMEOUT + SLACK, axes_delay
    # (Run is held by every vrchat_input of the script; Jump 0 is the release of a jump.)
    run_released = [m for m in window if m.address == "/input/Run" and released(m)]
    assert not run_released, "buttons released while vrchat_input came"
    assert ("/input/Run", "1") in [
        (m.address, m.value) for m in window if m.time > axes_centred[0].time
    ]

    # vrchat_input silent, cmd_vel alive: the buttons are released, the axes are not centred.
    window = between(messages, script["vrchat_input_last"], script["end"])
    buttons_released = [m for m in window if released(m)]
    assert {m.address for m in buttons_released} == set(BUTTON_ADDRESSES)
    buttons_delay = buttons_released[0].time - script["vrchat_input_last"]
    assert DEADMAN_TIMEOUT - 0.05 <= buttons_delay <= DEADMAN_TIMEOUT + SLACK, buttons_delay
    assert not [m for m in window if centred(m)], "axes centred while cmd_vel came"
    # Shutdown through the control service (cmd_vel came until just before): every input
    # released by the time the answer arrived, not at the SIGTERM the node sends itself half a
    # second later; again on close; nothing else after; then exit 0.
    assert script["actuator_exit_code"] == 0
    after = between(messages, script["shutdown_asked"], float("inf"))
    first = next(m for m in after if m.address == "/input/Vertical" and centred(m))
    assert first.time <= script["shutdown_answered"], (
        f"released {first.time - script['shutdown_answered']:.3f} s after the answer"
    )
    rest = [m for m in after if m.time >= first.time]
    assert all(centred(m) or released(m) for m in rest), rest
    for address in (*AXIS_ADDRESSES, *BUTTON_ADDRESSES):
        assert len([m for m in rest if m.address == address]) >= 2, address  # answer, close
    print(
        f"oscdump: release hold {hold * 1000:.1f} ms; deadman cmd_vel {axes_delay * 1000:.0f} ms, "
        f"vrchat_input {buttons_delay * 1000:.0f} ms"
    )
