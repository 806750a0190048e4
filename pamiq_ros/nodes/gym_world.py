"""The Gymnasium world node: any Gymnasium environment as a world the agent lives in.

A thin ROS face over :class:`pamiq_ros.sim.gym_env.GymWorld` (environment, action rules,
frames and ground truth are explained there). The agent's ``cmd_vel`` (Twist) and
``vrchat_input`` buttons become the environment's action; its view goes out as
``sensor_msgs/Image`` on ``camera/image_raw``, which the agent reads directly
(``frame_output: image``), or as an MJPEG stream for the camera node (``frame_output: mjpeg``),
as sim_world serves it.

Two ways to step (``mode``):

- ``realtime``: ``rate_hz`` steps per second in a thread of its own, each with the newest
  ``cmd_vel``; one older than ``cmd_vel_timeout`` (the agent stopped, paused or died) counts
  as no motion, so the body stands still. A jump is used once, then released.
- ``lockstep``: one step per ``cmd_vel`` received, with the newest buttons, so the world
  advances exactly as fast as the agent answers (benchmarks). Steps run in the subscription's
  callback: the shipped environments step in about a millisecond.

After every step: the reward on ``world/reward`` (std_msgs/Float32), the ground-truth pose on
``world/pose`` (PoseStamped in ``world``; yaw as orientation where the environment has one).
An episode that ends (or whose environment raised, logged with the error) is summed up on
``world/episode`` (std_msgs/String, a JSON object: episode, steps, return, terminated,
truncated, goal, env_error), counted, and followed by a reset with the next seed. Reward,
episodes and goals are for evaluation only: the agent never sees them.
"""

import dataclasses
import json
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from geometry_msgs.msg import PoseStamped, Twist
from pamiq_ros_interfaces.msg import VRChatInput
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, String
from typing_extensions import override

from pamiq_ros.core.actions import Action, Motion, VRChatButtons
from pamiq_ros.core.health import (
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
from pamiq_ros.core.step_loop import StepLoop
from pamiq_ros.io.image_codec import encode_image
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter
from pamiq_ros.nodes._problem_log import ProblemLog
from pamiq_ros.nodes._runtime import SettingTimers, declare_settings, run_node
from pamiq_ros.sim.gym_env import (
    FRAME_SOURCES,
    GROUND_TRUTHS,
    GYM_WORLDS,
    GymWorld,
    GymWorldError,
    GymWorldSpec,
)
from pamiq_ros.sim.stepped import WorldStep
from pamiq_ros.sim.video_server import MjpegStreamServer

IMAGE_TOPIC = "camera/image_raw"
POSE_TOPIC = "world/pose"
REWARD_TOPIC = "world/reward"
EPISODE_TOPIC = "world/episode"
POSE_FRAME_ID = "world"
MODES = ("realtime", "lockstep")
FRAME_OUTPUTS = ("image", "mjpeg")
ERROR_LOG_PERIOD_S = 2.0
_RECENT_EPISODES = 20  # episodes the mean return and goal fraction in the status cover

_SPEC_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(GymWorldSpec)
    if field.default is not dataclasses.MISSING
}
"""GymWorldSpec's own defaults: the home of the defaults of the spec parameters below."""
_SPEC_FIELDS = (
    "frame_source", "frame_key", "frame_width", "frame_height", "action_rules",
    "default_action", "cell_size", "ground_truth", "terminal_reward_is_goal",
)  # fmt: skip
"""The parameters that are GymWorldSpec fields as they are (env_kwargs, wrappers are JSON)."""


@dataclasses.dataclass(frozen=True)
class GymWorldSettings:
    """Parameters of the Gymnasium world node."""

    world: str = setting(
        "minigrid_four_rooms",
        f"A shipped world ({', '.join(sorted(GYM_WORLDS))}) served when env_id is empty; with "
        "env_id, the name in reports.",
    )
    env_id: str = setting(
        "", "Gymnasium environment id ('module:Id' imports module first, where it registers); "
        "empty: the shipped world named by `world`."
    )  # fmt: skip
    env_kwargs: str = setting("", "JSON object of keyword arguments for gymnasium.make.")
    wrappers: str = setting(
        "", 'JSON list of wrappers applied in order: "module:Class" or ["module:Class", {kwargs}].'
    )
    frame_source: str = setting(
        _SPEC_DEFAULTS["frame_source"],
        "Where the view comes from: observation (an image observation) or render (rgb_array).",
    )
    frame_key: str = setting(
        _SPEC_DEFAULTS["frame_key"], "Entry of a dict observation that is the image; empty: all."
    )
    frame_width: int = setting(
        _SPEC_DEFAULTS["frame_width"], "Width (px) frames are resized to; 0: the env's own."
    )
    frame_height: int = setting(
        _SPEC_DEFAULTS["frame_height"], "Height (px) frames are resized to; 0: the env's own."
    )
    action_rules: str = setting(
        "",
        "Rules from the agent's motion and buttons to the env's action, 'CONDITION -> TARGET' "
        "separated by ';' (pamiq_ros.sim.gym_env explains them).",
    )
    default_action: str = setting(
        _SPEC_DEFAULTS["default_action"],
        "The action where no rule holds: an index (Discrete) or comma-separated values.",
    )
    cell_size: float = setting(
        _SPEC_DEFAULTS["cell_size"], "Side of a coverage cell, in the units of the position."
    )
    ground_truth: str = setting(
        _SPEC_DEFAULTS["ground_truth"],
        f"Where the position comes from: {', '.join(GROUND_TRUTHS)} (auto: by env kind).",
    )
    terminal_reward_is_goal: bool = setting(
        _SPEC_DEFAULTS["terminal_reward_is_goal"],
        "An episode ending with a positive reward reached its goal (counted as goals).",
    )
    mode: str = setting(
        "realtime", "realtime: rate_hz steps per second; lockstep: one step per cmd_vel received."
    )
    rate_hz: float = setting(10.0, "Steps per second in realtime mode.", low=0.1, high=1000.0)
    cmd_vel_timeout: float = setting(
        0.5, "Seconds after which the last cmd_vel is stale (realtime: no motion)."
    )
    seed: int = setting(0, "Seed of the first episode; each reset takes the next one.")
    frame_output: str = setting(
        "image", "image: sensor_msgs/Image on camera/image_raw; mjpeg: a stream for camera_sensor."
    )
    video_host: str = setting("127.0.0.1", "mjpeg: address the video server binds to.")
    video_port: int = setting(
        8080, "mjpeg: TCP port of the video server; 0 picks one.", low=0, high=65535
    )
    video_path: str = setting("/stream.mjpg", "mjpeg: URL path of the stream.")
    video_fps: float = setting(
        20.0, "mjpeg: rate at which each client is sent frames.", low=0.1, high=1000.0
    )
    jpeg_quality: int = setting(90, "mjpeg: JPEG quality of streamed frames.", low=1, high=100)
    report_period: float = setting(5.0, "Seconds between progress lines in the log.")
    diagnostics_period: float = diagnostics_period_setting()

    def __post_init__(self) -> None:
        require_positive(self, "rate_hz", "cmd_vel_timeout", "video_fps", "report_period")
        require_one_of(
            self, mode=MODES, frame_output=FRAME_OUTPUTS, frame_source=FRAME_SOURCES,
            ground_truth=GROUND_TRUTHS,
        )  # fmt: skip
        if not self.video_path.startswith("/"):
            raise ValueError(f"video_path must start with '/', got {self.video_path!r}")

    def spec(self) -> GymWorldSpec:
        """The world these settings name.

        Raises:
            GymWorldError: If ``world`` is unknown while ``env_id`` is empty, or a spec field is
                set while ``env_id`` is empty (it would be ignored), or a field is invalid.
        """
        spec_fields = {name: getattr(self, name) for name in _SPEC_FIELDS}
        if not self.env_id:
            if self.world not in GYM_WORLDS:
                raise GymWorldError(
                    f"world: no shipped world {self.world!r} (known: {sorted(GYM_WORLDS)}); "
                    "or name an environment with env_id"
                )
            defaults = {field.name: field.default for field in dataclasses.fields(self)}
            changed = [
                name
                for name in ("env_kwargs", "wrappers", *_SPEC_FIELDS)
                if getattr(self, name) != defaults[name]
            ]
            if changed:
                raise GymWorldError(
                    f"{', '.join(changed)}: set, but env_id is empty (the shipped world "
                    f"{self.world!r} is served as it is); set env_id to describe your own"
                )
            return GYM_WORLDS[self.world]
        return GymWorldSpec.from_json_fields(
            name=self.world, env_kwargs=self.env_kwargs, wrappers=self.wrappers,
            env_id=self.env_id, **spec_fields,
        )  # fmt: skip


class GymWorldNode(Node, Controllable):
    """Steps a Gymnasium environment with the agent's actions and serves its view."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("gym_world", **node_options)
        self.settings = declare_settings(self, GymWorldSettings, self._apply_settings)
        settings = self.settings
        try:
            self._world = GymWorld(settings.spec())
        except GymWorldError as error:
            raise SettingsError(str(error)) from None
        self._problems = ProblemLog(self.get_logger(), ERROR_LOG_PERIOD_S)
        self._lock = threading.Lock()  # world and counters: loop thread vs callbacks
        self._paused = False
        self._closed = False
        self._cmd_vel: tuple[Motion, float] | None = None  # motion, monotonic time received
        self._buttons = VRChatButtons()
        self._actions_received = 0
        self._actions_ignored = 0
        self._steps = 0
        self._episodes = 0
        self._goals = 0
        self._env_errors = 0
        self._reset_failures = 0
        self._episode_steps = 0
        self._episode_return = 0.0
        self._recent: deque[tuple[float, bool]] = deque(maxlen=_RECENT_EPISODES)
        self._report_time, self._report_steps = time.monotonic(), 0
        self._video: MjpegStreamServer | None = None
        self._needs_reset = False
        try:
            self._last = self._world.reset(seed=settings.seed)
        except Exception as error:
            self._world.close()
            raise SettingsError(
                f"env_id: {self._world.spec.env_id!r} failed to reset: {error}"
            ) from error

        self._image_publisher = None
        if settings.frame_output == "image":
            self._image_publisher = self.create_publisher(
                Image, IMAGE_TOPIC, qos_profile_sensor_data
            )
        else:
            self._open_video()
        self._pose_publisher = self.create_publisher(PoseStamped, POSE_TOPIC, 10)
        self._reward_publisher = self.create_publisher(Float32, REWARD_TOPIC, 10)
        self._episode_publisher = self.create_publisher(String, EPISODE_TOPIC, 10)
        self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, 10)
        self.create_subscription(VRChatInput, "vrchat_input", self._on_buttons, 10)
        self._diagnostics = DiagnosticsReporter(self)
        ControlServices(self, self)
        self.create_timer(settings.report_period, self._report)
        self._recent_steps = RecentRate()
        self._new_env_errors = NewCount()
        self._period_timers = SettingTimers(self)
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )
        self._log_startup()
        self._show(self._last)

        self._loop: StepLoop | None = None
        if settings.mode == "realtime":
            self._loop = StepLoop(
                settings.rate_hz, self._tick, on_error=self._on_loop_error, name="gym-world"
            )
            self._loop.start()

    # --- Controllable -------------------------------------------------------------------

    @override
    def pause(self) -> str:
        with self._lock:
            self._paused = True
        return "world paused (not stepping)"

    @override
    def resume(self) -> str:
        with self._lock:
            self._paused = False
        return "world running"

    @override
    def status(self) -> Mapping[str, object]:
        with self._lock:
            return self._figures()

    def close(self) -> None:
        """Stops stepping, the video server and the environment."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.stop()
        if self._video is not None:
            self._video.close()
        with self._lock:
            self._world.close()
            figures = self._figures()
        self.get_logger().info(
            f"stopped after {figures['steps']} steps, {figures['episodes']} episodes "
            f"({figures['goals']} goals, {figures['env_errors']} environment errors)"
        )

    # --- stepping -----------------------------------------------------------------------

    def _tick(self) -> None:
        """Realtime mode, in the loop's thread: one step with the newest action."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if self._paused:
                shown = self._last
            else:
                fresh = self._cmd_vel is not None and now - self._cmd_vel[1] <= (
                    self.settings.cmd_vel_timeout
                )
                motion = self._cmd_vel[0] if fresh and self._cmd_vel is not None else Motion()
                shown = self._advance(Action(motion, self._take_buttons()))
        self._show(shown)

    def _advance(self, action: Action) -> WorldStep:
        """One step, its reports and, after an episode's end, the reset (under the lock)."""
        if self._needs_reset and not self._reset():
            return self._last
        step = self._world.step(action, 1.0 / self.settings.rate_hz)
        self._steps += 1
        self._episode_steps += 1
        self._episode_return += step.extrinsic_reward
        self._reward_publisher.publish(Float32(data=float(step.extrinsic_reward)))
        if step.info.get("env_error"):
            self._env_errors += 1
            self._problems.error(
                f"the environment raised in step {self._episode_steps} of episode "
                f"{self._episodes + 1}: {self._world.last_error}; resetting it"
            )
        self._last = step
        if step.episode_over:
            self._end_episode(step)
            self._needs_reset = True
            self._reset()
        return self._last

    def _end_episode(self, step: WorldStep) -> None:
        goal = bool(step.info.get("goal"))
        self._episodes += 1
        self._goals += int(goal)
        self._recent.append((self._episode_return, goal))
        summary = {
            "episode": self._episodes,
            "steps": self._episode_steps,
            "return": self._episode_return,
            "terminated": step.terminated,
            "truncated": step.truncated,
            "goal": goal,
            "env_error": bool(step.info.get("env_error")),
        }
        self._episode_publisher.publish(String(data=json.dumps(summary)))
        self.get_logger().info(
            f"episode {self._episodes} ended after {self._episode_steps} steps: return "
            f"{self._episode_return:.3f}"
            + (" (goal)" if goal else " (terminated)" if step.terminated else " (truncated)")
        )
        self._episode_steps, self._episode_return = 0, 0.0

    def _reset(self) -> bool:
        """Starts the next episode; on failure, logs it and tries again at the next step."""
        try:
            self._last = self._world.reset(seed=self.settings.seed + self._episodes)
        except Exception as error:  # the environment's fault: keep serving, try again
            self._reset_failures += 1
            self._problems.error(f"reset failed: {type(error).__name__}: {error}")
            return False
        self._needs_reset = False
        return True

    def _take_buttons(self) -> VRChatButtons:
        """The newest buttons; a jump is an edge, used by one step only."""
        buttons = self._buttons
        if buttons.jump:
            self._buttons = VRChatButtons(jump=False, run=buttons.run)
        return buttons

    def _on_loop_error(self, error: Exception) -> None:
        if not self._closed:
            self._problems.error(f"step failed: {type(error).__name__}: {error}")

    # --- ROS callbacks ------------------------------------------------------------------

    def _on_cmd_vel(self, twist: Twist) -> None:
        values = (twist.linear.x, twist.linear.y, twist.angular.z)
        if not all(math.isfinite(value) for value in values):
            self._problems.error(f"ignored cmd_vel with non-finite values {values}")
            return
        motion = Motion(forward_mps=values[0], left_mps=values[1], ccw_radps=values[2])
        with self._lock:
            self._cmd_vel = (motion, time.monotonic())
            self._actions_received += 1
            if self.settings.mode != "lockstep" or self._closed:
                return
            if self._paused:
                self._actions_ignored += 1
                return
            try:
                shown = self._advance(Action(motion, self._take_buttons()))
            except Exception as error:  # never let one step take the node down
                self._on_loop_error(error)
                return
        self._show(shown)

    def _on_buttons(self, message: VRChatInput) -> None:
        with self._lock:
            # A jump stays asked for until a step uses it; run is held as sent.
            self._buttons = VRChatButtons(jump=self._buttons.jump or message.jump, run=message.run)

    # --- output -------------------------------------------------------------------------

    def _show(self, step: WorldStep) -> None:
        """Publishes the view and the pose of ``step``."""
        stamp = self.get_clock().now().to_msg()
        if self._image_publisher is not None:
            message = Image()
            message.header.stamp = stamp
            message.header.frame_id = "camera"
            encode_image(step.frame, "rgb8").fill(message)
            self._image_publisher.publish(message)
        elif self._video is not None:
            self._video.publish(step.frame)
        if step.position is not None:
            pose = PoseStamped()
            pose.header.stamp = stamp
            pose.header.frame_id = POSE_FRAME_ID
            pose.pose.position.x, pose.pose.position.y = step.position
            yaw = step.info.get("yaw", 0.0)
            pose.pose.orientation.z = math.sin(yaw / 2.0)
            pose.pose.orientation.w = math.cos(yaw / 2.0)
            self._pose_publisher.publish(pose)

    def _open_video(self) -> None:
        settings = self.settings
        try:
            self._video = MjpegStreamServer(
                settings.video_host,
                settings.video_port,
                settings.video_path,
                settings.video_fps,
                settings.jpeg_quality,
            )
        except OSError as error:
            self._world.close()
            raise SettingsError(
                f"cannot serve video on http://{settings.video_host}:{settings.video_port} "
                f"(video_host/video_port): {error}"
            ) from error
        self._video.start()

    def _log_startup(self) -> None:
        settings, spec = self.settings, self._world.spec
        height, width = self._last.frame.shape[:2]
        where = (
            f"video stream at {self._video.url}"
            if self._video is not None
            else f"{IMAGE_TOPIC} (sensor_msgs/Image)"
        )
        pace = f"{settings.rate_hz:g} Hz" if settings.mode == "realtime" else "one per cmd_vel"
        self.get_logger().info(
            f"world {spec.name!r}: {spec.env_id} ({self._world.env.action_space}); frames "
            f"{width}x{height} on {where}; stepping {settings.mode} ({pace}); pose on "
            f"{POSE_TOPIC}, reward on {REWARD_TOPIC}, episodes on {EPISODE_TOPIC}"
        )

    def _figures(self) -> dict[str, object]:
        returns = [episode_return for episode_return, _ in self._recent]
        figures: dict[str, object] = {
            "world": self._world.spec.name,
            "env_id": self._world.spec.env_id,
            "mode": self.settings.mode,
            "paused": self._paused,
            "steps": self._steps,
            "episodes": self._episodes,
            "goals": self._goals,
            "env_errors": self._env_errors,
            "reset_failures": self._reset_failures,
            "actions_received": self._actions_received,
            "actions_ignored": self._actions_ignored,
            "episode_steps": self._episode_steps,
            "recent_mean_return": sum(returns) / len(returns) if returns else 0.0,
            "recent_goal_fraction": (
                sum(goal for _, goal in self._recent) / len(self._recent) if self._recent else 0.0
            ),
        }
        if self._last.position is not None:
            figures["x"], figures["y"] = self._last.position
        figures.update({key: value for key, value in self._last.info.items() if key != "goal"})
        return figures

    def _report(self) -> None:
        now = time.monotonic()
        with self._lock:
            figures = self._figures()
            steps = self._steps
        rate = (steps - self._report_steps) / max(now - self._report_time, 1e-9)
        self._report_time, self._report_steps = now, steps
        position = f" | x={figures['x']:.1f} y={figures['y']:.1f}" if "x" in figures else ""
        self.get_logger().info(
            f"steps={steps} ({rate:.1f}/s) | episodes={figures['episodes']} "
            f"goals={figures['goals']} env_errors={figures['env_errors']} | actions "
            f"received={figures['actions_received']}{position}"
        )

    def _apply_settings(self, new: GymWorldSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback)."""
        self.settings = new
        self._period_timers.apply(new, changed)

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics: the step rate (realtime) and new environment errors.

        No video client (mjpeg) is no problem: the world steps the same with nobody watching.
        """
        now = time.monotonic()
        with self._lock:
            figures = self._figures()
            steps, errors = self._steps, self._env_errors + self._reset_failures
        rate = self._recent_steps.add(now, steps)
        figures["step_rate_hz"] = rate
        if self._video is not None:
            figures["video_clients"] = self._video.clients
        problems = Problems()
        check_grown(problems, self._new_env_errors.since_last(errors), WARN, "environment error(s)")
        if self._paused:
            problems.add(WARN, "paused")
        elif self.settings.mode == "realtime":
            check_rate(problems, rate, self.settings.rate_hz, "stepping")
        self._diagnostics.publish(problems.level, problems.summary("running"), figures)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the Gymnasium world node until Ctrl-C."""
    run_node(GymWorldNode, args)


if __name__ == "__main__":
    main()
