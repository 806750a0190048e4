"""Times the OSC answers to stamped frames: frame leaves the world -> its answer arrives.

The world notes each stamped frame (:meth:`AnswerLatency.frame_sent`); the OSC actuator, with
``tag_answers`` on, follows the actions of each step with ``/pamiq/answers`` carrying the stamp
of the frame the agent acted on (:meth:`AnswerLatency.answer`). Only the first answer to a frame
counts (the agent may act on one frame twice when no newer one came), and only answers to frames
this world sent (an answer stamped by anything else is counted as unmatched, not timed).

No ROS import here.
"""

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence

import numpy as np

from pamiq_ros.io.frame_stamp import UNIT_NS

MAX_SAMPLES = 200_000
"""Latencies kept for the percentiles (over an hour at 20 answers a second)."""

MAX_PENDING_FRAMES = 4096
"""Sent frames remembered for matching (minutes of video at 20 fps)."""


class AnswerLatency:
    """Matches answers to sent frames and keeps the latencies; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: OrderedDict[int, float] = OrderedDict()  # stamp units -> wall time sent
        self._answered: set[int] = set()
        self._latencies_ms: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.answers = 0
        self.unmatched = 0
        self.repeated = 0
        self.malformed = 0

    def frame_sent(self, units: int, wall_s: float) -> None:
        """Notes that the frame stamped ``units`` left the world at ``wall_s`` (Unix seconds)."""
        with self._lock:
            self._sent[units] = wall_s
            while len(self._sent) > MAX_PENDING_FRAMES:
                old, _ = self._sent.popitem(last=False)
                self._answered.discard(old)

    def answer(self, args: Sequence[object], arrival_wall_s: float) -> None:
        """Records one ``/pamiq/answers`` message that arrived at ``arrival_wall_s``.

        Raises:
            ValueError: If the message is not one integer (nanoseconds since the epoch).
        """
        if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
            with self._lock:
                self.malformed += 1
            raise ValueError(f"expects one int64 (the answered stamp in ns), got {list(args)!r}")
        units = round(args[0] / UNIT_NS) % (1 << 32)
        with self._lock:
            self.answers += 1
            sent = self._sent.get(units)
            if sent is None:
                self.unmatched += 1
            elif units in self._answered:
                self.repeated += 1
            else:
                self._answered.add(units)
                self._latencies_ms.append((arrival_wall_s - sent) * 1000.0)

    def figures(self) -> dict[str, float | int]:
        """Counts and latency p50/p99/max/mean in ms (NaN before the first timed answer)."""
        with self._lock:
            samples = np.fromiter(self._latencies_ms, dtype=np.float64)
            counts = {
                "answers": self.answers,
                "answers_timed": len(samples),
                "answers_unmatched": self.unmatched,
                "answers_repeated": self.repeated,
                "answers_malformed": self.malformed,
            }
        if not len(samples):
            p50 = p99 = worst = mean = math.nan
        else:
            p50, p99 = (float(v) for v in np.percentile(samples, [50, 99]))
            worst, mean = float(samples.max()), float(samples.mean())
        return {
            **counts,
            "answer_latency_p50_ms": p50,
            "answer_latency_p99_ms": p99,
            "answer_latency_max_ms": worst,
            "answer_latency_mean_ms": mean,
        }
