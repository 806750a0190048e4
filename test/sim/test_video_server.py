import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from pamiq_ros.sim.video_server import MjpegStreamServer
from test.support.processes import wait_until


@pytest.fixture
def server():
    server = MjpegStreamServer(port=0, fps=50.0)
    server.start()
    yield server
    server.close()


def test_opencv_reads_the_published_frames_by_url(server: MjpegStreamServer):
    red = np.zeros((48, 64, 3), np.uint8)
    red[:, :, 0] = 255
    server.publish(red)
    capture = cv2.VideoCapture(server.url)
    try:
        assert capture.isOpened()
        assert wait_until(lambda: server.clients == 1, 5.0)
        ok, frame = capture.read()
        assert ok and frame.shape == (48, 64, 3)
        blue, green, red_channel = frame[24, 32]
        assert red_channel > 200 and blue < 60 and green < 60  # RGB in, BGR out of OpenCV
        assert server.frames_sent >= 1
    finally:
        capture.release()
    assert wait_until(lambda: server.clients == 0, 5.0)


def test_binds_loopback_by_default_and_refuses_other_paths(server: MjpegStreamServer):
    assert server.host == "127.0.0.1"
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=5)
    assert raised.value.code == 404


@pytest.mark.parametrize(("fps", "quality"), [(0.0, 90), (10.0, 0), (10.0, 101)])
def test_bad_settings_are_refused(fps: float, quality: int):
    with pytest.raises(ValueError):
        MjpegStreamServer(port=0, fps=fps, jpeg_quality=quality)
