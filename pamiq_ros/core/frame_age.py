"""The ages of the newest frames a node handled, as the p50/p99 figures its status reports.

Both the camera (capture to publish) and the agent (stamp to receipt, and to the step that uses
the frame) keep one; no ROS import here.
"""

import threading
from collections import deque

FRAME_AGE_WINDOW = 200
"""Frames the percentiles cover (the newest ones)."""


class FrameAges:
    """A window of the newest frame ages (seconds), safe to add to from any thread."""

    def __init__(self, window: int = FRAME_AGE_WINDOW) -> None:
        self._ages: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, age_s: float) -> None:
        """Records one frame's age."""
        with self._lock:
            self._ages.append(age_s)

    def figures(self, name: str) -> dict[str, object]:
        """``{name}_p50_ms`` and ``{name}_p99_ms`` over the window ("none" before a frame)."""
        with self._lock:
            ordered = sorted(self._ages)
        if not ordered:
            return {f"{name}_p50_ms": "none", f"{name}_p99_ms": "none"}
        return {
            f"{name}_p50_ms": 1000 * ordered[len(ordered) // 2],
            f"{name}_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        }
