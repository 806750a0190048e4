import pytest
import torch

from pamiq_ros.models.health import copy_ratio, effective_rank, feature_spread, linear_cka


def test_effective_rank_counts_the_directions_used():
    generator = torch.Generator().manual_seed(0)
    isotropic = torch.randn(2000, 8, generator=generator)
    assert effective_rank(isotropic) == pytest.approx(8.0, rel=0.05)
    on_a_line = torch.randn(500, 1, generator=generator) * torch.ones(1, 8)
    assert effective_rank(on_a_line) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.ones(10, 4)) == 0.0


def test_feature_spread_is_zero_for_collapsed_features():
    assert feature_spread(torch.ones(5, 3, 2)) == 0.0
    assert feature_spread(torch.tensor([[0.0], [2.0]])) == pytest.approx(2**0.5)


def test_copy_ratio_below_one_only_when_the_model_beats_copying():
    current = torch.zeros(4, 3)
    target = torch.ones(4, 2, 3)
    perfect = copy_ratio(target.clone(), target, current)
    assert torch.allclose(perfect, torch.zeros(2))
    copying = copy_ratio(current.unsqueeze(1).expand(4, 2, 3), target, current)
    assert torch.allclose(copying, torch.ones(2))
    worse = copy_ratio(torch.full((4, 2, 3), -1.0), target, current)
    assert torch.allclose(worse, torch.full((2,), 4.0))
    with pytest.raises(ValueError, match="current"):
        copy_ratio(target, target, torch.zeros(4, 2))


def test_linear_cka_is_invariant_to_rotation_and_scale_but_not_to_noise():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(300, 6, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator))
    assert linear_cka(x, 3.0 * x @ rotation) == pytest.approx(1.0, abs=1e-9)
    unrelated = torch.randn(300, 6, generator=generator)
    assert linear_cka(x, unrelated) < 0.2
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(x, x[:10])
