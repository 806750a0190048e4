import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models.forward_dynamics import (
    ACTION_KEY,
    MODEL_NAME,
    OBS_KEY,
    PRESETS,
    STATE_KEY,
    ForwardDynamics,
    ForwardDynamicsConfig,
    ForwardDynamicsTrainer,
    parameter_count,
)

SMALL = ForwardDynamicsConfig(horizon=3, imagined_dim=32, action_embed_dim=4, head_dim=32)


def model(state_dim: int = 8, obs_dim: int = 12, seed: int = 0) -> ForwardDynamics:
    torch.manual_seed(seed)
    return ForwardDynamics(state_dim, obs_dim, SMALL)


def random_actions(count: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.integers(0, size, count) for size in ACTION_SIZES], axis=1)


def ring_world(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A ring of 8 places; action "move" 1 steps forward, 2 back, 0 stays.

    The state is the place's code, the observation another code of the same place.
    """
    rng = np.random.default_rng(seed)
    state_codes = rng.normal(size=(8, 8)).astype(np.float32)
    obs_codes = rng.normal(size=(8, 12)).astype(np.float32)
    actions = random_actions(steps, rng)
    for t in range(1, steps):  # keep moving the same way most of the time, as walkers do
        if rng.random() > 0.2:
            actions[t, 0] = actions[t - 1, 0]
    places = np.zeros(steps, np.int64)
    for t in range(1, steps):
        delta = {0: 0, 1: 1, 2: -1}[int(actions[t - 1, 0])]
        places[t] = (places[t - 1] + delta) % 8
    return {STATE_KEY: state_codes[places], ACTION_KEY: actions, OBS_KEY: obs_codes[places]}


def filled_buffer(samples: dict[str, np.ndarray]) -> SequentialBuffer:
    count = len(samples[OBS_KEY])
    buffer = SequentialBuffer([STATE_KEY, ACTION_KEY, OBS_KEY], count)
    for t in range(count):
        buffer.add({key: value[t] for key, value in samples.items()})
    return buffer


def test_shapes_and_actions_matter():
    dynamics = model()
    state = torch.randn(5, 8)
    actions = torch.from_numpy(random_actions(5, np.random.default_rng(0)))
    with torch.no_grad():
        predicted = dynamics(state, actions)
        assert predicted.shape == (5, 3, 12)
        # One action repeated is the same as a plan of that action K times.
        plan = actions.unsqueeze(1).expand(-1, 3, -1)
        torch.testing.assert_close(dynamics(state, plan), predicted)
        other = actions.clone()
        other[:, 0] = (other[:, 0] + 1) % 3
        assert not torch.allclose(dynamics(state, other), predicted)
        assert not torch.allclose(dynamics(torch.randn(5, 8), actions), predicted)


def test_refuses_wrong_input():
    dynamics = model()
    actions = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"state must be \(N, 8\), got \(2, 7\)"):
        dynamics(torch.randn(2, 7), actions)
    with pytest.raises(ValueError, match=r"actions must be \(2, 5\) or \(2, 3, 5\), got \(2, 4\)"):
        dynamics(torch.randn(2, 8), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer indices"):
        dynamics(torch.randn(2, 8), actions.float())
    bad = actions.clone()
    bad[1, 3] = 2  # jump has two options
    with pytest.raises(ValueError, match=r"out of range for sizes \(3, 3, 3, 2, 2\)"):
        dynamics(torch.randn(2, 8), bad)
    with pytest.raises(ValueError, match="horizon"):
        ForwardDynamicsConfig(horizon=0, imagined_dim=4, action_embed_dim=4, head_dim=4)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_parameter_count_of_presets(preset):
    config = PRESETS[preset]
    dynamics = ForwardDynamics(16, 64, config)
    assert sum(p.numel() for p in dynamics.parameters()) == parameter_count(16, 64, config)
    with torch.no_grad():
        out = dynamics(torch.randn(1, 16), torch.zeros(1, len(ACTION_SIZES), dtype=torch.long))
    assert out.shape == (1, config.horizon, 64)


def test_trainer_loss_falls_in_a_ring_world():
    buffer = filled_buffer(ring_world(200))
    dynamics = model()
    trainer = ForwardDynamicsTrainer(
        batch_size=32, steps_per_run=8, learning_rate=3e-2, min_new_samples=0
    )
    models = {MODEL_NAME: dynamics}
    results = [trainer.run(models, {MODEL_NAME: buffer}) for _ in range(8)]
    losses = [result.metrics["forward_dynamics/loss"] for result in results]
    assert losses[-1] < 0.6 * losses[0], losses
    last = results[-1].metrics
    assert set(last) == {f"forward_dynamics/{n}" for n in ("loss", "loss_h1", "loss_h2", "loss_h3")}
    # The action decides the next place exactly; later ones depend on actions not yet taken.
    assert last["forward_dynamics/loss_h1"] < last["forward_dynamics/loss_h3"]
    assert results[-1].updated_models == (MODEL_NAME,)


def test_trainer_setup_checks_and_state_round_trip():
    with pytest.raises(ValueError, match="must exceed the model's horizon 3"):
        ForwardDynamicsTrainer(min_buffer_size=3).setup({MODEL_NAME: model()})
    with pytest.raises(KeyError, match="needs a ForwardDynamics"):
        ForwardDynamicsTrainer().setup({MODEL_NAME: torch.nn.Linear(2, 2)})
    trainer = ForwardDynamicsTrainer(batch_size=4)
    dynamics = model()
    trainer.run({MODEL_NAME: dynamics}, {MODEL_NAME: filled_buffer(ring_world(20))})
    copy = ForwardDynamicsTrainer(batch_size=4)
    copy.setup({MODEL_NAME: model()})
    copy.load_state_dict(trainer.state_dict())
    assert copy.runs == 1
    with pytest.raises(ValueError, match="not a byte tensor"):
        copy.load_extra_state_dict({"optimizer": {}, "generator": torch.zeros(3)})


def test_trainer_runs_under_bfloat16_autocast():
    trainer = ForwardDynamicsTrainer(batch_size=8, autocast_dtype=torch.bfloat16)
    result = trainer.run({MODEL_NAME: model()}, {MODEL_NAME: filled_buffer(ring_world(20))})
    assert np.isfinite(result.metrics["forward_dynamics/loss"])
