"""Tests of the recurrent policy/value network, GAE, the PPO loss and the PPO trainer."""

import math

import numpy as np
import pytest
import torch

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.buffers import SequentialBuffer
from pamiq_ros.models.ppo import (
    MODEL_NAME,
    PRESETS,
    SAMPLE_KEYS,
    PolicyValueConfig,
    PolicyValueNet,
    PPOConfig,
    PPOTrainer,
    compute_gae,
    count_parameters,
    ppo_loss,
)

SMALL = PolicyValueConfig(state_dim=4, hidden_size=16, num_layers=1, head_hidden=16)


def make_net(config: PolicyValueConfig = SMALL, seed: int = 0) -> PolicyValueNet:
    torch.manual_seed(seed)
    return PolicyValueNet(config)


def test_presets_exist_and_grow() -> None:
    counts = [count_parameters(PolicyValueNet(PRESETS[name])) for name in ("tiny", "small", "base")]
    assert counts == sorted(counts)
    assert counts[0] == 34_190  # documented in the module docstring
    assert PolicyValueNet().config == PRESETS["tiny"]


def test_config_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="hidden_size"):
        PolicyValueConfig(hidden_size=0)
    with pytest.raises(ValueError, match="epochs"):
        PPOConfig(epochs=0)
    with pytest.raises(ValueError, match="gamma"):
        PPOConfig(gamma=1.5)


def test_act_shapes_ranges_and_generator() -> None:
    net = make_net()
    state = torch.randn(3, SMALL.state_dim)
    with torch.inference_mode():
        actions, log_prob, value, hidden = net.act(state, None, torch.Generator().manual_seed(1))
        again, _, _, _ = net.act(state, None, torch.Generator().manual_seed(1))
    assert actions.shape == (3, len(ACTION_SIZES)) and actions.dtype == torch.int64
    assert log_prob.shape == (3,) and value.shape == (3,)
    assert hidden.shape == (SMALL.num_layers, 3, SMALL.hidden_size)
    for dim, size in enumerate(ACTION_SIZES):
        assert int(actions[:, dim].min()) >= 0 and int(actions[:, dim].max()) < size
    assert torch.equal(actions, again)
    # A fresh net is near uniform: log-prob of any action is about -log(prod(sizes)).
    uniform = -math.log(math.prod(ACTION_SIZES))
    assert torch.allclose(log_prob, torch.full((3,), uniform), atol=0.05)


def test_act_rejects_wrong_state_size() -> None:
    net = make_net()
    with pytest.raises(ValueError, match="state_dim 4"):
        net.act(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="hidden must be"):
        net.act(torch.zeros(2, 4), torch.zeros(1, 3, SMALL.hidden_size))


def test_evaluate_matches_step_by_step_acting_with_resets() -> None:
    net = make_net()
    steps = 5
    states = torch.randn(2, steps, SMALL.state_dim)
    dones = torch.zeros(2, steps)
    dones[0, 1] = 1.0  # the first sequence's episode ends after step 1
    h0 = torch.randn(SMALL.num_layers, 2, SMALL.hidden_size) * 0.1
    generator = torch.Generator().manual_seed(3)
    hidden = h0
    actions, log_probs, values = [], [], []
    with torch.no_grad():
        for step in range(steps):
            action, log_prob, value, hidden = net.act(states[:, step], hidden, generator)
            hidden = hidden * (1.0 - dones[:, step]).view(1, -1, 1)
            actions.append(action)
            log_probs.append(log_prob)
            values.append(value)
        new_log_probs, entropy, new_values = net.evaluate(
            states, torch.stack(actions, 1), h0, dones
        )
        no_reset_log_probs, _, _ = net.evaluate(states, torch.stack(actions, 1), h0)
    assert new_log_probs.shape == entropy.shape == new_values.shape == (2, steps)
    assert torch.allclose(new_log_probs, torch.stack(log_probs, 1), atol=1e-5)
    assert torch.allclose(new_values, torch.stack(values, 1), atol=1e-5)
    # Without the reset, the steps after the done see another memory.
    assert not torch.allclose(no_reset_log_probs[0, 2:], new_log_probs[0, 2:], atol=1e-7)
    max_entropy = sum(math.log(size) for size in ACTION_SIZES)
    assert bool((entropy > 0).all()) and bool((entropy <= max_entropy + 1e-5).all())


def test_gae_by_hand_with_a_done_in_the_middle() -> None:
    # gamma = lam = 0.5; the episode ends after step 1.
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0])
    values = torch.tensor([0.5, 1.0, 1.5, 2.0])
    dones = torch.tensor([0.0, 1.0, 0.0, 0.0])
    advantages, returns = compute_gae(rewards, values, dones, 4.0, gamma=0.5, lam=0.5)
    # t=3: delta = 4 + 0.5*4 - 2 = 4;              A3 = 4
    # t=2: delta = 3 + 0.5*2 - 1.5 = 2.5;          A2 = 2.5 + 0.25*4 = 3.5
    # t=1: done, delta = 2 + 0 - 1 = 1;            A1 = 1 (nothing flows over the done)
    # t=0: delta = 1 + 0.5*1 - 0.5 = 1;            A0 = 1 + 0.25*1 = 1.25
    assert advantages.tolist() == pytest.approx([1.25, 1.0, 3.5, 4.0])
    assert returns.tolist() == pytest.approx([1.75, 2.0, 5.0, 6.0])


def test_gae_batched_and_lambda_one_gives_discounted_returns() -> None:
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]])
    values = torch.zeros(2, 3)
    dones = torch.zeros(2, 3, dtype=torch.bool)
    _, returns = compute_gae(rewards, values, dones, torch.tensor([8.0, 0.0]), 0.5, 1.0)
    # row 0: 1 + 0.5 + 0.25 + 0.125*8 = 2.75; 1 + 0.5 + 0.25*8 = 3.5; 1 + 0.5*8 = 5
    assert returns[0].tolist() == pytest.approx([2.75, 3.5, 5.0])
    assert returns[1].tolist() == pytest.approx([0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="same"):
        compute_gae(rewards, values[:, :2], dones, 0.0)


def _policy_part(ratio: float, advantage: float) -> tuple[float, float]:
    """Policy loss and its gradient w.r.t. the new log-prob, for one step."""
    new = torch.tensor([math.log(ratio)], requires_grad=True)
    zero = torch.zeros(1)
    loss, parts = ppo_loss(
        new,
        zero,
        torch.tensor([advantage]),
        zero,
        zero,
        zero,
        clip=0.2,
        value_coef=0.0,
        entropy_coef=0.0,
    )
    loss.backward()
    assert new.grad is not None
    return parts["policy_loss"], float(new.grad[0])


def test_ppo_loss_clipping_by_hand() -> None:
    # Positive advantage, ratio above 1 + clip: clipped at 1.2, no gradient pushes it further.
    assert _policy_part(1.5, 1.0) == pytest.approx((-1.2, 0.0))
    # Negative advantage, ratio below 1 - clip: clipped at 0.8, no gradient.
    assert _policy_part(0.5, -1.0) == pytest.approx((0.8, 0.0))
    # Negative advantage, ratio above 1 + clip: the pessimistic unclipped term stays, so the
    # gradient still pulls the probability down (d loss / d log p = -ratio * A = 1.5).
    assert _policy_part(1.5, -1.0) == pytest.approx((1.5, 1.5))
    # Positive advantage, ratio below 1 - clip: unclipped, gradient -ratio * A = -0.5.
    assert _policy_part(0.5, 1.0) == pytest.approx((-0.5, -0.5))
    # Inside the range: plain ratio * A.
    assert _policy_part(1.1, 2.0) == pytest.approx((-2.2, -2.2))


def test_ppo_loss_total_value_entropy_and_normalisation() -> None:
    new = torch.log(torch.tensor([1.0, 1.5]))
    old = torch.zeros(2)
    advantages = torch.tensor([1.0, 3.0])
    values = torch.tensor([1.0, 2.0])
    returns = torch.tensor([2.0, 4.0])
    entropy = torch.tensor([0.5, 1.5])
    total, parts = ppo_loss(
        new,
        old,
        advantages,
        values,
        returns,
        entropy,
        clip=0.2,
        value_coef=0.5,
        entropy_coef=0.1,
    )
    # policy: -mean(1*1, 1.2*3) = -2.3; value: mean(1, 4) = 2.5; entropy mean 1.0
    assert parts["policy_loss"] == pytest.approx(-2.3)
    assert parts["value_loss"] == pytest.approx(2.5)
    assert parts["entropy"] == pytest.approx(1.0)
    assert float(total) == pytest.approx(-2.3 + 0.5 * 2.5 - 0.1 * 1.0)
    assert parts["clip_fraction"] == pytest.approx(0.5)
    # Normalised advantages are -1/sqrt(2), +1/sqrt(2) (unbiased std of [1, 3] is sqrt(2)).
    _, normalised = ppo_loss(
        new, old, advantages, values, returns, entropy, normalize_advantages=True
    )
    half = 1 / math.sqrt(2)
    assert normalised["policy_loss"] == pytest.approx(-(-half + 1.2 * half) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="share one shape"):
        ppo_loss(new, old, advantages[:1], values, returns, entropy)


def _collect(
    net: PolicyValueNet,
    buffer: SequentialBuffer,
    steps: int,
    generator: torch.Generator,
    hidden: torch.Tensor | None,
) -> tuple[torch.Tensor | None, float]:
    """Acts in a one-state bandit: reward 1 when the move dimension picks FORWARD (1)."""
    state = torch.ones(1, SMALL.state_dim)
    rewarded = 0
    with torch.inference_mode():
        for _ in range(steps):
            before = net.initial_hidden(1) if hidden is None else hidden
            action, log_prob, value, hidden = net.act(state, before, generator)
            reward = float(action[0, 0] == 1)
            rewarded += int(reward)
            buffer.add(
                {
                    "state": state[0].numpy(),
                    "action": action[0].numpy(),
                    "log_prob": np.float32(log_prob[0]),
                    "value": np.float32(value[0]),
                    "reward": np.float32(reward),
                    "done": np.float32(0.0),
                    "hidden": before[:, 0].numpy(),
                }
            )
    return hidden, rewarded / steps


def _forward_probability(net: PolicyValueNet) -> float:
    with torch.no_grad():
        logits, _, _ = net(torch.ones(1, 1, SMALL.state_dim))
    return float(torch.softmax(logits[0, 0, : ACTION_SIZES[0]], -1)[1])


def test_ppo_trainer_learns_a_bandit() -> None:
    net = make_net()
    acting = make_net()
    config = PPOConfig(
        gamma=0.5,
        lam=0.9,
        lr=3e-3,
        epochs=4,
        minibatch=8,
        sequence_length=8,
        sequences_per_run=16,
        entropy_coef=0.0,
    )
    trainer = PPOTrainer(config, buffer_name="steps", min_new_samples=32, seed=0)
    buffer = SequentialBuffer(SAMPLE_KEYS, 256)
    models = {MODEL_NAME: net}
    buffers = {"steps": buffer}
    generator = torch.Generator().manual_seed(0)
    before = _forward_probability(net)
    hidden = None
    for _ in range(8):
        acting.load_state_dict(net.state_dict())
        hidden, _ = _collect(acting, buffer, 64, generator, hidden)
        assert trainer.is_trainable(buffers)
        result = trainer.run(models, buffers)
    after = _forward_probability(net)
    assert before == pytest.approx(1 / 3, abs=0.02)
    assert after > 0.7, f"P(forward) only went from {before:.3f} to {after:.3f}"
    expected = {f"ppo/{key}" for key in ("loss", "policy_loss", "value_loss", "entropy")}
    expected |= {"ppo/value", "ppo/reward"}
    assert expected <= set(result.metrics)
    assert all(math.isfinite(value) for value in result.metrics.values())
    assert result.updated_models == (MODEL_NAME,)


def test_ppo_trainer_state_round_trip_and_checks() -> None:
    net = make_net()
    config = PPOConfig(sequence_length=4, sequences_per_run=4, minibatch=2, epochs=1)
    trainer = PPOTrainer(config, buffer_name="steps", min_new_samples=1)
    buffer = SequentialBuffer(SAMPLE_KEYS, 32)
    _collect(net, buffer, 10, torch.Generator().manual_seed(0), None)
    trainer.run({MODEL_NAME: net}, {"steps": buffer})
    state = trainer.state_dict()
    other = PPOTrainer(config, buffer_name="steps", min_new_samples=1, seed=5)
    other.setup({MODEL_NAME: make_net()})
    other.load_state_dict(state)
    assert torch.equal(other._generator.get_state(), trainer._generator.get_state())
    with pytest.raises(ValueError, match="optimizer"):
        other.load_extra_state_dict({})
    with pytest.raises(ValueError, match="min_buffer_size"):
        PPOTrainer(config, min_buffer_size=4)
    with pytest.raises(KeyError, match="PolicyValueNet"):
        PPOTrainer(config).setup({MODEL_NAME: torch.nn.Linear(1, 1)})


def test_ppo_trainer_runs_under_bf16_autocast() -> None:
    net = make_net()
    config = PPOConfig(sequence_length=4, sequences_per_run=4, minibatch=4, epochs=1)
    trainer = PPOTrainer(
        config, buffer_name="steps", min_new_samples=1, autocast_dtype=torch.bfloat16
    )
    buffer = SequentialBuffer(SAMPLE_KEYS, 32)
    _collect(net, buffer, 10, torch.Generator().manual_seed(0), None)
    weights = [parameter.detach().clone() for parameter in net.parameters()]
    result = trainer.run({MODEL_NAME: net}, {"steps": buffer})
    assert all(math.isfinite(value) for value in result.metrics.values())
    assert all(parameter.dtype == torch.float32 for parameter in net.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True)]
    assert any(changed)
