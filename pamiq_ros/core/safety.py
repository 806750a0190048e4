"""The safety relay's logic: what velocity a base may be sent now, given the last command.

A twist_mux-like gate between a commander (the agent) and a robot base, in plain Python (the
``safety`` node wires it to ROS):

- **Input timeout.** A command older than ``input_timeout_s`` no longer counts: the output is
  zero until a new one arrives (the commander paused, hung or died).
- **E-stop lock.** While engaged the output is zero, whatever comes in. It is engaged and
  released by messages on its own topic; with ``estop_timeout_s`` set, silence on that topic
  engages it too (a dead e-stop button must not mean "go").
- **Speed limits.** Each axis is clamped to its maximum magnitude.
- **Acceleration limits.** Speeding up (a growing magnitude, per axis) is limited to the
  given rate; slowing down and stopping are never delayed, since a stop that waits is no stop.

Times are monotonic seconds, passed in, so the logic is testable without a clock.
"""

import math
from dataclasses import dataclass

from pamiq_ros.core.actions import Motion

ZERO = Motion(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class SafetyLimits:
    """The relay's limits; an acceleration of 0 means unlimited.

    Attributes:
        input_timeout_s: Age after which a command is stale and the output goes to zero.
        max_linear_mps: Largest |linear.x| and |linear.y|.
        max_angular_radps: Largest |angular.z|.
        max_linear_accel: Largest growth of |linear.x|, |linear.y| per second (0: unlimited).
        max_angular_accel: Largest growth of |angular.z| per second (0: unlimited).
        estop_timeout_s: Silence on the e-stop topic after which it engages (0: never).
    """

    input_timeout_s: float = 0.3
    max_linear_mps: float = 2.0
    max_angular_radps: float = 1.5
    max_linear_accel: float = 0.0
    max_angular_accel: float = 0.0
    estop_timeout_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_timeout_s", "max_linear_mps", "max_angular_radps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        for name in ("max_linear_accel", "max_angular_accel", "estop_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be 0 or more and finite, got {value}")


class SafetyGate:
    """Keeps the last command and the e-stop state; says what to send at each tick."""

    def __init__(self, limits: SafetyLimits, now: float) -> None:
        """Creates the gate, with no command yet (output zero) and the e-stop released.

        Args:
            limits: The limits.
            now: The current monotonic time (the e-stop timeout counts from here).
        """
        self.limits = limits
        self._command: Motion | None = None
        self._command_at = -math.inf
        self._estop = False
        self._estop_heard_at = now
        self._output = ZERO
        self._output_at: float | None = None
        self.commands_refused = 0
        self.limited = 0
        """Ticks at which a speed or acceleration limit changed the output."""

    @property
    def output(self) -> Motion:
        """The last output."""
        return self._output

    def command(self, motion: Motion, now: float) -> bool:
        """Takes a command; a non-finite one is refused (returns False) and does not count."""
        values = (motion.forward_mps, motion.left_mps, motion.ccw_radps)
        if not all(math.isfinite(value) for value in values):
            self.commands_refused += 1
            return False
        self._command, self._command_at = motion, now
        return True

    def estop(self, engaged: bool, now: float) -> None:
        """An e-stop message: True engages the lock, False releases it."""
        self._estop, self._estop_heard_at = engaged, now

    def command_age(self, now: float) -> float:
        """Seconds since the last command (infinite before the first)."""
        return now - self._command_at

    def state(self, now: float) -> str:
        """``estop``, ``no_input`` (none yet), ``timeout`` (stale) or ``active``."""
        if self.estop_engaged(now):
            return "estop"
        if self._command is None:
            return "no_input"
        if self.command_age(now) > self.limits.input_timeout_s:
            return "timeout"
        return "active"

    def estop_engaged(self, now: float) -> bool:
        """Whether the lock holds: engaged by a message, or by silence past its timeout."""
        timeout = self.limits.estop_timeout_s
        return self._estop or (timeout > 0 and now - self._estop_heard_at > timeout)

    def tick(self, now: float) -> Motion:
        """The output at ``now``: the target within the limits; remembered for the next tick."""
        target = self._command if self.state(now) == "active" else ZERO
        assert target is not None
        limits = self.limits
        clamped = Motion(
            _clamp(target.forward_mps, limits.max_linear_mps),
            _clamp(target.left_mps, limits.max_linear_mps),
            _clamp(target.ccw_radps, limits.max_angular_radps),
        )
        dt = 0.0 if self._output_at is None else max(0.0, now - self._output_at)
        linear_step = limits.max_linear_accel * dt if limits.max_linear_accel else math.inf
        angular_step = limits.max_angular_accel * dt if limits.max_angular_accel else math.inf
        previous = self._output
        output = Motion(
            _ramp(previous.forward_mps, clamped.forward_mps, linear_step),
            _ramp(previous.left_mps, clamped.left_mps, linear_step),
            _ramp(previous.ccw_radps, clamped.ccw_radps, angular_step),
        )
        if output != target:
            self.limited += 1
        self._output, self._output_at = output, now
        return output


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def _ramp(current: float, target: float, max_growth: float) -> float:
    """Moves toward ``target``: at once while the magnitude shrinks, else by ``max_growth``.

    A reversal brakes to zero at once, then grows.
    """
    base = current if current * target > 0 else 0.0
    if abs(target) <= abs(base):
        return target
    return base + math.copysign(min(abs(target) - abs(base), max_growth), target)
