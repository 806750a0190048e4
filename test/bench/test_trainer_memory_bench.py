import os
import tracemalloc

import numpy as np
import pytest

from pamiq_ros.bench.trainer_memory import (
    MemoryRunOptions,
    flat_memory_target,
    floor_summary,
    growth_per_runs,
    status_memory_mb,
    top_growth,
)


def test_growth_per_runs_is_the_slope_after_the_fill_only() -> None:
    # 10 MB while filling, then 0.5 MB per 1000 runs.
    samples = [(0.0, 100.0, 0), (10.0, 110.0, 100)] + [
        (10.0 + i, 110.0 + 0.5 * i, 100 + 1000 * i) for i in range(1, 6)
    ]
    assert growth_per_runs(samples, after_s=10.0) == pytest.approx(0.5)
    assert growth_per_runs(samples[:1], after_s=0.0) is None


def test_status_memory_reads_this_process_and_none_for_a_gone_one() -> None:
    memory = status_memory_mb(os.getpid())
    assert memory is not None
    assert memory["VmRSS"] > 10.0
    assert memory["RssAnon"] <= memory["VmRSS"]
    assert status_memory_mb(2**22 + 12345) is None


def test_top_growth_names_the_line_that_kept_its_allocations() -> None:
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        kept = [np.zeros(50_000) for _ in range(4)]  # 1.6 MB held
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    top = top_growth(before, after)
    line = test_top_growth_names_the_line_that_kept_its_allocations.__code__.co_firstlineno + 4
    assert top[0]["where"].endswith(f"test_trainer_memory_bench.py:{line}")
    assert top[0]["grew_kb"] >= 1500
    assert len(kept) == 4


def test_bad_run_options_are_refused() -> None:
    with pytest.raises(ValueError, match="records_per_run"):
        MemoryRunOptions(records_per_run=0)
    with pytest.raises(ValueError, match="buffer_size"):
        MemoryRunOptions(buffer_size=10)


def test_the_flat_target_says_when_the_slope_is_inside_the_noise() -> None:
    sure = flat_memory_target({"slope_mb_per_min": 0.01, "slope_ci95_mb_per_min": [0.0, 0.02]})
    assert (sure["met"], sure["inside_noise"]) == (True, False)
    noisy = flat_memory_target({"slope_mb_per_min": 0.05, "slope_ci95_mb_per_min": [-0.4, 0.5]})
    assert (noisy["met"], noisy["inside_noise"]) == (True, True)
    growing = flat_memory_target({"slope_mb_per_min": 1.7, "slope_ci95_mb_per_min": [1.2, 2.2]})
    assert (growing["met"], growing["inside_noise"]) == (False, False)
    assert flat_memory_target({"slope_mb_per_min": None})["met"] is None


def test_the_floor_follows_kept_memory_not_the_sawtooth_of_training() -> None:
    # A 30 MB sawtooth every 10 s over a floor that rises 0.5 MB a minute after 60 s.
    samples = [
        (float(t), 500.0 + 0.5 * max(0.0, t - 60) / 60 + (30.0 if t % 10 == 5 else 0.0))
        for t in range(0, 900, 5)
    ]
    floor = floor_summary(samples, after_s=60.0)
    assert floor["windows"] == 13  # 14 minutes after the fill, the last (short) one left out
    assert floor["slope_mb_per_min"] == pytest.approx(0.5, abs=0.01)
    low, high = floor["slope_ci95_mb_per_min"]
    assert low <= 0.5 <= high
    assert floor_summary(samples, after_s=1e9)["slope_mb_per_min"] is None
