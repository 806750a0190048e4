"""Managed nodes through the lifecycle services (``ros2 lifecycle``'s), from an rclpy client.

The actuator started with ``autostart:=false`` waits unconfigured; configure opens its socket
and releases every input; while inactive it sends nothing; activate sends actions; deactivate
releases every input on the wire. The agent brings itself to active by default; deactivate
stops it (a zero cmd_vel, then silence) and activate makes it act again.
"""

import time

import pytest
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from pamiq_ros.io.vrchat_osc import AXIS_ADDRESSES
from test.nodes.test_osc_actuator import listener, released_at, twist
from test.support.processes import wait_until
from test.support.ros_probe import RosProbe
from test.support.services import call_service

__all__ = ["listener"]  # the fixture, used by name

pytestmark = pytest.mark.e2e


def state_of(probe: RosProbe, node: str) -> str:
    return str(
        call_service(probe, GetState, f"/{node}/get_state", GetState.Request()).current_state.label
    )


def change(probe: RosProbe, node: str, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return bool(call_service(probe, ChangeState, f"/{node}/change_state", request).success)


def test_the_actuator_follows_its_lifecycle_and_releases_on_deactivate(spawn_node, probe, listener):
    spawn_node("osc_actuator", {"port": listener.port, "autostart": False})
    assert state_of(probe, "osc_actuator") == "unconfigured"
    cmd_vel = probe.publisher(Twist, "cmd_vel")

    start = time.monotonic()
    assert change(probe, "osc_actuator", Transition.TRANSITION_CONFIGURE)
    assert state_of(probe, "osc_actuator") == "inactive"
    listener.wait_for(lambda received: released_at(received) is not None, start)

    inactive = time.monotonic()
    for _ in range(5):
        cmd_vel.publish(twist(2.0, 0.0, 0.0))
        time.sleep(0.05)
    time.sleep(0.3)
    assert listener.since(inactive) == [], "an inactive actuator sent input"

    assert change(probe, "osc_actuator", Transition.TRANSITION_ACTIVATE)
    assert state_of(probe, "osc_actuator") == "active"
    active = time.monotonic()

    def walking(received: list) -> bool:
        return any(address == AXIS_ADDRESSES[0] and value == 1.0 for _, address, value in received)

    def drive_and_check() -> bool:
        cmd_vel.publish(twist(2.0, 0.0, 0.0))
        return walking(listener.since(active))

    assert wait_until(drive_and_check, 10.0, interval=0.1)

    deactivated = time.monotonic()
    assert change(probe, "osc_actuator", Transition.TRANSITION_DEACTIVATE)
    assert state_of(probe, "osc_actuator") == "inactive"
    listener.wait_for(lambda received: released_at(received) is not None, deactivated)

    assert change(probe, "osc_actuator", Transition.TRANSITION_CLEANUP)
    assert state_of(probe, "osc_actuator") == "unconfigured"
    assert change(probe, "osc_actuator", Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert state_of(probe, "osc_actuator") == "finalized"


def test_the_agent_is_active_at_start_and_deactivate_stops_it(spawn_node, probe):
    spawn_node("agent", {"mind": "autoencoder", "send_experience": False, "rate_hz": 5.0})
    cmd_vel = probe.subscribe(Twist, "cmd_vel", 10)
    cmd_vel.wait_for(1, timeout=30.0)
    assert state_of(probe, "agent") == "active"

    assert change(probe, "agent", Transition.TRANSITION_DEACTIVATE)
    assert state_of(probe, "agent") == "inactive"
    time.sleep(0.3)  # a step in flight may still land before the stop
    count = len(cmd_vel)
    last = cmd_vel.messages[-1]
    assert (last.linear.x, last.linear.y, last.angular.z) == (0.0, 0.0, 0.0)
    time.sleep(0.6)  # three steps at 5 Hz
    assert len(cmd_vel) == count, "an inactive agent published commands"

    assert change(probe, "agent", Transition.TRANSITION_ACTIVATE)
    assert cmd_vel.wait_for(count + 5, timeout=10.0)
