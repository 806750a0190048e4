"""End-to-end: the camera_sensor node process reading files and streams, over DDS."""

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from pamiq_ros.io.image_codec import ImageFields, decode_image
from pamiq_ros.sim.video_server import MjpegStreamServer
from test.support.processes import wait_until

pytestmark = pytest.mark.e2e

COLOURS_RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def write_video(path: Path, colour_names: list[str], size=(64, 48), fps=20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for name in colour_names:
        rgb = np.full((size[1], size[0], 3), COLOURS_RGB[name], dtype=np.uint8)
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))  # VideoWriter takes BGR
    writer.release()
    return path


def pixels_of(message: Image) -> np.ndarray:
    return decode_image(
        ImageFields(
            message.height,
            message.width,
            message.encoding,
            message.is_bigendian,
            message.step,
            bytes(message.data),
        )
    )


def colour_name(message: Image) -> str:
    """The written colour this image is (JPEG may shift each channel by a few levels)."""
    mean = pixels_of(message).reshape(-1, 3).mean(axis=0)
    name, expected = min(COLOURS_RGB.items(), key=lambda item: np.abs(mean - item[1]).sum())
    assert np.abs(mean - expected).max() < 20, f"mean colour {mean} is none of the written ones"
    return name


def test_a_video_file_is_published_resized_in_rgb_order_and_looped(spawn_node, probe, tmp_path):
    video = write_video(tmp_path / "colours.avi", ["red", "red", "green", "green", "blue", "blue"])
    images = probe.subscribe(Image, "camera/image_raw", qos_profile_sensor_data)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)

    node = spawn_node(
        "camera_sensor",
        {"source": str(video), "width": 80, "height": 60, "rate_hz": 20.0, "report_period": 1.0},
    )
    messages = images.wait_for(20, timeout=20.0)

    for message in messages:
        assert (message.width, message.height, message.encoding) == (80, 60, "rgb8")
        assert message.step == 240 and message.header.frame_id == "camera"
    names = [colour_name(message) for message in messages]
    # Played in order, at 2 frames per colour, and looped: 20 frames cover the 6-frame file 3 times.
    # Channel order: a frame written red must arrive red, not blue (BGR left unconverted).
    assert set(names) == {"red", "green", "blue"}
    assert names.count("red") >= 4
    changes = [name for previous, name in itertools.pairwise(names) if name != previous]
    assert changes[:4] in (
        ["green", "blue", "red", "green"],
        ["blue", "red", "green", "blue"],
        ["red", "green", "blue", "red"],
    )
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in messages]
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))
    assert abs(stamps[-1] - time.time()) < 5.0
    # Paced at rate_hz, not at the file's decoding speed.
    arrivals = [arrival for arrival, _ in images.timed]
    assert 10.0 < (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) < 30.0

    node.wait_for_output("frames captured=")
    assert wait_until(
        lambda: any(
            status.name == "/camera_sensor" and status.level == DiagnosticStatus.OK
            for array in diagnostics.messages
            for status in array.status
        ),
        5.0,
    )
    assert node.is_running()


def test_an_unopenable_source_is_an_error_and_the_node_keeps_retrying(
    spawn_node, probe, tmp_path, free_tcp_port
):
    missing = tmp_path / "missing.avi"
    url = f"http://127.0.0.1:{free_tcp_port()}/stream.mjpg"
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    retry = {"reopen_initial_delay": 0.2, "reopen_max_delay": 0.4, "report_period": 1.0}

    file_node = spawn_node("camera_sensor", {"source": str(missing), **retry}, name="camera_file")
    url_node = spawn_node("camera_sensor", {"source": url, **retry}, name="camera_url")

    file_output = file_node.wait_for_output("(attempt 5)")
    assert _error_line(file_output, missing).endswith(
        f"cannot open video source '{missing}': file does not exist ({missing}); retrying in 0.2 s"
    )
    url_output = url_node.wait_for_output("(attempt 5)")
    assert "could not connect to the URL: nothing answers at 127.0.0.1" in _error_line(
        url_output, url
    )
    time.sleep(1.0)
    assert file_node.is_running() and url_node.is_running()
    assert wait_until(
        lambda: any(
            status.name == "/camera_url"
            and status.level == DiagnosticStatus.ERROR
            and url in status.message
            for array in diagnostics.messages
            for status in array.status
        ),
        5.0,
    )


def _error_line(output: str, source: object) -> str:
    lines = [
        line for line in output.splitlines() if line.startswith("[ERROR]") and f"'{source}'" in line
    ]
    assert lines, f"no ERROR line naming {source!r} in:\n{output}"
    return lines[0]


class FeedingServer:
    """An MJPEG server on a fixed port fed one colour from a thread, as a camera would."""

    def __init__(self, port: int, rgb: tuple[int, int, int]) -> None:
        self.server = MjpegStreamServer(port=port, fps=20.0)
        self.server.start()
        self._frame = np.full((48, 64, 3), rgb, dtype=np.uint8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while not self._stop.wait(0.05):
            self.server.publish(self._frame)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.server.close()


def test_a_lost_stream_is_reopened_when_it_comes_back(spawn_node, probe, free_tcp_port):
    port = free_tcp_port()
    first = FeedingServer(port, COLOURS_RGB["red"])
    servers = [first]
    try:
        images = probe.subscribe(Image, "camera/image_raw", qos_profile_sensor_data)
        node = spawn_node(
            "camera_sensor",
            {
                "source": first.server.url,
                "width": 32,
                "height": 24,
                "reopen_initial_delay": 0.2,
                "reopen_max_delay": 0.5,
            },
        )
        url = first.server.url
        assert colour_name(images.wait_for(5, timeout=20.0)[-1]) == "red"

        first.close()
        node.wait_for_output(f"lost video source '{url}': reopening in 0.2 s", timeout=10.0)
        node.wait_for_output(f"cannot open video source '{url}'", timeout=10.0)
        servers.append(FeedingServer(port, COLOURS_RGB["blue"]))

        output = node.wait_for_output(f"reopened video source '{url}' after", timeout=10.0)
        assert "[ERROR]" not in output  # a loss after a good start is a warning, not an error
        assert wait_until(lambda: colour_name(images.messages[-1]) == "blue", 10.0)
        assert node.is_running()
    finally:
        for server in servers:
            server.close()


CALIBRATION = """\
image_width: 320
image_height: 180
camera_name: wide
camera_matrix: {rows: 3, cols: 3, data: [200.0, 0.0, 159.5, 0.0, 200.0, 89.5, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [-0.1, 0.01, 0.0, 0.0, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}
projection_matrix: {rows: 3, cols: 4, data: [200.0, 0.0, 159.5, 0.0, 0.0, 200.0, 89.5, 0.0, 0.0,
  0.0, 1.0, 0.0]}
"""


def test_a_wide_file_is_cropped_to_4_3_with_matching_camera_info_and_frame_ages(
    spawn_node, probe, tmp_path
):
    from sensor_msgs.msg import CameraInfo

    video = write_video(tmp_path / "wide.avi", ["green"] * 20, size=(320, 180))
    calibration = tmp_path / "wide.yaml"
    calibration.write_text(CALIBRATION)
    images = probe.subscribe(Image, "camera/image_raw", qos_profile_sensor_data)
    infos = probe.subscribe(CameraInfo, "camera/camera_info", qos_profile_sensor_data)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    node = spawn_node(
        "camera_sensor",
        {
            "source": str(video),
            "width": 160,
            "height": 120,
            "resize_mode": "crop",
            "camera_info_file": str(calibration),
            "frame_id": "cam_optical",
            "report_period": 0.5,
        },
    )
    infos.wait_for(3, timeout=20.0)
    image = images.wait_for(1)[-1]
    info = infos.messages[-1]
    assert (image.width, image.height) == (160, 120)
    assert (info.width, info.height, info.header.frame_id) == (160, 120, "cam_optical")
    assert image.header.frame_id == "cam_optical"
    # Scaled by 120/180 (213 px wide), then 27 columns cut off the left.
    assert info.k[0] == pytest.approx(200 * 213 / 320, rel=1e-6)
    assert info.k[4] == pytest.approx(200 * 120 / 180, rel=1e-6)
    assert abs(info.k[2] - 79.5) < 1.0 and abs(info.k[5] - 59.5) < 0.01
    assert list(info.d) == pytest.approx([-0.1, 0.01, 0.0, 0.0, 0.0])
    assert node.is_running()

    def status() -> dict[str, str]:
        for array in reversed(diagnostics.messages):
            for entry in array.status:
                if entry.name == "/camera_sensor":
                    return {value.key: value.value for value in entry.values}
        return {}

    assert wait_until(lambda: status().get("frame_age_p99_ms", "none") != "none", 10.0)
    assert float(status()["frame_age_p99_ms"]) < 1000.0
