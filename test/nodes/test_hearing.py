"""The agent's ears over DDS: chunks fill the window; a chunk of another rate is refused."""

import numpy as np
from pamiq_ros_interfaces.msg import AudioChunk
from rclpy.qos import qos_profile_sensor_data

from pamiq_ros.io.audio import encode_samples
from pamiq_ros.models.audio_jepa import AudioJepaConfig
from pamiq_ros.nodes._hearing import AUDIO_TOPIC, Ears
from test.support.processes import wait_until


def chunk(values: np.ndarray, first_frame: int, rate: int = 16000) -> AudioChunk:
    message = AudioChunk(sample_rate=rate, channels=2, sample_format="S16LE")
    message.frames, message.first_frame = len(values), first_frame
    message.data = encode_samples(values, "S16LE")
    return message


def test_the_ears_keep_the_newest_window_and_refuse_a_misfit(probe):
    ears = Ears(probe.node, AudioJepaConfig(window_samples=1600))
    publisher = probe.publisher(AudioChunk, AUDIO_TOPIC, qos_profile_sensor_data)
    assert not ears.latest().any()
    tone = np.full((800, 2), 0.5, dtype=np.float32)
    tone[:, 1] = -0.25

    def heard() -> bool:
        publisher.publish(chunk(tone, 0))
        return bool(np.isclose(ears.latest()[-1], [0.5, -0.25], atol=1e-3).all())

    assert wait_until(heard, 10.0)  # discovery takes a moment: publish until heard
    publisher.publish(chunk(np.zeros((800, 2), np.float32), 800, rate=44100))
    assert wait_until(lambda: ears.refused >= 1, 5.0)
    assert np.isclose(ears.latest()[-1], [0.5, -0.25], atol=1e-3).all()  # nothing lost
