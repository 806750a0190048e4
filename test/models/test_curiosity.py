import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models import forward_dynamics as fd
from pamiq_ros.models.curiosity import CuriosityReward, default_weights, weighted_prediction_error
from pamiq_ros.models.temporal import TemporalConfig, TemporalEncoder


def test_default_weights_are_one_over_k_normalised():
    torch.testing.assert_close(
        default_weights(3), torch.tensor([6 / 11, 3 / 11, 2 / 11], dtype=torch.float64)
    )
    assert float(default_weights(7).sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="horizon"):
        default_weights(0)


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


def test_reward_matches_the_predictions_made_k_steps_ago():
    curiosity = CuriosityReward(2, weights=[2.0, 1.0])
    torch.testing.assert_close(curiosity.weights, torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))
    assert curiosity.observe(torch.zeros(2)) is None  # nothing imagined yet
    # Step 0 imagines obs_1 = (1, 1) and obs_2 = (1, 1).
    curiosity.remember(torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    # At step 1 only the 1-step prediction exists: the reward is its own error.
    assert curiosity.available_horizons() == [1]
    assert curiosity.observe(torch.tensor([1.0, 3.0])) == pytest.approx(2.0)  # (0 + 4) / 2
    # Step 1 imagines obs_2 = (0, 0) and obs_3 = (9, 9).
    curiosity.remember(torch.tensor([[0.0, 0.0], [9.0, 9.0]]))
    # At step 2: 1-step error vs (0, 0) is 2.5, 2-step error vs (1, 1) is 0.5.
    assert curiosity.observe(torch.tensor([1.0, 2.0])) == pytest.approx((2 * 2.5 + 0.5) / 3)
    # Step 2 makes no imagination; at step 3 only step 1's 2-step prediction (9, 9) is left.
    curiosity.remember(None)
    assert curiosity.available_horizons() == [2]
    assert curiosity.observe(torch.tensor([9.0, 7.0])) == pytest.approx(2.0)
    curiosity.reset()
    assert curiosity.observe(torch.zeros(2)) is None


def test_refuses_bad_weights_and_predictions():
    with pytest.raises(ValueError, match="must have 3 values"):
        CuriosityReward(3, weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        CuriosityReward(2, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="all be zero"):
        CuriosityReward(2, weights=[0.0, 0.0])
    curiosity = CuriosityReward(3)
    with pytest.raises(ValueError, match=r"predictions must be \(3, obs_dim\), got \(2, 4\)"):
        curiosity.remember(torch.zeros(2, 4))
    curiosity.remember(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="must be"):
        curiosity.observe(torch.zeros(5))


def run_stream(frames: list[np.ndarray], steps_per_frame_stream: list[int]) -> list[float]:
    """The agent's loop with a tiny temporal encoder (fixed) and forward model trained online.

    Returns the curiosity reward of every step that had predictions.
    """
    torch.manual_seed(0)
    obs_dim, horizon = frames[0].shape[0], 3
    temporal = TemporalEncoder(obs_dim, TemporalConfig(hidden_dim=16, input_dim=16, head_dim=16))
    dynamics = fd.ForwardDynamics(
        16,
        obs_dim,
        fd.ForwardDynamicsConfig(horizon, imagined_dim=32, action_embed_dim=4, head_dim=32),
    )
    trainer = fd.ForwardDynamicsTrainer(
        batch_size=16,
        steps_per_run=2,
        learning_rate=1e-2,
        min_buffer_size=horizon + 1,
        min_new_samples=1,
    )
    buffer = SequentialBuffer([fd.STATE_KEY, fd.ACTION_KEY, fd.OBS_KEY], 64)
    models, buffers = {fd.MODEL_NAME: dynamics}, {fd.MODEL_NAME: buffer}
    curiosity = CuriosityReward(horizon)
    action = torch.zeros(1, len(ACTION_SIZES), dtype=torch.long)
    h = temporal.initial_state()
    rewards = []
    for frame, steps in zip(frames, steps_per_frame_stream, strict=True):
        for _ in range(steps):
            obs = torch.from_numpy(frame)
            reward = curiosity.observe(obs)
            if reward is not None:
                rewards.append(reward)
            with torch.no_grad():
                h = temporal.step(obs.unsqueeze(0), h)
                curiosity.remember(dynamics(h, action)[0])
            buffer.add(
                {fd.STATE_KEY: h[0].numpy(), fd.ACTION_KEY: action[0].numpy(), fd.OBS_KEY: frame}
            )
            if trainer.is_trainable(buffers):
                trainer.run(models, buffers)
    return rewards


def test_reward_falls_on_a_repeated_stream_and_rises_when_it_changes():
    rng = np.random.default_rng(0)
    first, second = (rng.normal(size=24).astype(np.float32) for _ in range(2))
    rewards = run_stream([first, second], [60, 15])
    start, settled = np.mean(rewards[:5]), np.mean(rewards[50:59])
    after_change = np.mean(rewards[59:62])  # rewards[i] is the reward of step i + 1
    print(
        f"reward: start {start:.3g}, settled {settled:.3g}, after the change {after_change:.3g}, "
        f"15 steps later {rewards[-1]:.3g}"
    )
    assert settled < 0.01 * start
    assert after_change > 100 * settled
    # The forward model learns the new stream in turn, so the reward falls again.
    assert rewards[-1] < 0.7 * after_change
