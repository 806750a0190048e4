"""The agent's ears: ``audio/chunk`` into a rolling window the curiosity mind reads each step."""

import threading

from pamiq_ros_interfaces.msg import AudioChunk
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from pamiq_ros.io.audio import AudioFormat, AudioWindow, Samples
from pamiq_ros.models.audio_jepa import AudioJepaConfig

AUDIO_TOPIC = "audio/chunk"


class Ears:
    """Subscribes to ``audio/chunk`` and keeps the newest window of the mind's size.

    A chunk of another rate or channel count (the audio node must publish what the audio JEPA
    hears: 16 kHz stereo by default) is refused with the reason in the log, throttled; the
    window keeps what it had, silence until the first chunk.

    Args:
        node: The node to subscribe from.
        config: The audio JEPA's sizes (rate, channels, window length).
    """

    def __init__(self, node: Node, config: AudioJepaConfig) -> None:
        self._node = node
        self._lock = threading.Lock()
        self._window = AudioWindow(
            AudioFormat(config.sample_rate, config.channels), config.window_samples
        )
        self.refused = 0
        node.create_subscription(AudioChunk, AUDIO_TOPIC, self._on_chunk, qos_profile_sensor_data)

    def latest(self) -> Samples:
        """The newest window, ``(window_samples, channels)``."""
        with self._lock:
            return self._window.latest()

    def _on_chunk(self, message: AudioChunk) -> None:
        stamp = message.header.stamp.sec + message.header.stamp.nanosec * 1e-9
        try:
            with self._lock:
                self._window.add(
                    bytes(message.data), message.sample_format, message.sample_rate,
                    message.channels, message.first_frame, stamp,
                )  # fmt: skip
        except ValueError as error:
            self.refused += 1
            self._node.get_logger().warning(
                f"refused an {AUDIO_TOPIC} chunk: {error}", throttle_duration_sec=5.0
            )
