"""sim_world's experience parameter: chosen at start, switched at run time by SetParameters."""

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from test.support.processes import NodeProcess, wait_until
from test.support.ros_probe import RosProbe


def mean_frame(url: str, count: int = 3) -> np.ndarray:
    capture = cv2.VideoCapture(url)
    try:
        assert capture.isOpened()
        frames = []
        for _ in range(count):
            ok, frame = capture.read()
            assert ok
            frames.append(frame.astype(np.float64))
        return np.mean(frames, axis=0)
    finally:
        capture.release()


def set_experience(probe: RosProbe, value: str) -> SetParameters.Response:
    client: Any = probe.node.create_client(SetParameters, "/sim_world/set_parameters")
    assert client.wait_for_service(timeout_sec=30.0)
    request = SetParameters.Request()
    request.parameters = [
        Parameter(
            name="experience",
            value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value),
        )
    ]
    future = client.call_async(request)
    assert wait_until(future.done, 30.0)
    return future.result()


@pytest.mark.e2e
def test_the_look_switches_at_run_time_and_a_bad_name_is_refused(
    spawn_node: Callable[..., NodeProcess],
    probe: RosProbe,
    free_udp_port: Callable[[], int],
    free_tcp_port: Callable[[], int],
) -> None:
    port = free_tcp_port()
    parameters = {"osc_port": free_udp_port(), "video_port": port, "frame_width": 64,
                  "frame_height": 48, "experience": "A"}  # fmt: skip
    node = spawn_node("sim_world", parameters)
    node.wait_for_output("video stream at")
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    before, again = mean_frame(url), mean_frame(url)
    response = set_experience(probe, "B")
    assert response.results[0].successful
    node.wait_for_output("experience switched to B")
    after = mean_frame(url)
    # Pillars move a little between grabs; the new look changes most pixels a lot.
    assert np.abs(after - before).mean() > 5 * np.abs(again - before).mean() + 10.0
    refused = set_experience(probe, "Z")
    assert not refused.results[0].successful
    assert "experience must be one of" in refused.results[0].reason
    assert node.is_running()
    assert node.stop() == 0
