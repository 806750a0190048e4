"""pamiq_ros: PAMIQ, a curiosity-driven agent that keeps acting while it learns, on ROS 2."""

__version__ = "0.1.0"
