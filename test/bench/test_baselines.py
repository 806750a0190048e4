"""The in-process baselines of ``make bench``: options, and one short real run of each."""

import math
from typing import Any

import pytest

from pamiq_ros.bench.baselines import BASELINES, BaselineOptions, build_learner, run_baseline
from pamiq_ros.minds.curiosity import MODEL_NAMES

# Small enough that the world models train within a second of steps.
FAST_TRAINING: dict[str, Any] = {
    "min_buffer_size": 8,
    "min_new_samples": 1,
    "batch_size": 4,
    "steps_per_run": 1,
    "not_a_trainer_parameter": "ignored",
}


def test_options_refuse_non_positive_periods() -> None:
    with pytest.raises(ValueError, match="positive"):
        BaselineOptions(seconds=0.0)
    with pytest.raises(ValueError, match="positive"):
        BaselineOptions(rate_hz=-1.0)
    with pytest.raises(ValueError, match="warmup_s"):
        BaselineOptions(warmup_s=-1.0)


def test_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="loop"):
        run_baseline("pipeline", BaselineOptions())


def test_learner_takes_the_trainer_parameters_it_knows() -> None:
    learner = build_learner(BaselineOptions(trainer_parameters=FAST_TRAINING, seed=3))
    assert sorted(learner.models) == sorted(MODEL_NAMES)
    assert all(version == 0 for version in learner.versions.values())


@pytest.mark.parametrize("kind", BASELINES)
def test_a_short_run_gives_sane_figures(kind: str) -> None:
    options = BaselineOptions(
        seconds=2.0, warmup_s=1.5, rate_hz=10.0, seed=1, trainer_parameters=FAST_TRAINING
    )
    result = run_baseline(kind, options)

    assert result["baseline"] == kind
    assert result["torch_threads"] == 1
    assert result["steps"] >= 2
    assert len(result["intervals_ms"]) == result["steps"] - 1
    p50, p99, peak = (result[f"interval_error_{q}_ms"] for q in ("p50", "p99", "max"))
    assert all(math.isfinite(value) and value >= 0 for value in (p50, p99, peak))
    assert p50 <= p99 <= peak
    assert result["missed_deadlines"] >= 0
    longest = max(result["intervals_ms"])
    assert result["longest_stall_ms"] == pytest.approx(max(0.0, longest - 100.0), abs=1e-2)
    # Both baselines really train, and the threaded one acts with the new weights.
    assert result["training_runs_total"] >= 1
    assert result["records_refused"] == 0
    if kind == "threads":
        assert result["weight_swaps"] >= 1
    else:
        assert result["weight_swaps"] == 0
