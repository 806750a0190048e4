import numpy as np
import pytest
import torch

from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.models.autoencoder import (
    FRAME_KEY,
    MODEL_NAME,
    AutoencoderTrainer,
    FrameAutoencoder,
    build_acting_model,
    build_autoencoder_learner,
    frames_to_input,
    reconstruction_error,
)


def scenes(count: int, seed: int = 0, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames with a vertical colour gradient and three coloured rectangles each."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, height, width, 3), np.uint8)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    for index in range(count):
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        frame = (top * (1 - rows) + bottom * rows) * np.ones((1, width, 1))
        for _ in range(3):
            y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
            frame[y : y + rng.integers(6, 20), x : x + rng.integers(6, 24)] = rng.integers(
                0, 256, 3
            )
        frames[index] = frame.astype(np.uint8)
    return frames


def record(step: int, frame: np.ndarray) -> ExperienceRecord:
    return ExperienceRecord(step, frame, np.zeros(5, np.int64), "autoencoder", 0)


def test_model_shapes():
    model = FrameAutoencoder()
    frames = torch.rand(5, 3, 48, 64)
    assert model(frames).shape == (5, 3, 48, 64)
    assert model.encode(frames).shape == (5, 32)
    with torch.no_grad():
        output = model(frames)
    assert float(output.min()) >= 0.0 and float(output.max()) <= 1.0
    small = FrameAutoencoder(input_height=32, input_width=24, latent_dim=8)
    assert small(torch.rand(2, 3, 32, 24)).shape == (2, 3, 32, 24)
    assert small.encode(torch.rand(2, 3, 32, 24)).shape == (2, 8)


def test_model_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"frames must be \(N, 3, 48, 64\), got \(2, 3, 48, 60\)"):
        FrameAutoencoder()(torch.rand(2, 3, 48, 60))
    with pytest.raises(ValueError, match="input_width must be a positive multiple of 8"):
        FrameAutoencoder(input_width=60)
    with pytest.raises(ValueError, match="latent_dim"):
        FrameAutoencoder(latent_dim=0)


def test_frames_to_input_scales_and_resizes_by_area():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[:2, :2] = [255, 0, 0]  # top-left 2x2 block red
    frame[0, 2] = [0, 0, 200]  # one blue pixel in the top-right block
    tensor = frames_to_input(frame, 2, 2)
    assert tensor.shape == (1, 3, 2, 2)
    assert tensor.dtype == torch.float32
    assert tensor[0, 0, 0, 0] == pytest.approx(1.0)  # red channel of the red block
    assert tensor[0, 2, 0, 1] == pytest.approx(50 / 255, abs=1 / 255)  # area average of blue
    batch = frames_to_input(np.stack([frame, frame]), 4, 4)
    assert batch.shape == (2, 3, 4, 4)
    assert float(batch.max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_input(frame.astype(np.float32), 2, 2)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        frames_to_input(np.zeros((4, 4), np.uint8), 2, 2)


def test_training_on_fixed_frames_halves_the_loss():
    torch.manual_seed(0)
    model = FrameAutoencoder()
    buffer = SequentialBuffer([FRAME_KEY], 64)
    frames = scenes(64)
    for frame in frames:
        buffer.add({FRAME_KEY: frame})
    trainer = AutoencoderTrainer(batch_size=16, steps_per_run=10, min_buffer_size=64)
    fixed = frames_to_input(frames, 48, 64)

    def loss_on_fixed() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(fixed), fixed))

    loss_start = loss_on_fixed()
    results = [
        trainer.run({"autoencoder": model}, {"frames": buffer}) for _ in range(20)
    ]  # 200 Adam steps
    loss_end = loss_on_fixed()
    assert loss_end < 0.5 * loss_start, (loss_start, loss_end)
    assert set(results[0].metrics) == {"autoencoder/loss"}
    assert results[-1].metrics["autoencoder/loss"] < 0.5 * results[0].metrics["autoencoder/loss"]
    assert results[-1].updated_models == ("autoencoder",)


def test_learner_routes_small_frames_and_trains():
    learner = build_autoencoder_learner(buffer_size=50, min_buffer_size=8, min_new_samples=4)
    for step, frame in enumerate(scenes(8, height=96, width=128)):
        learner.add(record(step, frame))
    frames = learner.buffers["frames"].get_data()[FRAME_KEY]
    assert frames.shape == (8, 48, 64, 3)
    assert frames.dtype == np.uint8
    result = learner.train_next()
    assert result is not None
    assert result.trainer == "autoencoder"
    assert learner.versions == {"autoencoder": 1}
    with pytest.raises(ExperienceError, match="step 9: route failed: a frame must be a uint8"):
        learner.add(record(9, np.zeros((48, 64, 3), np.float32)))


def test_same_seed_same_initial_weights_and_global_generator_untouched():
    before = torch.random.get_rng_state()
    first = build_autoencoder_learner(seed=4).weights("autoencoder")
    assert torch.equal(torch.random.get_rng_state(), before)
    again = build_autoencoder_learner(seed=4).weights("autoencoder")
    other = build_autoencoder_learner(seed=5).weights("autoencoder")
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["encoder.0.weight"], other["encoder.0.weight"])


def test_acting_model_matches_the_learners_version_zero():
    acting = build_acting_model(seed=4)
    assert not acting.training
    weights = build_autoencoder_learner(seed=4).weights(MODEL_NAME)
    assert all(torch.equal(acting.state_dict()[key], weights[key]) for key in weights)


def test_reconstruction_error_falls_with_training():
    frame = scenes(1, height=120, width=160)[0]
    learner = build_autoencoder_learner(buffer_size=8, min_buffer_size=1, min_new_samples=0)
    learner.add(record(0, frame))
    model = build_acting_model()
    with torch.inference_mode():
        before = reconstruction_error(model, frame)
    for _ in range(15):
        learner.train_next()
    model.load_state_dict(learner.weights(MODEL_NAME))
    with torch.inference_mode():
        after = reconstruction_error(model, frame)
    assert 0.0 < after < before
    with pytest.raises(TypeError, match="FrameAutoencoder"):
        reconstruction_error(torch.nn.Linear(2, 2), frame)


def test_nan_rollback_resets_the_optimizer_so_training_recovers():
    learner = build_autoencoder_learner(buffer_size=32, min_buffer_size=8, min_new_samples=0)
    for step, frame in enumerate(scenes(8)):
        learner.add(record(step, frame))
    learner.train_next()
    last_good = learner.weights("autoencoder")
    first_layer = learner.models["autoencoder"].get_submodule("encoder.0")
    assert isinstance(first_layer, torch.nn.Conv2d)
    with torch.no_grad():
        first_layer.weight[0, 0, 0, 0] = float("nan")
    learner.train_next()  # NaN spreads into the gradients and Adam's moments
    assert learner.non_finite_parameters("autoencoder")
    learner.restore_weights("autoencoder", last_good)
    assert learner.non_finite_parameters("autoencoder") == []
    result = learner.train_next()
    assert result is not None
    assert np.isfinite(result.metrics["autoencoder/loss"])
    assert learner.non_finite_parameters("autoencoder") == []


def test_learner_checkpoint_round_trip(tmp_path):
    learner = build_autoencoder_learner(buffer_size=16, min_buffer_size=8, min_new_samples=2)
    frames = scenes(20)
    for step, frame in enumerate(frames[:12]):
        learner.add(record(step, frame))
        learner.train_next()
    learner.save_state(tmp_path)
    resumed = build_autoencoder_learner(
        buffer_size=16, min_buffer_size=8, min_new_samples=2, seed=9
    )
    resumed.load_state(tmp_path)
    assert resumed.versions == learner.versions
    assert resumed.trainers[0].runs == learner.trainers[0].runs
    np.testing.assert_array_equal(
        resumed.buffers["frames"].get_data()[FRAME_KEY],
        learner.buffers["frames"].get_data()[FRAME_KEY],
    )
    for each in (learner, resumed):
        for step, frame in enumerate(frames[12:], start=12):
            each.add(record(step, frame))
        each.train_next()
    a, b = learner.weights("autoencoder"), resumed.weights("autoencoder")
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_trainer_refuses_a_missing_model():
    trainer = AutoencoderTrainer(model_name="ae")
    with pytest.raises(KeyError, match="needs a FrameAutoencoder named 'ae'"):
        trainer.setup({"autoencoder": FrameAutoencoder()})
    with pytest.raises(ValueError, match="learning_rate"):
        AutoencoderTrainer(learning_rate=0.0)
