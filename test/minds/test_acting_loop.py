"""The acting loop without ROS: rate, gaps on stale or repeated frames, pause and close stop."""

import threading
import time

import numpy as np

from pamiq_ros.core.actions import Action, ActionMapper
from pamiq_ros.minds.acting_loop import STOP, ActingLoop, LoopTiming
from pamiq_ros.minds.autoencoder import AutoencoderMind
from test.support.processes import wait_until


class Recorder:
    def __init__(self) -> None:
        self.actions: list[tuple[Action, tuple[int, int] | None]] = []
        self.errors: list[Exception] = []
        self.lock = threading.Lock()

    def publish(self, action: Action, stamp: tuple[int, int] | None) -> None:
        with self.lock:
            self.actions.append((action, stamp))


def make_loop(recorder: Recorder, rate_hz: float = 50.0, max_age: float = 0.5) -> ActingLoop:
    return ActingLoop(
        AutoencoderMind(seed=0),
        ActionMapper(2.0, 1.5),
        LoopTiming(rate_hz, max_age),
        publish=recorder.publish,
        hand_off=lambda records: None,
        on_error=recorder.errors.append,
    )


def frame() -> np.ndarray:
    return np.full((48, 64, 3), 90, dtype=np.uint8)


def test_without_frames_every_step_is_a_gap_that_stops():
    recorder = Recorder()
    loop = make_loop(recorder)
    loop.start()
    assert wait_until(lambda: len(recorder.actions) >= 10, 5.0)
    loop.close()
    assert all(action == STOP and stamp is None for action, stamp in recorder.actions)
    assert loop.gap_steps >= 10
    assert not recorder.errors


def test_a_fresh_frame_is_acted_on_once_and_its_stamp_answered():
    recorder = Recorder()
    loop = make_loop(recorder, rate_hz=20.0)
    loop.offer(frame(), (5, 7), 0.0, (64, 48))
    loop.start()
    assert wait_until(lambda: len(recorder.actions) >= 5, 5.0)
    loop.close()
    stamped = [stamp for _, stamp in recorder.actions if stamp is not None]
    assert stamped == [(5, 7)], "the same frame is one observation, later steps are gaps"
    assert loop.figures()["frames_received"] == 1


def test_a_frame_older_than_max_frame_age_is_no_observation():
    recorder = Recorder()
    loop = make_loop(recorder, max_age=0.2)
    loop.offer(frame(), (1, 0), 0.5, (64, 48))  # already 0.5 s old at receipt
    loop.start()
    assert wait_until(lambda: len(recorder.actions) >= 5, 5.0)
    loop.close()
    assert all(stamp is None for _, stamp in recorder.actions)


def test_pause_publishes_a_stop_that_stays_the_last_command_until_resumed():
    recorder = Recorder()
    loop = make_loop(recorder)
    loop.start()
    assert wait_until(lambda: len(recorder.actions) >= 3, 5.0)
    loop.pause()
    with recorder.lock:
        at_pause = len(recorder.actions)
    time.sleep(0.2)
    assert len(recorder.actions) == at_pause
    assert recorder.actions[-1] == (STOP, None)
    loop.resume()
    assert wait_until(lambda: len(recorder.actions) > at_pause + 3, 5.0)
    loop.close()
    assert recorder.actions[-1] == (STOP, None)


def test_set_rate_changes_the_measured_rate():
    recorder = Recorder()
    loop = make_loop(recorder, rate_hz=10.0)
    loop.start()
    loop.set_rate(40.0)
    time.sleep(1.0)
    steps = loop.statistics().steps
    loop.close()
    assert loop.rate_hz == 40.0
    assert 25 <= steps <= 45, f"{steps} steps in 1 s at 40 Hz"


def test_the_mind_state_is_handed_over_by_the_step_thread_while_running():
    recorder = Recorder()
    loop = make_loop(recorder)
    loop.start()
    state = loop.mind_state()
    loop.close()
    assert state.keys() == loop.mind.state_dict().keys()
