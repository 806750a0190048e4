"""The trainer node: learns from the agent's experience while the agent goes on acting.

It fills buffers from the experience topic, trains continuously, checkpoints, and serves each
new version of the weights through the parameter-sync service.

Training runs in its own thread at its own pace, independent of the agent's rate. After each
trainer run that updated a model, the new weights are checked (no NaN/Inf: a bad run is rolled
back and never published) and published (:mod:`pamiq_ros.nodes._weight_sync`). The learning
itself (models, buffers, trainers) is :class:`pamiq_ros.core.learner.Learner`.
"""

import math
import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pamiq_ros_interfaces.msg import Experience
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile
from torch.utils.tensorboard import SummaryWriter
from typing_extensions import override

from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.checkpoint import CheckpointStore, resume
from pamiq_ros.core.experience import (
    MAX_TENSORS,
    ExperienceError,
    ExperienceRecord,
    MessageSizes,
    check_message_sizes,
    check_record,
)
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.precision import PRECISIONS, resolve_device
from pamiq_ros.core.settings import require_one_of, require_positive, setting
from pamiq_ros.core.trainers import TrainResult
from pamiq_ros.core.weight_store import SharedWeightStore
from pamiq_ros.core.weights import WeightsError
from pamiq_ros.io.experience_codec import message_to_record
from pamiq_ros.minds import MIND_NAMES
from pamiq_ros.minds.curiosity import (
    PRESET_NAMES,
    RAW_REWARD,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models.autoencoder import build_autoencoder_learner
from pamiq_ros.models.jepa import check_ema_momentum
from pamiq_ros.models.ppo import ADVANTAGES, PPOConfig
from pamiq_ros.nodes._control import Controllable, ControlServices
from pamiq_ros.nodes._diagnostics import OK, WARN, DiagnosticsReporter
from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
from pamiq_ros.nodes._runtime import (
    declare_settings,
    hold_memory_in_bounds,
    prepare_run_dir,
    run_node,
)
from pamiq_ros.nodes._weight_sync import WeightPublisher

STORE_SUBDIR = "trainer/checkpoints"
IDLE_WAIT_S = 0.05
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

RECENT_REWARDS = 1000
"""The agent's latest raw rewards the reward statistics are taken over."""

REWARD_PERCENTILES = (5, 50, 95)
"""Percentiles of the recent raw rewards reported (``reward/p05`` ...)."""


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
    device: str = setting("cpu", "Torch device to train on: cpu or cuda[:N].")
    precision: str = setting("float32", "Compute precision: float32 or bfloat16 (autocast).")
    image_width: int = setting(160, "Width (pixels) of the observations experience must carry.")
    image_height: int = setting(120, "Height (pixels) of the observations experience must carry.")
    buffer_size: int = setting(
        2000, "Steps each replay buffer holds (frames; the world models' sequences)."
    )
    batch_size: int = setting(32, "Frames (autoencoder, JEPA) or steps (forward model) per step.")
    steps_per_run: int = setting(
        2, "Gradient steps per trainer run (one published version); PPO has its own epochs."
    )
    learning_rate: float = setting(1e-3, "autoencoder mind: Adam learning rate.")
    min_buffer_size: int = setting(
        64, "Samples a buffer must hold before its model trains (the forward model's: "
        "besides its held_out_steps)."
    )  # fmt: skip
    min_new_samples: int = setting(8, "New samples needed since a model's last run.")
    jepa_learning_rate: float = setting(5e-4, "curiosity mind: AdamW learning rate of JEPA.")
    world_learning_rate: float = setting(
        3e-4, "curiosity mind: Adam learning rate of the temporal encoder."
    )
    forward_learning_rate: float = setting(
        1e-4, "curiosity mind: Adam learning rate of the forward model (PAMIQ's 1e-4)."
    )
    forward_steps_per_run: int = setting(
        8, "curiosity mind: gradient steps per forward-model run (cheap ones; the reward is "
        "only as good as the forward model)."
    )  # fmt: skip
    frame_survival_steps: int = setting(
        432_000, "curiosity mind: agent steps a frame survives on average in the JEPA frames "
        "buffer once full (random replacement, p = buffer_size / this); 432000 = 12 h at "
        "10 Hz, as PAMIQ; buffer_size replaces on every frame."
    )  # fmt: skip
    jepa_ema_momentum: float = setting(
        0.996, "curiosity mind: fixed EMA momentum of the JEPA target encoder, in [0, 1) "
        "(1 would freeze the perception of a never-ending learner)."
    )  # fmt: skip
    held_out_steps: int = setting(
        200, "curiosity mind: newest forward-model steps kept out of training, to measure "
        "its error against copying on steps it has not learned from."
    )  # fmt: skip
    normalize_rewards: bool = setting(
        True, "curiosity mind: PPO learns from rewards centred and scaled by their running "
        "moments; false: the raw rewards, as PAMIQ."
    )  # fmt: skip
    sequence_length: int = setting(16, "curiosity mind: steps per temporal-encoder window.")
    policy_buffer_size: int = setting(
        256, "curiosity mind: steps PPO's buffer keeps (recent behaviour only)."
    )
    ppo_learning_rate: float = setting(3e-4, "PPO: Adam learning rate.")
    ppo_gamma: float = setting(0.99, "PPO: discount of future rewards.")
    ppo_gae_lambda: float = setting(0.95, "PPO: GAE lambda.")
    ppo_clip: float = setting(0.2, "PPO: clip range of the probability ratio.")
    ppo_value_coef: float = setting(0.5, "PPO: weight of the value loss.")
    ppo_entropy_coef: float = setting(0.01, "PPO: weight of the entropy bonus.")
    ppo_epochs: int = setting(4, "PPO: passes over each run's sequences.")
    ppo_sequence_length: int = setting(16, "PPO: steps per sequence (truncated BPTT).")
    ppo_sequences_per_run: int = setting(16, "PPO: sequences drawn per run.")
    ppo_minibatch: int = setting(8, "PPO: sequences per optimizer step.")
    ppo_min_new_samples: int = setting(64, "PPO: new steps needed between runs.")
    ppo_advantage: str = setting(
        "gae", "PPO: advantage estimate, gae (discounted, bootstrapped) or one_step (PAMIQ's: "
        "reward minus value)."
    )  # fmt: skip
    health_period_runs: int = setting(
        20, "Trainer runs between health measurements (forward model against copying, JEPA "
        "collapse and drift); 0: never."
    )  # fmt: skip
    min_run_interval: float = setting(
        0.0, "Seconds to rest after each run, leaving CPU to acting; 0 trains flat out."
    )
    torch_threads: int = setting(
        1, "CPU threads for training; keep below the core count so acting keeps its rate."
    )
    niceness: int = setting(
        10, "Added to the trainer's CPU niceness (0..19): when cores are short, acting and "
        "sensing get the CPU first and training takes what is left; 0 leaves it."
    )  # fmt: skip
    checkpoint_period: float = setting(60.0, "Seconds between periodic checkpoints.")
    keep_checkpoints: int = setting(3, "Newest complete checkpoints kept in the run folder.")
    seed: int = setting(0, "Seed of the models' initial weights and of sampling.")
    report_period: float = setting(5.0, "Seconds between progress reports (log, /diagnostics).")

    def __post_init__(self) -> None:
        require_positive(
            self, "image_width", "image_height", "buffer_size", "batch_size", "steps_per_run",
            "learning_rate", "min_buffer_size", "min_new_samples", "torch_threads",
            "checkpoint_period", "keep_checkpoints", "report_period", "jepa_learning_rate",
            "world_learning_rate", "sequence_length", "policy_buffer_size", "ppo_min_new_samples",
            "forward_learning_rate", "forward_steps_per_run", "frame_survival_steps",
            "held_out_steps",
        )  # fmt: skip
        require_one_of(
            self, mind=MIND_NAMES, preset=PRESET_NAMES, precision=tuple(PRECISIONS),
            ppo_advantage=ADVANTAGES,
        )  # fmt: skip
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


class TrainerNode(Node, Controllable):
    """Learns from the agent's experience in a thread of its own and publishes the weights."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("trainer", **node_options)
        self.settings = declare_settings(self, TrainerSettings)
        settings = self.settings
        torch.manual_seed(settings.seed)
        # Threads started from here on (training, weight sync) inherit the niceness.
        os.nice(settings.niceness)
        self._run_dir = prepare_run_dir(settings.run_dir, "trainer")
        self._learner = build_learner(settings)
        self._store = CheckpointStore(
            self._run_dir / STORE_SUBDIR, keep_last=settings.keep_checkpoints
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._save_requests: list[tuple[str, threading.Event, list[str]]] = []
        self._received = 0
        self._rejected = 0
        self._callback_errors = 0
        self._runs = 0
        self._published: dict[str, int] = {}
        self._refused_versions = 0
        self._lag_sum = 0
        self._lag_count = 0
        self._last_metrics: dict[str, float] = {}
        self._last_sync_ms = math.nan
        self._report_time = time.monotonic()
        self._report_runs = 0
        self._checkpoints_written = 0
        # The agent's reward and value as they arrive: [sum, count] since the last report.
        self._acting_figures = {name: [0.0, 0] for name in ACTING_FIGURES}
        self._acting_means: dict[str, float] = {}
        self._recent_rewards: deque[float] = deque(maxlen=RECENT_REWARDS)
        # The learner's health figures (forward model against copying, JEPA collapse and
        # drift), measured in the training thread every health_period_runs runs.
        self._health: dict[str, float] = {}
        self._health_errors: dict[str, str] = {}

        if settings.resume_from:
            self._resume(settings.resume_from)
        self._last_good = {name: self._learner.weights(name) for name in self._learner.models}

        self._weight_store = SharedWeightStore()
        self._publisher = WeightPublisher(self, self._weight_store)
        self._metrics = SummaryWriter(log_dir=str(self._run_dir / "trainer" / "tensorboard"))
        self._diagnostics = DiagnosticsReporter(self)
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
        self.create_timer(settings.report_period, self._report)

        # The agent acts with these from the start (a resumed version, or the initial weights).
        for name, version in self._learner.versions.items():
            self._publish(name, version, self._last_good[name])
        self._thread = threading.Thread(target=self._train_loop, name="training", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"training {', '.join(self._learner.models)} from {EXPERIENCE_TOPIC} "
            f"(run folder {self._run_dir}); weights on weights/announce + weights/get"
        )

    # --- experience -------------------------------------------------------------------------

    def _on_experience(self, message: Experience) -> None:
        """Checks sizes before anything is copied, then the record; nothing here may raise."""
        settings = self.settings
        image_shape = (settings.image_height, settings.image_width, 3)
        try:
            check_message_sizes(_declared_sizes(message), image_shape, ACTION_SIZES)
            record = message_to_record(message)
            check_record(record, image_shape, ACTION_SIZES, scalars=tuple(ACTING_FIGURES))
            self._learner.add(record)
            self._count_accepted(record)
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

    def _count_accepted(self, record: ExperienceRecord) -> None:
        with self._lock:
            self._received += 1
            for name, sums in self._acting_figures.items():
                if name in record.tensors:
                    sums[0] += float(record.tensors[name])
                    sums[1] += 1
            if RAW_REWARD in record.tensors:
                self._recent_rewards.append(float(record.tensors[RAW_REWARD]))
            published = self._published.get(record.model_name)
            if published is not None:
                # Policy lag: how many versions behind the trainer's newest the step acted.
                self._lag_sum += max(0, published - record.weight_version)
                self._lag_count += 1

    # --- training thread ---------------------------------------------------------------------

    def _train_loop(self) -> None:
        torch.set_num_threads(self.settings.torch_threads)
        next_checkpoint = time.monotonic() + self.settings.checkpoint_period
        while not self._stop.is_set():
            self._serve_save_requests()
            if time.monotonic() >= next_checkpoint:
                self._checkpoint("periodic")
                next_checkpoint = time.monotonic() + self.settings.checkpoint_period
            if self._paused.is_set():
                self._stop.wait(IDLE_WAIT_S)
                continue
            try:
                result = self._learner.train_next()
            except Exception as error:  # a failed run is reported; training goes on
                self.get_logger().error(
                    f"trainer run failed: {type(error).__name__}: {error}",
                    throttle_duration_sec=5.0,
                )
                self._stop.wait(1.0)
                continue
            if result is None:
                self._stop.wait(IDLE_WAIT_S)
                continue
            self._after_run(result)
            if self.settings.min_run_interval:
                self._stop.wait(self.settings.min_run_interval)
        self._serve_save_requests()

    def _after_run(self, result: TrainResult) -> None:
        with self._lock:
            self._runs += 1
            runs = self._runs
            self._last_metrics.update(result.metrics)
        for name, value in result.metrics.items():
            self._metrics.add_scalar(name, value, runs)
        self._metrics.add_scalar(f"runs/{result.trainer}_duration_s", result.duration_s, runs)
        period = self.settings.health_period_runs
        if period and (runs == 1 or runs % period == 0):
            self._measure_health(runs)
        versions = self._learner.versions
        for model in result.updated_models:
            bad = self._learner.non_finite_parameters(model)
            if bad:
                self._learner.restore_weights(model, self._last_good[model])
                with self._lock:
                    self._refused_versions += 1
                self.get_logger().error(
                    f"{model} version {versions[model]} holds NaN/Inf in {', '.join(bad[:3])}: "
                    f"rolled back to version {self._published.get(model, 0)}, not published"
                )
                continue
            weights = self._learner.weights(model)
            if self._publish(model, versions[model], weights):
                self._last_good[model] = weights

    def _measure_health(self, runs: int) -> None:
        """Takes the learner's health figures (training thread, between runs)."""
        report = self._learner.health()
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
                self._refused_versions += 1
            self.get_logger().error(f"{model} version {version} not published: {error}")
            return False
        with self._lock:
            self._published[model] = version
            self._last_sync_ms = (time.perf_counter() - started) * 1000
        return True

    # --- checkpoints -------------------------------------------------------------------------

    def _checkpoint(self, reason: str) -> Path:
        started = time.perf_counter()
        path = self._store.save(self._learner.save_state, label=reason)
        with self._lock:
            self._checkpoints_written += 1
        self.get_logger().info(
            f"checkpoint {path} ({reason}, {(time.perf_counter() - started) * 1000:.0f} ms)"
        )
        return path

    def _serve_save_requests(self) -> None:
        with self._lock:
            requests, self._save_requests = self._save_requests, []
        for reason, done, answer in requests:
            try:
                answer.append(str(self._checkpoint(reason)))
            except Exception as error:
                answer.append(f"failed: {type(error).__name__}: {error}")
            done.set()

    def _resume(self, reference: str) -> None:
        logger = self.get_logger()
        used = resume(
            reference, self._run_dir.parent, STORE_SUBDIR, self._learner.load_state, logger.error
        )
        if used is None:
            logger.error("starting fresh")
            return
        logger.info(
            f"resumed from {used}: versions {self._learner.versions}, "
            f"buffers {self._learner.buffer_sizes()}"
        )

    # --- control -----------------------------------------------------------------------------

    @override
    def pause(self) -> str:
        self._paused.set()
        return "training paused"

    @override
    def resume(self) -> str:
        self._paused.clear()
        return "training resumed"

    @override
    def save(self) -> str:
        done = threading.Event()
        answer: list[str] = []
        with self._lock:
            self._save_requests.append(("requested", done, answer))
        if not done.wait(timeout=120.0):
            return "checkpoint still being written after 120 s"
        return f"checkpoint {answer[0]}"

    @override
    def status(self) -> Mapping[str, object]:
        with self._lock:
            return {
                "paused": self._paused.is_set(),
                "runs": self._runs,
                "experience_received": self._received,
                "experience_rejected": self._rejected,
                "callback_errors": self._callback_errors,
                "buffers": self._learner.buffer_sizes(),
                "published_versions": dict(self._published),
                "refused_versions": self._refused_versions,
                "checkpoints_written": self._checkpoints_written,
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
        buffers = self._learner.buffer_sizes()
        with self._lock:
            runs = self._runs
            runs_per_s = (runs - self._report_runs) / max(now - self._report_time, 1e-9)
            self._report_runs, self._report_time = runs, now
            sync_ms = self._last_sync_ms
            metrics = dict(self._last_metrics)
            published = dict(self._published)
            paused = self._paused.is_set()
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
        level = WARN if paused or not runs else OK
        summary = "paused" if paused else f"{runs_per_s:.1f} runs/s"
        status.update(runs_per_second=runs_per_s, last_publish_ms=sync_ms)
        self._diagnostics.publish(level, summary, status)

    def close(self) -> None:
        """Stops training, writes a last checkpoint and removes the shared-memory weights."""
        self._stop.set()
        self._thread.join(timeout=60.0)
        try:
            self._checkpoint("shutdown")
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
    """The learner of the mind the settings name.

    Raises:
        ValueError: If the device is not usable or a number is out of range.
    """
    device, dtype = resolve_device(settings.device, settings.precision)
    if settings.mind == "autoencoder":
        return build_autoencoder_learner(
            buffer_size=settings.buffer_size,
            batch_size=settings.batch_size,
            steps_per_run=settings.steps_per_run,
            learning_rate=settings.learning_rate,
            min_buffer_size=settings.min_buffer_size,
            min_new_samples=settings.min_new_samples,
            seed=settings.seed,
        )
    training = CuriosityTraining(
        buffer_size=settings.buffer_size,
        policy_buffer_size=settings.policy_buffer_size,
        batch_size=settings.batch_size,
        sequence_length=settings.sequence_length,
        steps_per_run=settings.steps_per_run,
        jepa_learning_rate=settings.jepa_learning_rate,
        world_learning_rate=settings.world_learning_rate,
        forward_learning_rate=settings.forward_learning_rate,
        forward_steps_per_run=settings.forward_steps_per_run,
        frame_survival_steps=settings.frame_survival_steps,
        jepa_ema_momentum=settings.jepa_ema_momentum,
        held_out_steps=settings.held_out_steps,
        normalize_rewards=settings.normalize_rewards,
        min_buffer_size=settings.min_buffer_size,
        min_new_samples=settings.min_new_samples,
        ppo_config=settings.ppo_config(),
        ppo_min_new_samples=settings.ppo_min_new_samples,
    )
    return build_curiosity_learner(settings.preset, settings.seed, device, dtype, training)


def main(args: Sequence[str] | None = None) -> None:
    """Runs the trainer node until Ctrl-C."""
    hold_memory_in_bounds()
    run_node(TrainerNode, args)


if __name__ == "__main__":
    main()
