"""A small model for weight-sync tests: built, trained (seeded) and compared."""

import torch

MODEL = "policy"


def build() -> torch.nn.Module:
    """The model (two linear layers)."""
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8))


def trained(seed: int) -> dict[str, torch.Tensor]:
    """Weights of the model, different per seed."""
    torch.manual_seed(seed)
    return build().state_dict()


def assert_weights(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    """``module`` holds exactly ``expected``."""
    actual = module.state_dict()
    assert set(actual) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
