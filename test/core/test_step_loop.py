import itertools
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from pamiq_ros.core.step_loop import RealTimeOptions, RealTimeReport, StepLoop, StepTimingStats


def test_stats_from_exact_intervals_have_no_error():
    stats = StepTimingStats(period_s=0.1)
    for i in range(11):
        stats.record_step(started=10.0 + 0.1 * i, finished=10.0 + 0.1 * i + 0.002)
    figures = stats.snapshot()
    assert figures.steps == 11
    assert figures.window_steps == 11
    assert figures.rate_hz == pytest.approx(10.0)
    assert figures.interval_mean_ms == pytest.approx(100.0)
    assert figures.interval_error_max_ms == pytest.approx(0.0, abs=1e-6)
    assert figures.compute_mean_ms == pytest.approx(2.0)
    assert figures.missed_deadlines == 0


def test_stats_report_percentiles_max_and_missed():
    stats = StepTimingStats(period_s=0.1)
    starts = [0.0, 0.1, 0.2, 0.3, 0.45, 0.5]  # one interval 50 ms long, the next 50 ms short
    for start in starts:
        stats.record_step(start, start + 0.001)
    stats.record_missed(2)
    stats.record_step(0.6, 0.61, failed=True)
    figures = stats.snapshot()
    assert figures.interval_error_max_ms == pytest.approx(50.0)
    assert figures.interval_error_p50_ms == pytest.approx(0.0, abs=1e-6)
    assert 40.0 < figures.interval_error_p99_ms <= 50.0 + 1e-6
    assert figures.interval_error_mean_ms == pytest.approx(100.0 / 6)
    assert figures.missed_deadlines == 2
    assert figures.errors == 1
    assert figures.compute_max_ms == pytest.approx(10.0)


def test_stats_window_keeps_only_recent_steps():
    stats = StepTimingStats(period_s=0.1, window=5)
    for i in range(20):
        stats.record_step(0.1 * i, 0.1 * i)
    figures = stats.snapshot()
    assert figures.steps == 20
    assert figures.window_steps == 5


def test_empty_stats():
    figures = StepTimingStats(period_s=0.1).snapshot()
    assert figures.steps == 0
    assert figures.rate_hz == 0.0


def test_loop_keeps_its_rate_despite_step_compute_time():
    """Absolute deadlines: 15 ms of work per 50 ms step must not slow a 20 Hz loop down.

    A loop sleeping one period after each step would manage only about 15 steps in 1 s.
    """
    starts: list[float] = []

    def step() -> None:
        starts.append(time.monotonic())
        time.sleep(0.015)

    loop = StepLoop(20.0, step)
    loop.start()
    time.sleep(1.0)
    loop.stop()
    assert not loop.running
    assert 18 <= len(starts) <= 22
    figures = loop.statistics()
    assert figures.steps == len(starts)
    assert 10.0 <= figures.compute_mean_ms < 50.0
    # The step times stay on the grid: the last one is not later than its slot by a period.
    assert starts[-1] - starts[0] < (len(starts) - 1) * 0.05 + 0.05


def test_loop_skips_lost_slots_instead_of_bursting_and_counts_them_missed():
    starts: list[float] = []

    def step() -> None:
        starts.append(time.monotonic())
        if len(starts) == 2:
            time.sleep(0.175)  # 3.5 periods: the deadlines of the next ~2 steps pass unserved

    loop = StepLoop(20.0, step)
    loop.start()
    time.sleep(0.6)
    loop.stop()
    figures = loop.statistics()
    assert figures.missed_deadlines >= 2
    # 0.6 s hold at most 13 slots of 50 ms; the two that passed during the long step get no
    # step of their own (a catch-up burst would run them late and make 12 or 13 steps).
    assert len(starts) <= 11
    assert 10 <= len(starts) + figures.missed_deadlines <= 13
    # The step after the long one starts at once, on the slot it landed in.
    assert starts[2] - starts[1] < 0.175 + 0.05


def test_step_errors_are_reported_and_the_loop_goes_on():
    errors: list[Exception] = []
    calls = threading.Semaphore(0)

    def step() -> None:
        calls.release()
        raise RuntimeError("boom")

    loop = StepLoop(50.0, step, on_error=errors.append)
    loop.start()
    for _ in range(3):
        assert calls.acquire(timeout=5.0)
    loop.stop()
    assert len(errors) >= 3
    assert all(str(error) == "boom" for error in errors)
    assert loop.statistics().errors == len(errors)


def test_stop_returns_promptly_for_a_slow_rate():
    loop = StepLoop(0.2, lambda: None)  # a step every 5 s
    loop.start()
    time.sleep(0.1)
    started = time.monotonic()
    loop.stop()
    assert time.monotonic() - started < 1.0
    assert not loop.running
    assert loop.statistics().steps == 1


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate_hz"):
        StepLoop(0.0, lambda: None)


def test_a_spinning_loop_never_starts_a_step_before_its_slot():
    """With spin, the thread wakes early but the step still starts on the grid, not before."""
    # (slot, start) pairs: the slot comes from the loop itself, so a step that a loaded machine
    # starts late is judged against its own slot, not mistaken for an early start of the next.
    starts: list[tuple[float, float]] = []
    loop = StepLoop(
        50.0, lambda: starts.append((loop.step_deadline, time.monotonic())), spin_s=0.008
    )
    assert math.isnan(loop.step_deadline)
    loop.start()
    time.sleep(0.5)
    loop.stop()
    assert len(starts) >= 5
    slots = [slot for slot, _ in starts]
    assert slots == sorted(set(slots)), "each step has a slot of its own, in order"
    for index, (slot, start) in enumerate(starts):
        assert start >= slot, (index, start - slot)
        offset = (slot - slots[0]) / 0.02
        assert abs(offset - round(offset)) < 1e-6, (index, offset)  # slots lie on the grid
    assert loop.statistics().steps == len(starts)


def test_spin_must_be_shorter_than_a_period():
    with pytest.raises(ValueError, match="spin_s"):
        StepLoop(10.0, lambda: None, spin_s=0.1)
    with pytest.raises(ValueError, match="spin_s"):
        StepLoop(10.0, lambda: None, spin_s=-0.001)


# --- frame trigger ------------------------------------------------------------------------------


def _collecting_loop(rate_hz: float, **options: object) -> tuple[StepLoop, list[float]]:
    starts: list[float] = []
    loop = StepLoop(rate_hz, lambda: starts.append(time.monotonic()), **options)  # type: ignore[arg-type]
    return loop, starts


def test_a_frame_triggered_loop_steps_when_a_frame_arrives() -> None:
    loop, starts = _collecting_loop(20.0, trigger="frame", frame_timeout_periods=200.0)
    loop.start()
    try:
        assert wait_for(lambda: len(starts) == 1)  # the first step runs at once
        time.sleep(0.2)  # more than a period: the next frame may start a step at once
        assert len(starts) == 1  # no frame, no step (the timeout is 10 s)
        notified = time.monotonic()
        loop.notify()
        assert wait_for(lambda: len(starts) == 2)
        assert starts[1] >= notified
    finally:
        loop.stop()
    assert loop.trigger == "frame"


def test_frames_sooner_than_the_minimum_interval_are_passed_over_for_the_next() -> None:
    loop, starts = _collecting_loop(10.0, trigger="frame", frame_timeout_periods=100.0)
    loop.start()
    try:
        assert wait_for(lambda: len(starts) == 1)
        for _ in range(3):  # frames soon after the step: no step on them
            loop.notify()
            time.sleep(0.005)
        time.sleep(0.02)
        assert len(starts) == 1
        while time.monotonic() < starts[0] + loop.frame_min_interval_s:
            time.sleep(0.005)
        fresh = time.monotonic()
        loop.notify()  # the first frame after the minimum interval: a step at once
        assert wait_for(lambda: len(starts) == 2)
    finally:
        loop.stop()
    assert starts[1] >= fresh
    assert starts[1] - starts[0] >= 0.9 * loop.period_s - 1e-6


def test_without_frames_a_frame_triggered_loop_still_steps_after_its_timeout() -> None:
    loop, starts = _collecting_loop(50.0, trigger="frame", frame_timeout_periods=2.0)
    loop.start()
    try:
        assert wait_for(lambda: len(starts) >= 3)  # steps that will see the gap
    finally:
        loop.stop()
    assert all(b - a >= 2 * loop.period_s - 1e-6 for a, b in itertools.pairwise(starts))


def test_a_frame_triggered_loop_stops_promptly_while_waiting() -> None:
    loop, starts = _collecting_loop(0.1, trigger="frame")
    loop.start()
    assert wait_for(lambda: len(starts) == 1)
    begun = time.monotonic()
    loop.stop(timeout=5.0)
    assert not loop.running
    assert time.monotonic() - begun < 4.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trigger": "sometimes"}, "trigger"),
        ({"trigger": "frame", "frame_timeout_periods": 0.5}, "frame_timeout_periods"),
        ({"trigger": "frame", "frame_min_interval_periods": 0.0}, "frame_min_interval"),
    ],
)
def test_bad_trigger_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StepLoop(10.0, lambda: None, **options)  # type: ignore[arg-type]


# --- real-time options --------------------------------------------------------------------------


def _thread_scheduling() -> tuple[int, int, set[int]]:
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, os.sched_getaffinity(0)


def test_default_options_change_no_scheduling() -> None:
    seen: list[tuple[int, int, set[int]]] = []
    loop = StepLoop(100.0, lambda: seen.append(_thread_scheduling()))
    loop.start()
    assert wait_for(lambda: len(seen) >= 1)
    loop.stop()
    assert seen[0] == _thread_scheduling()  # the loop's thread is scheduled as this one
    assert loop.real_time_report == RealTimeReport()


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_FIFO needs root or CAP_SYS_NICE here")
def test_fifo_priority_and_affinity_apply_to_the_step_thread_only() -> None:
    cpu = min(os.sched_getaffinity(0))
    seen: list[tuple[int, int, set[int]]] = []
    loop = StepLoop(
        100.0,
        lambda: seen.append(_thread_scheduling()),
        real_time=RealTimeOptions(fifo_priority=10, cpus=(cpu,)),
    )
    loop.start()
    assert wait_for(lambda: len(seen) >= 1)
    loop.stop()
    assert seen[0] == (os.SCHED_FIFO, 10, {cpu})
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread is untouched
    report = loop.real_time_report
    assert report is not None and not report.refused
    assert report.applied == (f"CPU affinity [{cpu}]", "SCHED_FIFO 10")


_REFUSED_CHILD = """
import os, sys, time
from pamiq_ros.core.step_loop import RealTimeOptions, StepLoop
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody: no CAP_SYS_NICE, and RLIMIT_RTPRIO is 0
steps = []
loop = StepLoop(100.0, lambda: steps.append(os.sched_getscheduler(0)),
                real_time=RealTimeOptions(fifo_priority=10, cpus=(10_000,)))
loop.start()
while not steps:
    time.sleep(0.01)
loop.stop()
print("refused:", " | ".join(loop.real_time_report.refused))
print("policy:", steps[0] == os.SCHED_OTHER, len(steps))
"""


def test_refused_options_are_reported_and_the_loop_runs_on_normally() -> None:
    """The real kernel refuses: FIFO without the right, affinity to a CPU that does not exist."""
    result = subprocess.run(
        [sys.executable, "-c", _REFUSED_CHILD], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    refused = result.stdout.split("refused:")[1].splitlines()[0]
    assert "SCHED_FIFO 10: [Errno 1] Operation not permitted" in refused
    assert "CPU affinity [10000]" in refused
    assert "policy: True" in result.stdout  # it stepped, with normal scheduling


_LOCKING_CHILD = """
from pamiq_ros.core.step_loop import RealTimeOptions, apply_real_time
print(apply_real_time(RealTimeOptions(lock_memory=True)))
print([line for line in open("/proc/self/status") if line.startswith("VmLck")][0].split())
"""


def test_lock_memory_locks_the_process_pages() -> None:
    """In a child process, so this test process is not locked."""
    result = subprocess.run(
        [sys.executable, "-c", _LOCKING_CHILD], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    if "applied=('mlockall',)" not in result.stdout:
        assert "mlockall:" in result.stdout  # refused, with the reason (a memlock limit)
        return
    locked_kb = int(result.stdout.split("'VmLck:', '")[1].split("'")[0])
    assert locked_kb > 1000  # the interpreter and NumPy are in memory for good


def test_bad_real_time_options_are_refused() -> None:
    with pytest.raises(ValueError, match="fifo_priority"):
        RealTimeOptions(fifo_priority=100)
    with pytest.raises(ValueError, match="cpus"):
        RealTimeOptions(cpus=(-1,))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
