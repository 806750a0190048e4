"""Step timing: statistics of a fixed-rate loop's step starts, and of the agent in a running stack.

The pure part (:func:`timing_figures`) turns step start times into the figures ``make bench``
reports for every arm alike: the step-interval error ``|interval - period|`` (p50, p99, max),
missed deadlines and the longest stall (the largest interval minus the period).

The stack part (:func:`measure_stack_timing`) runs a copy of the sim stack with
``pamiq-ros launch`` (free ports, its own process group, the bench's DDS domain, loopback only)
and measures the agent over a fixed period after a warm-up, in two views:

* ``agent``: the agent's own step-loop figures (:mod:`pamiq_ros.core.step_loop`), read from its
  ``/diagnostics`` status: the first status after the period ends gives p50/p99/max of the
  interval error over the agent's window of its last 1000 steps (100 s at 10 Hz; the figures
  belong to the period only when ``window_within_period`` is true), and missed deadlines are
  differenced between the status at the period's start and at its end.
* ``arrivals``: the times ``cmd_vel`` messages (one per agent step) arrive in this process,
  summarised by :func:`timing_figures`; this adds DDS delivery and this process's scheduling to
  the agent's own timing, and gives the per-step series for the plots. Missed deadlines in this
  view are estimated from the intervals (an interval of n periods, rounded, means n - 1
  deadlines passed with no step).

The agent runs with its config's scheduling, or with one of its real-time options
(:data:`REAL_TIME_VARIANTS`: ``SCHED_FIFO``, memory locked, CPU affinity, all three), each a run
of its own beside the others and the baselines, with what the agent applied or was refused
(``real_time``) and the load average at the end of the period.

The trainer is either idle (its buffers never hold enough samples to train: ``min_buffer_size``
and ``ppo_min_new_samples`` set out of reach, so it receives experience as usual but never
runs) or training flat out (the config's settings, ``min_run_interval`` 0).
"""

import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import BackgroundNode, load_now

IDLE_TRAINER: dict[str, Any] = {
    "min_buffer_size": 1_000_000_000,
    "ppo_min_new_samples": 1_000_000_000,
}
"""Trainer parameters that keep it from ever training (buffers never get that full)."""

AGENT_WINDOW_STEPS = 1000
"""Steps the agent's step-loop statistics cover (``StepLoop``'s default window)."""

STARTUP_TIMEOUT_S = 120.0
"""Longest wait for the agent's first status after the stack is launched."""

REPORT_PERIOD_S = 1.0
"""The stack's nodes report this often during the bench, so snapshots are at most this old."""


# --- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingFigures:
    """Timing of one loop over one period.

    Attributes:
        steps: Step starts in the period.
        period_ms: The intended interval.
        rate_hz: Measured steps per second.
        interval_error_p50_ms: Median of ``|interval - period|``.
        interval_error_p99_ms: 99th percentile of ``|interval - period|``.
        interval_error_max_ms: Largest ``|interval - period|``.
        interval_error_mean_ms: Mean of ``|interval - period|``.
        missed_deadlines: Deadlines with no step (counted by the loop, or estimated).
        longest_stall_ms: Largest interval minus the period (0 when no interval is long).
    """

    steps: int
    period_ms: float
    rate_hz: float
    interval_error_p50_ms: float
    interval_error_p99_ms: float
    interval_error_max_ms: float
    interval_error_mean_ms: float
    missed_deadlines: int
    longest_stall_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The figures, rounded to microseconds."""
        return {
            key: round(value, 3) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }


def intervals_of(starts: Sequence[float]) -> npt.NDArray[np.float64]:
    """Seconds between consecutive step starts (sorted first; empty for fewer than two)."""
    ordered = np.sort(np.asarray(starts, dtype=np.float64))
    return np.diff(ordered)


def estimated_missed(intervals: npt.ArrayLike, period_s: float) -> int:
    """Deadlines that passed with no step, estimated from intervals alone.

    An interval of ``n`` periods (rounded to the nearest whole number) means ``n - 1``
    deadlines had no step of their own; a loop on absolute deadlines keeps its slots, so this
    is exact unless a step is more than half a period late.
    """
    values = np.asarray(intervals, dtype=np.float64)
    if values.size == 0:
        return 0
    periods = np.floor(values / period_s + 0.5)
    return int(np.maximum(periods - 1, 0).sum())


def timing_figures(
    starts: Sequence[float], period_s: float, missed_deadlines: int | None = None
) -> TimingFigures:
    """The figures of a loop's step starts (monotonic seconds) at the intended ``period_s``.

    Args:
        starts: Step start times of the period.
        period_s: The intended time between step starts.
        missed_deadlines: As counted by the loop itself; None estimates it from the intervals
            (:func:`estimated_missed`).

    Raises:
        ValueError: If ``period_s`` is not positive.
    """
    if not (math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period must be positive, got {period_s}")
    intervals = intervals_of(starts)
    if missed_deadlines is None:
        missed_deadlines = estimated_missed(intervals, period_s)
    if intervals.size == 0:
        return TimingFigures(
            steps=len(starts), period_ms=period_s * 1000, rate_hz=0.0,
            interval_error_p50_ms=math.nan, interval_error_p99_ms=math.nan,
            interval_error_max_ms=math.nan, interval_error_mean_ms=math.nan,
            missed_deadlines=missed_deadlines, longest_stall_ms=math.nan,
        )  # fmt: skip
    errors_ms = np.abs(intervals - period_s) * 1000.0
    span = float(intervals.sum())
    return TimingFigures(
        steps=len(starts),
        period_ms=period_s * 1000,
        rate_hz=intervals.size / span if span > 0 else 0.0,
        interval_error_p50_ms=float(np.percentile(errors_ms, 50)),
        interval_error_p99_ms=float(np.percentile(errors_ms, 99)),
        interval_error_max_ms=float(errors_ms.max()),
        interval_error_mean_ms=float(errors_ms.mean()),
        missed_deadlines=missed_deadlines,
        longest_stall_ms=max(0.0, (float(intervals.max()) - period_s) * 1000.0),
    )


def in_window(starts: Sequence[float], begin: float, end: float) -> list[float]:
    """The starts with ``begin <= t <= end``."""
    return [t for t in starts if begin <= t <= end]


# --- the agent's status -------------------------------------------------------------------------

AGENT_KEYS = (
    "steps", "missed_deadlines", "rate_hz", "interval_error_p50_ms", "interval_error_p99_ms",
    "interval_error_max_ms", "step_compute_mean_ms", "step_compute_max_ms", "step_errors",
    "weight_swaps",
)  # fmt: skip
"""Numbers read from the agent's status."""

TRAINER_KEYS = ("runs", "experience_received")
"""Numbers read from the trainer's status."""


def numbers(values: Mapping[str, str], keys: Sequence[str]) -> dict[str, float]:
    """The ``keys`` of a diagnostics status that hold numbers (others are left out)."""
    found = {}
    for key in keys:
        try:
            found[key] = float(values[key])
        except (KeyError, ValueError):
            continue
    return found


def agent_period_figures(
    start: Mapping[str, float], end: Mapping[str, float], period_s: float
) -> dict[str, Any]:
    """The agent's own figures over a period, from its statuses at the start and at the end.

    Interval-error percentiles are the end status's (its window of recent steps); missed
    deadlines and steps are differences, so start-up does not count.
    """
    steps = int(end.get("steps", 0) - start.get("steps", 0))
    window = min(AGENT_WINDOW_STEPS, int(end.get("steps", 0)))
    p99 = end.get("interval_error_p99_ms", math.nan)
    return {
        "steps": steps,
        "period_ms": period_s * 1000,
        "rate_hz": round(end.get("rate_hz", math.nan), 3),
        "interval_error_p50_ms": round(end.get("interval_error_p50_ms", math.nan), 3),
        "interval_error_p99_ms": round(p99, 3),
        "interval_error_max_ms": round(end.get("interval_error_max_ms", math.nan), 3),
        "missed_deadlines": int(end.get("missed_deadlines", 0) - start.get("missed_deadlines", 0)),
        "longest_stall_ms": None,  # the agent reports the largest |error|, not the interval
        "window_steps": window,
        "window_within_period": steps >= window,
        "step_compute_mean_ms": round(end.get("step_compute_mean_ms", math.nan), 3),
        "step_compute_max_ms": round(end.get("step_compute_max_ms", math.nan), 3),
        "weight_swaps": int(end.get("weight_swaps", 0) - start.get("weight_swaps", 0)),
    }


class StackListener:
    """Listens to ``/diagnostics`` and ``cmd_vel`` in this process, spinning in its own thread."""

    def __init__(self) -> None:
        """Creates a ROS context and node of its own (DDS settings from the environment)."""
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist

        self._lock = threading.Lock()
        self._arrivals: list[float] = []
        self._statuses: dict[str, tuple[float, dict[str, str]]] = {}
        self._ros = BackgroundNode(
            "step_timing_bench",
            [
                (Twist, "cmd_vel", self._on_cmd_vel, 100),
                (DiagnosticArray, "/diagnostics", self._on_diagnostics, 50),
            ],
        )

    def reset(self) -> None:
        """Forgets every arrival and status (a new stack starts)."""
        with self._lock:
            self._arrivals.clear()
            self._statuses.clear()

    def arrivals(self) -> list[float]:
        """Monotonic arrival times of ``cmd_vel`` messages so far."""
        with self._lock:
            return list(self._arrivals)

    def status(self, node: str) -> tuple[float, dict[str, str]] | None:
        """``node``'s newest status and when it arrived (monotonic), or None."""
        with self._lock:
            return self._statuses.get(node)

    def wait_status(self, node: str, after: float, timeout: float) -> dict[str, str] | None:
        """The first status of ``node`` that arrives after ``after`` (monotonic), within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.status(node)
            if found is not None and found[0] > after:
                return found[1]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        """Stops listening and shuts this process's ROS context down."""
        self._ros.close()

    def _on_cmd_vel(self, _message: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self._arrivals.append(now)

    def _on_diagnostics(self, message: Any) -> None:
        now = time.monotonic()
        for status in message.status:
            node = str(status.name).rsplit("/", 1)[-1]
            values = {str(item.key): str(item.value) for item in status.values}
            with self._lock:
                self._statuses[node] = (now, values)


# --- one stack run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackTimingOptions:
    """What both stack runs share.

    Attributes:
        base_config: The sim config document (``config/sim.yaml``).
        seconds: The measured period (s).
        warmup_s: Time after the agent's first status before the period starts (s).
        seed: Seed of agent, trainer and world.
        preset: Model preset of agent and trainer; None keeps the config's.
        out_dir: Where configs, logs and run folders go.
        env: The stacks' environment (DDS domain, loopback only).
    """

    base_config: Mapping[str, Any]
    seconds: float
    warmup_s: float
    seed: int
    preset: str | None
    out_dir: Path
    env: Mapping[str, str]


REAL_TIME_VARIANTS: dict[str, dict[str, Any]] = {
    "fifo": {"step_fifo_priority": 50},
    "mlock": {"step_lock_memory": True},
    "affinity": {"step_cpu": 0},
    "all": {"step_fifo_priority": 50, "step_lock_memory": True, "step_cpu": 0},
}
"""The agent's real-time options, each measured on its own and all together, training running.
(``step_cpu`` 0: on a 2-core machine, the step thread on one core and the rest anywhere.)"""


def stack_config(
    options: StackTimingOptions,
    trainer_idle: bool,
    udp_port: int,
    tcp_port: int,
    agent_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config of one run: the sim config on free ports, seeded, reporting every second.

    ``agent_overrides`` adds agent parameters (e.g. a :data:`REAL_TIME_VARIANTS` entry).
    """
    from pamiq_ros.bench.curiosity import arm_config

    agent: dict[str, Any] = {
        "seed": options.seed, "report_period": REPORT_PERIOD_S, **(agent_overrides or {})
    }  # fmt: skip
    trainer: dict[str, Any] = {"seed": options.seed, "report_period": REPORT_PERIOD_S}
    if options.preset:
        agent["preset"] = trainer["preset"] = options.preset
    if trainer_idle:
        trainer.update(IDLE_TRAINER)
    overrides = {"agent": agent, "trainer": trainer, "sim_world": {"seed": options.seed}}
    return arm_config(options.base_config, udp_port, tcp_port, overrides)


def measure_stack_timing(
    name: str,
    trainer_idle: bool,
    options: StackTimingOptions,
    listener: StackListener,
    say: Callable[[str], None],
    agent_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs the stack once and measures the agent's step timing (see the module docstring).

    ``agent_overrides`` adds agent parameters (the real-time variants).

    Raises:
        RuntimeError: If the agent never reported, or reported nothing after the period.
    """
    from pamiq_ros.bench.curiosity import free_port

    document = stack_config(
        options, trainer_idle, free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM),
        agent_overrides,
    )  # fmt: skip
    config_path = options.out_dir / "configs" / f"{name}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    log_path = options.out_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    duration = STARTUP_TIMEOUT_S + options.warmup_s + options.seconds + 30.0  # a safety net
    command = [
        sys.executable, "-m", "pamiq_ros.cli", "launch", str(config_path),
        "--duration", f"{duration:g}", "--runs-dir", str(options.out_dir / "runs" / name),
    ]  # fmt: skip
    period_s = 1.0 / float(document["agent"]["ros__parameters"].get("rate_hz", 10.0))
    listener.reset()
    say(f"{name}: starting the stack (log {log_path})")
    launched = time.monotonic()
    stack = GroupProcess(command, options.env, log_path)
    try:
        first = listener.wait_status("agent", launched, STARTUP_TIMEOUT_S)
        if first is None or stack.popen.poll() is not None:
            raise RuntimeError(f"{name}: the agent never reported; last output:\n{stack.tail()}")
        up_s = time.monotonic() - launched
        say(f"{name}: agent up after {up_s:.0f} s; warming up {options.warmup_s:g} s")
        time.sleep(options.warmup_s)
        begin = time.monotonic()
        start_agent = listener.status("agent")
        start_trainer = listener.status("trainer")
        say(f"{name}: measuring {options.seconds:g} s")
        next_line = begin + 30.0
        while time.monotonic() < begin + options.seconds:
            if stack.popen.poll() is not None:
                raise RuntimeError(f"{name}: the stack ended early; last output:\n{stack.tail()}")
            if time.monotonic() >= next_line:
                latest = listener.status("agent")
                figures = numbers(latest[1], AGENT_KEYS) if latest else {}
                steps, missed = figures.get("steps", 0), figures.get("missed_deadlines", 0)
                elapsed = time.monotonic() - begin
                say(f"{name}: {elapsed:.0f} s: agent step {steps:.0f}, missed {missed:.0f}")
                next_line += 30.0
            time.sleep(0.2)
        end = time.monotonic()
        end_agent = listener.wait_status("agent", end, 5.0 * REPORT_PERIOD_S)
        end_trainer = listener.wait_status("trainer", end, 5.0 * REPORT_PERIOD_S)
        if end_agent is None or start_agent is None:
            raise RuntimeError(f"{name}: no agent status at the period's ends")
        arrivals = in_window(listener.arrivals(), begin, end)
        load = load_now()
    finally:
        stack.stop()
    agent = agent_period_figures(
        numbers(start_agent[1], AGENT_KEYS), numbers(end_agent, AGENT_KEYS), period_s
    )
    trainer_start = numbers(start_trainer[1], TRAINER_KEYS) if start_trainer else {}
    trainer_end = numbers(end_trainer, TRAINER_KEYS) if end_trainer else {}
    runs = trainer_end.get("runs", math.nan) - trainer_start.get("runs", 0.0)
    view = timing_figures(arrivals, period_s)
    result = {
        "trainer": "idle" if trainer_idle else "training",
        "agent_overrides": dict(agent_overrides or {}),
        "real_time": end_agent.get("step_real_time"),
        "agent": agent,
        "arrivals": view.as_dict(),
        "training_runs": None if math.isnan(runs) else int(runs),
        "intervals_ms": [round(v * 1000.0, 3) for v in intervals_of(arrivals)],
        "config": str(config_path),
        "log": str(log_path),
        "exit_code": stack.popen.returncode,
        **load,
    }
    say(
        f"{name}: agent p99 {agent['interval_error_p99_ms']} ms, missed "
        f"{agent['missed_deadlines']}; cmd_vel arrivals p99 {view.interval_error_p99_ms:.2f} ms; "
        f"trainer runs {result['training_runs']}"
    )
    return result
