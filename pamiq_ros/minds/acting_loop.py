"""The agent's acting loop without ROS: the newest frame in a slot, a mind stepped at a rate.

The agent node decodes camera messages and offers the fitted frames here (any thread); a
:class:`~pamiq_ros.core.step_loop.StepLoop` thread runs :meth:`ActingLoop._step` at the set
rate: swap in ready weights, serve a waiting state request, act on the newest frame if it is a
new observation, map the choice to an action and hand it to ``publish``. A frame older than
``max_frame_age``, or the frame the last step already used, is a gap: the mind sees None and
the action is a stop. Pause and close publish a stop under the lock, so no step's action can
follow it. The node supplies the callables that touch ROS (publish, hand off records, log).

In the ``vrchat`` action space the mind's choices are 9-head ``VRChatChoice``: the loop also
hands each step's mouse command to ``publish_mouse``, and a released mouse
(:data:`~pamiq_ros.core.actions.RELEASED_MOUSE`) wherever it publishes a stop.
"""

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pamiq_ros.core.actions import (
    RELEASED_MOUSE,
    Action,
    ActionMapper,
    Choice,
    Motion,
    MouseAction,
    VRChatActionMapper,
    VRChatButtons,
    VRChatChoice,
)
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.frame_age import FrameAges
from pamiq_ros.core.mailbox import Mailbox
from pamiq_ros.core.policy import Observation
from pamiq_ros.core.step_loop import RealTimeOptions, RealTimeReport, StepLoop, StepStatistics
from pamiq_ros.minds.base import ActingMind

STOP = Action(Motion(0.0, 0.0, 0.0), VRChatButtons(jump=False, run=False))
"""The command of a step without observation, of a pause and of a shutdown."""

UNSTAMPED = (0, 0)
"""The stamp key of a frame without a capture stamp."""


@dataclass(frozen=True)
class Frame:
    """One fitted camera frame waiting in the slot.

    Attributes:
        pixels: The mind's input.
        received: Monotonic seconds at receipt.
        stamp_key: The capture stamp as ``(sec, nanosec)``; :data:`UNSTAMPED` when absent.
        age_at_receipt: Seconds from the stamp to receipt (0 for an unstamped frame).
        sequence: Counts received frames.
        source_size: Width, height as the camera sent it.
    """

    pixels: Observation
    received: float
    stamp_key: tuple[int, int]
    age_at_receipt: float
    sequence: int
    source_size: tuple[int, int]

    def age(self, now: float) -> float:
        """Seconds since capture, at monotonic time ``now``."""
        return self.age_at_receipt + (now - self.received)


@dataclass
class LoopTiming:
    """The loop's run-time-changeable settings."""

    rate_hz: float
    max_frame_age: float
    spin_s: float = 0.0
    trigger: str = "rate"
    """When steps start: ``rate`` (fixed rate) or ``frame`` (on each new frame, at most rate_hz)."""
    real_time: RealTimeOptions | None = None
    """Scheduling options of the step thread (SCHED_FIFO, mlockall, affinity); None: none."""


class ActingLoop:
    """Steps a mind at a fixed rate on the newest frame; thread-safe from outside."""

    def __init__(
        self,
        mind: ActingMind,
        mapper: ActionMapper,
        timing: LoopTiming,
        publish: Callable[[Action, tuple[int, int] | None], None],
        hand_off: Callable[[Sequence[ExperienceRecord]], None],
        on_error: Callable[[Exception], None],
        on_swap: Callable[[str, int], None] = lambda model, version: None,
        log_gap: Callable[[str], None] = lambda _: None,
        state_wait_s: float = 2.0,
        publish_mouse: Callable[[MouseAction, tuple[int, int] | None], None] | None = None,
        mouse_speed: float = VRChatActionMapper.mouse_speed,
    ) -> None:
        """Creates the loop; :meth:`start` runs it.

        Args:
            mind: What acts.
            mapper: Turns choices into motions with the configured speeds.
            timing: Rate, frame age limit and spin before each step.
            publish: Sends an action with the stamp key of the frame it answers (None: no
                frame); called under the loop's lock, from the step thread or from pause/close.
            hand_off: Takes the experience records of a step (must not block).
            on_error: Called with a failed step's exception after the stop was published, and
                with the error of a stop that could not be published.
            on_swap: Told of each weight version swapped in (model, version), on the step thread.
            log_gap: Told when gaps begin and end (one line each).
            state_wait_s: Longest wait for the step thread to hand over the mind's state.
            publish_mouse: Sends a mouse command with the stamp key of the frame it answers,
                after ``publish`` and under the same lock: each step's in the ``vrchat``
                action space, a released mouse with every stop. None: no mouse (the
                ``motion`` action space).
            mouse_speed: Pointer speed (px/s) of a look option.
        """
        self.mind = mind
        self._mapper = mapper
        self._publish_mouse = publish_mouse
        self._mouse_speed = mouse_speed
        self._timing = timing
        self._publish = publish
        self._hand_off = hand_off
        self._on_error = on_error
        self._on_swap = on_swap
        self._log_gap = log_gap
        self._state_wait_s = state_wait_s
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._used: tuple[int, tuple[int, int]] | None = None
        self._in_gap = False
        self._interrupted = False
        self._paused = False
        self._closing = False
        self._state_requests: Mailbox[dict[str, Any]] = Mailbox()
        self.step_index = 0
        self.frames_received = 0
        self.frames_rejected = 0
        self.unstamped_frames = 0
        self.gap_steps = 0
        self.last_action_label = "none"
        self.ages_at_receipt = FrameAges()
        self.ages_at_step = FrameAges()
        self._loop = self._new_step_loop()

    def _new_step_loop(self) -> StepLoop:
        return StepLoop(
            self._timing.rate_hz, self._step, on_error=self._step_failed, name="agent-step",
            spin_s=self._timing.spin_s, trigger=self._timing.trigger,
            real_time=self._timing.real_time,
        )  # fmt: skip

    # --- from any thread --------------------------------------------------------------------

    def start(self) -> None:
        """Starts stepping."""
        self._loop.start()

    @property
    def running(self) -> bool:
        """Whether the step thread is alive."""
        return self._loop.running

    @property
    def rate_hz(self) -> float:
        """The target rate in use."""
        return self._timing.rate_hz

    @property
    def paused(self) -> bool:
        """Whether acting is paused."""
        return self._paused

    def set_rate(self, rate_hz: float, spin_s: float | None = None) -> None:
        """Changes the step rate now: the step thread is replaced (statistics start afresh).

        Raises:
            ValueError: If the rate or spin is out of range (nothing changes then).
        """
        timing = dataclasses.replace(
            self._timing, rate_hz=rate_hz, spin_s=self._timing.spin_s if spin_s is None else spin_s
        )
        if not timing.spin_s < 1.0 / rate_hz:
            raise ValueError(
                f"a spin of {timing.spin_s * 1000:g} ms exceeds a step at {rate_hz} Hz"
            )
        was_running = self._loop.running
        self._loop.stop()
        self._timing = timing
        self._loop = self._new_step_loop()
        if was_running and not self._closing:
            self._loop.start()

    def set_max_frame_age(self, seconds: float) -> None:
        """Changes the age after which a frame is no observation."""
        self._timing.max_frame_age = seconds

    def set_speeds(
        self, linear_speed: float, angular_speed: float, mouse_speed: float | None = None
    ) -> None:
        """Changes the speeds of the following actions (the mouse's too, unless None).

        Raises:
            ValueError: If one is not positive (nothing changes then).
        """
        mapper = ActionMapper(linear_speed, angular_speed)
        if mouse_speed is not None:
            VRChatActionMapper(mapper, mouse_speed)  # checks it
            self._mouse_speed = mouse_speed
        self._mapper = mapper

    def offer(
        self,
        pixels: Observation,
        stamp_key: tuple[int, int],
        age_at_receipt: float,
        source_size: tuple[int, int],
    ) -> None:
        """Puts a fitted frame into the slot (replacing any older one)."""
        with self._lock:
            self.frames_received += 1
            if stamp_key == UNSTAMPED:
                self.unstamped_frames += 1
            self._frame = Frame(
                pixels, time.monotonic(), stamp_key, age_at_receipt, self.frames_received,
                source_size,
            )  # fmt: skip
        self.ages_at_receipt.add(age_at_receipt)
        self._loop.notify()  # a frame-triggered loop steps on it

    def reject(self) -> None:
        """Counts a frame that could not be decoded or fitted."""
        with self._lock:
            self.frames_rejected += 1

    @property
    def newest_frame(self) -> Frame | None:
        """The frame in the slot, if any."""
        return self._frame

    def pause(self) -> None:
        """Stops acting; the stop is published before any later step could act."""
        with self._lock:
            self._paused = True
            self._send_stop()

    def resume(self) -> None:
        """Acts again from the next step."""
        with self._lock:
            self._paused = False

    def close(self) -> None:
        """Publishes a stop, stops the step thread, publishes a stop again (nothing follows)."""
        with self._lock:
            self._closing = True
            self._send_stop()
        self._loop.stop()
        with self._lock:
            self._send_stop()

    def mind_state(self) -> dict[str, Any]:
        """The mind's state, taken on the step thread between two steps while it runs.

        Raises:
            OSError: If the step thread did not hand it over in time.
        """
        if not self._loop.running:
            return self.mind.state_dict()
        return self._state_requests.ask("state", self._state_wait_s)

    @property
    def real_time_report(self) -> RealTimeReport | None:
        """What the step thread's scheduling options got (None until it started)."""
        return self._loop.real_time_report

    def statistics(self) -> StepStatistics:
        """The step timing so far (since the last rate change)."""
        return self._loop.statistics()

    def figures(self) -> dict[str, object]:
        """Counters and frame figures for a status."""
        now = time.monotonic()
        with self._lock:
            frame = self._frame
            return {
                "paused": self._paused,
                "step": self.step_index,
                "frames_received": self.frames_received,
                "frames_rejected": self.frames_rejected,
                "last_frame_width": frame.source_size[0] if frame else 0,
                "last_frame_height": frame.source_size[1] if frame else 0,
                "last_frame_age_s": frame.age(now) if frame else "none",
                **self.ages_at_receipt.figures("frame_age_at_receipt"),
                **self.ages_at_step.figures("frame_age_at_step"),
                "gap_steps": self.gap_steps,
                "unstamped_frames": self.unstamped_frames,
                "action": self.last_action_label,
            }

    # --- the step thread --------------------------------------------------------------------

    def _step(self) -> None:
        for model, version in self.mind.swap_ready_weights():
            self._on_swap(model, version)
        if self._state_requests.pending:
            self._state_requests.serve(lambda _: self.mind.state_dict())
        frame: Frame | None = None
        with self._lock:
            stopped = self._paused or self._closing
            if not stopped:
                frame = self._new_observation(time.monotonic())
                self.step_index += 1
                step = self.step_index
        if stopped:
            if not self._interrupted:
                self._interrupted = True
                self._hand_off(self.mind.interrupt())
            return
        self._interrupted = False
        result = self.mind.act(step, frame.pixels if frame is not None else None)
        # A gap commands a stop whatever the mind chose: nothing moves blind.
        action, mouse = self._commands(result.choice) if frame is not None else (STOP, None)
        with self._lock:
            if self._closing or self._paused:
                return  # the stop sent by pause()/close() stays the last command
            self.last_action_label = result.choice.label() if frame is not None else "gap: stop"
            stamp_key = frame.stamp_key if frame is not None else None
            self._publish(action, stamp_key)
            if self._publish_mouse is not None:
                self._publish_mouse(mouse or RELEASED_MOUSE, stamp_key)
        self._hand_off(result.records)

    def _commands(self, choice: Choice) -> tuple[Action, MouseAction | None]:
        """The body's action and, in the ``vrchat`` space, the mouse's."""
        if isinstance(choice, VRChatChoice):
            return VRChatActionMapper(self._mapper, self._mouse_speed).to_actions(choice)
        return self._mapper.to_action(choice), None

    def _new_observation(self, now: float) -> Frame | None:
        """Under the lock: the newest frame if it is a new observation, else None (a gap)."""
        frame, used, max_age = self._frame, self._used, self._timing.max_frame_age
        fresh = (
            frame is not None
            and frame.age(now) <= max_age
            and (used is None or (
                frame.sequence != used[0]
                and (frame.stamp_key == UNSTAMPED or frame.stamp_key != used[1])
            ))
        )  # fmt: skip
        if frame is not None and fresh:
            self._used = (frame.sequence, frame.stamp_key)
            self.ages_at_step.add(frame.age(now))
            if self._in_gap:
                self._in_gap = False
                self._log_gap("fresh frames again: acting on them")
            return frame
        self.gap_steps += 1
        if not self._in_gap:
            self._in_gap = True
            why = "no frame yet" if frame is None else (
                f"newest frame is {frame.age(now):.2f} s old (max_frame_age {max_age} s)"
                if frame.age(now) > max_age else "no new frame since the last step"
            )  # fmt: skip
            self._log_gap(f"no new observation ({why}): gap steps stand still")
        return None

    def _step_failed(self, error: Exception) -> None:
        with self._lock:
            if self._closing:
                return
            self._send_stop()
        self._on_error(error)

    def _send_stop(self) -> None:
        """Under the lock: a stop (and a released mouse); a failure (context gone): on_error."""
        try:
            self._publish(STOP, None)
            if self._publish_mouse is not None:
                self._publish_mouse(RELEASED_MOUSE, None)
        except Exception as error:
            self._on_error(error)
