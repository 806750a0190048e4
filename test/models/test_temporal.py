import numpy as np
import pytest
import torch

from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models.temporal import (
    HIDDEN_KEY,
    MODEL_NAME,
    OBS_KEY,
    PRESETS,
    TemporalConfig,
    TemporalEncoder,
    TemporalTrainer,
    parameter_count,
)

SMALL = TemporalConfig(hidden_dim=16, input_dim=16, head_dim=16)


def model(obs_dim: int = 12, seed: int = 0) -> TemporalEncoder:
    torch.manual_seed(seed)
    return TemporalEncoder(obs_dim, SMALL)


def periodic_stream(steps: int, obs_dim: int = 12, period: int = 5) -> np.ndarray:
    """Observations that repeat every ``period`` steps (sines of different phases)."""
    t = np.arange(steps)[:, None]
    phases = np.linspace(0, np.pi, obs_dim)[None, :]
    return np.sin(2 * np.pi * t / period + phases).astype(np.float32)


def filled_buffer(obs: np.ndarray, hidden: np.ndarray) -> SequentialBuffer:
    buffer = SequentialBuffer([OBS_KEY, HIDDEN_KEY], len(obs))
    for o, h in zip(obs, hidden, strict=True):
        buffer.add({OBS_KEY: o, HIDDEN_KEY: h})
    return buffer


def test_shapes_and_step_agrees_with_forward():
    encoder = model()
    obs = torch.randn(3, 7, 12)
    states, predicted = encoder(obs)
    assert states.shape == (3, 7, 16)
    assert predicted.shape == (3, 7, 12)
    h = encoder.initial_state(3)
    assert h.shape == (3, 16) and not h.any()
    with torch.no_grad():
        for t in range(7):
            h = encoder.step(obs[:, t], h)
            torch.testing.assert_close(h, states[:, t].detach())
        torch.testing.assert_close(encoder.predict_next(h), predicted[:, -1].detach())


def test_initial_state_changes_the_outputs():
    encoder = model()
    obs = torch.randn(2, 4, 12)
    with torch.no_grad():
        zero_states, zero_predicted = encoder(obs)
        other_states, other_predicted = encoder(obs, torch.ones(2, 16))
    assert not torch.allclose(zero_states, other_states)
    assert not torch.allclose(zero_predicted, other_predicted)


def test_refuses_wrong_shapes():
    encoder = model()
    with pytest.raises(ValueError, match=r"obs_seq must be \(N, T, 12\), got \(2, 3, 11\)"):
        encoder(torch.randn(2, 3, 11))
    with pytest.raises(ValueError, match=r"h0 must be \(2, 16\), got \(2, 8\)"):
        encoder(torch.randn(2, 3, 12), torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"obs must be \(N, 12\)"):
        encoder.step(torch.randn(12))
    with pytest.raises(ValueError, match="obs_dim"):
        TemporalEncoder(0, SMALL)
    with pytest.raises(ValueError, match="hidden_dim"):
        TemporalConfig(hidden_dim=0, input_dim=4, head_dim=4)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_parameter_count_of_presets(preset):
    config = PRESETS[preset]
    encoder = TemporalEncoder(64, config)
    assert sum(p.numel() for p in encoder.parameters()) == parameter_count(64, config)
    assert encoder.step(torch.randn(1, 64)).shape == (1, config.hidden_dim)


def test_trainer_starts_each_window_from_its_stored_hidden_state():
    obs = periodic_stream(30)
    hidden = np.random.default_rng(1).normal(size=(30, 16)).astype(np.float32)
    encoder = model()
    trainer = TemporalTrainer(sequence_length=6, batch_size=4, learning_rate=1e-3, seed=3)
    trainer.setup({MODEL_NAME: encoder})
    # The trainer's first windows, drawn as it draws them.
    starts = torch.randint(30 - 7 + 1, (4,), generator=torch.Generator().manual_seed(3)).numpy()
    windows = obs[starts[:, None] + np.arange(7)]
    with torch.no_grad():
        _, from_stored = encoder(
            torch.from_numpy(windows[:, :-1]), torch.from_numpy(hidden[starts])
        )
        _, from_zeros = encoder(torch.from_numpy(windows[:, :-1]))
    targets = torch.from_numpy(windows[:, 1:])
    expected = float(torch.nn.functional.mse_loss(from_stored, targets))
    other = float(torch.nn.functional.mse_loss(from_zeros, targets))
    assert abs(expected - other) > 1e-4  # the check below can tell them apart

    result = trainer.run({MODEL_NAME: encoder}, {MODEL_NAME: filled_buffer(obs, hidden)})

    assert result.metrics["temporal/loss"] == pytest.approx(expected, rel=1e-5)
    assert result.updated_models == (MODEL_NAME,)


def test_trainer_loss_falls_on_a_periodic_stream():
    obs = periodic_stream(80)
    buffer = filled_buffer(obs, np.zeros((80, 16), np.float32))
    encoder = model()
    trainer = TemporalTrainer(
        sequence_length=10,
        burn_in=2,
        batch_size=8,
        steps_per_run=5,
        learning_rate=1e-2,
        min_new_samples=0,
    )
    models = {MODEL_NAME: encoder}
    losses = [trainer.run(models, {MODEL_NAME: buffer}).metrics["temporal/loss"] for _ in range(6)]
    assert losses[-1] < 0.2 * losses[0], losses


def test_trainer_conditions_and_state_round_trip():
    trainer = TemporalTrainer(sequence_length=4, burn_in=1)
    assert trainer.window == 6 and trainer.min_buffer_size == 6
    buffer = filled_buffer(periodic_stream(5), np.zeros((5, 16), np.float32))
    assert not trainer.is_trainable({MODEL_NAME: buffer})
    encoder = model()
    trainer.setup({MODEL_NAME: encoder})
    buffer = filled_buffer(periodic_stream(20), np.zeros((20, 16), np.float32))
    trainer.run({MODEL_NAME: encoder}, {MODEL_NAME: buffer})
    state = trainer.state_dict()
    copy = TemporalTrainer(sequence_length=4, burn_in=1)
    copy.setup({MODEL_NAME: model()})
    copy.load_state_dict(state)
    assert copy.runs == 1
    assert torch.equal(copy.extra_state_dict()["generator"], state["extra"]["generator"])
    with pytest.raises(ValueError, match="needs 'optimizer' and 'generator'"):
        copy.load_extra_state_dict({"optimizer": {}})
    with pytest.raises(KeyError, match="needs a TemporalEncoder"):
        TemporalTrainer().setup({MODEL_NAME: torch.nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="sequence_length"):
        TemporalTrainer(sequence_length=0)


def test_trainer_runs_under_bfloat16_autocast():
    trainer = TemporalTrainer(sequence_length=4, autocast_dtype=torch.bfloat16, min_new_samples=0)
    buffer = filled_buffer(periodic_stream(20), np.zeros((20, 16), np.float32))
    encoder = model()
    before = [p.detach().clone() for p in encoder.parameters()]
    loss = trainer.run({MODEL_NAME: encoder}, {MODEL_NAME: buffer}).metrics["temporal/loss"]
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in encoder.parameters())
