"""Rate-limited error logging per distinct problem, for nodes that refuse bad input."""

import re
import threading
import time

from rclpy.impl.rcutils_logger import RcutilsLogger


class ProblemLog:
    """Logs each distinct problem at most once per period, with how many repeats were held back.

    rclpy's own throttling is per line of code, which would hide a second, different problem
    reported from the same line. Problems are told apart by their text with numbers and quoted
    names left out, so a flood of the same problem with varying figures (image sizes, lengths)
    still logs once per period.
    """

    MAX_TRACKED = 32

    def __init__(self, logger: RcutilsLogger, period_s: float) -> None:
        self._logger = logger
        self._period_s = period_s
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def error(self, text: str) -> None:
        """Logs ``text`` as an error unless its kind of problem was logged within the period."""
        now = time.monotonic()
        kind = _kind(text)
        with self._lock:
            last = self._last_logged.get(kind)
            if last is not None and now - last < self._period_s:
                self._held_back[kind] = self._held_back.get(kind, 0) + 1
                return
            if kind not in self._last_logged and len(self._last_logged) >= self.MAX_TRACKED:
                oldest = min(self._last_logged, key=self._last_logged.__getitem__)
                del self._last_logged[oldest]
                self._held_back.pop(oldest, None)
            self._last_logged[kind] = now
            repeats = self._held_back.pop(kind, 0)
        suffix = f" ({repeats} more like it since the last log)" if repeats else ""
        self._logger.error(text + suffix)


_NUMBER = re.compile(r"\d+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _kind(text: str) -> str:
    """The problem ``text`` describes, without its numbers and quoted names."""
    return _NUMBER.sub("#", _QUOTED.sub("'_'", text))
