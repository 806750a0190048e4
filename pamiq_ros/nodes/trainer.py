"""The trainer node: learns from the agent's experience while the agent goes on acting.

It fills buffers from the experience topic, trains continuously, checkpoints, and serves each
new version of the weights through the parameter-sync service.

Training runs in its own thread at its own pace, independent of the agent's rate. After each
trainer run that updated a model, the new weights are checked (no NaN/Inf: a bad run is rolled
back and never published) and published (:mod:`pamiq_ros.nodes._weight_sync`). The learning
itself (models, buffers, trainers) is :class:`pamiq_ros.core.learner.Learner`.
"""

import dataclasses
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pamiq_ros_interfaces.msg import Experience
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSProfile
from torch.utils.tensorboard import SummaryWriter
from typing_extensions import override

from pamiq_ros.core.actions import ACTION_SPACE_NAMES, action_sizes
from pamiq_ros.core.agent_buffers import BUFFER_SHARING
from pamiq_ros.core.checkpoint import CheckpointStore, restore
from pamiq_ros.core.experience import (
    MAX_TENSORS,
    ExperienceError,
    ExperienceRecord,
    MessageSizes,
    check_message_sizes,
    check_record,
)
from pamiq_ros.core.health import (
    PEER_ERROR_AFTER_S,
    PEER_WARN_AFTER_S,
    WARN,
    NewCount,
    Problems,
    Silence,
    check_peer_limits,
    diagnostics_period_setting,
    peer_silence_setting,
)
from pamiq_ros.core.learner import HealthReport, Learner
from pamiq_ros.core.mailbox import MailboxTimeoutError
from pamiq_ros.core.precision import PRECISIONS, resolve_device
from pamiq_ros.core.settings import require_one_of, require_positive, setting
from pamiq_ros.core.trainers import TorchTrainer, TrainResult
from pamiq_ros.core.training_loop import TrainingLoop, TrainingPace
from pamiq_ros.core.weight_store import SharedWeightStore
from pamiq_ros.core.weights import WeightsError
from pamiq_ros.io.experience_codec import message_to_record
from pamiq_ros.minds import MIND_NAMES, check_action_space
from pamiq_ros.minds.curiosity import (
    POLICY,
    PRESET_NAMES,
    RAW_REWARD,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models.autoencoder import MODEL_NAME as AUTOENCODER_MODEL
from pamiq_ros.models.autoencoder import build_autoencoder_learner
from pamiq_ros.models.forward_dynamics import MODEL_NAME as FORWARD_DYNAMICS_MODEL
from pamiq_ros.models.jepa import MODEL_NAME as JEPA_MODEL
from pamiq_ros.models.jepa import check_ema_momentum
from pamiq_ros.models.ppo import ADVANTAGES, PPOConfig
from pamiq_ros.models.temporal import MODALITIES
from pamiq_ros.models.temporal import MODEL_NAME as TEMPORAL_MODEL
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import DiagnosticsReporter, PeerWatch
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from pamiq_ros.nodes._experience_link import ExperienceReceiver
from pamiq_ros.nodes._lifecycle import AUTOSTART_DESCRIPTION, ManagedNode
from pamiq_ros.nodes._runtime import (
    SettingTimers,
    declare_settings,
    hold_memory_in_bounds,
    prepare_run_dir,
    run_node,
)
from pamiq_ros.nodes._weight_sync import WeightPublisher

STORE_SUBDIR = "trainer/checkpoints"
_MAX_LEARNING_RATE = 1e6
"""Upper bound of the learning-rate parameters: generous on purpose. A rate that makes training
diverge is a fault the trainer must survive (weights with NaN/Inf are never published), and the
tests provoke it; the bound only refuses what is surely a typo."""
SAVE_WAIT_S = 120.0
"""Longest wait of a save request for the training thread's checkpoint."""
EXPERIENCE_DEPTH = 32
"""Records the trainer's reader queues (3 s of a 10 Hz agent): with ``hold_memory_in_bounds``
a flood costs at most this many messages at once, each refused by size before any copy."""
ACTING_FIGURES = {"raw_reward": "reward", "value": "value"}
"""Record tensors averaged per report into the metrics (as ``acting/<name>``)."""

LOGGED_METRICS = (
    "acting/reward", "acting/value", "ppo/entropy", "ppo/value_loss", "ppo/approx_kl",
    "forward_dynamics/copy_ratio_h1", "jepa/effective_rank",
)  # fmt: skip
"""Metrics on the progress line besides every ``*/loss``."""

LEARNING_RATE_OF = {
    "learning_rate": AUTOENCODER_MODEL, "jepa_learning_rate": JEPA_MODEL,
    "world_learning_rate": TEMPORAL_MODEL, "forward_learning_rate": FORWARD_DYNAMICS_MODEL,
    "ppo_learning_rate": POLICY,
}  # fmt: skip
"""The model whose trainer each learning-rate parameter sets (changeable at run time)."""

RECENT_REWARDS = 1000
"""The agent's latest raw rewards the reward statistics are taken over."""

REWARD_PERCENTILES = (5, 50, 95)
"""Percentiles of the recent raw rewards reported (``reward/p05`` ...)."""


_CURIOSITY = CuriosityTraining()
_PPO = PPOConfig()
"""The curiosity mind's and PPO's own defaults: the trainer's parameters take theirs from
these, so each default has one home."""


@dataclass(frozen=True)
class TrainerSettings:
    """Parameters of the trainer node."""

    run_dir: str = setting(
        "", "This start's run folder (set by pamiq-ros launch); checkpoints and TensorBoard "
        "events go below it. Empty: runs/<time>-trainer."
    )  # fmt: skip
    resume_from: str = setting(
        "", "'latest', a run folder or a checkpoint to restore everything from; empty: fresh."
    )
    mind: str = setting(
        "curiosity", "What to learn: curiosity (JEPA, temporal encoder, forward dynamics, PPO) "
        "or autoencoder (one frame autoencoder); the agent must run the same mind."
    )  # fmt: skip
    preset: str = setting(
        "tiny", "curiosity mind: model sizes, tiny (2-core CPU), small or base (GPU)."
    )
    modalities: str = setting(
        "image", "curiosity mind: image, or image+audio (also trains the audio JEPA on the "
        "windows the agent heard); must match the agent's."
    )  # fmt: skip
    action_space: str = setting(
        "motion", "curiosity mind: motion (5 action heads) or vrchat (9 heads, with the mouse); "
        "sizes the policy and forward model; must match the agent's."
    )  # fmt: skip
    device: str = setting("cpu", "Torch device to train on: cpu or cuda[:N].")
    precision: str = setting("float32", "Compute precision: float32 or bfloat16 (autocast).")
    image_width: int = setting(
        160, "Width (pixels) of the observations experience must carry.", low=8, high=4096
    )
    image_height: int = setting(
        120, "Height (pixels) of the observations experience must carry.", low=8, high=4096
    )
    buffer_size: int = setting(
        _CURIOSITY.buffer_size,
        "Frames the replay buffer holds (the autoencoder's; the curiosity mind's JEPA frames).",
        low=1,
    )
    sequence_buffer_size: int = setting(
        _CURIOSITY.sequence_buffer_size,
        "Curiosity mind: newest steps the temporal encoder's and the forward model's buffers "
        "hold (they train on windows of consecutive steps, so the oldest go first).",
        low=1,
    )
    batch_size: int = setting(
        _CURIOSITY.batch_size,
        "Frames (autoencoder, JEPA) or steps (forward model) per step.",
        low=1,
    )
    steps_per_run: int = setting(
        _CURIOSITY.steps_per_run,
        "Gradient steps per trainer run (one published version); PPO has its own epochs.",
        low=1,
    )
    learning_rate: float = setting(
        1e-3,
        "autoencoder mind: Adam learning rate.",
        low=1e-9,
        high=_MAX_LEARNING_RATE,
        runtime=True,
    )
    min_buffer_size: int = setting(
        _CURIOSITY.min_buffer_size,
        "Samples a buffer must hold before its model trains (the forward model's: "
        "besides its held_out_steps).",
        low=1,
    )  # fmt: skip
    min_new_samples: int = setting(
        _CURIOSITY.min_new_samples, "New samples needed since a model's last run.", low=1
    )
    jepa_learning_rate: float = setting(
        _CURIOSITY.jepa_learning_rate,
        "curiosity mind: AdamW learning rate of JEPA.",
        low=1e-9,
        high=_MAX_LEARNING_RATE,
        runtime=True,
    )
    world_learning_rate: float = setting(
        _CURIOSITY.world_learning_rate,
        "curiosity mind: Adam learning rate of the temporal encoder.",
        low=1e-9,
        high=_MAX_LEARNING_RATE,
        runtime=True,
    )
    forward_learning_rate: float = setting(
        _CURIOSITY.forward_learning_rate,
        "curiosity mind: Adam learning rate of the forward model (PAMIQ's 1e-4).",
        low=1e-9,
        high=_MAX_LEARNING_RATE,
        runtime=True,
    )
    forward_steps_per_run: int = setting(
        _CURIOSITY.forward_steps_per_run,
        "curiosity mind: gradient steps per forward-model run (cheap ones; the reward is "
        "only as good as the forward model).",
        low=1,
    )  # fmt: skip
    frame_survival_steps: int = setting(
        _CURIOSITY.frame_survival_steps,
        "curiosity mind: agent steps a frame survives on average in the JEPA frames "
        "buffer once full (random replacement, p = buffer_size / this); 432000 = 12 h at "
        "10 Hz, as PAMIQ; buffer_size replaces on every frame."
    )  # fmt: skip
    jepa_ema_momentum: float = setting(
        _CURIOSITY.jepa_ema_momentum,
        "curiosity mind: fixed EMA momentum of the JEPA target encoder, in [0, 1) "
        "(1 would freeze the perception of a never-ending learner).",
        low=0.0, high=1.0,
    )  # fmt: skip
    held_out_steps: int = setting(
        _CURIOSITY.held_out_steps,
        "curiosity mind: newest forward-model steps kept out of training, to measure "
        "its error against copying on steps it has not learned from.",
        low=1,
    )  # fmt: skip
    buffer_sharing: str = setting(
        _CURIOSITY.buffer_sharing, "curiosity mind: shared (one buffer of each kind for all "
        "agents; each agent's steps handed out together) or per_agent (each agent's own, as "
        "large; each run draws one agent, in proportion to the samples it holds)."
    )  # fmt: skip
    normalize_rewards: bool = setting(
        _CURIOSITY.normalize_rewards,
        "curiosity mind: PPO learns from rewards centred and scaled by their running "
        "moments; false: the raw rewards, as PAMIQ."
    )  # fmt: skip
    sequence_length: int = setting(
        _CURIOSITY.sequence_length, "curiosity mind: steps per temporal-encoder window.", low=1
    )
    policy_buffer_size: int = setting(
        _CURIOSITY.policy_buffer_size,
        "curiosity mind: steps PPO's buffer keeps (recent behaviour only).",
        low=1,
    )
    ppo_learning_rate: float = setting(
        _PPO.lr, "PPO: Adam learning rate.", low=1e-9, high=_MAX_LEARNING_RATE, runtime=True
    )
    ppo_gamma: float = setting(_PPO.gamma, "PPO: discount of future rewards.", low=0.0, high=1.0)
    ppo_gae_lambda: float = setting(_PPO.lam, "PPO: GAE lambda.", low=0.0, high=1.0)
    ppo_clip: float = setting(_PPO.clip, "PPO: clip range of the probability ratio.")
    ppo_value_coef: float = setting(_PPO.value_coef, "PPO: weight of the value loss.")
    ppo_entropy_coef: float = setting(_PPO.entropy_coef, "PPO: weight of the entropy bonus.")
    ppo_epochs: int = setting(_PPO.epochs, "PPO: passes over each run's sequences.", low=1)
    ppo_sequence_length: int = setting(
        _PPO.sequence_length, "PPO: steps per sequence (truncated BPTT).", low=1
    )
    ppo_sequences_per_run: int = setting(
        _PPO.sequences_per_run, "PPO: sequences drawn per run.", low=1
    )
    ppo_minibatch: int = setting(_PPO.minibatch, "PPO: sequences per optimizer step.", low=1)
    ppo_min_new_samples: int = setting(
        _CURIOSITY.ppo_min_new_samples, "PPO: new steps needed between runs.", low=1
    )
    ppo_advantage: str = setting(
        _PPO.advantage,
        "PPO: advantage estimate, gae (discounted, bootstrapped) or one_step (PAMIQ's: "
        "reward minus value)."
    )  # fmt: skip
    health_period_runs: int = setting(
        20, "Trainer runs between health measurements (forward model against copying, JEPA "
        "collapse and drift); 0: never.",
        low=0, runtime=True,
    )  # fmt: skip
    min_run_interval: float = setting(
        0.0,
        "Seconds to rest after each run, leaving CPU to acting; 0 trains flat out.",
        low=0.0,
        high=3600.0,
        runtime=True,
    )
    torch_threads: int = setting(
        1,
        "CPU threads for training; keep below the core count so acting keeps its rate.",
        low=1,
        high=256,
    )
    niceness: int = setting(
        10, "Added to the trainer's CPU niceness (0..19): when cores are short, acting and "
        "sensing get the CPU first and training takes what is left; 0 leaves it.",
        low=0, high=19,
    )  # fmt: skip
    checkpoint_period: float = setting(
        60.0, "Seconds between periodic checkpoints.", low=1.0, high=86400.0, runtime=True
    )
    keep_checkpoints: int = setting(3, "Newest complete checkpoints kept in the run folder.", low=1)
    seed: int = setting(
        0, "Seed of the models' initial weights and of sampling.", low=0, high=2**31 - 1
    )
    report_period: float = setting(
        5.0,
        "Seconds between progress lines in the log (and TensorBoard figures).",
        low=0.05,
        high=3600.0,
        runtime=True,
    )
    diagnostics_period: float = diagnostics_period_setting()
    agent_node: str = setting(
        "agent", "The agent whose heartbeat and experience are watched (its node name, relative "
        "to this namespace, or fully qualified)."
    )  # fmt: skip
    peer_warn_after: float = peer_silence_setting(
        PEER_WARN_AFTER_S, "the agent's heartbeat or experience", "WARN"
    )
    peer_error_after: float = peer_silence_setting(
        PEER_ERROR_AFTER_S, "the agent's heartbeat or experience", "ERROR"
    )
    autostart: bool = setting(True, AUTOSTART_DESCRIPTION)

    def __post_init__(self) -> None:
        check_peer_limits(self.peer_warn_after, self.peer_error_after)
        require_positive(
            self, "image_width", "image_height", "buffer_size", "batch_size", "steps_per_run",
            "learning_rate", "min_buffer_size", "min_new_samples", "torch_threads",
            "checkpoint_period", "keep_checkpoints", "report_period", "jepa_learning_rate",
            "world_learning_rate", "sequence_length", "policy_buffer_size", "ppo_min_new_samples",
            "forward_learning_rate", "forward_steps_per_run", "frame_survival_steps",
            "held_out_steps", "sequence_buffer_size",
        )  # fmt: skip
        require_one_of(
            self, mind=MIND_NAMES, preset=PRESET_NAMES, precision=tuple(PRECISIONS),
            modalities=MODALITIES, buffer_sharing=BUFFER_SHARING, action_space=ACTION_SPACE_NAMES,
            ppo_advantage=ADVANTAGES,
        )  # fmt: skip
        check_action_space(self.mind, self.action_space)
        self.ppo_config()  # PPOConfig checks its own ranges
        check_ema_momentum(self.jepa_ema_momentum)
        if self.health_period_runs < 0:
            raise ValueError(f"health_period_runs must be >= 0, got {self.health_period_runs}")
        if not 0 <= self.niceness <= 19:
            raise ValueError(f"niceness must be in 0..19, got {self.niceness}")
        if not (math.isfinite(self.min_run_interval) and self.min_run_interval >= 0):
            raise ValueError(f"min_run_interval must be >= 0, got {self.min_run_interval}")

    def ppo_config(self) -> PPOConfig:
        """PPO's hyperparameters from these settings.

        Raises:
            ValueError: If one is out of range.
        """
        return PPOConfig(
            gamma=self.ppo_gamma, lam=self.ppo_gae_lambda, clip=self.ppo_clip,
            value_coef=self.ppo_value_coef, entropy_coef=self.ppo_entropy_coef,
            epochs=self.ppo_epochs, minibatch=self.ppo_minibatch, lr=self.ppo_learning_rate,
            sequence_length=self.ppo_sequence_length,
            sequences_per_run=self.ppo_sequences_per_run, advantage=self.ppo_advantage,
        )  # fmt: skip


class TrainerNode(ManagedNode, Controllable):
    """Wires a :class:`TrainingLoop` to ROS: experience in, weights, metrics and status out."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("trainer", **node_options)
        self.settings = declare_settings(self, TrainerSettings, self._apply_settings)
        settings = self.settings
        torch.manual_seed(settings.seed)
        # Threads started from here on (training, weight sync) inherit the niceness.
        os.nice(settings.niceness)
        self._run_dir = prepare_run_dir(settings.run_dir, "trainer")
        self._training: TrainingLoop | None = None
        self._store = CheckpointStore(
            self._run_dir / STORE_SUBDIR, keep_last=settings.keep_checkpoints
        )
        self._lock = threading.Lock()
        self._received = 0
        self._experience_silence = Silence(
            time.monotonic(), settings.peer_warn_after, settings.peer_error_after
        )
        self._publish_failures = 0
        self._new_refused = NewCount()
        self._new_publish_failures = NewCount()
        self._rejected = 0
        self._callback_errors = 0
        self._lag_sum = 0
        self._lag_count = 0
        self._last_metrics: dict[str, float] = {}
        self._last_sync_ms = math.nan
        self._report_time = time.monotonic()
        self._report_runs = 0
        # The agent's reward and value as they arrive: [sum, count] since the last report.
        self._acting_figures = {name: [0.0, 0] for name in ACTING_FIGURES}
        self._acting_means: dict[str, float] = {}
        self._recent_rewards: deque[float] = deque(maxlen=RECENT_REWARDS)
        # The learner's health figures (forward model against copying, JEPA collapse and
        # drift), measured in the training thread every health_period_runs runs.
        self._health: dict[str, float] = {}
        self._health_errors: dict[str, str] = {}

        self._weight_store = SharedWeightStore()
        self._publisher = WeightPublisher(self, self._weight_store)
        self._metrics = SummaryWriter(log_dir=str(self._run_dir / "trainer" / "tensorboard"))
        self._diagnostics = DiagnosticsReporter(self)
        self._experience_receiver = ExperienceReceiver(self)  # repeats dropped, arrivals acked
        self.create_subscription(
            Experience,
            EXPERIENCE_TOPIC,
            self._on_experience,
            QoSProfile(
                reliability=EXPERIENCE_QOS.reliability,
                history=EXPERIENCE_QOS.history,
                depth=EXPERIENCE_DEPTH,
            ),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        ControlServices(self, self)
        self._period_timers = SettingTimers(self)
        self._period_timers.add("report_period", settings.report_period, self._report)
        self._agent_watch = PeerWatch(
            self, settings.agent_node, settings.peer_warn_after, settings.peer_error_after
        )
        self._period_timers.add(
            "diagnostics_period", settings.diagnostics_period, self._publish_diagnostics
        )

        self.bring_up(settings.autostart)

    # --- lifecycle ----------------------------------------------------------------------------

    @override
    def configure(self) -> None:
        """Builds the learner (models, buffers, trainers), restoring ``resume_from``."""
        settings = self.settings
        learner = build_learner(settings)
        if settings.resume_from:
            self._restore(learner, settings.resume_from)
        self._training = TrainingLoop(
            learner,
            TrainingPace(
                settings.checkpoint_period, settings.min_run_interval,
                settings.health_period_runs,
            ),
            publish=self._publish,
            write_checkpoint=self._checkpoint,
            on_run=self._note_run,
            on_health=self._note_health,
            on_problem=self._log_problem,
            torch_threads=settings.torch_threads,
        )  # fmt: skip
        self.get_logger().info(
            f"configured: {', '.join(learner.models)}, run folder {self._run_dir}"
        )

    @override
    def activate(self) -> None:
        """Publishes the weights and trains (or resumes training after a deactivate)."""
        training = self._configured()
        if training.running:
            training.resume()
            return
        training.start()
        self.get_logger().info(
            f"training {', '.join(training.learner.models)} from {EXPERIENCE_TOPIC}; weights "
            "on weights/announce + weights/get"
        )

    @override
    def deactivate(self) -> None:
        """Pauses training (experience is still taken into the buffers)."""
        self._configured().pause()

    @override
    def cleanup(self) -> None:
        """Stops the training thread, writes a checkpoint and drops the learner."""
        training = self._configured()
        training.stop()
        training.checkpoint("cleanup")
        self._training = None

    def _configured(self) -> TrainingLoop:
        """The training loop.

        Raises:
            RuntimeError: If the node is not configured (lifecycle).
        """
        if self._training is None:
            raise RuntimeError(
                "the trainer is not configured (ros2 lifecycle set trainer configure)"
            )
        return self._training

    def _apply_settings(self, new: TrainerSettings, changed: frozenset[str]) -> None:
        """Puts run-time parameter changes to use (a parameter callback; ValueError refuses)."""
        training = self._training  # unconfigured: the next configure builds from the settings
        trainers = training.learner.trainers if training is not None else ()
        for name in changed & set(LEARNING_RATE_OF):
            for trainer in trainers:
                if (
                    isinstance(trainer, TorchTrainer)
                    and trainer.model_name == LEARNING_RATE_OF[name]
                ):
                    trainer.set_learning_rate(getattr(new, name))
        if changed & {"peer_warn_after", "peer_error_after"}:
            self._agent_watch.set_limits(new.peer_warn_after, new.peer_error_after)
            self._experience_silence.set_limits(new.peer_warn_after, new.peer_error_after)
        self._period_timers.apply(new, changed)
        if training is not None:
            pace = training.pace
            pace.checkpoint_period = new.checkpoint_period
            pace.min_run_interval = new.min_run_interval
            pace.health_period_runs = new.health_period_runs
        self.settings = new
        self.get_logger().info(
            "parameters changed: "
            + ", ".join(f"{name}={getattr(new, name)}" for name in sorted(changed))
        )

    # --- experience -------------------------------------------------------------------------

    def _on_experience(self, message: Experience) -> None:
        """Checks sizes before anything is copied, then the record; nothing here may raise."""
        settings = self.settings
        image_shape = (settings.image_height, settings.image_width, 3)
        training = self._training
        if training is None:
            return  # unconfigured: no buffers to fill
        try:
            if not self._experience_receiver.is_new(message):
                return
            sizes = action_sizes(settings.action_space)
            check_message_sizes(_declared_sizes(message), image_shape, sizes)
            record = message_to_record(message)
            check_record(record, image_shape, sizes, scalars=tuple(ACTING_FIGURES))
            training.learner.add(record, str(message.agent_id))
            self._count_accepted(record, training.published)
        except (ExperienceError, ValueError, KeyError) as error:
            with self._lock:
                self._rejected += 1
            self.get_logger().warning(f"experience refused: {error}", throttle_duration_sec=2.0)
        except Exception as error:  # a bug must not end the node: say what, count it
            with self._lock:
                self._rejected += 1
                self._callback_errors += 1
            self.get_logger().error(
                f"experience callback failed: {type(error).__name__}: {error}",
                throttle_duration_sec=2.0,
            )

    def _count_accepted(self, record: ExperienceRecord, versions: Mapping[str, int]) -> None:
        with self._lock:
            self._received += 1
            self._experience_silence.heard(time.monotonic())
            for name, sums in self._acting_figures.items():
                if name in record.tensors:
                    sums[0] += float(record.tensors[name])
                    sums[1] += 1
            if RAW_REWARD in record.tensors:
                self._recent_rewards.append(float(record.tensors[RAW_REWARD]))
            published = versions.get(record.model_name)
            if published is not None:
                # Policy lag: how many versions behind the trainer's newest the step acted.
                self._lag_sum += max(0, published - record.weight_version)
                self._lag_count += 1

    # --- called by the training loop, on its thread -----------------------------------------

    def _log_problem(self, message: str) -> None:
        self.get_logger().error(message, throttle_duration_sec=5.0)

    def _note_run(self, result: TrainResult, runs: int) -> None:
        with self._lock:
            self._last_metrics.update(result.metrics)
        for name, value in result.metrics.items():
            self._metrics.add_scalar(name, value, runs)
        self._metrics.add_scalar(f"runs/{result.trainer}_duration_s", result.duration_s, runs)

    def _note_health(self, report: HealthReport, runs: int) -> None:
        for name, value in report.figures.items():
            self._metrics.add_scalar(name, value, runs)
        for trainer, error in report.errors.items():
            self.get_logger().warning(
                f"health figures of {trainer} failed: {error}", throttle_duration_sec=60.0
            )
        with self._lock:
            self._health.update(report.figures)
            self._health_errors = dict(report.errors)

    def _publish(self, model: str, version: int, weights: Mapping[str, torch.Tensor]) -> bool:
        started = time.perf_counter()
        try:
            self._publisher.publish(model, version, weights)
        except WeightsError as error:
            with self._lock:
                self._publish_failures += 1
            self.get_logger().error(f"{model} version {version} not published: {error}")
            return False
        with self._lock:
            self._last_sync_ms = (time.perf_counter() - started) * 1000
        return True

    # --- checkpoints -------------------------------------------------------------------------

    def _checkpoint(self, reason: str) -> Path:
        started = time.perf_counter()
        path = self._store.save(self._configured().learner.save_state, label=reason)
        self.get_logger().info(
            f"checkpoint {path} ({reason}, {(time.perf_counter() - started) * 1000:.0f} ms)"
        )
        return path

    def _restore(self, learner: Learner, reference: str) -> None:
        """Restores everything from a checkpoint (``resume_from``), before training starts."""
        logger = self.get_logger()
        used = restore(
            reference, self._run_dir.parent, STORE_SUBDIR, learner.load_state, logger.error
        )
        if used is None:
            logger.error("starting fresh")
            return
        logger.info(
            f"restored from {used}: versions {learner.versions}, buffers {learner.buffer_sizes()}"
        )

    # --- control -----------------------------------------------------------------------------

    @override
    def pause(self) -> str:
        self._configured().pause()
        return "training paused"

    @override
    def resume(self) -> str:
        if not self.active:
            raise RuntimeError("the trainer is not active (ros2 lifecycle set trainer activate)")
        self._configured().resume()
        return "training resumed"

    @override
    def save(self) -> str:
        try:
            return f"checkpoint {self._configured().checkpoint('requested', SAVE_WAIT_S)}"
        except MailboxTimeoutError:
            return f"checkpoint still being written after {SAVE_WAIT_S:g} s"

    @override
    def status(self) -> Mapping[str, object]:
        training = self._training
        if training is None:
            return {"lifecycle": "unconfigured", "agent_silent_s": self._agent_watch.silent_s()}
        with self._lock:
            return {
                "lifecycle": "active" if self.active else "inactive",
                "paused": training.paused,
                "runs": training.runs,
                "experience_received": self._received,
                "experience_rejected": self._rejected,
                "experience_per_agent": self._experience_receiver.per_agent(),
                "callback_errors": self._callback_errors,
                "buffers": training.learner.buffer_sizes(),
                "buffers_per_agent": training.learner.agent_buffer_sizes(),
                "published_versions": dict(training.published),
                "refused_versions": training.refused_versions,
                "checkpoints_written": training.checkpoints_written,
                "publish_failures": self._publish_failures,
                "experience_silent_s": self._experience_silence.seconds(time.monotonic()),
                "agent_silent_s": self._agent_watch.silent_s(),
                "policy_lag_mean": self._lag_sum / self._lag_count if self._lag_count else 0.0,
                "run_dir": str(self._run_dir),
                **self._last_metrics,
                **self._acting_means,
                **self._health,
                **({"health_errors": dict(self._health_errors)} if self._health_errors else {}),
            }

    def _report(self) -> None:
        now = time.monotonic()
        status = dict(self.status())
        training = self._training
        if training is None:
            return
        buffers = training.learner.buffer_sizes()
        runs = training.runs
        paused = training.paused
        published = dict(training.published)
        with self._lock:
            runs_per_s = (runs - self._report_runs) / max(now - self._report_time, 1e-9)
            self._report_runs, self._report_time = runs, now
            sync_ms = self._last_sync_ms
            metrics = dict(self._last_metrics)
            for name, sums in self._acting_figures.items():
                if sums[1]:
                    self._acting_means[f"acting/{ACTING_FIGURES[name]}"] = sums[0] / sums[1]
                sums[0], sums[1] = 0.0, 0
            self._acting_means.update(reward_statistics(self._recent_rewards))
            acting = dict(self._acting_means)
            health = dict(self._health)
        metrics.update(acting)
        metrics.update(health)
        for name, value in acting.items():
            self._metrics.add_scalar(name, value, runs)
        losses = " ".join(
            f"{name}={value:.4f}" for name, value in sorted(metrics.items()) if _shown(name)
        )
        self.get_logger().info(
            f"runs={runs} ({runs_per_s:.1f}/s) | {losses or 'no run yet'} | buffers "
            + " ".join(f"{name}={size}" for name, size in buffers.items())
            + f" | experience received={status['experience_received']} "
            f"rejected={status['experience_rejected']} | published "
            + " ".join(f"{name}=v{version}" for name, version in published.items())
            + f" (last publish {sync_ms:.0f} ms, policy lag {status['policy_lag_mean']:.2f})"
            + (" | PAUSED" if paused else "")
        )
        for name, size in buffers.items():
            self._metrics.add_scalar(f"buffers/{name}", size, runs)
        self._metrics.add_scalar("runs/per_second", runs_per_s, runs)
        self._metrics.add_scalar("sync/publish_ms", sync_ms, runs)
        self._metrics.add_scalar("sync/policy_lag_mean", float(status["policy_lag_mean"]), runs)  # type: ignore[arg-type]

    def _publish_diagnostics(self) -> None:
        """The status on /diagnostics, its level from what was measured since the last one."""
        status = dict(self.status())
        report = Problems()
        if self._training is None:
            report.add(WARN, "unconfigured (lifecycle): not training")
            self._agent_watch.check(report)
            self._diagnostics.publish(report.level, report.summary(""), status)
            return
        if status["paused"]:
            report.add(WARN, "paused" if self.active else "inactive (lifecycle): not training")
        else:
            if not status["runs"]:
                report.add(WARN, "no trainer run yet (waiting for experience)")
            self._experience_silence.check(report, time.monotonic(), "the agent (experience)")
        self._agent_watch.check(report)
        refused = self._new_refused.since_last(int(status["refused_versions"]))  # type: ignore[call-overload]
        if refused:
            report.add(WARN, f"{refused} version(s) refused (NaN/Inf or not publishable)")
        failures = self._new_publish_failures.since_last(int(status["publish_failures"]))  # type: ignore[call-overload]
        if failures:
            report.add(WARN, f"{failures} weight publish error(s)")
        self._diagnostics.publish(
            report.level, report.summary(f"training: {status['runs']} runs"), status
        )

    def close(self) -> None:
        """Stops training, writes a last checkpoint and removes the shared-memory weights."""
        training = self._training
        if training is not None:
            training.stop()
            try:
                training.checkpoint("shutdown")
            except Exception as error:
                self.get_logger().error(f"checkpoint on shutdown failed: {error}")
        self._metrics.close()
        self._publisher.close()
        self._weight_store.close()


def _declared_sizes(message: Experience) -> MessageSizes:
    """What the message declares, from lengths only (no copy of its arrays)."""
    image = message.observation
    return MessageSizes(
        encoding=str(image.encoding),
        height=int(image.height),
        width=int(image.width),
        step=int(image.step),
        data_bytes=len(image.data),
        action_length=len(message.action),
        tensor_sizes=[
            (len(tensor.name), _short_shape(tensor.shape), len(tensor.data))
            for tensor in message.tensors[: MAX_TENSORS + 1]
        ],
        model_name_length=len(message.model_name),
    )


def _short_shape(shape: Sequence[int]) -> list[int]:
    """A declared shape to check; one of more than 4 sides is not copied (it is refused)."""
    return [int(side) for side in shape] if len(shape) <= 4 else [0] * 5


def reward_statistics(rewards: Sequence[float] | deque[float]) -> dict[str, float]:
    """Mean, standard deviation and percentiles of the agent's recent raw rewards.

    Empty when there are none. Keys ``reward/mean``, ``reward/std``, ``reward/p05`` ...
    """
    if not rewards:
        return {}
    values = np.asarray(rewards, dtype=np.float64)
    figures = {"reward/mean": float(values.mean()), "reward/std": float(values.std())}
    for percentile, value in zip(
        REWARD_PERCENTILES, np.percentile(values, REWARD_PERCENTILES), strict=True
    ):
        figures[f"reward/p{percentile:02d}"] = float(value)
    return figures


def _shown(metric: str) -> bool:
    """Whether a metric goes on the progress line (all of them go to TensorBoard)."""
    return metric.endswith("/loss") or metric in LOGGED_METRICS


def build_learner(settings: TrainerSettings) -> Learner:
    """The learner of the mind the settings name (:data:`LEARNERS`).

    Raises:
        ValueError: If the device is not usable or a number is out of range.
    """
    return LEARNERS[settings.mind](settings)


def _autoencoder_learner(settings: TrainerSettings) -> Learner:
    resolve_device(settings.device, settings.precision)  # the autoencoder trains on the CPU
    return build_autoencoder_learner(
        buffer_size=settings.buffer_size,
        batch_size=settings.batch_size,
        steps_per_run=settings.steps_per_run,
        learning_rate=settings.learning_rate,
        min_buffer_size=settings.min_buffer_size,
        min_new_samples=settings.min_new_samples,
        seed=settings.seed,
    )


def curiosity_training(settings: TrainerSettings) -> CuriosityTraining:
    """How the curiosity models are trained under these settings.

    Every :class:`CuriosityTraining` field that is also a trainer parameter takes that
    parameter's value (the same name on both sides), PPO's from :meth:`TrainerSettings.ppo_config`;
    the rest keep the mind's defaults. The curiosity benchmark builds its training from here too
    (``--trainer-param``), so the stack and the benchmark train alike.
    """
    shared = {name: getattr(settings, name) for name in _SHARED_TRAINING_FIELDS}
    return CuriosityTraining(**shared, ppo_config=settings.ppo_config())


_SHARED_TRAINING_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(CuriosityTraining)
    if field.name in {setting.name for setting in dataclasses.fields(TrainerSettings)}
)

CURIOSITY_TRAINING_PARAMETERS = _SHARED_TRAINING_FIELDS + tuple(
    field.name
    for field in dataclasses.fields(TrainerSettings)
    if field.name.startswith("ppo_") and field.name not in _SHARED_TRAINING_FIELDS
)
"""The trainer parameters that change how the curiosity models are trained
(:func:`curiosity_training`)."""


def _curiosity_learner(settings: TrainerSettings) -> Learner:
    device, dtype = resolve_device(settings.device, settings.precision)
    return build_curiosity_learner(
        settings.preset, settings.seed, device, dtype, curiosity_training(settings),
        settings.modalities, settings.action_space,
    )  # fmt: skip


LEARNERS: dict[str, Callable[[TrainerSettings], Learner]] = {
    "curiosity": _curiosity_learner,
    "autoencoder": _autoencoder_learner,
}
"""The trainer's side of each mind, by name (the agent's side: ``pamiq_ros.minds.registry``)."""
assert tuple(LEARNERS) == MIND_NAMES, "every mind name has its learner"


def main(args: Sequence[str] | None = None) -> None:
    """Runs the trainer node until Ctrl-C."""
    hold_memory_in_bounds()
    run_node(TrainerNode, args)


if __name__ == "__main__":
    main()
