import numpy as np

from pamiq_ros.core.actions import ACTION_SIZES, ActionChoice
from pamiq_ros.core.policy import Policy, RandomPolicy


def test_random_policy_acts_without_observation_and_with_a_frame():
    policy = RandomPolicy(seed=0)
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    assert isinstance(policy.act(None), ActionChoice)
    assert isinstance(policy.act(frame), ActionChoice)
    assert isinstance(policy, Policy)


def test_random_policy_is_reproducible_by_seed():
    first = RandomPolicy(seed=7).act(None)
    a, b, c = RandomPolicy(seed=7), RandomPolicy(seed=7), RandomPolicy(seed=8)
    run_a = [a.act(None) for _ in range(50)]
    assert run_a == [b.act(None) for _ in range(50)]
    assert run_a != [c.act(None) for _ in range(50)]
    assert run_a[0] == first


def test_random_policy_covers_every_option_of_every_dimension():
    policy = RandomPolicy(seed=1)
    seen: list[set[int]] = [set() for _ in ACTION_SIZES]
    for _ in range(500):
        for dimension, index in enumerate(policy.act(None).indices()):
            seen[dimension].add(index)
    assert [len(options) for options in seen] == list(ACTION_SIZES)


def test_random_policy_state_round_trip_continues_the_same_actions():
    import json

    policy = RandomPolicy(seed=3)
    for _ in range(5):
        policy.act(None)
    state = json.loads(json.dumps(policy.state_dict()))  # what an agent checkpoint stores
    expected = [policy.act(None) for _ in range(10)]
    restored = RandomPolicy(seed=99)
    restored.load_state_dict(state)
    assert [restored.act(None) for _ in range(10)] == expected


def test_random_policy_refuses_a_foreign_state():
    import pytest

    with pytest.raises(ValueError, match="not a RandomPolicy state"):
        RandomPolicy(seed=0).load_state_dict({"hidden": [0.0]})
