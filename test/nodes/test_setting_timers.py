"""SettingTimers: timers whose periods are settings, on a real rclpy node."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pamiq_ros.nodes._runtime import SettingTimers
from test.support.processes import wait_until
from test.support.ros_probe import RosProbe


@dataclass(frozen=True)
class Periods:
    report_period: float
    diagnostics_period: float


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def tick(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def probe(domain_id: int) -> Iterator[RosProbe]:
    probe = RosProbe(domain_id, "setting_timers")
    yield probe
    probe.close()


def test_a_changed_period_replaces_only_its_own_timer(probe: RosProbe) -> None:
    report, diagnostics = Counter(), Counter()
    timers = SettingTimers(probe.node)
    timers.add("report_period", 0.02, report.tick)
    timers.add("diagnostics_period", 0.02, diagnostics.tick)
    assert wait_until(lambda: report.count >= 3 and diagnostics.count >= 3, 10.0)

    # The report period grows to an hour: its timer no longer fires; the other one goes on.
    timers.apply(Periods(3600.0, 0.02), frozenset({"report_period", "unrelated"}))
    reports = report.count
    diagnostics_before = diagnostics.count
    assert wait_until(lambda: diagnostics.count >= diagnostics_before + 5, 10.0)
    time.sleep(0.1)
    assert report.count <= reports + 1  # at most one tick that was already on its way
