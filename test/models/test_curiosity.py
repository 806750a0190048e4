import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models import forward_dynamics as fd
from pamiq_ros.models.curiosity import (
    ERROR_OVER_COPY_CAP,
    RollingImagination,
    weighted_prediction_error,
)

CONFIG = fd.ForwardDynamicsConfig(horizon=3, imagined_dim=16, action_embed_dim=4, head_dim=16)


def dynamics(seed: int = 0) -> fd.ForwardDynamics:
    torch.manual_seed(seed)
    model = fd.ForwardDynamics(6, 4, CONFIG)
    torch.nn.init.normal_(model.change.weight, std=0.5)  # predicts change, not only copies
    return model.eval()


def action(*indices: int) -> torch.Tensor:
    return torch.tensor([list(indices)], dtype=torch.long)


ACTIONS = [
    action(1, 0, 2, 0, 1),
    action(2, 1, 0, 1, 0),
    action(0, 2, 1, 0, 0),
    action(1, 1, 1, 1, 1),
]


def test_weighted_prediction_error_by_hand():
    predictions = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    actual = torch.tensor([0.0, 0.0])
    # mse: 1.0 and 2.0; weights 3 and 1 -> (3 * 1 + 1 * 2) / 4
    value = weighted_prediction_error(predictions, actual, torch.tensor([3.0, 1.0]))
    assert float(value) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="must be"):
        weighted_prediction_error(predictions, torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="sum to zero"):
        weighted_prediction_error(predictions, actual, torch.zeros(2))


def test_a_new_trajectory_starts_from_the_change_since_the_last_observation():
    model = fd.ForwardDynamics(6, 4, CONFIG).eval()  # the change head says "no change"
    torch.nn.init.eye_(model.momentum.weight)  # as if learned: motion goes on unchanged
    state = torch.zeros(1, 6)
    first, second, third = torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.ones(1, 4), torch.zeros(1, 4)
    imagination = RollingImagination(3)
    with torch.no_grad():
        imagination.advance(model, state, first, ACTIONS[0])
        live = imagination.predictions()
        assert live is not None
        torch.testing.assert_close(live, first)  # nothing came before the first
        imagination.advance(model, state, second, ACTIONS[1])
        live = imagination.predictions()
        assert live is not None
        torch.testing.assert_close(live[:1], second + (second - first))  # the newest, at k = 1
        imagination.reset()  # a gap: the change across it is no motion
        imagination.advance(model, state, third, ACTIONS[2])
        live = imagination.predictions()
        assert live is not None
        torch.testing.assert_close(live, third)


def test_every_live_trajectory_is_advanced_with_the_actions_actually_taken():
    model = dynamics()
    rng = torch.Generator().manual_seed(1)
    states = [torch.randn(1, 6, generator=rng) for _ in ACTIONS]
    observations = [torch.randn(1, 4, generator=rng) for _ in ACTIONS]
    imagination = RollingImagination(3)
    with torch.no_grad():
        for t in range(3):
            imagination.advance(model, states[t], observations[t], ACTIONS[t])
        assert imagination.ages == (1, 2, 3)
        live = imagination.predictions()
        assert live is not None
        for row, start in enumerate((2, 1, 0)):  # newest first
            taken = torch.cat(ACTIONS[start:3]).unsqueeze(0)  # the actions since it started
            expected = model(states[start], observations[start], taken)[:, -1]
            torch.testing.assert_close(live[row : row + 1], expected)
        # Repeating the first action instead (the old imagination) predicts something else.
        repeated = ACTIONS[0].unsqueeze(1).expand(-1, 3, -1)
        assert not torch.allclose(live[2:3], model(states[0], observations[0], repeated)[:, -1])
        # A trajectory that predicted K steps is dropped at the next advance.
        imagination.advance(model, states[3], observations[3], ACTIONS[3])
        assert imagination.ages == (1, 2, 3)


def test_the_reward_weighs_each_live_trajectorys_error_by_the_training_weights():
    model = dynamics()
    imagination = RollingImagination(3)
    assert imagination.observe(torch.zeros(4)) is None  # nothing imagined yet
    with torch.no_grad():
        imagination.advance(model, torch.randn(1, 6), torch.randn(1, 4), ACTIONS[0])
        actual = torch.randn(4)
        first = imagination.predictions()
        assert first is not None
        # One trajectory: the reward is its own squared error.
        expected = float((first[0] - actual).square().mean())
        assert imagination.observe(actual) == pytest.approx(expected)
        imagination.advance(model, torch.randn(1, 6), torch.randn(1, 4), ACTIONS[1])
        live = imagination.predictions()
        assert live is not None
    weights = fd.horizon_weights(3)
    errors = (live - actual).square().mean(dim=1).double()
    expected = float((weights[0] * errors[0] + weights[1] * errors[1]) / weights[:2].sum())
    assert imagination.observe(actual) == pytest.approx(expected)
    torch.testing.assert_close(imagination.weights, weights)
    imagination.reset()
    assert imagination.observe(actual) is None and imagination.ages == ()


def test_a_fresh_model_rewards_exactly_the_change_of_the_observation():
    model = fd.ForwardDynamics(6, 4, CONFIG).eval()  # head starts at zero: "nothing changes"
    imagination = RollingImagination(3)
    stream = [torch.full((1, 4), float(value)) for value in (0.0, 1.0, 3.0)]
    with torch.no_grad():
        imagination.advance(model, torch.randn(1, 6), stream[0], ACTIONS[0])
        assert imagination.observe(stream[1][0]) == pytest.approx(1.0)  # (1 - 0)^2
        imagination.advance(model, torch.randn(1, 6), stream[1], ACTIONS[1])
    weights = fd.horizon_weights(3)
    # predictions of now: 1.0 (from step 1) and 0.0 (from step 0): errors 4 and 9
    expected = float((weights[0] * 4 + weights[1] * 9) / weights[:2].sum())
    assert imagination.observe(stream[2][0]) == pytest.approx(expected)


def test_the_error_over_copy_reward_is_one_for_copying_and_measures_the_imagination_against_it():
    copying = fd.ForwardDynamics(6, 4, CONFIG).eval()  # head starts at zero: "nothing changes"
    stream = [torch.full((1, 4), float(value)) for value in (0.0, 1.0, 3.0)]
    imagination = RollingImagination(3, reward="error_over_copy")
    with torch.no_grad():
        imagination.advance(copying, torch.zeros(1, 6), stream[0], ACTIONS[0])
        assert imagination.observe(stream[1][0]) == pytest.approx(1.0)
        imagination.advance(copying, torch.zeros(1, 6), stream[1], ACTIONS[1])
        assert imagination.observe(stream[2][0]) == pytest.approx(1.0)  # two horizons, both 1
    # A model that predicts change: its error over copying's, each weighed as in training.
    model = dynamics()
    plain, relative = RollingImagination(3), RollingImagination(3, reward="error_over_copy")
    rng = torch.Generator().manual_seed(2)
    observations: list[torch.Tensor] = []
    with torch.no_grad():
        for t in range(3):
            state, observation = torch.randn(1, 6, generator=rng), torch.randn(1, 4, generator=rng)
            observations.insert(0, observation[0])  # newest first, as the trajectories
            plain.advance(model, state, observation, ACTIONS[t])
            relative.advance(model, state, observation, ACTIONS[t])
        actual = torch.randn(4, generator=rng)
        error = plain.observe(actual)
        assert error is not None
        # copying: each trajectory's start observation as its prediction of now
        copy_error = weighted_prediction_error(torch.stack(observations), actual, relative.weights)
        assert relative.observe(actual) == pytest.approx(error / float(copy_error))
    # Where nothing changed copying is perfect: the reward is capped, not infinite.
    still = RollingImagination(3, reward="error_over_copy")
    with torch.no_grad():
        still.advance(model, torch.randn(1, 6), stream[1], ACTIONS[0])
        assert still.observe(stream[1][0]) == ERROR_OVER_COPY_CAP
        still.reset()
        assert still.observe(stream[1][0]) is None
        still.advance(copying, torch.zeros(1, 6), stream[0], ACTIONS[0])
        assert still.observe(stream[1][0]) == pytest.approx(1.0)  # nothing left from before
    with pytest.raises(ValueError, match="reward must be one of"):
        RollingImagination(3, reward="novelty")


def test_reward_falls_as_the_forward_model_learns_a_predictable_stream():
    """A one-dimensional world: each action moves the observation by a fixed amount."""
    rng = np.random.default_rng(0)
    moves = np.array([0.0, 0.5, -0.5])
    model = fd.ForwardDynamics(6, 4, CONFIG)
    trainer = fd.ForwardDynamicsTrainer(
        batch_size=16, steps_per_run=2, learning_rate=1e-2, held_out_steps=8, min_new_samples=1
    )
    buffer = SequentialBuffer(fd.SAMPLE_KEYS, 200)
    models, buffers = {fd.MODEL_NAME: model}, {fd.MODEL_NAME: buffer}
    trainer.setup(models)
    imagination = RollingImagination(3)
    obs = np.zeros(4, np.float32)
    direction = np.array([1.0, -1.0, 0.5, 2.0], np.float32)
    rewards = []
    for _ in range(300):
        reward = imagination.observe(torch.from_numpy(obs))
        if reward is not None:
            rewards.append(reward)
        chosen = np.array([rng.integers(size) for size in ACTION_SIZES])
        state = torch.zeros(1, 6)
        with torch.no_grad():
            imagination.advance(
                model, state, torch.from_numpy(obs)[None], torch.from_numpy(chosen)[None]
            )
        buffer.add(
            {fd.STATE_KEY: state[0].numpy(), fd.ACTION_KEY: chosen, fd.OBS_KEY: obs.copy(),
             fd.DONE_KEY: np.float32(0.0)}
        )  # fmt: skip
        if trainer.is_trainable(buffers):
            trainer.run(models, buffers)
        obs = (obs + moves[chosen[0]] * direction).astype(np.float32)
    start, end = np.mean(rewards[:20]), np.mean(rewards[-20:])
    print(f"reward: first 20 steps {start:.3g}, last 20 steps {end:.3g}")
    assert end < 0.2 * start
