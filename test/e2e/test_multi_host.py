"""Agent and trainer on two "hosts" (network namespaces with their own host names and
/dev/shm, joined by veth), 2 % packet loss injected with nftables, the wifi network profile.

The trainer starts 3 s after the agent (records sent before it matched must arrive) and, 2 s
after the first weights arrived, the link drops everything for 3 s: weights keep reaching the
agent over the bytes path, and after the drain every record the agent sent reached the trainer
exactly once.
"""

import pytest

from pamiq_ros.bench.network import run_case
from pamiq_ros.bench.network_hosts import missing_reason

pytestmark = pytest.mark.e2e

REASON = missing_reason()


@pytest.mark.skipif(bool(REASON), reason=f"multi-host test: {REASON}")
@pytest.mark.timeout(120)
def test_weights_and_experience_cross_a_lossy_link_and_nothing_is_lost(tmp_path):
    case = run_case(
        loss=2.0, agents=1, seconds=16.0, drain=20.0, parameters=500_000, period=1.0,
        rate_hz=10.0, profile="wifi", out=tmp_path, trainer_delay=3.0, outage=(2.0, 3.0),
    )  # fmt: skip
    agent = case["per_agent"][0]
    assert agent["path"] == "bytes", "own /dev/shm and host name: the shared-memory path is out"
    assert case["versions_fetched"] >= 3, case
    assert case["outage_ended_at"] is not None, "the outage came and went"
    after = [s for s in case["samples"] if s["t"] > case["outage_ended_at"]]
    assert any(s["agents"][0] >= s["newest"] for s in after), case["samples"]
    assert agent["sent"] >= 80, agent
    assert agent["unacknowledged"] == 0 and agent["dropped"] == 0, agent
    assert agent["received"] == agent["sent"] and agent["lost"] == 0, agent
    assert agent["resent"] > 0, "records sent before the trainer matched came again"
