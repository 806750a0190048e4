"""The agent node: camera frames in, actions out, at a fixed rate that never waits for frames.

Frames from any camera (``sensor_msgs/Image`` on ``camera/image_raw`` in rgb8, bgr8, rgba8,
bgra8, mono8 or YUV 4:2:2, or ``sensor_msgs/CompressedImage`` JPEG/PNG on
``camera/image_raw/compressed``) are checked, decoded and fitted to the mind's input size
(aspect kept, centre crop, as PAMIQ does) in the subscription callback, off the acting thread;
the newest good one waits in a slot. A step loop in its own thread
(``pamiq_ros.core.step_loop``) runs the policy on that frame and publishes the action as a
``Twist`` (or ``TwistStamped``) on ``cmd_vel`` and a ``VRChatInput`` on ``vrchat_input``; in
the ``vrchat`` action space (9 heads, as pamiq-vrchat) also a ``MouseInput`` on ``mouse``. The
action spaces and their mapping to motion and mouse live in ``pamiq_ros.core.actions``.

A frame older than ``max_frame_age`` (by its stamp), or the frame the last step already used
(same sequence or stamp), is no new observation: that step is a gap, the mind acts on None
(which ends its episode) and the agent commands a stop. Motion also stops (a zero ``cmd_vel``,
a released ``vrchat_input`` and, in the ``vrchat`` space, a released ``mouse``) on pause, on
shutdown and when a step fails.

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
from pamiq_ros_interfaces.msg import Experience, MouseInput, VRChatInput
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from typing_extensions import override

from pamiq_ros.core.actions import (
    ACTION_SPACE_NAMES,
    Action,
    ActionMapper,
    MouseAction,
    VRChatActionMapper,
)
from pamiq_ros.core.checkpoint import CheckpointStore, restore
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.health import (
    PEER_ERROR_AFTER_S,
    PEER_WARN_AFTER_S,
    WARN,
    WEIGHTS_WARN_AFTER_S,
    NewCount,
    Problems,
    RecentRate,
    Silence,
    check_peer_limits,
    check_rate,
    check_weights_silence,
    diagnostics_period_setting,
    peer_silence_setting,
)
from pamiq_ros.core.policy import Observation
from pamiq_ros.core.precision import PRECISIONS, resolve_device
from pamiq_ros.core.settings import require_one_of, require_positive, setting
from pamiq_ros.core.step_loop import TRIGGERS, RealTimeOptions, describe_real_time
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
from pamiq_ros.minds import MIND_NAMES, check_action_space
from pamiq_ros.minds.acting_loop import UNSTAMPED, ActingLoop, LoopTiming
from pamiq_ros.minds.base import ActingMind
from pamiq_ros.minds.curiosity import POLICIES, PRESET_NAMES, CuriosityDimensions, Hearing
from pamiq_ros.minds.registry import ACTING_MINDS, MindOptions, build_acting_mind
from pamiq_ros.models.curiosity import CURIOSITY_REWARDS, DEFAULT_CURIOSITY_REWARD
from pamiq_ros.models.temporal import MODALITIES
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter, PeerWatch
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from pamiq_ros.nodes._experience_link import ExperienceSender
from pamiq_ros.nodes._hearing import Ears
from pamiq_ros.nodes._lifecycle import AUTOSTART_DESCRIPTION, ManagedNode
from pamiq_ros.nodes._problem_log import ProblemLog
from pamiq_ros.nodes._runtime import (
    SettingTimers,
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

NEW_COUNT_PROBLEMS = {
    "missed_deadlines": "step deadline(s) missed",
    "frames_rejected": "camera frame(s) refused",
    "experience_dropped": "experience record(s) dropped (sender behind)",
    "experience_send_errors": "experience send error(s)",
}
"""Counters whose growth since the last status is a warning, and what they count."""

STOP_ACKED_WAIT_S = 0.5
"""On shutdown, longest wait for the final stop command to be acknowledged by subscribers."""


@dataclass(frozen=True)
class AgentSettings:
    """Parameters of the agent node."""

    rate_hz: float = setting(
        10.0,
        "Steps per second (Hz); the loop keeps it when frames are late or absent.",
        low=0.1,
        high=1000.0,
        runtime=True,
    )
    image_width: int = setting(
        160,
        "Width (pixels) of the mind's input; frames of any size are fitted to it.",
        low=8,
        high=4096,
    )
    image_height: int = setting(
        120,
        "Height (pixels) of the mind's input; frames of any size are fitted to it.",
        low=8,
        high=4096,
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
        "a gap (the mind sees None, its episode ends, motion stops); so is the same frame again.",
        low=0.001, high=3600.0, runtime=True,
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
    curiosity_reward: str = setting(
        DEFAULT_CURIOSITY_REWARD,
        "curiosity mind only: what the reward measures, error (the imagination's error "
        "on what happened) or error_over_copy (that error over the error of copying: how much "
        "worse than 'nothing changes' it was, not how much the view changed)."
    )  # fmt: skip
    preset: str = setting(
        "tiny", "curiosity mind only: model sizes, tiny (2-core CPU), small or base (GPU); "
        "must match the trainer's."
    )  # fmt: skip
    modalities: str = setting(
        "image", "curiosity mind only: image, or image+audio (hears audio/chunk, 16 kHz stereo); "
        "must match the trainer's."
    )  # fmt: skip
    action_space: str = setting(
        "motion", "curiosity mind only: motion (5 heads: move, strafe, turn, jump, run) or "
        "vrchat (9 heads as pamiq-vrchat: move, strafe, jump, run over OSC, mouse x/y and three "
        "buttons, published on mouse); must match the trainer's."
    )  # fmt: skip
    device: str = setting("cpu", "Torch device of the acting models: cpu or cuda[:N].")
    precision: str = setting("float32", "Compute precision: float32 or bfloat16 (autocast).")
    seed: int = setting(
        0, "Seed of the initial weights and of the action draws.", low=0, high=2**31 - 1
    )
    linear_speed: float = setting(
        2.0, "Walking speed (m/s) of move and strafe actions.", low=0.001, high=100.0, runtime=True
    )
    angular_speed: float = setting(
        1.5, "Turn rate (rad/s) of turn actions.", low=0.001, high=100.0, runtime=True
    )
    mouse_speed: float = setting(
        VRChatActionMapper.mouse_speed, "vrchat action space: pointer speed (px/s) of a look "
        "action.", low=0.001, high=100000.0, runtime=True,
    )  # fmt: skip
    send_experience: bool = setting(True, "Send each step's experience to the trainer.")
    experience_outbox_mb: float = setting(
        64.0, "MiB of experience kept until the trainer acknowledges it (sent again after an "
        "outage or before the trainer matched); beyond it the oldest is dropped and counted."
    )  # fmt: skip
    sync_transport: str = setting(
        "auto", "How new weights are fetched: auto (shared memory on the trainer's host, else "
        "bytes), shm, or bytes."
    )  # fmt: skip
    trainer_node: str = setting(
        "trainer", "The trainer whose weights are taken (its node name, relative to this "
        "namespace, or fully qualified); announcements from any other node are refused."
    )  # fmt: skip
    torch_threads: int = setting(1, "CPU threads for the acting model.", low=1, high=256)
    spin_before_step_ms: float = setting(
        2.0, "The step thread wakes this long before each step and waits busy, so it is running "
        "when the step is due (waking from sleep on a loaded machine takes ms); 0: plain sleep.",
        low=0.0, high=1000.0, runtime=True,
    )  # fmt: skip
    step_trigger: str = setting(
        "rate", "When steps start: rate (fixed rate_hz) or frame (on each new frame, at most "
        "rate_hz; with no frame for two periods a step runs anyway and sees the gap)."
    )  # fmt: skip
    step_fifo_priority: int = setting(
        0, "SCHED_FIFO priority (1-99) of the step thread where permitted (root or "
        "CAP_SYS_NICE; a refusal is reported in the status); 0: normal scheduling.",
        low=0, high=99,
    )  # fmt: skip
    step_lock_memory: bool = setting(False, "Lock the agent's memory (mlockall): no page faults.")
    step_cpu: int = setting(-1, "CPU the step thread is pinned to; -1: any.", low=-1, high=4095)
    run_dir: str = setting(
        "", "This start's run folder (set by pamiq-ros launch) for the agent's checkpoints; "
        "empty: runs/<time>-agent."
    )  # fmt: skip
    resume_from: str = setting(
        "", "'latest', a run folder or a checkpoint to restore the agent's state from."
    )
    checkpoint_period: float = setting(
        60.0, "Seconds between periodic saves of the agent state.", low=1.0, high=86400.0
    )
    report_period: float = setting(
        5.0,
        "Seconds between progress lines in the log.",
        low=0.05,
        high=3600.0,
        runtime=True,
    )
    diagnostics_period: float = diagnostics_period_setting()
    peer_warn_after: float = peer_silence_setting(
        PEER_WARN_AFTER_S, "the trainer's heartbeat", "WARN"
    )
    peer_error_after: float = peer_silence_setting(
        PEER_ERROR_AFTER_S, "the trainer's heartbeat", "ERROR"
    )
    weights_warn_after: float = setting(
        WEIGHTS_WARN_AFTER_S, "Seconds without new weights that make the status WARN while the "
        "trainer beats and has sent weights before (a stalled training).", low=1.0,
        high=86400.0, runtime=True,
    )  # fmt: skip
    autostart: bool = setting(True, AUTOSTART_DESCRIPTION)

    def __post_init__(self) -> None:
        check_peer_limits(self.peer_warn_after, self.peer_error_after)
        require_positive(
            self, "rate_hz", "linear_speed", "angular_speed", "mouse_speed", "report_period",
            "image_width",
            "image_height", "torch_threads", "checkpoint_period", "max_frame_age",
        )  # fmt: skip
        if not 0.0 <= self.spin_before_step_ms < 1000.0 / self.rate_hz:
            raise ValueError(
                f"spin_before_step_ms must be in [0, {1000.0 / self.rate_hz:g}) (one step), got "
                f"{self.spin_before_step_ms}"
            )
        require_one_of(
            self, mind=MIND_NAMES, policy=POLICIES, preset=PRESET_NAMES, modalities=MODALITIES,
            precision=tuple(PRECISIONS), sync_transport=("auto", "shm", "bytes"),
            image_message=("raw", "compressed"), resize_mode=RESIZE_MODES, step_trigger=TRIGGERS,
            action_space=ACTION_SPACE_NAMES, curiosity_reward=CURIOSITY_REWARDS,
        )  # fmt: skip
        check_action_space(self.mind, self.action_space)
        self.real_time()  # checks the values

    def real_time(self) -> RealTimeOptions:
        """The step thread's scheduling options."""
        cpus = (self.step_cpu,) if self.step_cpu >= 0 else ()
        return RealTimeOptions(self.step_fifo_priority, self.step_lock_memory, cpus)


class AgentNode(ManagedNode, Controllable):
    """Wires an :class:`ActingLoop` to ROS: camera in, actions and experience out."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("agent", **node_options)
        self.settings = declare_settings(self, AgentSettings, self._apply_settings)
        settings = self.settings
        torch.set_num_threads(settings.torch_threads)
        # The step thread wakes on time, then waits for the GIL; the default 5 ms switch interval
        # lets a busy thread (frame decoding, weight loading, sending) hold it that long.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        hears = settings.mind == "curiosity" and settings.modalities != "image"
        ears = Ears(self, CuriosityDimensions.of(settings.preset).audio) if hears else None
        self._hearing: Hearing | None = ears.latest if ears is not None else None
        self._problems = ProblemLog(self.get_logger(), ERROR_LOG_PERIOD_S)
        self._lock = threading.Lock()
        self._closing = False
        self._experience_sent = 0
        self._experience_dropped = 0
        self._send_errors = 0
        self._recent_rate = RecentRate()
        self._new_counts = {name: NewCount() for name in NEW_COUNT_PROBLEMS}
        self._save_lock = threading.Lock()
        self._announced_at: dict[tuple[str, int], float] = {}
        self._sync_latencies_ms: list[float] = []
        self._swaps = 0

        self._acting: ActingLoop | None = None
        self._sync: WeightSubscriber | None = None
        self._run_dir = prepare_run_dir(settings.run_dir, "agent")
        self._store = CheckpointStore(self._run_dir / STORE_SUBDIR, keep_last=3)

        self._cmd_vel = self.create_publisher(
            TwistStamped if settings.cmd_vel_stamped else Twist, "cmd_vel", 10
        )
        self._vrchat_input = self.create_publisher(VRChatInput, "vrchat_input", 10)
        self._mouse = (
            self.create_publisher(MouseInput, "mouse", 10)
            if settings.action_space == "vrchat"
            else None
        )
        self._experience = self.create_publisher(Experience, EXPERIENCE_TOPIC, EXPERIENCE_QOS)
        self._experience_link = ExperienceSender(
            self, self._experience, int(settings.experience_outbox_mb * (1 << 20))
        )
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
        ControlServices(self, self)
        self._period_timers = SettingTimers(self)
        self._period_timers.add("report_period", settings.report_period, self._report)
        self._trainer_watch = PeerWatch(
            self, settings.trainer_node, settings.peer_warn_after, settings.peer_error_after
        )
        self._weights_silence = Silence(time.monotonic(), settings.weights_warn_after, math.inf)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        self.create_timer(settings.checkpoint_period, self._save_periodically)

        self._outbox: queue.Queue[ExperienceRecord | None] = queue.Queue(EXPERIENCE_QUEUE_SIZE)
        self._sender = threading.Thread(
            target=self._send_experience, name="experience", daemon=True
        )
        self._sender.start()
        self.bring_up(settings.autostart)

    # --- lifecycle ----------------------------------------------------------------------------

    @override
    def configure(self) -> None:
        """Builds the mind (restoring ``resume_from``) and the weight subscriber."""
        settings = self.settings
        acting = ActingLoop(
            build_mind(settings, self._hearing),
            ActionMapper(settings.linear_speed, settings.angular_speed),
            LoopTiming(
                settings.rate_hz,
                settings.max_frame_age,
                settings.spin_before_step_ms / 1000.0,
                trigger=settings.step_trigger,
                real_time=settings.real_time(),
            ),
            publish=self._publish,
            hand_off=self._hand_off,
            on_error=self._on_step_error,
            on_swap=self._note_swap,
            log_gap=self._log_info,
            state_wait_s=STATE_WAIT_S,
            publish_mouse=self._publish_mouse if self._mouse is not None else None,
            mouse_speed=settings.mouse_speed,
        )
        if settings.resume_from:
            self._restore(acting, settings.resume_from)
        self._sync = WeightSubscriber(
            self,
            acting.mind.models,
            transport=settings.sync_transport,
            on_ready=self._on_weights_ready,
            on_error=self._problems.error,
            trainer_node=settings.trainer_node,
        )
        self._acting = acting
        self.get_logger().info(
            f"configured: {describe_mind(settings)}, seed {settings.seed}; models "
            f"{', '.join(acting.mind.models)}, weights via {settings.sync_transport}"
        )

    @override
    def activate(self) -> None:
        """Starts stepping (or resumes it after a deactivate)."""
        acting = self._configured()
        if acting.running:
            acting.resume()
        else:
            acting.start()
        settings = self.settings
        self.get_logger().info(
            f"stepping at {acting.rate_hz} Hz on frames from {self._image_topic} fitted to "
            f"{settings.image_width}x{settings.image_height} ({settings.resize_mode}; older than "
            f"{settings.max_frame_age} s: a gap)"
        )

    @override
    def deactivate(self) -> None:
        """Pauses acting; the stop command goes out first."""
        self._configured().pause()

    @override
    def cleanup(self) -> None:
        """Stops the step thread and the weight subscriber, saves the state, drops the mind."""
        acting = self._configured()
        acting.close()
        if self._sync is not None:
            self._sync.close()
        self.get_logger().info(self._save_state("cleanup"))
        self._acting, self._sync = None, None

    def _configured(self) -> ActingLoop:
        """The acting loop.

        Raises:
            RuntimeError: If the node is not configured (lifecycle).
        """
        if self._acting is None:
            raise RuntimeError("the agent is not configured (ros2 lifecycle set agent configure)")
        return self._acting

    def _log_info(self, message: str) -> None:
        self.get_logger().info(message)

    def _apply_settings(self, new: AgentSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback; ValueError refuses)."""
        if changed & {"peer_warn_after", "peer_error_after"}:
            self._trainer_watch.set_limits(new.peer_warn_after, new.peer_error_after)
        if "weights_warn_after" in changed:
            self._weights_silence.set_limits(new.weights_warn_after, math.inf)
        acting = self._acting  # unconfigured: the next configure builds from the settings
        if acting is not None and changed & {"rate_hz", "spin_before_step_ms"}:
            acting.set_rate(new.rate_hz, new.spin_before_step_ms / 1000.0)
            self._recent_rate.reset()
        if acting is not None and changed & {"linear_speed", "angular_speed", "mouse_speed"}:
            acting.set_speeds(new.linear_speed, new.angular_speed, new.mouse_speed)
        if acting is not None and "max_frame_age" in changed:
            acting.set_max_frame_age(new.max_frame_age)
        self._period_timers.apply(new, changed)
        self.settings = new
        self.get_logger().info(
            "parameters changed: "
            + ", ".join(f"{name}={getattr(new, name)}" for name in sorted(changed))
        )

    # --- input --------------------------------------------------------------------------------

    def _on_image(self, message: Image | CompressedImage) -> None:
        """Decodes and fits a frame here, in the executor's thread, never on the acting one."""
        acting = self._acting
        if acting is None:
            return  # unconfigured: nothing acts on frames
        try:
            rgb = self._decode(message)
            pixels = fit_image(
                rgb, self.settings.image_width, self.settings.image_height,
                self.settings.resize_mode,
            )  # fmt: skip
        except (ImageFormatError, cv2.error) as error:
            acting.reject()
            self._problems.error(f"{self._image_topic} frame refused: {error}")
            return
        stamp = message.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            age = 0.0  # an unstamped camera: its age counts from receipt
        else:
            now_ns = self.get_clock().now().nanoseconds
            age = max(0.0, (now_ns - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9)
        acting.offer(pixels, (stamp.sec, stamp.nanosec), age, (rgb.shape[1], rgb.shape[0]))

    def _decode(self, message: Image | CompressedImage) -> Observation:
        """The message's pixels as RGB, of the camera's size."""
        if isinstance(message, CompressedImage):
            return decode_compressed(message.format, bytes(message.data))
        return to_rgb(decode_image(ImageFields.of_message(message)), message.encoding)

    def _on_weights_ready(self, model: str, version: int, timing: SyncTiming) -> None:
        """Loader thread: remembers when the announcement arrived (own clock), to time first use."""
        with self._lock:
            self._announced_at[model, version] = time.monotonic() - timing.received_to_ready_s
            self._weights_silence.heard(time.monotonic())

    def _note_swap(self, model: str, version: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._swaps += 1
            announced = self._announced_at.pop((model, version), None)
            if announced is not None:
                self._sync_latencies_ms.append((now - announced) * 1000)
                del self._sync_latencies_ms[:-100]

    # --- output (called by the acting loop) ---------------------------------------------------

    def _publish(self, action: Action, observed: tuple[int, int] | None) -> None:
        """Publishes the action; ``vrchat_input`` is stamped with the frame it answers."""
        twist = Twist()
        twist.linear.x = action.motion.forward_mps
        twist.linear.y = action.motion.left_mps
        twist.angular.z = action.motion.ccw_radps
        now = self.get_clock().now().to_msg()
        buttons = VRChatInput(jump=action.buttons.jump, run=action.buttons.run)
        buttons.header.stamp = _answer_stamp(observed, now)
        if self.settings.cmd_vel_stamped:
            stamped = TwistStamped(twist=twist)
            stamped.header.stamp, stamped.header.frame_id = now, self.settings.base_frame_id
            self._cmd_vel.publish(stamped)
        else:
            self._cmd_vel.publish(twist)
        self._vrchat_input.publish(buttons)

    def _publish_mouse(self, mouse: MouseAction, observed: tuple[int, int] | None) -> None:
        """Publishes the mouse command, stamped like ``vrchat_input`` (vrchat space only)."""
        if self._mouse is None:
            return
        message = MouseInput(
            velocity_x=mouse.velocity_x, velocity_y=mouse.velocity_y,
            left=mouse.left, right=mouse.right, middle=mouse.middle,
        )  # fmt: skip
        message.header.stamp = _answer_stamp(observed, self.get_clock().now().to_msg())
        self._mouse.publish(message)

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
                self._experience_link.send(message)
            except Exception as error:  # the context may be gone during shutdown
                if not self._closing:
                    with self._lock:
                        self._send_errors += 1
                    self._problems.error(f"experience not sent: {error}")
                continue
            with self._lock:
                self._experience_sent += 1

    def _save_state(self, reason: str) -> str:
        acting = self._configured()
        with self._save_lock:
            mind_state = acting.mind_state()
            state = {
                "step": acting.step_index,
                "mind": self.settings.mind,
                "versions": {name: m.version for name, m in acting.mind.models.items()},
                "mind_state": mind_state,
            }

        def write(directory: Path) -> None:
            (directory / STATE_FILE).write_text(json.dumps(state))

        path = self._store.save(write, label=reason)
        return f"agent state at step {state['step']} saved to {path}"

    def _save_periodically(self) -> None:
        if self._acting is None:
            return  # unconfigured: no state
        try:
            self._save_state("periodic")
        except OSError as error:
            self._problems.error(f"saving the agent state failed: {error}")

    def _restore(self, acting: ActingLoop, reference: str) -> None:
        """Restores the agent's state from a checkpoint (``resume_from``), before acting."""
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
                acting.mind.load_state_dict(state["mind_state"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{directory / STATE_FILE}: {error}") from error
            acting.step_index = step

        used = restore(reference, self._run_dir.parent, STORE_SUBDIR, read, logger.error)
        if used is None:
            logger.error("agent starts with a fresh state")
        else:
            logger.info(f"restored agent state from {used}: continuing at step {acting.step_index}")

    # --- control ------------------------------------------------------------------------------

    @override
    def pause(self) -> str:
        self._configured().pause()
        return "acting paused (stop command sent)"

    @override
    def before_shutdown(self) -> None:
        acting = self._acting
        if acting is not None:  # unconfigured: nothing acts
            acting.pause()

    @override
    def resume(self) -> str:
        if not self.active:
            raise RuntimeError("the agent is not active (ros2 lifecycle set agent activate)")
        self._configured().resume()
        return "acting resumed"

    @override
    def save(self) -> str:
        return self._save_state("requested")

    @override
    def status(self) -> Mapping[str, object]:
        acting, sync = self._acting, self._sync
        if acting is None or sync is None:
            return {"lifecycle": "unconfigured", "trainer_silent_s": self._trainer_watch.silent_s()}
        stats = acting.statistics()
        figures = acting.figures()
        mind = acting.mind
        with self._lock:
            latencies = sorted(self._sync_latencies_ms)
            return {
                "paused": figures.pop("paused"),
                "step": figures.pop("step"),
                "steps": stats.steps,
                "rate_hz": stats.rate_hz,
                "target_rate_hz": acting.rate_hz,
                "missed_deadlines": stats.missed_deadlines,
                "interval_error_p50_ms": stats.interval_error_p50_ms,
                "interval_error_p99_ms": stats.interval_error_p99_ms,
                "interval_error_max_ms": stats.interval_error_max_ms,
                "step_compute_mean_ms": stats.compute_mean_ms,
                "step_compute_max_ms": stats.compute_max_ms,
                "step_errors": stats.errors,
                "step_real_time": describe_real_time(acting.real_time_report),
                **figures,
                "mind": self.settings.mind,
                "lifecycle": "active" if self.active else "inactive",
                "weight_version": mind.version,
                **{f"version_{name}": m.version for name, m in mind.models.items()},
                "weight_swaps": self._swaps,
                "weights_refused": sync.refusals(),
                **sync.status(),
                "sync_latency_p50_ms": latencies[len(latencies) // 2] if latencies else "none",
                "sync_latency_max_ms": latencies[-1] if latencies else "none",
                **mind.figures(),
                "experience_sent": self._experience_sent,
                "experience_dropped": self._experience_dropped,
                **self._experience_link.status(),
                "experience_send_errors": self._send_errors,
                "trainer_silent_s": self._trainer_watch.silent_s(),
            }

    def _report(self) -> None:
        acting = self._acting
        if acting is None:
            return
        status = self.status()
        rejected = status["frames_rejected"]
        stats = acting.statistics()
        mind = acting.mind
        if status["last_frame_width"]:
            age = float(status["last_frame_age_s"])  # type: ignore[arg-type]
            last = (
                f"last={status['last_frame_width']}x{status['last_frame_height']} age={age:.2f} s"
            )
        else:
            last = "last=none"
        self.get_logger().info(
            f"steps={stats.steps} ({stats.rate_hz:.1f} Hz) | interval error "
            f"p50={stats.interval_error_p50_ms:.1f} ms p99={stats.interval_error_p99_ms:.1f} ms "
            f"max={stats.interval_error_max_ms:.1f} ms missed={stats.missed_deadlines} | "
            f"frames received={status['frames_received']} rejected={rejected} {last} | "
            + " ".join(f"{name} v{m.version}" for name, m in mind.models.items())
            + " | "
            + " ".join(f"{name}={value:.4f}" for name, value in mind.figures().items())
            + f" | sync p50={_ms(status['sync_latency_p50_ms'])} | experience sent="
            f"{status['experience_sent']} dropped={status['experience_dropped']} | "
            f"action={status['action']}" + (" | PAUSED" if status["paused"] else "")
        )

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics, its level from what was measured since the last one."""
        status = dict(self.status())
        now = time.monotonic()
        report = Problems()
        if self._acting is None:
            report.add(WARN, "unconfigured (lifecycle): not acting")
            self._trainer_watch.check(report)
            self._diagnostics.publish(report.level, report.summary(""), status)
            return
        measured = self._recent_rate.add(now, int(status["steps"]))  # type: ignore[call-overload]
        new = {
            name: counter.since_last(int(status[name]))  # type: ignore[call-overload]
            for name, counter in self._new_counts.items()
        }
        if status["paused"]:
            report.add(WARN, "paused" if self.active else "inactive (lifecycle): not acting")
        else:
            check_rate(report, measured, self._acting.rate_hz, "stepping")
            if new["missed_deadlines"]:
                report.add(WARN, f"{new['missed_deadlines']} step deadline(s) missed")
            if not status["last_frame_width"]:
                report.add(WARN, "no camera frame yet: acting without observation")
            elif float(status["last_frame_age_s"]) > STALE_FRAME_AGE_S:  # type: ignore[arg-type]
                report.add(WARN, f"newest camera frame is {status['last_frame_age_s']:.1f} s old")
        self._trainer_watch.check(report)
        trainer_alive = self._trainer_watch.silent_s() < self.settings.peer_warn_after
        check_weights_silence(report, self._weights_silence, now, trainer_alive)
        for name, what in NEW_COUNT_PROBLEMS.items():
            if name != "missed_deadlines" and new[name]:
                report.add(WARN, f"{new[name]} {what} since the last status")
        status["recent_rate_hz"] = measured
        self._diagnostics.publish(
            report.level, report.summary(f"stepping at {measured:.1f} Hz"), status
        )

    def close(self) -> None:
        """Stops acting, sends what is queued, saves the agent state; nothing is published after."""
        self._closing = True
        acting = self._acting
        if acting is None:  # unconfigured (or cleaned up): nothing acts, nothing to save
            self._outbox.put(None, timeout=5.0)
            self._sender.join(timeout=5.0)
            self.get_logger().info("closed (unconfigured)")
            return
        acting.close()
        self.get_logger().info("closing: stop command sent")
        try:
            self._cmd_vel.wait_for_all_acked(rclpy.duration.Duration(seconds=STOP_ACKED_WAIT_S))
        except Exception as error:  # best effort: the context may be going
            self.get_logger().warning(f"stop command not acknowledged: {error}")
        if self._sync is not None:
            self._sync.close()
        self._outbox.put(None, timeout=5.0)
        self._sender.join(timeout=5.0)
        try:
            self.get_logger().info(self._save_state("shutdown"))
        except Exception as error:
            self.get_logger().error(f"saving the agent state on shutdown failed: {error}")
        stats = acting.statistics()
        self.get_logger().info(
            f"closed after {stats.steps} steps ({stats.missed_deadlines} missed deadlines)"
        )


def _mind_options(settings: AgentSettings, hearing: Hearing | None = None) -> MindOptions:
    device, dtype = resolve_device(settings.device, settings.precision)
    return MindOptions(
        settings.seed,
        settings.preset,
        settings.policy,
        device,
        dtype,
        modalities=settings.modalities,
        hearing=hearing,
        action_space=settings.action_space,
        reward=settings.curiosity_reward,
    )


def build_mind(settings: AgentSettings, hearing: Hearing | None = None) -> ActingMind:
    """The mind the settings name, on their device and precision.

    Raises:
        ValueError: If the device is not usable (e.g. cuda asked for on a machine without).
    """
    return build_acting_mind(settings.mind, _mind_options(settings, hearing))


def describe_mind(settings: AgentSettings) -> str:
    """A few words on the mind, for the start-up log line."""
    return ACTING_MINDS[settings.mind].describe(_mind_options(settings))


def _answer_stamp(observed: tuple[int, int] | None, now: Time) -> Time:
    """The capture stamp of the frame an action answers; ``now`` without one."""
    if observed is None or observed == UNSTAMPED:
        return now
    return Time(sec=observed[0], nanosec=observed[1])


def _ms(value: object) -> str:
    return f"{value:.0f} ms" if isinstance(value, float) else str(value)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the agent node until Ctrl-C."""
    hold_memory_in_bounds()
    run_node(AgentNode, args)


if __name__ == "__main__":
    main()
