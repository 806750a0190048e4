import socket
import time
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


def _get(port: int, request: bytes = b"GET /stream.mjpg HTTP/1.1\r\n\r\n") -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    connection.sendall(request)
    return connection


def test_streams_beyond_the_limit_get_503_and_bad_requests_are_counted():
    server = MjpegStreamServer(port=0, fps=50.0, max_clients=2, max_connections=4)
    server.start()
    server.publish(np.zeros((8, 8, 3), np.uint8))
    streams = [_get(server.port) for _ in range(2)]
    try:
        assert wait_until(lambda: server.clients == 2, 5.0)
        with _get(server.port) as third:
            assert third.recv(12) == b"HTTP/1.0 503"
        with _get(server.port, b"BREW /stream.mjpg HTTP/1.1\r\n\r\n") as teapot:
            assert teapot.recv(12) == b"HTTP/1.0 501"
        assert server.refused["busy"] == 1 and server.refused["bad_requests"] == 1
    finally:
        for stream in streams:
            stream.close()
        server.close()


def test_connections_beyond_the_limit_are_closed_and_idle_ones_time_out():
    server = MjpegStreamServer(port=0, max_clients=1, max_connections=2, client_timeout=0.5)
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as extra:
            assert extra.recv(16) == b""  # closed at once: no thread for it
        assert server.refused["connections"] >= 1
        for connection in idle:  # the server gave up waiting for their requests
            connection.settimeout(5.0)
            assert connection.recv(16) in (b"", b"HTTP/1.0 408")
    finally:
        for connection in idle:
            connection.close()
        server.close()


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        MjpegStreamServer(port=0, max_clients=5, max_connections=4)
