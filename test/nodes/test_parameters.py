"""Parameters through the parameter services of real node processes (an rclpy client).

Wrong types, out-of-range values and start-up-only settings are refused with a reason; a
run-time change the node can apply is applied, and reading it back returns the value in use.
"""

import json
import time
from typing import Any

import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from std_srvs.srv import Trigger

from test.support.ros_probe import RosProbe
from test.support.services import call_service

pytestmark = pytest.mark.e2e


def value_of(python_value: object) -> ParameterValue:
    if isinstance(python_value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=python_value)
    if isinstance(python_value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=python_value)
    if isinstance(python_value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=python_value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(python_value))


def set_parameter(probe: RosProbe, node: str, name: str, value: object) -> tuple[bool, str]:
    request = SetParameters.Request(parameters=[Parameter(name=name, value=value_of(value))])
    result = call_service(probe, SetParameters, f"/{node}/set_parameters", request).results[0]
    return bool(result.successful), str(result.reason)


def get_parameter(probe: RosProbe, node: str, name: str) -> object:
    value = call_service(
        probe, GetParameters, f"/{node}/get_parameters", GetParameters.Request(names=[name])
    ).values[0]
    return {
        ParameterType.PARAMETER_DOUBLE: value.double_value,
        ParameterType.PARAMETER_INTEGER: value.integer_value,
        ParameterType.PARAMETER_STRING: value.string_value,
        ParameterType.PARAMETER_BOOL: value.bool_value,
    }[value.type]


def agent_status(probe: RosProbe) -> dict[str, Any]:
    response = call_service(probe, Trigger, "/agent/control/status", Trigger.Request())
    return dict(json.loads(response.message))


def test_the_agent_refuses_bad_values_and_applies_a_new_rate(spawn_node, probe):
    spawn_node("agent", {"mind": "autoencoder", "rate_hz": 10.0, "send_experience": False})
    for name, value, reason in (
        ("rate_hz", "fast", "type"),
        ("rate_hz", -5.0, "range"),
        ("preset", "huge", "read-only"),
        ("seed", 3, "read-only"),
    ):
        successful, said = set_parameter(probe, "agent", name, value)
        assert not successful, f"{name}={value!r} was accepted"
        assert reason in said.lower() or name in said, f"{name}={value!r}: {said!r}"
    assert get_parameter(probe, "agent", "rate_hz") == 10.0

    assert set_parameter(probe, "agent", "rate_hz", 2.0) == (True, "")
    assert get_parameter(probe, "agent", "rate_hz") == 2.0
    time.sleep(3.0)
    status = agent_status(probe)
    assert status["target_rate_hz"] == 2.0
    assert 1.6 <= float(status["rate_hz"]) <= 2.4, status["rate_hz"]


def test_other_nodes_refuse_bad_ports_and_rates_and_apply_good_ones(
    spawn_node, probe, free_udp_port, tmp_path
):
    spawn_node("osc_actuator", {"port": free_udp_port()})
    spawn_node(
        "camera_sensor", {"source": str(tmp_path / "missing.mp4"), "reopen_initial_delay": 1.0}
    )
    successful, said = set_parameter(probe, "osc_actuator", "port", 70000)
    assert not successful and said
    successful, said = set_parameter(probe, "camera_sensor", "rate_hz", 0.0)
    assert not successful and said
    successful, said = set_parameter(probe, "camera_sensor", "rate_hz", 5.0)
    assert successful, said
    assert get_parameter(probe, "camera_sensor", "rate_hz") == 5.0
