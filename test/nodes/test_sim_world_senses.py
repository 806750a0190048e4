"""sim_world's sound and mouse, end to end: the audio node hears its stream, the mouse turns,
tilts and uses."""

import math
import time

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from pamiq_ros_interfaces.msg import AudioChunk, MouseInput
from rclpy.qos import qos_profile_sensor_data

from pamiq_ros.io.audio import decode_samples
from test.nodes.test_sim_world import latest, start_world
from test.support.processes import wait_until

pytestmark = pytest.mark.e2e


def chirp_band_energy(messages: list[AudioChunk]) -> float:
    """Mean power between 1.4 and 2.0 kHz, where only a use's chirp sounds (16 kHz chunks)."""
    samples = np.concatenate([decode_samples(bytes(m.data), "S16LE", 2) for m in messages])
    spectrum = np.abs(np.fft.rfft(samples.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 16000)
    return float(spectrum[(freqs > 1400) & (freqs < 2000)].mean())


def test_the_world_is_heard_and_the_mouse_turns_tilts_and_uses(
    spawn_node, probe, free_udp_port, free_tcp_port
):
    audio_port = free_tcp_port()
    _, _, video_port = start_world(
        spawn_node, free_udp_port, free_tcp_port,
        audio_enabled=True, audio_port=audio_port, mouse_enabled=True,
    )  # fmt: skip
    poses = probe.subscribe(PoseStamped, "world/pose")
    chunks = probe.subscribe(AudioChunk, "audio/chunk", qos_profile_sensor_data)
    spawn_node("audio_sensor", {"source": f"http://127.0.0.1:{audio_port}/audio.wav"})
    chunks.wait_for(10, timeout=20.0)
    poses.wait_for(1)
    mouse = probe.publisher(MouseInput, "mouse")
    capture = cv2.VideoCapture(f"http://127.0.0.1:{video_port}/stream.mjpg")
    try:

        def frame() -> np.ndarray:
            for _ in range(3):  # skip what was buffered
                ok, image = capture.read()
                assert ok
            return image.astype(np.float32)

        level = frame()

        def hold(message: MouseInput, seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                mouse.publish(message)
                time.sleep(0.05)

        hold(MouseInput(velocity_y=-300.0), 1.0)  # up the screen: look up
        looking_up = frame()
        assert np.abs(looking_up - level).mean() > 10.0, "looking up changes the view"
        _, _, yaw_before = latest(poses)
        hold(MouseInput(velocity_x=500.0), 1.0)  # right: turn clockwise
        assert wait_until(lambda: latest(poses)[2] < yaw_before - 0.5, 3.0), latest(poses)
        # Released after mouse_timeout: the turning stops.
        time.sleep(0.8)
        _, _, settled = latest(poses)
        time.sleep(0.4)
        assert math.isclose(latest(poses)[2], settled, abs_tol=1e-3)
        # A click on the hum at the centre (the avatar stands on it): a chirp in the stream.
        before = len(chunks)
        time.sleep(0.7)
        quiet = chirp_band_energy(chunks.messages[before:])
        clicked = len(chunks)
        hold(MouseInput(left=True), 0.3)
        mouse.publish(MouseInput(left=False))
        time.sleep(0.8)
        loud = chirp_band_energy(chunks.messages[clicked:])
        assert loud > 5.0 * quiet, (loud, quiet)
    finally:
        capture.release()
