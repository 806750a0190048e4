import numpy as np
import pytest

from pamiq_ros.bench.curiosity_forward import (
    MEASURES,
    VARIANTS,
    format_table,
    summarise,
    training_ratio,
)
from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS_BUFFER,
    CuriosityDimensions,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models import forward_dynamics


def test_every_variant_changes_a_real_training_setting_or_freezes_a_real_model():
    fields = set(CuriosityTraining.__dataclass_fields__)
    for variant in VARIANTS.values():
        assert set(variant.training) <= fields, variant
    assert VARIANTS["frozen_encoders"].frozen == ("jepa", "temporal")
    assert not VARIANTS["default"].training and not VARIANTS["default"].frozen


def test_a_fresh_forward_model_scores_exactly_the_copy_baseline_on_its_training_windows():
    dims = CuriosityDimensions.of("tiny")
    learner = build_curiosity_learner("tiny", 0)
    trainer = next(
        t for t in learner.trainers if isinstance(t, forward_dynamics.ForwardDynamicsTrainer)
    )
    rng = np.random.default_rng(0)
    buffer = learner.buffers[FORWARD_DYNAMICS_BUFFER]
    assert np.isnan(training_ratio(trainer, learner.models, learner.buffers))  # nothing yet
    for _ in range(trainer.held_out_steps + 40):
        buffer.add(
            {
                forward_dynamics.STATE_KEY: rng.normal(size=dims.temporal.hidden_dim),
                forward_dynamics.ACTION_KEY: [rng.integers(size) for size in ACTION_SIZES],
                forward_dynamics.OBS_KEY: rng.normal(size=dims.obs_dim),
                forward_dynamics.DONE_KEY: 0.0,
            }
        )
    assert training_ratio(trainer, learner.models, learner.buffers) == pytest.approx(1.0)


def test_the_summary_gives_each_variant_its_end_figures_over_seeds():
    def run(variant: str, seed: int, end: float) -> dict:
        first = {"step": 0, **dict.fromkeys(MEASURES, 1.0)}
        return {
            "variant": variant,
            "seed": seed,
            "evaluations": [first, {"step": 10, **dict.fromkeys(MEASURES, end)}],
        }

    results = [run("default", 0, 1.2), run("default", 1, 1.4), run("frozen_encoders", 0, 0.8)]
    summary = summarise(results)
    assert list(summary) == ["default", "frozen_encoders"]
    assert summary["default"]["seeds"] == [0, 1]
    assert summary["default"]["bench_newest"]["estimate"] == pytest.approx(1.3)
    assert 1.2 <= summary["default"]["bench_newest"]["low"] <= 1.3
    assert summary["frozen_encoders"]["buffer_train"]["estimate"] == pytest.approx(0.8)
    table = format_table(summary)
    assert "1.300 [" in table and table.count("\n") == 2
