"""Audio JEPA: shapes, masks, and its loss falling on the simulated world's sound."""

import math
import random

import numpy as np
import pytest
import torch

from pamiq_ros.models.audio_jepa import (
    PRESETS,
    AudioJepaConfig,
    build_audio_jepa,
    sample_audio_masks,
    train_step,
    windows_to_tensor,
)
from pamiq_ros.sim.sound import SoundRenderer, SoundSnapshot, world_emitters
from pamiq_ros.sim.world import Pose, World

SMALL_TEST_CONFIG = AudioJepaConfig(
    window_samples=8000, conv_dim=16, dim=32, depth=1, heads=4, predictor_dim=16,
    predictor_depth=1, predictor_heads=4,
)  # fmt: skip


def sim_world_windows(count: int, frames: int, seed: int = 0) -> np.ndarray:
    """Windows of what the avatar hears at random places, headings and moments of the world."""
    rng = random.Random(seed)
    world = World()
    windows = []
    for _ in range(count):
        world.time = rng.uniform(0.0, 100.0)  # where the pillars (and their sounds) are
        pose = Pose(rng.uniform(-9, 9), rng.uniform(-7, 7), rng.uniform(-math.pi, math.pi))
        snapshot = SoundSnapshot(pose, world_emitters(world))
        windows.append(SoundRenderer(16000).render(rng.randrange(16000 * 60), frames, snapshot))
    return np.stack(windows)


def test_presets_patch_a_second_into_49_patches_and_encode_to_pooled_tokens():
    assert PRESETS["tiny"].num_patches == 49  # 20 ms hop, 25 ms receptive field
    model = build_audio_jepa("tiny", seed=3)
    again = build_audio_jepa("tiny", seed=3)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )
    with torch.inference_mode():
        tokens = model.encode(np.zeros((16000, 2), dtype=np.float32))
    assert tokens.shape == (1, 4, 64) and model.obs_dim == 256
    with pytest.raises(ValueError, match="audio must be"):
        model.encode(np.zeros((8000, 2), dtype=np.float32))


def test_masks_split_the_patches_into_context_and_targets():
    masks = sample_audio_masks(49, 3, torch.Generator().manual_seed(0))
    context, targets = set(masks.context[0].tolist()), set(masks.targets[0].tolist())
    assert context.isdisjoint(targets) and context | targets == set(range(49))
    assert 7 <= len(targets) <= 14 and masks.context.shape[0] == 3


def test_the_loss_falls_on_the_sim_worlds_sound_without_collapse():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine more threads only thrash
    try:
        loss_falls_without_collapse()
    finally:
        torch.set_num_threads(threads)


def loss_falls_without_collapse() -> None:
    torch.manual_seed(0)
    windows = windows_to_tensor(sim_world_windows(48, SMALL_TEST_CONFIG.window_samples))
    model = build_audio_jepa(SMALL_TEST_CONFIG, seed=0)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    losses = [
        train_step(
            model, optimizer, windows[torch.randint(0, 48, (8,), generator=generator)], generator
        )
        for _ in range(40)
    ]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.7 * first, f"loss {first:.4f} -> {last:.4f}"
    with torch.inference_mode():
        features = model.encode(windows[:24])
    # Different places sound different: the features still tell windows apart.
    assert features.std(dim=0).mean() > 0.05
