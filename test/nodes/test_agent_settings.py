"""The agent's settings without a graph: the action space reaches the mind, bad ones are refused."""

import numpy as np
import pytest

from pamiq_ros.core.actions import VRChatChoice
from pamiq_ros.minds.curiosity import RAW_REWARD
from pamiq_ros.nodes.agent import AgentSettings, build_mind, describe_mind
from test.models.conftest import one_torch_thread


@pytest.mark.usefixtures(one_torch_thread.__name__)
def test_the_vrchat_action_space_reaches_the_mind_and_the_autoencoder_refuses_it():
    settings = AgentSettings(action_space="vrchat", mouse_speed=120.0)
    assert "vrchat actions" in describe_mind(settings)
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    assert isinstance(build_mind(settings).act(1, frame).choice, VRChatChoice)
    with pytest.raises(ValueError, match="motion action space only"):
        AgentSettings(mind="autoencoder", action_space="vrchat")
    with pytest.raises(ValueError, match="action_space must be one of"):
        AgentSettings(action_space="gamepad")
    with pytest.raises(ValueError, match="mouse_speed"):
        AgentSettings(mouse_speed=0.0)


@pytest.mark.usefixtures(one_torch_thread.__name__)
def test_the_curiosity_reward_setting_reaches_the_mind():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(6)]
    raw = {}
    for reward in ("error", "error_over_copy"):
        settings = AgentSettings(curiosity_reward=reward)
        assert f"reward {reward}" in describe_mind(settings)
        mind = build_mind(settings)
        records = [
            record
            for step, frame in enumerate(frames, 1)
            for record in mind.act(step, frame).records
        ]
        raw[reward] = [
            float(record.tensors[RAW_REWARD]) for record in records if RAW_REWARD in record.tensors
        ]
    assert len(raw["error_over_copy"]) == len(raw["error"]) >= 3
    # A fresh forward model copies: its error over copying's is exactly 1; its error is the change.
    assert raw["error_over_copy"] == pytest.approx([1.0] * len(raw["error"]))
    assert all(value > 0 and value != pytest.approx(1.0) for value in raw["error"])
    with pytest.raises(ValueError, match="curiosity_reward must be one of"):
        AgentSettings(curiosity_reward="novelty")
