"""Fusing image and audio tokens into one observation, and the mind's sizes for each modality."""

import pytest
import torch

from pamiq_ros.minds.curiosity import CuriosityDimensions
from pamiq_ros.models.temporal import TemporalEncoder, fuse_observations, modality_dims


def test_an_image_only_observation_is_unchanged_by_fusion():
    image = torch.randn(3, 4, 96)
    torch.testing.assert_close(fuse_observations([image]), image.flatten(1))


def test_each_modality_gets_an_equal_share_of_a_squared_distance():
    generator = torch.Generator().manual_seed(0)
    image_a, image_b = torch.randn(2, 256, 4, 96, generator=generator)
    audio_a, audio_b = torch.randn(2, 256, 4, 64, generator=generator)
    a, b = fuse_observations([image_a, audio_a]), fuse_observations([image_b, audio_b])
    assert a.shape == (256, 4 * 96 + 4 * 64)
    squared = (a - b) ** 2
    image_share = squared[:, :384].sum() / squared.sum()
    assert image_share == pytest.approx(0.5, abs=0.02)  # not 384 / 640 = 0.6
    with pytest.raises(ValueError, match="batch"):
        fuse_observations([image_a, audio_a[:3]])


def test_the_modalities_setting_sizes_the_world_models_and_defaults_to_image():
    light = CuriosityDimensions.of("tiny")
    hearing = CuriosityDimensions.of("tiny", "image+audio")
    assert light.modalities == "image" and light.obs_dim == 4 * 96
    assert hearing.obs_dim == 4 * 96 + hearing.audio.pool_tokens * hearing.audio.dim
    assert modality_dims("image+audio", 384, 256) == (384, 256)
    with pytest.raises(ValueError, match="modalities"):
        CuriosityDimensions.of("tiny", "audio")
    world = hearing.build("temporal")
    assert isinstance(world, TemporalEncoder) and world.obs_dim == hearing.obs_dim
