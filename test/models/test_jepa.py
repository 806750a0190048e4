import io

import numpy as np
import pytest
import torch

from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models.jepa import (
    DEFAULT_EMA_MOMENTUM,
    FRAME_KEY,
    MODEL_NAME,
    PRESETS,
    JepaConfig,
    JepaEncoder,
    JepaTrainer,
    build_jepa,
    check_ema_momentum,
    count_parameters,
    frame_to_square,
    sample_masks,
    square_frame,
)

DOCUMENTED_PARAMETERS = {"tiny": 698_496, "small": 7_746_624, "base": 45_800_448}


def scenes(count: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """Square frames with a vertical colour gradient and three coloured rectangles each."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, size, size, 3), np.uint8)
    rows = np.linspace(0.0, 1.0, size)[:, None, None]
    for index in range(count):
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        frame = (top * (1 - rows) + bottom * rows) * np.ones((1, size, 1))
        for _ in range(3):
            y, x = rng.integers(0, size - 8), rng.integers(0, size - 8)
            frame[y : y + rng.integers(6, 20), x : x + rng.integers(6, 20)] = rng.integers(
                0, 256, 3
            )
        frames[index] = frame.astype(np.uint8)
    return frames


def frames_buffer(frames: np.ndarray) -> SequentialBuffer:
    buffer = SequentialBuffer([FRAME_KEY], len(frames))
    for frame in frames:
        buffer.add({FRAME_KEY: frame})
    return buffer


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_presets_have_their_documented_sizes_and_encode_to_pooled_tokens(preset):
    config = PRESETS[preset]
    model = build_jepa(preset)
    assert count_parameters(model) == DOCUMENTED_PARAMETERS[preset]
    frames = np.zeros((2, 90, 120, 3), np.uint8)
    with torch.inference_mode():
        tokens = model.encode(frames)
    assert tokens.shape == (2, 4, config.dim)
    assert tokens.dtype == torch.float32
    assert model.num_tokens == 4


def test_tiny_modules_shapes_and_gradients():
    torch.manual_seed(0)
    config = PRESETS["tiny"]
    model = JepaEncoder(config)
    images = torch.rand(3, 3, 64, 64)
    assert model.context_encoder(images).shape == (3, 64, 96)
    masks = sample_masks(config.grid, batch_size=3, generator=torch.Generator().manual_seed(1))
    context = model.context_encoder(images, masks.context)
    assert context.shape == (3, masks.context.shape[1], 96)
    predicted = model.predictor(context, masks.context, masks.targets[:, 0])
    assert predicted.shape == (3, masks.targets.shape[2], 96)
    loss = model.loss(images, masks)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    assert model.context_encoder.patch_embed.weight.grad is not None
    with pytest.raises(ValueError, match=r"images must be \(N, 3, 64, 64\), got \(1, 3, 32, 32\)"):
        model.context_encoder(torch.rand(1, 3, 32, 32))


def test_pooled_tokens_average_regions_of_the_patch_grid():
    model = build_jepa("tiny")
    images = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        tokens = model.encode(images)
        patches = model.target_encoder(images).reshape(1, 8, 8, 96)
    torch.testing.assert_close(tokens[0, 0], patches[0, :4, :4].mean(dim=(0, 1)))
    torch.testing.assert_close(tokens[0, 3], patches[0, 4:, 4:].mean(dim=(0, 1)))


@pytest.mark.parametrize("grid", [8, (6, 10), 14])
def test_sample_masks_shapes_counts_and_disjointness(grid):
    rows, columns = (grid, grid) if isinstance(grid, int) else grid
    masks = sample_masks(
        grid, n_targets=4, batch_size=6, generator=torch.Generator().manual_seed(3)
    )
    assert masks.context.dtype == masks.targets.dtype == torch.long
    assert masks.context.shape[0] == 6 and masks.targets.shape[:2] == (6, 4)
    block = masks.targets.shape[2]
    assert 1 <= block < rows * columns
    for image in range(6):
        context = masks.context[image]
        assert len(context) >= 1
        assert torch.equal(context, torch.unique(context))  # sorted, no repeats
        targets = masks.targets[image]
        assert not set(context.tolist()) & set(targets.flatten().tolist())
        for target in targets:
            cells = target.tolist()
            assert cells == sorted(set(cells))
            ys, xs = zip(*(divmod(cell, columns) for cell in cells), strict=True)
            # A block is a full rectangle of the grid.
            assert (max(ys) - min(ys) + 1) * (max(xs) - min(xs) + 1) == block
            assert max(ys) < rows
    again = sample_masks(grid, batch_size=6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.context, masks.context)
    assert torch.equal(again.targets, masks.targets)


def test_sample_masks_target_sizes_follow_the_scale():
    generator = torch.Generator().manual_seed(0)
    sizes = [sample_masks(14, generator=generator).targets.shape[2] for _ in range(50)]
    # 15-20 % of 196 patches is 29-39; rounding the sides widens it a little.
    assert min(sizes) >= 24 and max(sizes) <= 45
    with pytest.raises(ValueError, match="target_scale"):
        sample_masks(8, target_scale=(0.3, 0.1))
    with pytest.raises(ValueError, match="at least 2x2"):
        sample_masks(1)


def test_frame_to_square_crops_the_centre_and_resizes():
    frame = np.zeros((4, 8, 3), np.uint8)
    frame[:, :2] = 255  # left margin: cropped away
    frame[:, 2:4] = [0, 200, 0]  # left half of the centre square
    square = square_frame(frame, 2)
    assert square.shape == (2, 2, 3)
    np.testing.assert_array_equal(square[:, 0], [[0, 200, 0], [0, 200, 0]])
    np.testing.assert_array_equal(square[:, 1], [[0, 0, 0], [0, 0, 0]])
    tensor = frame_to_square(frame, 2)
    assert tensor.shape == (1, 3, 2, 2) and tensor.dtype == torch.float32
    assert float(tensor[0, 1, 0, 0]) == pytest.approx(200 / 255)
    tall = frame_to_square(np.zeros((3, 10, 6, 3), np.uint8), 4, dtype=torch.float64)
    assert tall.shape == (3, 3, 4, 4) and tall.dtype == torch.float64
    with pytest.raises(ValueError, match="uint8"):
        frame_to_square(frame.astype(np.float32), 2)
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        square_frame(np.zeros((4, 4), np.uint8), 2)


def test_ema_moves_the_target_towards_the_context_encoder():
    model = build_jepa("tiny")
    with torch.no_grad():
        for parameter in model.context_encoder.parameters():
            parameter.add_(0.1)

    def distance() -> float:
        return sum(
            float((t - c).detach().abs().sum())
            for t, c in zip(
                model.target_encoder.parameters(), model.context_encoder.parameters(), strict=True
            )
        )

    before = distance()
    model.update_target(1.0)
    assert distance() == pytest.approx(before)
    model.update_target(0.9)
    assert distance() == pytest.approx(0.9 * before, rel=1e-3)
    model.update_target(0.0)
    assert distance() == 0.0
    with pytest.raises(ValueError, match="momentum"):
        model.update_target(1.5)


def test_training_on_fixed_frames_lowers_the_loss():
    model = build_jepa("tiny", seed=0).train()
    frames = scenes(32)
    buffer = frames_buffer(frames)
    trainer = JepaTrainer(batch_size=8, steps_per_run=5, learning_rate=1e-3, min_buffer_size=8)
    fixed_images = frame_to_square(frames, 64)
    fixed_masks = sample_masks(8, batch_size=32, generator=torch.Generator().manual_seed(7))

    def loss_on_fixed() -> float:
        with torch.no_grad():
            return float(model.loss(fixed_images, fixed_masks))

    loss_start = loss_on_fixed()
    results = [trainer.run({MODEL_NAME: model}, {"frames": buffer}) for _ in range(4)]
    loss_end = loss_on_fixed()
    print(f"jepa loss on the fixed set: {loss_start:.4f} -> {loss_end:.4f}")
    assert loss_end < 0.5 * loss_start, (loss_start, loss_end)
    assert set(results[0].metrics) == {"jepa/loss"}
    assert results[-1].metrics["jepa/loss"] < results[0].metrics["jepa/loss"]
    assert results[-1].updated_models == ("jepa",)
    assert trainer.steps == 20


def test_the_ema_momentum_stays_fixed_however_long_it_trains():
    assert JepaTrainer().momentum == DEFAULT_EMA_MOMENTUM == 0.996
    model = build_jepa("tiny")
    trainer = JepaTrainer(momentum=0.9, batch_size=4, steps_per_run=3)
    buffer = frames_buffer(scenes(8))
    for _ in range(3):
        before = [p.detach().clone() for p in model.target_encoder.parameters()]
        trainer.run({MODEL_NAME: model}, {"frames": buffer})
        # Each run the target moved: it never freezes, not after many steps either.
        after = model.target_encoder.parameters()
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert trainer.momentum == 0.9
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            JepaTrainer(momentum=bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_ema_momentum(1.0)


def test_state_round_trip_continues_the_same_sequence():
    trainer = JepaTrainer(momentum=0.9, batch_size=4)
    buffer = frames_buffer(scenes(8))
    model = build_jepa("tiny")
    trainer.run({MODEL_NAME: model}, {"frames": buffer})
    saved = io.BytesIO()
    torch.save(trainer.state_dict(), saved)  # also unshares the optimizer's live tensors
    saved.seek(0)
    state = torch.load(saved, weights_only=True)
    resumed_model = build_jepa("tiny")
    resumed_model.load_state_dict(model.state_dict())
    resumed = JepaTrainer(momentum=0.9, batch_size=4)
    resumed.setup({MODEL_NAME: resumed_model})
    resumed.load_state_dict(state)
    assert resumed.steps == 1
    first = trainer.run({MODEL_NAME: model}, {"frames": buffer})
    second = resumed.run({MODEL_NAME: resumed_model}, {"frames": buffer})
    assert first.metrics["jepa/loss"] == pytest.approx(second.metrics["jepa/loss"], rel=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, resumed_model.state_dict()[key])
    # The reference frames of the health figures came along.
    assert resumed.health({MODEL_NAME: resumed_model}, {}) == pytest.approx(
        trainer.health({MODEL_NAME: model}, {})
    )
    with pytest.raises(ValueError, match="'steps'"):
        resumed.load_extra_state_dict({"optimizer": {}, "generator": torch.Generator().get_state()})
    broken = {**state["extra"], "reference_frames": torch.zeros(3)}
    with pytest.raises(ValueError, match="reference frames are not usable"):
        resumed.load_extra_state_dict(broken)


def test_health_measures_collapse_and_drift_on_the_first_frames_it_saw():
    model = build_jepa("tiny")
    trainer = JepaTrainer(batch_size=4, reference_frames=6, learning_rate=5e-3, momentum=0.5)
    buffer = frames_buffer(scenes(10))
    assert trainer.health({MODEL_NAME: model}, {"frames": buffer}) == {}  # nothing seen yet
    trainer.run({MODEL_NAME: model}, {"frames": buffer})
    first = trainer.health({MODEL_NAME: model}, {"frames": buffer})
    assert set(first) == {
        "jepa/feature_spread", "jepa/effective_rank", "jepa/cka_to_start", "jepa/drift_from_start",
    }  # fmt: skip
    assert first["jepa/feature_spread"] > 0 and 1.0 <= first["jepa/effective_rank"] <= 6.0
    for _ in range(5):
        trainer.run({MODEL_NAME: model}, {"frames": buffer})
    later = trainer.health({MODEL_NAME: model}, {"frames": buffer})
    # Training moved the target encoder away from the features the frames had at the start.
    assert later["jepa/drift_from_start"] > first["jepa/drift_from_start"]
    assert later["jepa/cka_to_start"] <= 1.0 and 0.0 <= later["jepa/cka_to_last"] <= 1.0
    # A collapsed encoder (every frame the same features) shows as spread 0, rank near 0.
    with torch.no_grad():
        for parameter in model.target_encoder.parameters():
            parameter.zero_()
    collapsed = trainer.health({MODEL_NAME: model}, {"frames": buffer})
    assert collapsed["jepa/feature_spread"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["jepa/effective_rank"] < 1.5


def test_bfloat16_autocast_trains_and_encodes():
    model = build_jepa("tiny")
    trainer = JepaTrainer(batch_size=4, dtype=torch.bfloat16, min_buffer_size=1)
    result = trainer.run({MODEL_NAME: model}, {"frames": frames_buffer(scenes(4))})
    assert np.isfinite(result.metrics["jepa/loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.inference_mode():
        tokens = model.encode(scenes(2), dtype=torch.bfloat16)
    assert tokens.shape == (2, 4, 96) and tokens.dtype == torch.float32


def test_same_seed_same_weights_and_global_generator_untouched():
    before = torch.random.get_rng_state()
    first, again, other = build_jepa(seed=4), build_jepa(seed=4), build_jepa(seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not first.training
    weights = first.state_dict()
    assert all(torch.equal(weights[key], again.state_dict()[key]) for key in weights)
    assert not torch.equal(
        weights["predictor.mask_token"], other.state_dict()["predictor.mask_token"]
    )
    # The target encoder starts as an exact copy of the context encoder.
    torch.testing.assert_close(
        first.target_encoder.state_dict(), first.context_encoder.state_dict(), rtol=0, atol=0
    )


def test_bad_configuration_and_missing_model_are_refused():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        JepaConfig(image_size=60, patch_size=8)
    with pytest.raises(ValueError, match="heads must divide"):
        JepaConfig(dim=90, heads=4)
    with pytest.raises(KeyError, match="unknown JEPA preset 'huge'"):
        build_jepa("huge")
    with pytest.raises(ValueError, match="reference_frames"):
        JepaTrainer(reference_frames=1)
    trainer = JepaTrainer(model_name="encoder")
    with pytest.raises(KeyError, match="needs a JepaEncoder named 'encoder'"):
        trainer.setup({MODEL_NAME: build_jepa()})
