"""The agent node: camera frames in, actions out, at a fixed rate that never waits for frames.

Frames from any camera (``sensor_msgs/Image`` on ``camera/image_raw`` in rgb8, bgr8, rgba8,
bgra8, mono8 or YUV 4:2:2, or ``sensor_msgs/CompressedImage`` JPEG/PNG on
``camera/image_raw/compressed``) are checked, decoded and fitted to the mind's input size
(aspect kept, centre crop, as PAMIQ does) in the subscription callback, off the acting thread;
the newest good one waits in a slot. A step loop in its own thread
(``pamiq_ros.core.step_loop``) runs the policy on that frame and publishes the action as a
``Twist`` (or ``TwistStamped``) on ``cmd_vel`` and a ``VRChatInput`` on ``vrchat_input``. The
action space and its mapping to motion live in ``pamiq_ros.core.actions``.

A frame older than ``max_frame_age`` (by its stamp), or the frame the last step already used
(same sequence or stamp), is no new observation: that step is a gap, the mind acts on None
(which ends its episode) and the agent commands a stop. Motion also stops (a zero ``cmd_vel``
and a released ``vrchat_input``) on pause, on shutdown and when a step fails.

What happens between frame and action is the mind's (:mod:`pamiq_ros.minds`): by default the
curiosity agent (I-JEPA encoder, temporal encoder, forward dynamics, PPO policy, curiosity
reward; :mod:`pamiq_ros.minds.curiosity`), or the light random-policy autoencoder mind. The mind
hands experience records to a sender thread, which publishes them to the trainer. New weights
announced by the trainer are fetched and loaded by a loader thread
(:class:`pamiq_ros.nodes._weight_sync.WeightSubscriber`) and swapped in between two steps, so
nothing slow ever runs on the acting thread.
"""

import json
import math
import queue
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import rclpy
import rclpy.duration
import torch
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist, TwistStamped
from pamiq_ros_interfaces.msg import Experience, VRChatInput
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from typing_extensions import override

from pamiq_ros.core.actions import Action, ActionMapper, Motion, VRChatButtons
from pamiq_ros.core.checkpoint import CheckpointStore, resume
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.frame_age import FrameAges
from pamiq_ros.core.policy import Observation
from pamiq_ros.core.precision import PRECISIONS, resolve_device
from pamiq_ros.core.settings import require_one_of, require_positive, setting
from pamiq_ros.core.step_loop import (
    TRIGGERS,
    RealTimeOptions,
    StepLoop,
    describe_real_time,
)
from pamiq_ros.io.experience_codec import record_to_message
from pamiq_ros.io.image_codec import (
    RESIZE_MODES,
    ImageFields,
    ImageFormatError,
    decode_compressed,
    decode_image,
    fit_image,
    to_rgb,
)
from pamiq_ros.minds import MIND_NAMES
from pamiq_ros.minds.autoencoder import AutoencoderMind
from pamiq_ros.minds.base import ActingMind
from pamiq_ros.minds.curiosity import POLICIES, PRESET_NAMES, CuriosityMind
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import OK, WARN, DiagnosticsReporter
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from pamiq_ros.nodes._problem_log import ProblemLog
from pamiq_ros.nodes._runtime import (
    declare_settings,
    hold_memory_in_bounds,
    prepare_run_dir,
    run_node,
)
from pamiq_ros.nodes._weight_sync import SyncTiming, WeightSubscriber

ERROR_LOG_PERIOD_S = 2.0
"""Least time between two logs of the same problem."""

STALE_FRAME_AGE_S = 2.0
"""A newest frame older than this makes the status a warning (the camera stalled)."""

EXPERIENCE_QUEUE_SIZE = 256
"""Records waiting for the sender thread; beyond this, records are counted as dropped rather
than making the acting thread wait."""

STORE_SUBDIR = "agent/checkpoints"
STATE_FILE = "agent_state.json"

GIL_SWITCH_INTERVAL_S = 0.0005
"""How soon another thread of the agent must hand the GIL to the waking step thread."""

STATE_WAIT_S = 2.0
"""Longest wait for the acting thread to hand over the mind's state for a save."""

RAW_IMAGE_TOPIC = "camera/image_raw"
COMPRESSED_IMAGE_TOPIC = "camera/image_raw/compressed"
"""image_transport's names: the compressed stream of ``camera/image_raw``."""

STOP_ACKED_WAIT_S = 0.5
"""On shutdown, longest wait for the final stop command to be acknowledged by subscribers."""


@dataclass(frozen=True)
class AgentSettings:
    """Parameters of the agent node."""

    rate_hz: float = setting(
        10.0, "Steps per second (Hz); the loop keeps it when frames are late or absent."
    )
    image_width: int = setting(
        160, "Width (pixels) of the mind's input; frames of any size are fitted to it."
    )
    image_height: int = setting(
        120, "Height (pixels) of the mind's input; frames of any size are fitted to it."
    )
    image_message: str = setting(
        "raw", "Camera message type: raw (sensor_msgs/Image on camera/image_raw) or compressed "
        "(sensor_msgs/CompressedImage, JPEG or PNG, on camera/image_raw/compressed)."
    )  # fmt: skip
    resize_mode: str = setting(
        "crop", "How a frame of another aspect ratio is fitted: crop (keep aspect, cut the "
        "centre out, as PAMIQ), pad (keep aspect, black borders) or stretch."
    )  # fmt: skip
    max_frame_age: float = setting(
        0.5, "Seconds (by the image stamp) after which a frame is no observation: the step is "
        "a gap (the mind sees None, its episode ends, motion stops); so is the same frame again."
    )  # fmt: skip
    cmd_vel_stamped: bool = setting(
        False, "Publish geometry_msgs/TwistStamped on cmd_vel (ros2_control's diff drive "
        "controller since Jazzy) instead of Twist."
    )  # fmt: skip
    base_frame_id: str = setting("base_link", "frame_id of a TwistStamped cmd_vel.")
    mind: str = setting(
        "curiosity", "What acts: curiosity (JEPA, temporal encoder, forward dynamics, PPO) or "
        "autoencoder (random actions, a frame autoencoder; light, for stack tests)."
    )  # fmt: skip
    policy: str = setting(
        "ppo", "curiosity mind only: ppo (act with the trained policy) or random (random "
        "actions, same world models: the baseline)."
    )  # fmt: skip
    preset: str = setting(
        "tiny", "curiosity mind only: model sizes, tiny (2-core CPU), small or base (GPU); "
        "must match the trainer's."
    )  # fmt: skip
    device: str = setting("cpu", "Torch device of the acting models: cpu or cuda[:N].")
    precision: str = setting("float32", "Compute precision: float32 or bfloat16 (autocast).")
    seed: int = setting(0, "Seed of the initial weights and of the action draws.")
    linear_speed: float = setting(2.0, "Walking speed (m/s) of move and strafe actions.")
    angular_speed: float = setting(1.5, "Turn rate (rad/s) of turn actions.")
    send_experience: bool = setting(True, "Send each step's experience to the trainer.")
    sync_transport: str = setting(
        "auto", "How new weights are fetched: auto (shared memory on the trainer's host, else "
        "bytes), shm, or bytes."
    )  # fmt: skip
    trainer_node: str = setting(
        "trainer", "The trainer whose weights are taken (its node name, relative to this "
        "namespace, or fully qualified); announcements from any other node are refused."
    )  # fmt: skip
    torch_threads: int = setting(1, "CPU threads for the acting model.")
    spin_before_step_ms: float = setting(
        2.0, "The step thread wakes this long before each step and waits busy, so it is running "
        "when the step is due (waking from sleep on a loaded machine takes ms); 0: plain sleep."
    )  # fmt: skip
    step_trigger: str = setting(
        "rate", "When steps start: rate (fixed rate_hz) or frame (on each new frame, at most "
        "rate_hz; with no frame for two periods a step runs anyway and sees the gap)."
    )  # fmt: skip
    step_fifo_priority: int = setting(
        0, "SCHED_FIFO priority (1-99) of the step thread where permitted (root or "
        "CAP_SYS_NICE; a refusal is reported in the status); 0: normal scheduling."
    )  # fmt: skip
    step_lock_memory: bool = setting(False, "Lock the agent's memory (mlockall): no page faults.")
    step_cpu: int = setting(-1, "CPU the step thread is pinned to; -1: any.")
    run_dir: str = setting(
        "", "This start's run folder (set by pamiq-ros launch) for the agent's checkpoints; "
        "empty: runs/<time>-agent."
    )  # fmt: skip
    resume_from: str = setting(
        "", "'latest', a run folder or a checkpoint to restore the agent's state from."
    )
    checkpoint_period: float = setting(60.0, "Seconds between periodic saves of the agent state.")
    report_period: float = setting(5.0, "Seconds between progress reports (log and /diagnostics).")

    def __post_init__(self) -> None:
        require_positive(
            self, "rate_hz", "linear_speed", "angular_speed", "report_period", "image_width",
            "image_height", "torch_threads", "checkpoint_period", "max_frame_age",
        )  # fmt: skip
        if not 0.0 <= self.spin_before_step_ms < 1000.0 / self.rate_hz:
            raise ValueError(
                f"spin_before_step_ms must be in [0, {1000.0 / self.rate_hz:g}) (one step), got "
                f"{self.spin_before_step_ms}"
            )
        require_one_of(
            self, mind=MIND_NAMES, policy=POLICIES, preset=PRESET_NAMES,
            precision=tuple(PRECISIONS), sync_transport=("auto", "shm", "bytes"),
            image_message=("raw", "compressed"), resize_mode=RESIZE_MODES, step_trigger=TRIGGERS,
        )  # fmt: skip
        self.real_time()  # checks the values

    def real_time(self) -> RealTimeOptions:
        """The step thread's scheduling options."""
        cpus = (self.step_cpu,) if self.step_cpu >= 0 else ()
        return RealTimeOptions(self.step_fifo_priority, self.step_lock_memory, cpus)


@dataclass(frozen=True)
class _Frame:
    pixels: Observation
    received: float  # monotonic seconds
    stamp: Time  # the camera's capture stamp
    age_at_receipt: float  # seconds from the stamp to receipt (0 for an unstamped frame)
    sequence: int  # counts received frames
    source_size: tuple[int, int]  # width, height as the camera sent it

    @property
    def stamp_key(self) -> tuple[int, int]:
        return self.stamp.sec, self.stamp.nanosec

    def age(self, now: float) -> float:
        """Seconds since capture, at monotonic time ``now``."""
        return self.age_at_receipt + (now - self.received)


class AgentNode(Node, Controllable):
    """Runs the policy at a fixed rate on the newest camera frame and publishes its actions."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("agent", **node_options)
        self.settings = declare_settings(self, AgentSettings)
        settings = self.settings
        torch.set_num_threads(settings.torch_threads)
        # The step thread wakes on time, then waits for the GIL; the default 5 ms switch interval
        # lets a busy thread (frame decoding, weight loading, sending) hold it that long.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._mind = build_mind(settings)
        self._mapper = ActionMapper(settings.linear_speed, settings.angular_speed)
        self._problems = ProblemLog(self.get_logger(), ERROR_LOG_PERIOD_S)
        self._lock = threading.Lock()
        self._frame: _Frame | None = None
        self._frames_received = 0
        self._frames_rejected = 0
        self._used_frame: tuple[int, tuple[int, int]] | None = None  # sequence, stamp
        self._gap_steps = 0
        self._in_gap = False
        self._ages_at_receipt = FrameAges()
        self._ages_at_step = FrameAges()
        self._unstamped_frames = 0
        self._rejected_at_last_report = 0
        self._last_action_label = "none"
        self._closing = False
        self._paused = False
        self._step_index = 0
        self._experience_sent = 0
        self._experience_dropped = 0
        self._interrupted = False
        self._save_lock = threading.Lock()
        self._state_wanted = threading.Event()
        self._state_ready = threading.Event()
        self._state_snapshot: dict[str, Any] = {}
        self._announced_at: dict[tuple[str, int], float] = {}
        self._sync_latencies_ms: list[float] = []
        self._swaps = 0

        self._run_dir = prepare_run_dir(settings.run_dir, "agent")
        self._store = CheckpointStore(self._run_dir / STORE_SUBDIR, keep_last=3)
        if settings.resume_from:
            self._resume(settings.resume_from)

        self._cmd_vel = self.create_publisher(
            TwistStamped if settings.cmd_vel_stamped else Twist, "cmd_vel", 10
        )
        self._vrchat_input = self.create_publisher(VRChatInput, "vrchat_input", 10)
        self._experience = self.create_publisher(Experience, EXPERIENCE_TOPIC, EXPERIENCE_QOS)
        self._diagnostics = DiagnosticsReporter(self)
        if settings.image_message == "compressed":
            self._image_topic = COMPRESSED_IMAGE_TOPIC
            self.create_subscription(
                CompressedImage, COMPRESSED_IMAGE_TOPIC, self._on_image, qos_profile_sensor_data
            )
        else:
            self._image_topic = RAW_IMAGE_TOPIC
            self.create_subscription(
                Image, RAW_IMAGE_TOPIC, self._on_image, qos_profile_sensor_data
            )
        self._sync = WeightSubscriber(
            self,
            self._mind.models,
            transport=settings.sync_transport,
            on_ready=self._on_weights_ready,
            on_error=self._problems.error,
            trainer_node=settings.trainer_node,
        )
        ControlServices(self, self)
        self.create_timer(settings.report_period, self._report)
        self.create_timer(settings.checkpoint_period, self._save_periodically)

        self._outbox: queue.Queue[ExperienceRecord | None] = queue.Queue(EXPERIENCE_QUEUE_SIZE)
        self._sender = threading.Thread(
            target=self._send_experience, name="experience", daemon=True
        )
        self._sender.start()
        self._loop = StepLoop(
            settings.rate_hz, self._step, on_error=self._on_step_error, name="agent-step",
            spin_s=settings.spin_before_step_ms / 1000.0, trigger=settings.step_trigger,
            real_time=settings.real_time(),
        )  # fmt: skip
        self._loop.start()
        self.get_logger().info(
            f"stepping at {settings.rate_hz} Hz on frames from {self._image_topic} fitted to "
            f"{settings.image_width}x{settings.image_height} ({settings.resize_mode}; older than "
            f"{settings.max_frame_age} s: a gap) ({describe_mind(settings)}, "
            f"seed {settings.seed}; models {', '.join(self._mind.models)}, weights via "
            f"{settings.sync_transport})"
        )

    # --- input --------------------------------------------------------------------------------

    def _on_image(self, message: Image | CompressedImage) -> None:
        """Decodes and fits a frame here, in the executor's thread, never on the acting one."""
        try:
            rgb = self._decode(message)
            pixels = fit_image(
                rgb, self.settings.image_width, self.settings.image_height,
                self.settings.resize_mode,
            )  # fmt: skip
        except (ImageFormatError, cv2.error) as error:
            with self._lock:
                self._frames_rejected += 1
            self._problems.error(f"{self._image_topic} frame refused: {error}")
            return
        stamp = message.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            age = 0.0  # an unstamped camera: its age counts from receipt
            self._unstamped_frames += 1
        else:
            now_ns = self.get_clock().now().nanoseconds
            age = max(0.0, (now_ns - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9)
        with self._lock:
            self._frames_received += 1
            self._frame = _Frame(
                pixels, time.monotonic(), stamp, age, self._frames_received,
                (rgb.shape[1], rgb.shape[0]),
            )  # fmt: skip
        self._ages_at_receipt.add(age)
        self._loop.notify()  # a frame-triggered loop steps on it

    def _decode(self, message: Image | CompressedImage) -> Observation:
        """The message's pixels as RGB, of the camera's size."""
        if isinstance(message, CompressedImage):
            return decode_compressed(message.format, bytes(message.data))
        return to_rgb(decode_image(ImageFields.of_message(message)), message.encoding)

    def _on_weights_ready(self, model: str, version: int, timing: SyncTiming) -> None:
        """Loader thread: remembers when the version was announced, to time it to first use."""
        with self._lock:
            self._announced_at[model, version] = time.monotonic() - timing.announced_to_ready_s

    # --- the acting thread --------------------------------------------------------------------

    def _step(self) -> None:
        """One step, in the loop's thread: swap in ready weights, act, publish, hand off."""
        for model, version in self._mind.swap_ready_weights():
            self._note_swap(model, version)
        if self._state_wanted.is_set():
            self._state_snapshot = self._mind.state_dict()
            self._state_wanted.clear()
            self._state_ready.set()
        with self._lock:
            paused = self._paused or self._closing
            if not paused:
                frame = self._new_observation(time.monotonic())
                self._step_index += 1
                step = self._step_index
        if paused:
            if not self._interrupted:
                self._interrupted = True
                self._hand_off(self._mind.interrupt())
            return
        self._interrupted = False
        result = self._mind.act(step, frame.pixels if frame is not None else None)
        # A gap commands a stop whatever the mind chose: nothing moves blind.
        action = self._mapper.to_action(result.choice) if frame is not None else _STOP
        with self._lock:
            if self._closing or self._paused:
                return  # the stop sent by pause()/close() stays the last command
            self._last_action_label = result.choice.label() if frame is not None else "gap: stop"
            self._publish(action, frame.stamp if frame is not None else None)
        self._hand_off(result.records)

    def _new_observation(self, now: float) -> "_Frame | None":
        """Under the lock: the newest frame if it is a new observation, else None (a gap)."""
        frame = self._frame
        fresh = (
            frame is not None
            and frame.age(now) <= self.settings.max_frame_age
            and (self._used_frame is None or (
                frame.sequence != self._used_frame[0]
                and (frame.stamp_key == (0, 0) or frame.stamp_key != self._used_frame[1])
            ))
        )  # fmt: skip
        if frame is not None and fresh:
            self._used_frame = (frame.sequence, frame.stamp_key)
            self._ages_at_step.add(frame.age(now))
            if self._in_gap:
                self._in_gap = False
                self.get_logger().info("fresh frames again: acting on them")
            return frame
        self._gap_steps += 1
        if not self._in_gap:
            self._in_gap = True
            why = "no frame yet" if frame is None else (
                f"newest frame is {frame.age(now):.2f} s old (max_frame_age "
                f"{self.settings.max_frame_age} s)" if frame.age(now) > self.settings.max_frame_age
                else "no new frame since the last step"
            )  # fmt: skip
            self.get_logger().warning(f"no new observation ({why}): gap steps stand still")
        return None

    def _note_swap(self, model: str, version: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._swaps += 1
            announced = self._announced_at.pop((model, version), None)
            if announced is not None:
                self._sync_latencies_ms.append((now - announced) * 1000)
                del self._sync_latencies_ms[:-100]

    def _publish(self, action: Action, observed: Time | None) -> None:
        """Publishes the action; ``vrchat_input`` is stamped with the frame it answers."""
        twist = Twist()
        twist.linear.x = action.motion.forward_mps
        twist.linear.y = action.motion.left_mps
        twist.angular.z = action.motion.ccw_radps
        now = self.get_clock().now().to_msg()
        buttons = VRChatInput(jump=action.buttons.jump, run=action.buttons.run)
        buttons.header.stamp = observed or now
        if self.settings.cmd_vel_stamped:
            stamped = TwistStamped(twist=twist)
            stamped.header.stamp, stamped.header.frame_id = now, self.settings.base_frame_id
            self._cmd_vel.publish(stamped)
        else:
            self._cmd_vel.publish(twist)
        self._vrchat_input.publish(buttons)

    def _publish_stop(self) -> None:
        """A zero cmd_vel and released buttons; a failure (context gone) is only logged."""
        try:
            self._publish(_STOP, None)
        except Exception as error:
            self.get_logger().error(f"could not publish the stop command: {error}")

    def _hand_off(self, records: Sequence[ExperienceRecord]) -> None:
        if not self.settings.send_experience:
            return
        for record in records:
            try:
                self._outbox.put_nowait(record)
            except queue.Full:
                with self._lock:
                    self._experience_dropped += 1

    def _on_step_error(self, error: Exception) -> None:
        if self._closing or not rclpy.ok(context=self.context):
            return  # shutting down: the publishers are gone, nothing to report
        with self._lock:
            if not self._closing:
                self._publish_stop()
        self._problems.error(f"step failed: {type(error).__name__}: {error} (motion stopped)")

    # --- off the acting thread ----------------------------------------------------------------

    def _send_experience(self) -> None:
        while True:
            record = self._outbox.get()
            if record is None:
                return
            message = record_to_message(record)
            message.header.stamp = self.get_clock().now().to_msg()
            try:
                self._experience.publish(message)
            except Exception as error:  # the context may be gone during shutdown
                if not self._closing:
                    self._problems.error(f"experience not sent: {error}")
                continue
            with self._lock:
                self._experience_sent += 1

    def _mind_state(self) -> dict[str, Any]:
        """The mind's state, taken on the acting thread between two steps while it runs."""
        if not self._loop.running:
            return self._mind.state_dict()
        self._state_ready.clear()
        self._state_wanted.set()
        if not self._state_ready.wait(STATE_WAIT_S):
            raise OSError(f"the acting thread did not hand over its state in {STATE_WAIT_S} s")
        return self._state_snapshot

    def _save_state(self, reason: str) -> str:
        with self._save_lock:
            mind_state = self._mind_state()
            with self._lock:
                state = {
                    "step": self._step_index,
                    "mind": self.settings.mind,
                    "versions": {name: m.version for name, m in self._mind.models.items()},
                    "mind_state": mind_state,
                }

        def write(directory: Path) -> None:
            (directory / STATE_FILE).write_text(json.dumps(state))

        path = self._store.save(write, label=reason)
        return f"agent state at step {state['step']} saved to {path}"

    def _save_periodically(self) -> None:
        try:
            self._save_state("periodic")
        except OSError as error:
            self._problems.error(f"saving the agent state failed: {error}")

    def _resume(self, reference: str) -> None:
        logger = self.get_logger()

        def read(directory: Path) -> None:
            try:
                state = json.loads((directory / STATE_FILE).read_text())
                step = int(state["step"])
                if state["mind"] != self.settings.mind:
                    raise ValueError(
                        f"saved by the {state['mind']!r} mind, this agent runs "
                        f"{self.settings.mind!r}"
                    )
                self._mind.load_state_dict(state["mind_state"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{directory / STATE_FILE}: {error}") from error
            self._step_index = step

        used = resume(reference, self._run_dir.parent, STORE_SUBDIR, read, logger.error)
        if used is None:
            logger.error("agent starts with a fresh state")
        else:
            logger.info(f"resumed agent state from {used}: continuing at step {self._step_index}")

    # --- control ------------------------------------------------------------------------------

    @override
    def pause(self) -> str:
        with self._lock:
            self._paused = True
            self._publish_stop()  # under the lock: no step's action can follow it
        return "acting paused (stop command sent)"

    @override
    def resume(self) -> str:
        with self._lock:
            self._paused = False
        return "acting resumed"

    @override
    def save(self) -> str:
        return self._save_state("requested")

    @override
    def status(self) -> Mapping[str, object]:
        stats = self._loop.statistics()
        with self._lock:
            latencies = sorted(self._sync_latencies_ms)
            frame = self._frame
            return {
                "paused": self._paused,
                "step": self._step_index,
                "steps": stats.steps,
                "rate_hz": stats.rate_hz,
                "target_rate_hz": self.settings.rate_hz,
                "missed_deadlines": stats.missed_deadlines,
                "interval_error_p50_ms": stats.interval_error_p50_ms,
                "interval_error_p99_ms": stats.interval_error_p99_ms,
                "interval_error_max_ms": stats.interval_error_max_ms,
                "step_compute_mean_ms": stats.compute_mean_ms,
                "step_compute_max_ms": stats.compute_max_ms,
                "step_errors": stats.errors,
                "step_real_time": describe_real_time(self._loop.real_time_report),
                "frames_received": self._frames_received,
                "frames_rejected": self._frames_rejected,
                "last_frame_width": frame.source_size[0] if frame else 0,
                "last_frame_height": frame.source_size[1] if frame else 0,
                "last_frame_age_s": frame.age(time.monotonic()) if frame else "none",
                **self._ages_at_receipt.figures("frame_age_at_receipt"),
                **self._ages_at_step.figures("frame_age_at_step"),
                "gap_steps": self._gap_steps,
                "unstamped_frames": self._unstamped_frames,
                "action": self._last_action_label,
                "mind": self.settings.mind,
                "weight_version": self._mind.version,
                **{f"version_{name}": m.version for name, m in self._mind.models.items()},
                "weight_swaps": self._swaps,
                "weights_refused": self._sync.refusals(),
                "sync_latency_p50_ms": latencies[len(latencies) // 2] if latencies else "none",
                "sync_latency_max_ms": latencies[-1] if latencies else "none",
                **self._mind.figures(),
                "experience_sent": self._experience_sent,
                "experience_dropped": self._experience_dropped,
            }

    def _report(self) -> None:
        status = self.status()
        with self._lock:
            rejected = self._frames_rejected
            newly_rejected = rejected - self._rejected_at_last_report
            self._rejected_at_last_report = rejected
        stats = self._loop.statistics()
        if status["last_frame_width"]:
            age = float(status["last_frame_age_s"])  # type: ignore[arg-type]
            last = (
                f"last={status['last_frame_width']}x{status['last_frame_height']} age={age:.2f} s"
            )
        else:
            age, last = math.inf, "last=none"
        self.get_logger().info(
            f"steps={stats.steps} ({stats.rate_hz:.1f} Hz) | interval error "
            f"p50={stats.interval_error_p50_ms:.1f} ms p99={stats.interval_error_p99_ms:.1f} ms "
            f"max={stats.interval_error_max_ms:.1f} ms missed={stats.missed_deadlines} | "
            f"frames received={status['frames_received']} rejected={rejected} {last} | "
            + " ".join(f"{name} v{m.version}" for name, m in self._mind.models.items())
            + " | "
            + " ".join(f"{name}={value:.4f}" for name, value in self._mind.figures().items())
            + f" | sync p50={_ms(status['sync_latency_p50_ms'])} | experience sent="
            f"{status['experience_sent']} dropped={status['experience_dropped']} | "
            f"action={status['action']}" + (" | PAUSED" if status["paused"] else "")
        )
        if status["paused"]:
            level, summary = WARN, "paused"
        elif not status["last_frame_width"]:
            level, summary = WARN, "no camera frame yet: acting without observation"
        elif age > STALE_FRAME_AGE_S:
            level, summary = WARN, f"newest camera frame is {age:.1f} s old"
        elif newly_rejected:
            level, summary = WARN, f"{newly_rejected} camera frame(s) refused since last report"
        else:
            level, summary = OK, f"stepping at {stats.rate_hz:.1f} Hz"
        self._diagnostics.publish(level, summary, status)

    def close(self) -> None:
        """Stops acting, sends what is queued, saves the agent state; nothing is published after."""
        with self._lock:
            self._closing = True
            self._publish_stop()
        self.get_logger().info("closing: stop command sent")
        self._loop.stop()
        self._publish_stop()  # again, once no step can be in flight
        try:
            self._cmd_vel.wait_for_all_acked(rclpy.duration.Duration(seconds=STOP_ACKED_WAIT_S))
        except Exception as error:  # best effort: the context may be going
            self.get_logger().warning(f"stop command not acknowledged: {error}")
        self._sync.close()
        self._outbox.put(None, timeout=5.0)
        self._sender.join(timeout=5.0)
        try:
            self.get_logger().info(self._save_state("shutdown"))
        except Exception as error:
            self.get_logger().error(f"saving the agent state on shutdown failed: {error}")
        stats = self._loop.statistics()
        self.get_logger().info(
            f"closed after {stats.steps} steps ({stats.missed_deadlines} missed deadlines)"
        )


_STOP = Action(Motion(0.0, 0.0, 0.0), VRChatButtons(jump=False, run=False))
"""The command of a step without observation, of a pause and of a shutdown."""


def build_mind(settings: AgentSettings) -> ActingMind:
    """The mind the settings name, on their device and precision.

    Raises:
        ValueError: If the device is not usable (e.g. cuda asked for on a machine without).
    """
    device, dtype = resolve_device(settings.device, settings.precision)
    if settings.mind == "autoencoder":
        return AutoencoderMind(settings.seed)
    return CuriosityMind(settings.preset, settings.seed, settings.policy, device, dtype)


def describe_mind(settings: AgentSettings) -> str:
    """A few words on the mind, for the start-up log line."""
    if settings.mind == "autoencoder":
        return "autoencoder mind: random policy"
    return (
        f"curiosity mind: preset {settings.preset}, {settings.policy} policy, "
        f"{settings.device} {settings.precision}"
    )


def _ms(value: object) -> str:
    return f"{value:.0f} ms" if isinstance(value, float) else str(value)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the agent node until Ctrl-C."""
    hold_memory_in_bounds()
    run_node(AgentNode, args)


if __name__ == "__main__":
    main()
