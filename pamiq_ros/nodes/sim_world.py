"""The simulated world node: a stand-in for VRChat (and for a robot base).

It listens for VRChat OSC input on UDP, steps the world and renders the avatar's view at
``fps`` in its own thread, and serves the frames as an MJPEG stream that the camera node opens
like any IP camera. In robot-face mode (``cmd_vel_enabled``) it also drives the avatar from
``cmd_vel`` Twists; a ``cmd_vel`` older than ``cmd_vel_timeout`` stops it. The avatar's pose is
published on ``world/pose`` and as TF for rviz (``world`` -> ``base_link`` on ``/tf`` from the
pose, ``base_link`` -> ``camera`` on ``/tf_static``: the camera's optical frame at eye height,
z forward, x right, y down), with the rendered view's intrinsics on ``world/camera_info``; the
frame ids are parameters. The world, renderer and OSC handling live in ``pamiq_ros.sim``.

For the latency benchmark (``stamp_frames``, off by default) each frame carries its send time
in a strip of pixels (``pamiq_ros.io.frame_stamp``) and OSC ``/pamiq/answers`` tags are timed
against it (``pamiq_ros.sim.answer_latency``); the figures go to the log and ``/diagnostics``.
"""

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geometry_msgs.msg import PoseStamped, TransformStamped, Twist
from pamiq_ros_interfaces.msg import MouseInput
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage
from typing_extensions import override

from pamiq_ros.core.health import (
    ERROR,
    WARN,
    NewCount,
    Problems,
    RecentRate,
    check_grown,
    check_rate,
    diagnostics_period_setting,
)
from pamiq_ros.core.settings import (
    SettingsError,
    require_one_of,
    require_positive,
    setting,
)
from pamiq_ros.io.camera_info import Intrinsics, fill_camera_info
from pamiq_ros.io.frame_stamp import ANSWERS_ADDRESS, check_size, write_stamp
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, run_node
from pamiq_ros.sim.answer_latency import AnswerLatency
from pamiq_ros.sim.audio_server import AudioStreamServer
from pamiq_ros.sim.experiences import EXPERIENCES, experience_layout
from pamiq_ros.sim.mouse_look import MouseLook
from pamiq_ros.sim.osc_input import InputState
from pamiq_ros.sim.osc_server import OscInputServer, OscRejection, RejectionLogThrottle
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.sound import SoundSnapshot, world_emitters
from pamiq_ros.sim.video_server import MjpegStreamServer
from pamiq_ros.sim.world import EYE_HEIGHT, MotionCommand, Pose, World

POSE_TOPIC = "world/pose"
CAMERA_INFO_TOPIC = "world/camera_info"
RENDER_FOV_DEG = 90.0
"""The renderer's horizontal field of view (its default)."""
OPTICAL_FROM_BASE = (-0.5, 0.5, -0.5, 0.5)
"""Rotation (x, y, z, w) from a REP-103 body frame to a camera optical frame (REP-103 sec. 4)."""
_MAX_STEP_SECONDS = 0.25  # a stalled loop does not teleport the avatar when it resumes
_REJECTION_LOG_PERIOD = 2.0  # s between two logged OSC rejections of the same kind
_MAX_FRAME_SIDE = 4096


@dataclass(frozen=True)
class SimWorldSettings:
    """Parameters of the simulated world node."""

    osc_enabled: bool = setting(True, "Whether to listen for VRChat OSC input on UDP.")
    osc_host: str = setting("127.0.0.1", "Address the OSC input socket binds to.")
    osc_port: int = setting(
        9000, "UDP port for OSC input (VRChat's is 9000); 0 picks one.", low=0, high=65535
    )
    cmd_vel_enabled: bool = setting(
        False, "Robot face: also drive the avatar from geometry_msgs/Twist on cmd_vel."
    )
    cmd_vel_timeout: float = setting(
        0.5, "Seconds after the last cmd_vel when it is stale and the avatar stops."
    )
    cmd_vel_topic: str = setting(
        "cmd_vel", "Robot face: the Twist topic it drives from (cmd_vel_safe behind the relay)."
    )
    video_host: str = setting("127.0.0.1", "Address the MJPEG video server binds to.")
    video_port: int = setting(
        8080, "TCP port of the MJPEG video server; 0 picks one.", low=0, high=65535
    )
    video_path: str = setting("/stream.mjpg", "URL path of the MJPEG stream.")
    frame_width: int = setting(160, "Rendered frame width (px).", low=8, high=_MAX_FRAME_SIDE)
    frame_height: int = setting(120, "Rendered frame height (px).", low=8, high=_MAX_FRAME_SIDE)
    fps: float = setting(
        20.0, "Simulation, render and stream rate (frames per second).", low=0.1, high=1000.0
    )
    jpeg_quality: int = setting(90, "JPEG quality of streamed frames.", low=1, high=100)
    walk_speed: float = setting(
        2.0, "Walking speed (m/s) at input 1.0; Run doubles it, the fastest cmd_vel allowed."
    )
    turn_speed: float = setting(1.5, "Turn rate (rad/s) at input 1.0; the fastest allowed.")
    seed: int = setting(0, "Seed of the world: where the moving pillars start.")
    experience: str = setting(
        "A", "The world's look (pamiq_ros.sim.experiences): A, B or C; setting it at run time "
        "(ros2 param set, the SetParameters service) switches the look at the next frame.",
        runtime=True,
    )  # fmt: skip
    pose_rate_hz: float = setting(
        20.0, "Rate (Hz) at which world/pose, /tf and world/camera_info are published."
    )
    world_frame_id: str = setting("world", "Fixed frame of world/pose and the TF tree's root.")
    base_frame_id: str = setting("base_link", "The avatar's (robot's) body frame in /tf.")
    camera_frame_id: str = setting(
        "camera", "The camera's optical frame (z forward, x right, y down) in /tf_static and "
        "world/camera_info; camera_sensor's frame_id should match."
    )  # fmt: skip
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()
    audio_enabled: bool = setting(
        False, "Serve the world's positional stereo sound as a live WAV stream over HTTP."
    )
    audio_host: str = setting("127.0.0.1", "Address the audio stream server binds to.")
    audio_port: int = setting(
        8081, "TCP port of the audio stream (/audio.wav); 0 picks one.", low=0, high=65535
    )
    audio_sample_rate: int = setting(
        44100, "Sample rate of the audio stream (Hz).", low=8000, high=192000
    )
    mouse_enabled: bool = setting(
        False, "Mouse look from pamiq_ros_interfaces/MouseInput on the mouse topic: x turns, y "
        "tilts the view (rendered taller and cropped), a left click uses the thing in front."
    )  # fmt: skip
    mouse_timeout: float = setting(
        0.5, "Seconds after the last mouse message when it is stale (no motion, buttons up)."
    )
    mouse_radians_per_pixel: float = setting(
        0.002, "Mouse sensitivity: view rotation (rad) per pixel of pointer motion."
    )
    stamp_frames: bool = setting(
        False,
        "Latency benchmark: write each frame's send time into a strip at its top and time the "
        "OSC /pamiq/answers tags that answer it (figures in the log and /diagnostics).",
    )

    def __post_init__(self) -> None:
        require_positive(
            self, "cmd_vel_timeout", "fps", "walk_speed", "turn_speed", "pose_rate_hz",
            "report_period", "mouse_timeout", "mouse_radians_per_pixel", "audio_sample_rate",
        )  # fmt: skip
        require_one_of(self, experience=EXPERIENCES)
        if not self.video_path.startswith("/"):
            raise ValueError(f"video_path must start with '/', got {self.video_path!r}")
        if self.stamp_frames:
            try:
                check_size(self.frame_width, self.frame_height)
            except ValueError as error:
                raise ValueError(f"stamp_frames: {error} (frame_width/frame_height)") from None


@dataclass(frozen=True)
class _TimedCommand:
    command: MotionCommand
    received_at: float  # time.monotonic()


class SimWorldNode(Node, Controllable):
    """Steps, renders and streams the simulated world; takes OSC and (optionally) cmd_vel."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("sim_world", **node_options)
        self.settings = declare_settings(self, SimWorldSettings, self._apply_settings)
        settings = self.settings
        layout = experience_layout(settings.experience, settings.seed)
        self._world = World(settings.seed, settings.walk_speed, settings.turn_speed, layout)
        self._mouse_look = (
            MouseLook(
                settings.frame_height,
                (settings.frame_width / 2.0) / math.tan(math.radians(RENDER_FOV_DEG) / 2.0),
                settings.frame_height // 2,
                settings.mouse_radians_per_pixel,
            )
            if settings.mouse_enabled
            else None
        )
        self._mouse: tuple[MouseInput, float] | None = None
        self._sound = SoundSnapshot(self._world.pose, world_emitters(self._world))
        self._audio: AudioStreamServer | None = None
        self._renderer = Renderer(self._world.layout, settings.frame_width, self._render_height())
        self._experience = settings.experience
        self._next_renderer: Renderer | None = None
        self._input = InputState()
        self._rejection_throttle = RejectionLogThrottle(_REJECTION_LOG_PERIOD)
        self._answers = AnswerLatency() if settings.stamp_frames else None
        self._lock = threading.Lock()
        self._pose = self._world.pose
        self._jump_height = 0.0
        self._frames = 0
        self._loop_errors = 0
        self._cmd_vel: _TimedCommand | None = None
        self._cmd_vel_received = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._closed = False
        self._osc: OscInputServer | None = None
        self._video: MjpegStreamServer | None = None
        self._open_servers()

        self._pose_publisher = self.create_publisher(PoseStamped, POSE_TOPIC, 10)
        self._tf_publisher = self.create_publisher(TFMessage, "/tf", 100)
        static_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_publisher(TFMessage, "/tf_static", static_qos).publish(
            TFMessage(transforms=[self._camera_mount()])
        )
        self._camera_info_publisher = self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, 10)
        self._intrinsics = Intrinsics.pinhole(
            settings.frame_width, settings.frame_height, RENDER_FOV_DEG
        )
        if settings.cmd_vel_enabled:
            self.create_subscription(Twist, settings.cmd_vel_topic, self._on_cmd_vel, 10)
        if settings.mouse_enabled:
            self.create_subscription(MouseInput, "mouse", self._on_mouse, 10)
        self._diagnostics = DiagnosticsReporter(self)
        self._report_time = time.monotonic()
        self._report_frames = 0
        self._log_startup()

        self._loop_thread = threading.Thread(target=self._run_loop, name="sim-loop", daemon=True)
        self._loop_thread.start()
        self.create_timer(1.0 / settings.pose_rate_hz, self._publish_pose)
        self.create_timer(settings.report_period, self._report)
        self._recent_fps = RecentRate()
        self._new_rejected = NewCount()
        self._new_loop_errors = NewCount()
        self._period_timers = SettingTimers(self)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        ControlServices(self, self)

    @override
    def pause(self) -> str:
        self._paused.set()
        return "world frozen (the video keeps showing it)"

    @override
    def resume(self) -> str:
        self._paused.clear()
        return "world running"

    @override
    def status(self) -> Mapping[str, object]:
        with self._lock:
            pose, frames = self._pose, self._frames
        return {
            "paused": self._paused.is_set(),
            "experience": self._experience,
            "x": pose.x,
            "y": pose.y,
            "yaw": pose.yaw,
            "frames": frames,
            "osc_accepted": self._osc.accepted if self._osc is not None else 0,
            "osc_rejected": self._osc.rejected if self._osc is not None else 0,
            "pitch": self._mouse_look.pitch if self._mouse_look is not None else 0.0,
            "uses": self._mouse_look.uses if self._mouse_look is not None else 0,
            "audio_clients": self._audio.clients if self._audio is not None else 0,
        }

    def close(self) -> None:
        """Stops the simulation thread, the OSC server and the video server."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._loop_thread.is_alive():
            self._loop_thread.join(timeout=5.0)
        self._close_servers()
        accepted = self._osc.accepted if self._osc is not None else 0
        rejected = self._osc.rejected if self._osc is not None else 0
        self.get_logger().info(
            f"stopped after {self._frames} frames | osc accepted={accepted} rejected={rejected}"
        )

    def _open_servers(self) -> None:
        settings = self.settings
        try:
            if settings.osc_enabled:
                try:
                    self._osc = OscInputServer(
                        self._input,
                        settings.osc_host,
                        settings.osc_port,
                        self._log_rejection,
                        taps=self._osc_taps(),
                    )
                except OSError as error:
                    raise SettingsError(
                        f"cannot listen for OSC on udp://{settings.osc_host}:{settings.osc_port} "
                        f"(osc_host/osc_port): {error}"
                    ) from error
            try:
                self._video = MjpegStreamServer(
                    settings.video_host,
                    settings.video_port,
                    settings.video_path,
                    settings.fps,
                    settings.jpeg_quality,
                )
            except OSError as error:
                raise SettingsError(
                    f"cannot serve video on http://{settings.video_host}:{settings.video_port} "
                    f"(video_host/video_port): {error}"
                ) from error
            if settings.audio_enabled:
                try:
                    self._audio = AudioStreamServer(
                        self._sound_now,
                        settings.audio_sample_rate,
                        settings.audio_host,
                        settings.audio_port,
                    )
                except OSError as error:
                    raise SettingsError(
                        f"cannot serve audio on http://{settings.audio_host}:"
                        f"{settings.audio_port} (audio_host/audio_port): {error}"
                    ) from error
        except SettingsError:
            self._close_servers()
            raise
        if self._osc is not None:
            self._osc.start()
        self._video.start()
        if self._audio is not None:
            self._audio.start()

    def _osc_taps(self) -> dict[str, Callable[[Sequence[object]], None]]:
        answers = self._answers
        if answers is None:
            return {}
        return {ANSWERS_ADDRESS: lambda args: answers.answer(args, time.time())}

    def _close_servers(self) -> None:
        if self._osc is not None:
            self._osc.close()
        if self._video is not None:
            self._video.close()
        if self._audio is not None:
            self._audio.close()

    def _render_height(self) -> int:
        """Rows rendered: the frame, plus mouse look's margins for pitch."""
        look = self._mouse_look
        return look.render_height if look is not None else self.settings.frame_height

    def _sound_now(self) -> SoundSnapshot:
        """What the avatar hears now (called by the audio stream's threads)."""
        with self._lock:
            return self._sound

    def _mouse_now(self) -> MouseInput:
        """The newest mouse message, or a released mouse once it is stale."""
        with self._lock:
            timed = self._mouse
        if timed is None or time.monotonic() - timed[1] > self.settings.mouse_timeout:
            return MouseInput()
        return timed[0]

    def _on_mouse(self, message: MouseInput) -> None:
        if not (math.isfinite(message.velocity_x) and math.isfinite(message.velocity_y)):
            self.get_logger().warning(
                "ignored a mouse message with non-finite velocity", throttle_duration_sec=2.0
            )
            return
        with self._lock:
            self._mouse = (message, time.monotonic())

    def _log_startup(self) -> None:
        settings = self.settings
        logger = self.get_logger()
        if self._audio is not None:
            logger.info(f"audio stream at {self._audio.url} ({settings.audio_sample_rate} Hz)")
        if self._mouse_look is not None:
            logger.info(f"mouse look from {self.resolve_topic_name('mouse')}")
        if self._osc is not None:
            logger.info(f"OSC input on {self._osc.url}")
        else:
            logger.info("OSC input disabled (osc_enabled is false)")
        assert self._video is not None
        logger.info(
            f"video stream at {self._video.url} ({settings.frame_width}x{settings.frame_height}"
            f" at {settings.fps:g} fps)"
        )
        if settings.cmd_vel_enabled:
            logger.info(
                f"robot face: cmd_vel on {self.resolve_topic_name(settings.cmd_vel_topic)} "
                f"(stale after {settings.cmd_vel_timeout:g} s)"
            )
        logger.info(
            f"publishing {self.resolve_topic_name(POSE_TOPIC)} at {settings.pose_rate_hz:g} Hz"
        )
        if settings.stamp_frames:
            logger.info(f"latency benchmark: frames stamped, {ANSWERS_ADDRESS} answers timed")

    # --- the simulation thread ---------------------------------------------------------

    def _run_loop(self) -> None:
        period = 1.0 / self.settings.fps
        last = time.monotonic()
        next_tick = last
        while not self._stop.is_set():
            now = time.monotonic()
            dt = min(now - last, _MAX_STEP_SECONDS)
            last = now
            try:
                self._tick(dt)
            except Exception as error:
                self._loop_errors += 1
                self.get_logger().error(
                    f"simulation step failed: {error!r}", throttle_duration_sec=5.0
                )
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -period:
                next_tick = time.monotonic()  # far behind: restart the schedule, don't sprint
            self._stop.wait(max(0.0, delay))

    def _tick(self, dt: float) -> None:
        with self._lock:
            renderer, self._next_renderer = self._next_renderer, None
        if renderer is not None:  # same walls and pillars: only the look changes
            self._world.layout = renderer.layout
            self._renderer = renderer
        look = self._mouse_look
        mouse = self._mouse_now() if look is not None else None
        if not self._paused.is_set():
            command = self._command()
            if look is not None and mouse is not None:
                yaw_rate = command.yaw_rate + look.yaw_rate(mouse.velocity_x)
                command = MotionCommand(command.forward, command.left, yaw_rate, command.jump)
            self._world.step(dt, command)
            if look is not None and mouse is not None:
                look.step(dt, mouse.velocity_y, mouse.left, self._world)
        frame = self._renderer.render(self._world)
        if look is not None:
            frame = look.crop(frame)
        if self._audio is not None:
            emitters = world_emitters(self._world)
            use = look.use_emitter(time.monotonic(), self._world.time) if look else None
            sound = SoundSnapshot(self._world.pose, emitters + ((use,) if use else ()))
            with self._lock:
                self._sound = sound
        if self._answers is not None:
            sent = time.time()  # just before JPEG encoding: the frame leaves the world
            self._answers.frame_sent(write_stamp(frame, sent), sent)
        assert self._video is not None
        self._video.publish(frame)
        with self._lock:
            self._pose = self._world.pose
            self._jump_height = self._world.jump_height
            self._frames += 1

    def _command(self) -> MotionCommand:
        """OSC input and a fresh cmd_vel, added together (the world clamps the sum)."""
        settings = self.settings
        osc = (
            self._input.motion_command(settings.walk_speed, settings.turn_speed)
            if self._osc is not None
            else MotionCommand()
        )
        with self._lock:
            timed = self._cmd_vel
        if timed is None or time.monotonic() - timed.received_at > settings.cmd_vel_timeout:
            return osc
        twist = timed.command
        return MotionCommand(
            forward=osc.forward + twist.forward,
            left=osc.left + twist.left,
            yaw_rate=osc.yaw_rate + twist.yaw_rate,
            jump=osc.jump,
        )

    # --- ROS callbacks -----------------------------------------------------------------

    def _on_cmd_vel(self, twist: Twist) -> None:
        values = (twist.linear.x, twist.linear.y, twist.angular.z)
        if not all(math.isfinite(value) for value in values):
            self.get_logger().warning(
                f"ignored cmd_vel with non-finite values linear.x={values[0]} "
                f"linear.y={values[1]} angular.z={values[2]}",
                throttle_duration_sec=2.0,
            )
            return
        command = MotionCommand(forward=values[0], left=values[1], yaw_rate=values[2])
        with self._lock:
            self._cmd_vel = _TimedCommand(command, time.monotonic())
            self._cmd_vel_received += 1

    def _apply_settings(self, new: SimWorldSettings, changed: frozenset[str]) -> None:
        """A run-time change of ``experience`` (already checked) switches the look."""
        if "experience" in changed:
            renderer = Renderer(
                experience_layout(new.experience, new.seed), new.frame_width, self._render_height()
            )
            with self._lock:
                self._next_renderer = renderer
                self._experience = new.experience
            self.get_logger().info(f"experience switched to {new.experience}")
        self._period_timers.apply(new, changed)
        self.settings = new

    def _publish_pose(self) -> None:
        with self._lock:
            pose, jump_height = self._pose, self._jump_height
        settings = self.settings
        message = PoseStamped()
        message.header.stamp = self.get_clock().now().to_msg()
        message.header.frame_id = settings.world_frame_id
        message.pose.position.x = pose.x
        message.pose.position.y = pose.y
        message.pose.position.z = jump_height
        message.pose.orientation.z = math.sin(pose.yaw / 2.0)
        message.pose.orientation.w = math.cos(pose.yaw / 2.0)
        self._pose_publisher.publish(message)
        body = TransformStamped()
        body.header = message.header
        body.child_frame_id = settings.base_frame_id
        body.transform.translation.x, body.transform.translation.y = pose.x, pose.y
        body.transform.translation.z = jump_height
        body.transform.rotation = message.pose.orientation
        self._tf_publisher.publish(TFMessage(transforms=[body]))
        info = CameraInfo()
        info.header.stamp = message.header.stamp
        info.header.frame_id = settings.camera_frame_id
        fill_camera_info(info, self._intrinsics)
        self._camera_info_publisher.publish(info)

    def _camera_mount(self) -> TransformStamped:
        """base_link -> camera: the optical frame at eye height (static)."""
        mount = TransformStamped()
        mount.header.stamp = self.get_clock().now().to_msg()
        mount.header.frame_id = self.settings.base_frame_id
        mount.child_frame_id = self.settings.camera_frame_id
        mount.transform.translation.z = EYE_HEIGHT
        rotation = mount.transform.rotation
        rotation.x, rotation.y, rotation.z, rotation.w = OPTICAL_FROM_BASE
        return mount

    def _log_rejection(self, rejection: OscRejection) -> None:
        suppressed = self._rejection_throttle.admit(rejection.kind)
        if suppressed is None:
            return
        note = f" ({suppressed} more of this kind not logged)" if suppressed else ""
        self.get_logger().warning(f"rejected OSC from {rejection.sender}: {rejection.reason}{note}")

    def _figures(self, now: float) -> dict[str, object]:
        """The world's figures for the log and /diagnostics (counters since start)."""
        with self._lock:
            pose: Pose = self._pose
            frames = self._frames
            cmd_vel = self._cmd_vel
            cmd_vel_received = self._cmd_vel_received
        values: dict[str, object] = {
            "x": pose.x,
            "y": pose.y,
            "yaw": pose.yaw,
            "paused": self._paused.is_set(),
            "osc_accepted": self._osc.accepted if self._osc is not None else 0,
            "osc_rejected": self._osc.rejected if self._osc is not None else 0,
            "frames": frames,
            "video_clients": self._video.clients if self._video is not None else 0,
            "jumps": self._world.jumps,
            "loop_errors": self._loop_errors,
        }
        if self._answers is not None:
            values.update(self._answers.figures())
        if self.settings.cmd_vel_enabled:
            values["cmd_vel_received"] = cmd_vel_received
            values["cmd_vel_active"] = (
                cmd_vel is not None and now - cmd_vel.received_at <= self.settings.cmd_vel_timeout
            )
        return values

    def _report(self) -> None:
        now = time.monotonic()
        values = self._figures(now)
        frames = self._frames
        fps = (frames - self._report_frames) / max(now - self._report_time, 1e-9)
        self._report_time, self._report_frames = now, frames
        line = (
            f"pose x={values['x']:.2f} y={values['y']:.2f} yaw={values['yaw']:.2f} "
            f"| osc accepted={values['osc_accepted']} rejected={values['osc_rejected']} "
            f"| frames={frames} ({fps:.1f} fps) | clients={values['video_clients']}"
        )
        if self._answers is not None:
            line += (
                f" | answers timed={values['answers_timed']} latency p50="
                f"{values['answer_latency_p50_ms']:.1f} ms p99="
                f"{values['answer_latency_p99_ms']:.1f} ms"
            )
        if self.settings.cmd_vel_enabled:
            line += (
                f" | cmd_vel received={values['cmd_vel_received']} "
                f"{'active' if values['cmd_vel_active'] else 'stale'}"
            )
        self.get_logger().info(line)

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics, its level from the render rate and new rejections/errors.

        No video client is no problem: the world runs the same with nobody watching.
        """
        now = time.monotonic()
        values = self._figures(now)
        fps = self._recent_fps.add(now, self._frames)
        rejected = self._osc.rejected if self._osc is not None else 0
        values["fps"] = fps
        problems = Problems()
        check_rate(problems, fps, self.settings.fps, "rendering")
        check_grown(
            problems,
            self._new_rejected.since_last(rejected),
            WARN,
            "OSC message(s) rejected",
        )
        check_grown(
            problems,
            self._new_loop_errors.since_last(self._loop_errors),
            ERROR,
            "simulation step error(s)",
        )
        if values["paused"]:
            problems.add(WARN, "paused: the world is frozen")
        self._diagnostics.publish(problems.level, problems.summary("running"), values)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the simulated world node until Ctrl-C."""
    run_node(SimWorldNode, args)


if __name__ == "__main__":
    main()
