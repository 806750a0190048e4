import math

import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models.forward_dynamics import (
    ACTION_KEY,
    DONE_KEY,
    MODEL_NAME,
    OBS_KEY,
    PRESETS,
    SAMPLE_KEYS,
    STATE_KEY,
    ForwardDynamics,
    ForwardDynamicsConfig,
    ForwardDynamicsTrainer,
    horizon_weights,
    parameter_count,
    previous_observations,
    window_starts,
)

SMALL = ForwardDynamicsConfig(horizon=3, imagined_dim=32, action_embed_dim=4, head_dim=32)


def model(state_dim: int = 8, obs_dim: int = 12, seed: int = 0, *, trained_head: bool = False):
    torch.manual_seed(seed)
    dynamics = ForwardDynamics(state_dim, obs_dim, SMALL)
    if trained_head:  # as if it had learned something: the head no longer says "no change"
        torch.nn.init.normal_(dynamics.change.weight, std=0.3)
    return dynamics


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
    return {
        STATE_KEY: state_codes[places],
        ACTION_KEY: actions,
        OBS_KEY: obs_codes[places],
        DONE_KEY: np.zeros(steps, np.float32),
    }


def filled_buffer(samples: dict[str, np.ndarray]) -> SequentialBuffer:
    count = len(samples[OBS_KEY])
    buffer = SequentialBuffer(SAMPLE_KEYS, count)
    for t in range(count):
        buffer.add({key: value[t] for key, value in samples.items()})
    return buffer


def test_a_fresh_model_predicts_no_change_the_copy_baseline():
    dynamics = model()
    state, obs = torch.randn(5, 8), torch.randn(5, 12)
    actions = torch.from_numpy(random_actions(15, np.random.default_rng(0))).reshape(5, 3, -1)
    with torch.no_grad():
        predicted = dynamics(state, obs, actions)
    assert predicted.shape == (5, 3, 12)
    torch.testing.assert_close(predicted, obs.unsqueeze(1).expand(-1, 3, -1))


def test_each_step_takes_its_own_action_and_the_state():
    dynamics = model(trained_head=True)
    state, obs = torch.randn(5, 8), torch.randn(5, 12)
    actions = torch.from_numpy(random_actions(15, np.random.default_rng(0))).reshape(5, 3, -1)
    with torch.no_grad():
        predicted = dynamics(state, obs, actions)
        # forward is begin + one advance per action
        imagination = dynamics.begin(state, obs)
        for step in range(3):
            imagination = dynamics.advance(imagination, actions[:, step])
            torch.testing.assert_close(imagination.obs, predicted[:, step])
        # A later action changes only the later predictions.
        other = actions.clone()
        other[:, 1, 0] = (other[:, 1, 0] + 1) % 3
        changed = dynamics(state, obs, other)
        torch.testing.assert_close(changed[:, 0], predicted[:, 0])
        assert not torch.allclose(changed[:, 1], predicted[:, 1])
        assert not torch.allclose(dynamics(torch.randn(5, 8), obs, actions), predicted)


def test_the_momentum_carries_the_change_that_led_to_the_observation_on():
    dynamics = model()
    torch.nn.init.eye_(dynamics.momentum.weight)  # as if learned: motion goes on unchanged
    state, obs, before = torch.randn(4, 8), torch.randn(4, 12), torch.randn(4, 12)
    actions = torch.zeros(4, 3, 5, dtype=torch.long)
    with torch.no_grad():
        predicted = dynamics(state, obs, actions, before)
        for k in range(1, 4):  # the head still says "no change": only the momentum moves it
            torch.testing.assert_close(predicted[:, k - 1], obs + k * (obs - before))
        # No previous observation (an episode's first step): nothing to carry on, a copy.
        torch.testing.assert_close(dynamics(state, obs, actions), obs[:, None].expand(-1, 3, -1))
        torch.testing.assert_close(
            dynamics(state, obs, actions, obs), obs[:, None].expand(-1, 3, -1)
        )
    with pytest.raises(ValueError, match=r"previous must be \(4, 12\) like obs, got \(4, 11\)"):
        dynamics.begin(state, obs, torch.randn(4, 11))


def test_previous_observations_stop_at_the_buffer_s_and_each_episode_s_start():
    obs = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    dones = np.array([0, 0, 1, 0, 0, 0], np.float32)  # the episode ended after step 2
    previous = previous_observations({OBS_KEY: obs, DONE_KEY: dones}, np.array([0, 1, 3, 4]))
    np.testing.assert_array_equal(previous[:, 0], [0.0, 0.0, 3.0, 3.0])


def test_refuses_wrong_input():
    dynamics = model()
    obs = torch.randn(2, 12)
    actions = torch.zeros(2, 3, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"state must be \(N, 8\), got \(2, 7\)"):
        dynamics(torch.randn(2, 7), obs, actions)
    with pytest.raises(ValueError, match=r"obs must be \(2, 12\), got \(2, 11\)"):
        dynamics(torch.randn(2, 8), torch.randn(2, 11), actions)
    with pytest.raises(ValueError, match=r"actions must be \(2, T, 5\), got \(2, 5\)"):
        dynamics(torch.randn(2, 8), obs, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"actions must be \(2, 5\), got \(2, 4\)"):
        dynamics(torch.randn(2, 8), obs, torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer indices"):
        dynamics(torch.randn(2, 8), obs, actions.float())
    bad = actions.clone()
    bad[1, 0, 3] = 2  # jump has two options
    with pytest.raises(ValueError, match=r"out of range for sizes \(3, 3, 3, 2, 2\)"):
        dynamics(torch.randn(2, 8), obs, bad)
    with pytest.raises(ValueError, match="horizon"):
        ForwardDynamicsConfig(horizon=0, imagined_dim=4, action_embed_dim=4, head_dim=4)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_parameter_count_of_presets(preset):
    config = PRESETS[preset]
    dynamics = ForwardDynamics(16, 64, config)
    assert sum(p.numel() for p in dynamics.parameters()) == parameter_count(16, 64, config)
    actions = torch.zeros(1, config.horizon, len(ACTION_SIZES), dtype=torch.long)
    with torch.no_grad():
        out = dynamics(torch.randn(1, 16), torch.randn(1, 64), actions)
    assert out.shape == (1, config.horizon, 64)


def test_horizon_weights_are_pamiqs_exponential_average():
    weights = horizon_weights(4)
    expected = np.exp(-np.arange(4) / 4)
    np.testing.assert_allclose(weights.numpy(), expected / expected.sum())
    assert float(weights.sum()) == pytest.approx(1.0)
    assert horizon_weights(1).tolist() == [1.0]
    with pytest.raises(ValueError, match="positive int"):
        horizon_weights(0)


def test_window_starts_never_cross_an_episode_end():
    dones = np.zeros(12)
    dones[5] = 1.0  # the episode ended after step 5
    starts = window_starts(dones, horizon=2, end=12).tolist()
    # a window at t uses steps t .. t+2 as (start, targets): t = 4 and 5 would cross the end
    assert starts == [0, 1, 2, 3, 6, 7, 8, 9]
    assert window_starts(dones, 2, 12, begin=7).tolist() == [7, 8, 9]
    assert window_starts(dones, 2, end=2).tolist() == []


def trainer(**options) -> ForwardDynamicsTrainer:
    defaults = {"batch_size": 32, "steps_per_run": 8, "learning_rate": 1e-2, "held_out_steps": 40}
    return ForwardDynamicsTrainer(min_new_samples=0, **{**defaults, **options})


def test_it_starts_at_the_copy_baseline_and_learns_to_beat_it_on_a_predictable_world():
    buffers = {MODEL_NAME: filled_buffer(ring_world(400))}
    dynamics = model()
    learning = trainer()
    learning.setup({MODEL_NAME: dynamics})
    before = learning.health({MODEL_NAME: dynamics}, buffers)
    for k in (1, 2, 3):  # a fresh model is exactly the copy baseline on held-out steps
        assert before[f"forward_dynamics/copy_ratio_h{k}"] == pytest.approx(1.0)
    results = [learning.run({MODEL_NAME: dynamics}, buffers) for _ in range(25)]
    after = learning.health({MODEL_NAME: dynamics}, buffers)
    print({key: round(value, 3) for key, value in after.items()})
    losses = [result.metrics["forward_dynamics/loss"] for result in results]
    assert losses[-1] < 0.5 * losses[0], losses
    assert set(results[-1].metrics) == {
        f"forward_dynamics/{n}" for n in ("loss", "loss_h1", "loss_h2", "loss_h3")
    }
    # On the held-out steps (never trained on) it now predicts far better than copying.
    assert after["forward_dynamics/copy_ratio_h1"] < 0.3
    assert after["forward_dynamics/copy_ratio"] < 0.6
    assert all(math.isfinite(value) for value in after.values())
    assert results[-1].updated_models == (MODEL_NAME,)


def drifting_world(steps: int, seed: int = 0, episode: int = 20) -> dict[str, np.ndarray]:
    """Observations drift at a speed of their own per episode; states and actions say nothing.

    Only the change that led to an observation tells the next one.
    """
    rng = np.random.default_rng(seed)
    obs = np.zeros((steps, 12), np.float32)
    dones = np.zeros(steps, np.float32)
    for start in range(0, steps, episode):
        speed = rng.normal(scale=0.3, size=12)
        place = rng.normal(size=12)
        for t in range(start, min(start + episode, steps)):
            obs[t] = place + (t - start) * speed
        dones[min(start + episode, steps) - 1] = 1.0
    return {
        STATE_KEY: rng.normal(size=(steps, 8)).astype(np.float32),
        ACTION_KEY: random_actions(steps, rng),
        OBS_KEY: obs,
        DONE_KEY: dones,
    }


def test_it_learns_to_carry_motion_on_where_only_the_last_change_tells_the_next():
    buffers = {MODEL_NAME: filled_buffer(drifting_world(400))}
    figures = {}
    for momentum in (True, False):
        dynamics = model()
        dynamics.momentum.weight.requires_grad_(momentum)  # False: the model before it had one
        learning = trainer()
        learning.setup({MODEL_NAME: dynamics})
        for _ in range(25):
            learning.run({MODEL_NAME: dynamics}, buffers)
        figures[momentum] = learning.health({MODEL_NAME: dynamics}, buffers)
        if momentum:
            assert float(dynamics.momentum.weight.detach().diagonal().mean()) > 0.2
    print({key: {k: round(v, 3) for k, v in value.items()} for key, value in figures.items()})
    # On held-out episodes (new speeds) the momentum predicts; without it nothing does.
    assert figures[True]["forward_dynamics/copy_ratio_h1"] < 0.85
    assert figures[False]["forward_dynamics/copy_ratio_h1"] > 0.95
    assert (
        figures[True]["forward_dynamics/copy_ratio"]
        < figures[False]["forward_dynamics/copy_ratio"] - 0.15
    )


def test_held_out_steps_are_never_trained_on():
    samples = ring_world(120)
    # The newest 40 steps hold values that would make any trained-on window show.
    samples[OBS_KEY][80:] = 1000.0
    buffers = {MODEL_NAME: filled_buffer(samples)}
    dynamics = model()
    result = trainer(steps_per_run=4).run({MODEL_NAME: dynamics}, buffers)
    assert result.metrics["forward_dynamics/loss"] < 100.0


def test_trainer_setup_checks_and_state_round_trip():
    with pytest.raises(ValueError, match="must exceed the model's horizon 3"):
        ForwardDynamicsTrainer(held_out_steps=3).setup({MODEL_NAME: model()})
    with pytest.raises(ValueError, match="min_buffer_size 20 must be at least"):
        ForwardDynamicsTrainer(min_buffer_size=20, held_out_steps=16).setup({MODEL_NAME: model()})
    with pytest.raises(KeyError, match="needs a ForwardDynamics"):
        ForwardDynamicsTrainer().setup({MODEL_NAME: torch.nn.Linear(2, 2)})
    learning = ForwardDynamicsTrainer(batch_size=4, held_out_steps=8)
    learning.setup({MODEL_NAME: model()})
    assert learning.min_buffer_size == 8 + 2 * 3 + 1
    learning.run({MODEL_NAME: model()}, {MODEL_NAME: filled_buffer(ring_world(20))})
    copy = ForwardDynamicsTrainer(batch_size=4, held_out_steps=8)
    copy.setup({MODEL_NAME: model()})
    copy.load_state_dict(learning.state_dict())
    assert copy.runs == 1
    with pytest.raises(ValueError, match="not a byte tensor"):
        copy.load_extra_state_dict({"optimizer": {}, "generator": torch.zeros(3)})


def test_health_waits_for_enough_held_out_steps():
    learning = ForwardDynamicsTrainer(held_out_steps=8)
    learning.setup({MODEL_NAME: model()})
    assert learning.health({MODEL_NAME: model()}, {MODEL_NAME: filled_buffer(ring_world(6))}) == {}


def test_trainer_runs_under_bfloat16_autocast():
    learning = ForwardDynamicsTrainer(batch_size=8, held_out_steps=8, autocast_dtype=torch.bfloat16)
    buffers = {MODEL_NAME: filled_buffer(ring_world(30))}
    result = learning.run({MODEL_NAME: model()}, buffers)
    assert np.isfinite(result.metrics["forward_dynamics/loss"])
    assert learning.health({MODEL_NAME: model()}, buffers)
