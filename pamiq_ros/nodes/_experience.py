"""The experience topic shared by the agent (publisher) and the trainer (subscriber)."""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

EXPERIENCE_TOPIC = "experience"
EXPERIENCE_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1000
)
"""Reliable with a deep queue: records are not silently dropped on loopback."""
