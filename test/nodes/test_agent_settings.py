"""The agent's settings without a graph: the action space reaches the mind, bad ones are refused."""

import numpy as np
import pytest

from pamiq_ros.core.actions import VRChatChoice
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
