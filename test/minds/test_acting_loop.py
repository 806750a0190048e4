"""The acting loop without ROS: rate, gaps on stale or repeated frames, pause and close stop."""

import threading
import time

import numpy as np

from pamiq_ros.core.actions import (
    RELEASED_MOUSE,
    Action,
    ActionMapper,
    MouseAction,
    VRChatActionMapper,
    VRChatChoice,
)
from pamiq_ros.core.policy import Observation
from pamiq_ros.minds.acting_loop import STOP, ActingLoop, LoopTiming
from pamiq_ros.minds.autoencoder import AutoencoderMind
from pamiq_ros.minds.base import ActingStep
from pamiq_ros.minds.curiosity import CuriosityMind
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


class WatchedMind(CuriosityMind):
    """The curiosity mind in the vrchat space, keeping what it saw and chose each step."""

    def __init__(self) -> None:
        super().__init__(policy="random", seed=3, action_space="vrchat")
        self.steps: list[tuple[bool, ActingStep]] = []

    def act(self, step: int, observation: Observation | None) -> ActingStep:
        result = super().act(step, observation)
        self.steps.append((observation is not None, result))
        return result


def test_the_vrchat_space_publishes_each_steps_mouse_and_a_released_one_on_pause_and_close():
    published: list[list[object]] = []  # [action, stamp, mouse] in publishing order
    mind = WatchedMind()
    loop = ActingLoop(
        mind, ActionMapper(2.0, 1.5), LoopTiming(20.0, 0.5),
        publish=lambda action, stamp: published.append([action, stamp]),
        hand_off=lambda records: None, on_error=lambda error: None,
        publish_mouse=lambda mouse, stamp: published[-1].append(mouse), mouse_speed=50.0,
    )  # fmt: skip
    loop.start()
    rng = np.random.default_rng(0)
    for sequence in range(1, 200):
        loop.offer(rng.integers(0, 256, (120, 160, 3), np.uint8), (sequence, 0), 0.0, (160, 120))
        time.sleep(0.02)
        if sum(seen for seen, _ in mind.steps) >= 12:
            break
    loop.pause()
    acted = len(published) - 1
    assert published[-1] == [STOP, None, RELEASED_MOUSE], "pause releases the mouse at once"
    time.sleep(0.15)
    assert len(published) == acted + 1, "nothing follows the pause's release"
    loop.close()
    assert published[-1] == [STOP, None, RELEASED_MOUSE]
    mapper = VRChatActionMapper(ActionMapper(2.0, 1.5), mouse_speed=50.0)
    pressed_or_moved = 0
    for (saw, step), (action, stamp, mouse) in zip(mind.steps, published[:acted], strict=False):
        assert isinstance(mouse, MouseAction) and isinstance(action, Action)
        if saw:  # the step's 9-head choice, as motion and mouse
            assert isinstance(step.choice, VRChatChoice) and stamp is not None
            assert (action, mouse) == mapper.to_actions(step.choice)
            pressed_or_moved += mouse != RELEASED_MOUSE
        else:  # a gap: a stop and a released mouse
            assert (action, stamp, mouse) == (STOP, None, RELEASED_MOUSE)
    assert pressed_or_moved >= 6, "random 9-head choices move or press the mouse most steps"
