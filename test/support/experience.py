"""Synthetic experience for trainer tests: frames that change with the step, valid actions."""

import numpy as np
from pamiq_ros_interfaces.msg import Experience

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.io.experience_codec import record_to_message
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from test.support.ros_probe import RosProbe


def synthetic_frame(step: int, width: int, height: int) -> np.ndarray:
    """A frame with a coloured bar that moves with ``step``: learnable, not constant."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 2] = 60
    column = (step * 3) % width
    frame[:, column : column + width // 6, 0] = 220
    frame[height // 2 :, :, 1] = 120
    return frame


def synthetic_experience(step: int, width: int, height: int, version: int = 0) -> Experience:
    record = ExperienceRecord(
        step=step,
        observation=synthetic_frame(step, width, height),
        action=np.array([step % size for size in ACTION_SIZES], dtype=np.int64),
        model_name="autoencoder",
        weight_version=version,
    )
    return record_to_message(record)


def feed_synthetic_experience(
    probe: RosProbe, width: int, height: int, period: float = 0.02
) -> None:
    """Publishes a synthetic record every ``period`` seconds from the probe, as an agent would."""
    publisher = probe.publisher(Experience, EXPERIENCE_TOPIC, EXPERIENCE_QOS)
    steps = iter(range(1 << 62))
    probe.call_periodically(
        period, lambda: publisher.publish(synthetic_experience(next(steps), width, height))
    )
