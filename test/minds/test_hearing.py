"""The curiosity mind with ``modalities`` image+audio: it hears, fuses, and its learner trains
the audio JEPA from the records."""

import math

import numpy as np
import pytest

from pamiq_ros.minds.curiosity import (
    AUDIO_BUFFER,
    AUDIO_JEPA,
    MODEL_NAMES,
    CuriosityMind,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models.ppo import PPOConfig
from test.minds.test_curiosity import frames, run
from test.models.test_audio_jepa import sim_world_windows


def test_an_image_only_mind_has_four_models_and_no_audio_in_its_records() -> None:
    mind = CuriosityMind(seed=0)
    assert set(mind.models) == set(MODEL_NAMES)
    records = run(mind, frames(3))
    assert records and all("audio" not in record.tensors for record in records)
    with pytest.raises(ValueError, match="hearing"):
        CuriosityMind(modalities="image+audio")


def test_a_hearing_mind_fuses_what_it_hears_and_its_learner_trains_the_audio_jepa() -> None:
    windows = sim_world_windows(24, 16000, seed=1)
    heard: list[int] = []

    def hearing() -> np.ndarray:
        heard.append(len(heard))
        return windows[len(heard) % len(windows)]

    mind = CuriosityMind(seed=0, modalities="image+audio", hearing=hearing)
    assert set(mind.models) == {*MODEL_NAMES, AUDIO_JEPA}
    records = run(mind, frames(24))
    assert len(heard) == 24
    dims = mind.dimensions
    for record in records:
        assert record.tensors["obs"].shape == (dims.obs_dim,) == (4 * 96 + 4 * 64,)
        assert record.tensors["audio"].shape == (16000, 2)
    # What it heard shows in the observation: the audio part differs between steps.
    audio_parts = np.stack([record.tensors["obs"][384:] for record in records])
    assert audio_parts.std(axis=0).mean() > 1e-3
    training = CuriosityTraining(
        buffer_size=200, policy_buffer_size=64, batch_size=4, sequence_batch_size=2,
        sequence_length=4, min_buffer_size=8, min_new_samples=4, held_out_steps=8,
        ppo_min_new_samples=8,
        ppo_config=PPOConfig(sequence_length=4, sequences_per_run=4, minibatch=2, epochs=1),
    )  # fmt: skip
    learner = build_curiosity_learner(seed=0, training=training, modalities="image+audio")
    for record in records:
        learner.add(record)
    assert learner.buffer_sizes()[AUDIO_BUFFER] == len(records)
    image_only = build_curiosity_learner(seed=0, training=training)
    with pytest.raises(ValueError, match="obs"):  # a fused record does not fit an image mind
        image_only.add(records[0])
    trained: set[str] = set()
    metrics: dict[str, float] = {}
    for _ in range(6):
        result = learner.train_next()
        if result is None:
            break
        trained.update(result.updated_models)
        metrics.update(result.metrics)
    assert AUDIO_JEPA in trained and math.isfinite(metrics["audio_jepa/loss"])
    mind.models[AUDIO_JEPA].prepare(learner.weights(AUDIO_JEPA), learner.versions[AUDIO_JEPA])
    assert run(mind, frames(2, seed=5), first_step=25)
