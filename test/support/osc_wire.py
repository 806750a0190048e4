"""Drives a real osc_actuator while liblo's ``oscdump`` (not our OSC code) records the wire.

Run inside a private network namespace (``unshare -n``), so that ``oscdump``, which can only
be told a port and then listens on every interface, hears loopback and nothing else::

    unshare -n python -m test.support.osc_wire OUT_DIR

It brings ``lo`` up, starts ``oscdump -L PORT`` and the actuator (``deadman_timeout`` 0.5 s,
``release_hold`` 0.05 s), plays a script of ``cmd_vel`` and ``vrchat_input`` messages through
rclpy, ends with a call of its shutdown service, and writes ``OUT_DIR/oscdump.txt`` (one line
per message: NTP timetag of arrival, address, types, values) and ``OUT_DIR/script.json`` (the
wall-clock time of each scripted moment, and the actuator's exit code). The test reads both;
nothing is judged here.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from geometry_msgs.msg import Twist
from pamiq_ros_interfaces.msg import VRChatInput
from std_srvs.srv import Trigger

from test.support.processes import node_command, wait_until
from test.support.ros_probe import RosProbe

PORT = 9000
DEADMAN_TIMEOUT = 0.5
RELEASE_HOLD = 0.05


def twist(forward: float, left: float, ccw: float) -> Twist:
    message = Twist()
    message.linear.x, message.linear.y, message.angular.z = forward, left, ccw
    return message


def main(out_dir: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_file = (out_dir / "oscdump.txt").open("wb")
    actuator_log = (out_dir / "osc_actuator.log").open("wb")
    dump = subprocess.Popen(["oscdump", "-L", str(PORT)], stdout=dump_file, start_new_session=True)
    parameters: dict[str, object] = {
        "port": PORT,
        "deadman_timeout": DEADMAN_TIMEOUT,
        "release_hold": RELEASE_HOLD,
    }
    actuator = subprocess.Popen(
        node_command("osc_actuator", parameters),
        stdout=actuator_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    probe = RosProbe(int(os.environ.get("ROS_DOMAIN_ID", "0")), name="osc_wire_probe")
    script: dict[str, float] = {}
    try:
        cmd_vel = probe.publisher(Twist, "cmd_vel", 10)
        buttons = probe.publisher(VRChatInput, "vrchat_input", 10)
        if not wait_until(
            lambda: cmd_vel.get_subscription_count() > 0 and buttons.get_subscription_count() > 0,
            30.0,
        ):
            raise SystemExit("the actuator did not subscribe within 30 s")
        time.sleep(0.5)

        # 1. Addresses and types: one motion, then Run and Jump.
        script["motion"] = time.time()
        cmd_vel.publish(twist(1.0, 0.5, 0.75))
        time.sleep(0.1)
        script["jump_run"] = time.time()
        buttons.publish(VRChatInput(jump=True, run=True))
        time.sleep(0.02)
        # 2. A second jump at once: release, then the press after the hold.
        script["jump_again"] = time.time()
        buttons.publish(VRChatInput(jump=True, run=True))
        time.sleep(0.3)

        # 3. cmd_vel falls silent while vrchat_input keeps coming at 10 Hz.
        cmd_vel.publish(twist(2.0, 0.5, -1.5))  # no axis at 0
        script["cmd_vel_last"] = time.time()
        deadline = time.monotonic() + 3 * DEADMAN_TIMEOUT
        while time.monotonic() < deadline:
            buttons.publish(VRChatInput(jump=False, run=True))
            script["vrchat_input_last_while_cmd_vel_silent"] = time.time()
            time.sleep(0.1)

        # 4. vrchat_input falls silent while cmd_vel keeps coming at 10 Hz.
        buttons.publish(VRChatInput(jump=False, run=True))
        script["vrchat_input_last"] = time.time()
        deadline = time.monotonic() + 3 * DEADMAN_TIMEOUT
        while time.monotonic() < deadline:
            cmd_vel.publish(twist(1.0, 0.5, 0.3))  # no axis at 0
            script["cmd_vel_last_while_vrchat_input_silent"] = time.time()
            time.sleep(0.1)
        time.sleep(0.2)
        script["end"] = time.time()

        # 5. cmd_vel still coming, a shutdown through the control service: the actuator exits.
        client: Any = probe.node.create_client(Trigger, "/osc_actuator/control/shutdown")
        if not client.wait_for_service(timeout_sec=30.0):
            raise SystemExit("the actuator offers no shutdown service within 30 s")
        cmd_vel.publish(twist(1.0, 0.5, 0.3))
        time.sleep(0.1)
        script["shutdown_asked"] = time.time()
        answer = client.call_async(Trigger.Request())
        if not wait_until(answer.done, 30.0):
            raise SystemExit("the shutdown service did not answer within 30 s")
        script["shutdown_answered"] = time.time()
        script["actuator_exit_code"] = actuator.wait(timeout=15)
        time.sleep(0.2)
    finally:
        probe.close()
        for process in (actuator, dump):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        dump_file.close()
        actuator_log.close()
        (out_dir / "script.json").write_text(json.dumps(script))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
