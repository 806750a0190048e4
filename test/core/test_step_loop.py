import math
import threading
import time

import pytest

from pamiq_ros.core.step_loop import StepLoop, StepTimingStats


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
