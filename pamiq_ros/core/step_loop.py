"""A fixed-rate loop that runs a step callback in its own thread, with timing statistics.

The loop keeps absolute deadlines ``start + k * period`` on ``time.monotonic``: a step that
starts a little late does not push the following ones back, so the rate does not drift. When
the loop falls more than one period behind (a step ran long, or the thread was not scheduled),
it does not run a burst of catch-up steps: the deadlines that passed with no step are counted
as missed and the loop goes on with the current slot. By default it never waits for anything
but time (frames, messages), so the caller's step must use whatever data is newest.

Two opt-in options:

* **Frame-triggered steps** (``trigger="frame"``): a step starts as soon as :meth:`StepLoop.notify`
  says a new frame arrived, so a step acts on a frame at once instead of up to one period
  later; at most about ``rate_hz`` times a second: a frame sooner than
  ``frame_min_interval_periods`` (0.9) periods after the last step start is passed over and
  the next one starts the step. With no frame for ``frame_timeout_periods`` periods a step
  runs anyway, so the caller still sees the gap (and stops what moves).
* **Real-time scheduling of the step thread** (:class:`RealTimeOptions`): ``SCHED_FIFO`` at a
  priority (where the process may: root or ``CAP_SYS_NICE``, else refused and reported), all
  the process's memory locked (``mlockall``, so no step waits for a page fault), and the
  thread pinned to CPUs. Each is applied in the step thread before its first step; what was
  applied and what was refused, and why, is in :attr:`StepLoop.real_time_report`.

No ROS import here.
"""

import ctypes
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TRIGGERS = ("rate", "frame")
"""When steps start: on the fixed-rate deadlines, or on new frames (at most ``rate_hz``)."""

_MCL_CURRENT, _MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux


@dataclass(frozen=True)
class RealTimeOptions:
    """Scheduling of the step thread; the defaults change nothing.

    Attributes:
        fifo_priority: ``SCHED_FIFO`` priority of the step thread, 1 (lowest) to 99; 0 keeps
            the normal scheduler. A FIFO thread runs before every normal thread on its CPU
            until it sleeps, so a step is not delayed by training or decoding on that CPU.
        lock_memory: Lock all the process's pages in memory now and in future
            (``mlockall``), so no step waits for a page to be read back or zeroed.
        cpus: CPUs the step thread may run on (empty: any).
    """

    fifo_priority: int = 0
    lock_memory: bool = False
    cpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.fifo_priority <= 99:
            raise ValueError(f"fifo_priority must be in 0..99 (0: off), got {self.fifo_priority}")
        if any(cpu < 0 for cpu in self.cpus):
            raise ValueError(f"cpus must be CPU numbers (0 or more), got {self.cpus}")

    @property
    def any(self) -> bool:
        """Whether any option is on."""
        return bool(self.fifo_priority or self.lock_memory or self.cpus)


@dataclass(frozen=True)
class RealTimeReport:
    """What :func:`apply_real_time` did.

    Attributes:
        applied: Each option now in force, e.g. ``"SCHED_FIFO 50"``.
        refused: Each option the system refused, with the reason; the loop runs without it.
    """

    applied: tuple[str, ...] = ()
    refused: tuple[str, ...] = field(default=())


def describe_real_time(report: RealTimeReport | None) -> str:
    """One line for a status: what is applied and what was refused (and why)."""
    if report is None:
        return "not yet applied"
    parts = [", ".join(report.applied) or "normal scheduling"]
    parts += [f"REFUSED {item}" for item in report.refused]
    return "; ".join(parts)


def apply_real_time(options: RealTimeOptions) -> RealTimeReport:
    """Applies ``options`` to the calling thread (memory locking: to its whole process).

    A refusal (no permission, no such CPU, a limit) is reported, never raised: the caller runs
    on with normal scheduling.
    """
    applied: list[str] = []
    refused: list[str] = []
    if options.cpus:
        try:
            os.sched_setaffinity(0, options.cpus)  # 0: the calling thread on Linux
            applied.append(f"CPU affinity {sorted(options.cpus)}")
        except (OSError, ValueError) as error:
            refused.append(f"CPU affinity {sorted(options.cpus)}: {error}")
    if options.lock_memory:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            applied.append("mlockall")
        except (OSError, AttributeError) as error:
            refused.append(f"mlockall: {error}")
    if options.fifo_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(options.fifo_priority))
            applied.append(f"SCHED_FIFO {options.fifo_priority}")
        except (OSError, AttributeError) as error:
            refused.append(f"SCHED_FIFO {options.fifo_priority}: {error}")
    return RealTimeReport(tuple(applied), tuple(refused))


@dataclass(frozen=True)
class StepStatistics:
    """Timing of the steps of a loop; the interval and compute figures cover a recent window.

    Attributes:
        steps: Steps run since the start.
        window_steps: Steps the window figures are computed from.
        rate_hz: Measured step rate over the window (0.0 with fewer than two steps).
        interval_mean_ms: Mean time between the starts of consecutive steps.
        interval_error_mean_ms: Mean of ``|interval - period|``.
        interval_error_p50_ms: Median of ``|interval - period|``.
        interval_error_p99_ms: 99th percentile of ``|interval - period|``.
        interval_error_max_ms: Largest ``|interval - period|``.
        missed_deadlines: Deadlines since the start at which no step started within one period.
        compute_mean_ms: Mean time the step callback took.
        compute_max_ms: Longest time the step callback took.
        errors: Steps since the start whose callback raised.
    """

    steps: int = 0
    window_steps: int = 0
    rate_hz: float = 0.0
    interval_mean_ms: float = 0.0
    interval_error_mean_ms: float = 0.0
    interval_error_p50_ms: float = 0.0
    interval_error_p99_ms: float = 0.0
    interval_error_max_ms: float = 0.0
    missed_deadlines: int = 0
    compute_mean_ms: float = 0.0
    compute_max_ms: float = 0.0
    errors: int = 0


class StepTimingStats:
    """Collects step start and end times and summarises them; thread-safe."""

    def __init__(self, period_s: float, window: int = 1000) -> None:
        """Creates empty statistics.

        Args:
            period_s: The intended time between step starts, in seconds.
            window: How many recent steps the interval and compute figures cover.
        """
        if not period_s > 0:
            raise ValueError(f"period must be positive, got {period_s}")
        if window < 2:
            raise ValueError(f"window must hold at least 2 steps, got {window}")
        self._period_s = period_s
        self._lock = threading.Lock()
        self._starts: deque[float] = deque(maxlen=window)
        self._compute_s: deque[float] = deque(maxlen=window)
        self._steps = 0
        self._missed = 0
        self._errors = 0

    def record_step(self, started: float, finished: float, failed: bool = False) -> None:
        """Records one step's start and end (monotonic seconds)."""
        with self._lock:
            self._starts.append(started)
            self._compute_s.append(finished - started)
            self._steps += 1
            if failed:
                self._errors += 1

    def record_missed(self, count: int) -> None:
        """Records deadlines that passed with no step started within a period of them."""
        with self._lock:
            self._missed += count

    def snapshot(self) -> StepStatistics:
        """Returns the figures so far."""
        with self._lock:
            starts = np.array(self._starts, dtype=np.float64)
            compute = np.array(self._compute_s, dtype=np.float64)
            steps, missed, errors = self._steps, self._missed, self._errors
        if len(starts) == 0:
            return StepStatistics(steps=steps, missed_deadlines=missed, errors=errors)
        intervals = np.diff(starts)
        window_figures: dict[str, float] = {}
        if len(intervals) > 0:
            interval_errors_ms = np.abs(intervals - self._period_s) * 1000.0
            span = float(starts[-1] - starts[0])
            window_figures = {
                "rate_hz": len(intervals) / span if span > 0 else 0.0,
                "interval_mean_ms": float(intervals.mean()) * 1000.0,
                "interval_error_mean_ms": float(interval_errors_ms.mean()),
                "interval_error_p50_ms": float(np.percentile(interval_errors_ms, 50)),
                "interval_error_p99_ms": float(np.percentile(interval_errors_ms, 99)),
                "interval_error_max_ms": float(interval_errors_ms.max()),
            }
        return StepStatistics(
            steps=steps,
            window_steps=len(starts),
            missed_deadlines=missed,
            compute_mean_ms=float(compute.mean()) * 1000.0,
            compute_max_ms=float(compute.max()) * 1000.0,
            errors=errors,
            **window_figures,
        )


class StepLoop:
    """Runs ``step()`` at ``rate_hz`` in a background thread until ``stop()``."""

    def __init__(
        self,
        rate_hz: float,
        step: Callable[[], None],
        on_error: Callable[[Exception], None] | None = None,
        window: int = 1000,
        name: str = "step-loop",
        spin_s: float = 0.0,
        trigger: str = "rate",
        real_time: RealTimeOptions | None = None,
        frame_timeout_periods: float = 2.0,
        frame_min_interval_periods: float = 0.9,
    ) -> None:
        """Creates the loop; ``start()`` runs it.

        Args:
            rate_hz: Steps per second.
            step: Called once per step in the loop's thread.
            on_error: Called with the exception when ``step`` raises; the loop goes on.
            window: How many recent steps the statistics cover.
            name: The thread's name.
            spin_s: Wake this long before each deadline and wait busy for it, so the thread is
                already running when the deadline comes (waking from sleep on a loaded machine
                can take milliseconds); 0 sleeps until the deadline (rate trigger only).
            trigger: ``rate`` (fixed-rate deadlines) or ``frame`` (a step per :meth:`notify`,
                at most ``rate_hz``; see the module docstring).
            real_time: Scheduling of the loop's thread (:class:`RealTimeOptions`); None: normal.
            frame_timeout_periods: Frame trigger: with no frame for this many periods since
                the last step start, a step runs anyway (at least 1).
            frame_min_interval_periods: Frame trigger: a frame sooner than this many periods
                after the last step start is passed over (in (0, 1]). Below 1, so that a camera
                at a multiple of ``rate_hz`` whose frames arrive a little early still gives
                ``rate_hz``; 1 makes ``rate_hz`` a strict bound.
        """
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be positive and finite, got {rate_hz}")
        self.period_s = 1.0 / rate_hz
        if not (math.isfinite(spin_s) and 0.0 <= spin_s < self.period_s):
            raise ValueError(f"spin_s must be in [0, period), got {spin_s}")
        self.spin_s = spin_s
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {list(TRIGGERS)}, got {trigger!r}")
        if not (math.isfinite(frame_timeout_periods) and frame_timeout_periods >= 1.0):
            raise ValueError(
                f"frame_timeout_periods must be 1 or more, got {frame_timeout_periods}"
            )
        if not 0.0 < frame_min_interval_periods <= 1.0:
            raise ValueError(
                f"frame_min_interval_periods must be in (0, 1], got {frame_min_interval_periods}"
            )
        self.trigger = trigger
        self.frame_min_interval_s = frame_min_interval_periods * self.period_s
        self.frame_timeout_s = frame_timeout_periods * self.period_s
        self.real_time = real_time or RealTimeOptions()
        self._real_time_report: RealTimeReport | None = None
        self._frame_ready = threading.Event()
        self._step = step
        self._on_error = on_error
        self._stats = StepTimingStats(self.period_s, window)
        self._stop = threading.Event()
        self._step_deadline = math.nan
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Starts the loop thread; the first step runs at once."""
        self._thread.start()

    def notify(self) -> None:
        """Says a new frame arrived: with the frame trigger, the next step may start now."""
        self._frame_ready.set()

    @property
    def real_time_report(self) -> RealTimeReport | None:
        """What the real-time options did in the loop thread; None until it applied them."""
        return self._real_time_report

    def stop(self, timeout: float = 5.0) -> None:
        """Asks the loop to stop and joins its thread (after the current step, if any)."""
        self._stop.set()
        self._frame_ready.set()  # a frame-triggered loop waits on it
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread.is_alive()

    @property
    def step_deadline(self) -> float:
        """The ``time.monotonic`` slot of the step running now (or last run); NaN before any.

        A step that starts late runs in the newest slot that has passed, so this is never
        after the step's start.
        """
        return self._step_deadline

    def statistics(self) -> StepStatistics:
        """The timing figures so far."""
        return self._stats.snapshot()

    def _run(self) -> None:
        self._real_time_report = apply_real_time(self.real_time)
        if self.trigger == "frame":
            self._run_on_frames()
        else:
            self._run_on_rate()

    def _run_on_rate(self) -> None:
        anchor = time.monotonic()
        slot = 0
        while not self._stop.is_set():
            deadline = anchor + slot * self.period_s
            delay = deadline - time.monotonic() - self.spin_s
            if delay > 0 and self._stop.wait(delay):
                break
            started = time.monotonic()
            while started < deadline:  # the spin: running, not sleeping, at the deadline
                started = time.monotonic()
            late_periods = int((started - deadline) // self.period_s)
            if late_periods >= 1:
                # The deadlines that passed get no step of their own: no catch-up burst.
                self._stats.record_missed(late_periods)
                slot += late_periods
            self._step_deadline = anchor + slot * self.period_s
            self._run_step(started)
            slot += 1

    def _run_on_frames(self) -> None:
        last_start = -math.inf
        while not self._stop.is_set():
            # The first frame at least the minimum interval after the last step start starts
            # a step at once; a sooner one is passed over for its successor (acting at once on
            # a fresh frame, not later on an older one). No frame for the timeout: a step
            # anyway, which will see the gap.
            arrived = self._frame_ready.wait(
                max(0.0, last_start + self.frame_timeout_s - time.monotonic())
            )
            if self._stop.is_set():
                break
            started = time.monotonic()
            if arrived:
                self._frame_ready.clear()
                if started - last_start < self.frame_min_interval_s:
                    continue
            self._step_deadline = started
            self._run_step(started)
            last_start = started

    def _run_step(self, started: float) -> None:
        failed = False
        try:
            self._step()
        except Exception as error:  # one bad step must not end the loop
            failed = True
            if self._on_error is not None:
                self._on_error(error)
        self._stats.record_step(started, time.monotonic(), failed)
