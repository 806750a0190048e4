"""Health levels from measured figures, without ROS: the logic behind each node's diagnostics.

Levels follow ``diagnostic_msgs/DiagnosticStatus``: 0 OK, 1 WARN, 2 ERROR. A node collects the
problems it sees (:class:`Problems`); the worst level and all reasons make its status.
"""

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pamiq_ros.core.settings import setting

OK = 0
WARN = 1
ERROR = 2

DIAGNOSTICS_PERIOD_S = 1.0
"""Default seconds between two diagnostics of a node."""

PEER_WARN_AFTER_S = 1.5
"""Default silence of a peer (its heartbeat, its experience) that is a warning."""

PEER_ERROR_AFTER_S = 5.0
"""Default silence of a peer that is an error."""


def diagnostics_period_setting() -> Any:
    """The ``diagnostics_period`` setting of a node (a settings dataclass field)."""
    return setting(
        DIAGNOSTICS_PERIOD_S, "Seconds between two /diagnostics statuses.", low=0.05, high=60.0,
        runtime=True,
    )  # fmt: skip


def peer_silence_setting(default: float, peer: str, level: str) -> Any:
    """A ``peer_warn_after``/``peer_error_after`` setting: silence of ``peer`` that is ``level``."""
    return setting(
        default, f"Seconds without {peer} that make the status {level}.", low=0.1, high=3600.0,
        runtime=True,
    )  # fmt: skip


def check_peer_limits(warn_after_s: float, error_after_s: float) -> None:
    """Refuses an error silence below the warning one.

    Raises:
        ValueError: Naming both settings.
    """
    if error_after_s < warn_after_s:
        raise ValueError(
            f"peer_error_after ({error_after_s}) must not be below peer_warn_after ({warn_after_s})"
        )


RATE_TOLERANCE = 0.9
"""A measured rate under this fraction of its target is a warning."""


@dataclass
class Problems:
    """The problems found for one status; the worst one sets its level."""

    level: int = OK
    reasons: list[str] = field(default_factory=list)

    def add(self, level: int, reason: str) -> None:
        """Notes a problem of ``level``."""
        self.level = max(self.level, level)
        self.reasons.append(reason)

    def summary(self, healthy: str) -> str:
        """All reasons joined, or ``healthy`` when there are none."""
        return "; ".join(self.reasons) if self.reasons else healthy


def check_rate(report: Problems, measured_hz: float, target_hz: float, what: str) -> None:
    """Warns when ``measured_hz`` is under :data:`RATE_TOLERANCE` of ``target_hz``.

    A NaN rate (not measured yet) is no warning.
    """
    if math.isfinite(measured_hz) and measured_hz < RATE_TOLERANCE * target_hz:
        report.add(WARN, f"{what} at {measured_hz:.1f} Hz, under 90 % of {target_hz:g} Hz")


class NewCount:
    """How much a growing counter grew since the last look (missed deadlines, send errors)."""

    def __init__(self) -> None:
        self._seen = 0

    def since_last(self, total: int) -> int:
        """The growth since the previous call."""
        grown, self._seen = total - self._seen, total
        return max(0, grown)


class Silence:
    """How long something (a peer's heartbeat, its experience) has not been heard.

    Before the first time it is heard, the silence counts from ``started``.
    """

    def __init__(self, started: float, warn_after_s: float, error_after_s: float) -> None:
        """Creates the watch.

        Args:
            started: Monotonic time the watch began.
            warn_after_s: Silence (s) that is a warning.
            error_after_s: Silence (s) that is an error (not below ``warn_after_s``).

        Raises:
            ValueError: If the limits are not positive or out of order.
        """
        self.set_limits(warn_after_s, error_after_s)
        self._last = started
        self.heard_once = False

    def set_limits(self, warn_after_s: float, error_after_s: float) -> None:
        """Changes the silences that are a warning and an error.

        Raises:
            ValueError: If the limits are not positive or out of order.
        """
        if not 0 < warn_after_s <= error_after_s:
            raise ValueError(
                f"need 0 < warn_after ({warn_after_s}) <= error_after ({error_after_s})"
            )
        self.warn_after_s = warn_after_s
        self.error_after_s = error_after_s

    def heard(self, now: float) -> None:
        """Notes that it was heard at monotonic ``now``."""
        self._last = now
        self.heard_once = True

    def seconds(self, now: float) -> float:
        """Seconds of silence at ``now``."""
        return max(0.0, now - self._last)

    def check(self, report: Problems, now: float, what: str) -> None:
        """Adds a warning or an error to ``report`` when silent too long."""
        silent = self.seconds(now)
        if silent >= self.error_after_s:
            report.add(ERROR, f"nothing from {what} for {silent:.1f} s")
        elif silent >= self.warn_after_s:
            report.add(WARN, f"nothing from {what} for {silent:.1f} s")


class RecentRate:
    """A counter's rate over the last ``window_s`` seconds, from samples taken now and then."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> float:
        """Adds a sample of the counter; returns its rate (per s) over the window.

        NaN until two samples lie at least a second apart.
        """
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        then, before = self._samples[0]
        return (total - before) / (now - then) if now - then >= 1.0 else math.nan

    def reset(self) -> None:
        """Forgets the samples (the counter started over)."""
        self._samples.clear()


def check_grown(report: Problems, grown: int, level: int, what: str) -> None:
    """Adds a problem of ``level`` when a counter grew (``grown`` from :class:`NewCount`)."""
    if grown > 0:
        report.add(level, f"{grown} {what} since the last status")


BUDGET_NEAR = 0.9
"""A share of a budget (a bag's disk budget) at or above which its status is a warning."""


def check_budget(report: Problems, used: int, budget: int, what: str) -> None:
    """Warns when ``used`` reaches :data:`BUDGET_NEAR` of ``budget`` (0: no budget, no check)."""
    if budget > 0 and used >= BUDGET_NEAR * budget:
        report.add(WARN, f"{what} at {100.0 * used / budget:.0f} % of its budget")


WEIGHTS_WARN_AFTER_S = 120.0
"""Default silence of a live trainer's weights (once it has sent some) that is a warning."""


def check_weights_silence(
    report: Problems, weights: Silence, now: float, trainer_alive: bool
) -> None:
    """Warns when a trainer that beats and has sent weights before sends none for a while.

    Args:
        report: Where the warning goes.
        weights: Heard on each new weights; its warning limit is the silence allowed.
        now: Monotonic time.
        trainer_alive: Whether the trainer's heartbeat is fresh (a dead trainer is its own
            problem, reported by its heartbeat watch).
    """
    if trainer_alive and weights.heard_once:
        weights.check(report, now, "the trainer's weights")
