"""The continual-learning lab: memory plasticity and forgetting of the JEPA image encoder.

``make bench-continual`` (or ``python -m pamiq_ros.bench.continual --help``). In one run folder:

1. **Experiences and test sets.** The sim world's looks A and B
   (:mod:`pamiq_ros.sim.experiences`: same room, other colours and floor patterns). For each,
   a fixed labelled test set (frames at random poses with their pose ``x, y, cos, sin yaw``
   and region, the quarter of the room) is written as a ROS 2 bag and read back from it.
2. **Stream.** Per seed, the avatar's first-person frames on a random walk (correlated in
   time, 10 Hz) through A, then B, then A (``--phases``, in training steps) are written as
   one bag; every run of that seed replays it, so sizes and buffer settings see the same data.
3. **Continual runs.** For each model size, buffer survival setting and seed, the encoder
   trains on the stream as the trainer would live (``frames_per_step`` new frames into a
   :class:`~pamiq_ros.core.buffers.RandomReplacementBuffer` with the given expected survival,
   then one JEPA step on a batch drawn from the buffer). Every ``eval_every`` steps, per
   experience: JEPA loss against the target encoder frozen at the last switch (same masks
   every time), ridge-probe R^2 of pose and of region (one-hot) from the pooled features
   (:func:`pamiq_ros.bench.probe.linear_probe`), CKA of the features against those at the
   last switch, feature spread and effective rank (:mod:`pamiq_ros.models.health`).
4. **Times.** Plasticity: steps after a switch until an experience's probe R^2 gained 50 %
   and 90 % of what it gains in that phase. Forgetting: steps after a switch until an old
   experience lost 50 % and 90 % of the gain it made in its phase. Censored (never reached
   within the phase) times are counted, not guessed. Means with bootstrap 95 % intervals
   over seeds.
5. **i.i.d. reference.** The same encoder from the same initial weights, trained for as many
   steps on the same frames shuffled (uniform batches over all of them), probed the same way.

Per-step costs are measured first; the phases are scaled down if the projected time exceeds
``--budget-minutes`` (said on the console and in the JSON). Writes ``continual.json``, one PNG
per model size and survival setting, and prints a table.
"""

import argparse
import copy
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pamiq_ros.bench._shared import comma_choices, machine_description
from pamiq_ros.bench.probe import encoder_features, linear_probe, sample_poses
from pamiq_ros.core.buffers import RandomReplacementBuffer
from pamiq_ros.io.bags import BagReader, BagWriter, project_typestore
from pamiq_ros.models.health import effective_rank, feature_spread, linear_cka
from pamiq_ros.models.jepa import (
    DEFAULT_EMA_MOMENTUM,
    FRAME_KEY,
    JepaConfig,
    JepaEncoder,
    JepaTrainer,
    VisionTransformer,
    build_jepa,
    count_parameters,
    frame_to_square,
    sample_masks,
    square_frame,
)
from pamiq_ros.sim.experiences import REGION_NAMES, experience_layout, region_of
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import EYE_HEIGHT, MotionCommand, Pose, World

MODEL_SIZES: dict[str, JepaConfig] = {
    # 32x32 frames of 8 px patches: small enough that 2 CPU cores run the whole lab.
    "S": JepaConfig(
        image_size=32, patch_size=8, dim=48, depth=2, heads=4,
        predictor_dim=24, predictor_depth=1, predictor_heads=4,
    ),
    "M": JepaConfig(
        image_size=32, patch_size=8, dim=96, depth=4, heads=4,
        predictor_dim=48, predictor_depth=2, predictor_heads=4,
    ),
}  # fmt: skip
"""The lab's encoder sizes (the tiny preset's shape, narrower and on smaller frames)."""

SURVIVAL_SETTINGS: dict[str, float] = {"short": 1.0, "long": 8.0}
"""Expected survival of a stored frame, in multiples of the buffer size (1: every new frame
replaces a stored one; 8: a new frame replaces one with probability 1/8)."""

IMAGE_TOPIC = "camera/image_raw"
POSE_TOPIC = "world/pose"
REGION_TOPIC = "region"
PHASE_TOPIC = "experience"
FRAME_PERIOD_NS = 100_000_000  # 10 Hz
METRICS = ("pose_r2", "region_r2", "jepa_loss", "cka_to_switch", "spread", "effective_rank")
TIME_METRICS = ("pose_r2", "region_r2")
"""Metrics whose gain defines plasticity and forgetting times (higher is better)."""
FRACTIONS = (0.5, 0.9)
LOSS_FRAMES = 32
"""Test frames the frozen-target JEPA loss is measured on (the probes use all of them)."""
COST_MARGIN = 2.0
COST_STEPS = 12
"""Projected time = measured costs x this: data, plots and a shared CPU's ups and downs."""
"""Test frames the frozen-target JEPA loss is measured on (the probes use all of them)."""

FloatArray = npt.NDArray[np.float64]
Frames = npt.NDArray[np.uint8]


# --- plasticity and forgetting ----------------------------------------------------------------


def plasticity_time(
    steps: Sequence[float], values: Sequence[float], fraction: float, tail: int = 1
) -> float | None:
    """Steps after a switch until a curve gained ``fraction`` of its gain over the phase.

    Args:
        steps: Times of the phase's evaluations; the first is the switch.
        values: The metric at those times (higher is better).
        fraction: Share of the gain, in (0, 1].
        tail: The gain is the mean of the last ``tail`` values minus the first value.

    Returns:
        ``steps[i] - steps[0]`` of the first value at least ``first + fraction * gain``, or
        None when the phase gained nothing.
    """
    _check_curve(steps, values, fraction)
    final = float(np.mean(values[-max(1, tail) :]))
    gain = final - values[0]
    if not gain > 0:
        return None
    threshold = values[0] + fraction * gain
    for step, value in zip(steps, values, strict=True):
        if value >= threshold - 1e-12:
            return float(step - steps[0])
    return None  # pragma: no cover - the tail mean cannot exceed every value


def forgetting_time(
    steps: Sequence[float], values: Sequence[float], gain: float, fraction: float
) -> float | None:
    """Steps after a switch until an old experience lost ``fraction`` of its earlier gain.

    Args:
        steps: Times of the evaluations after the switch; the first is the switch.
        values: The old experience's metric at those times (higher is better).
        gain: What it gained while it was trained on (its value at the switch minus its value
            when its phase began).
        fraction: Share of the gain lost, in (0, 1].

    Returns:
        ``steps[i] - steps[0]`` of the first value at most ``values[0] - fraction * gain``, or
        None when there was no gain to lose or it was not lost within the curve (censored).
    """
    _check_curve(steps, values, fraction)
    if not gain > 0:
        return None
    threshold = values[0] - fraction * gain
    for step, value in zip(steps, values, strict=True):
        if value <= threshold + 1e-12:
            return float(step - steps[0])
    return None


def _check_curve(steps: Sequence[float], values: Sequence[float], fraction: float) -> None:
    if len(steps) != len(values) or len(steps) < 1:
        raise ValueError(f"steps and values need the same length >= 1, got {len(steps)}, "
                         f"{len(values)}")  # fmt: skip
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Running mean over ``window`` points ending at each point (shorter at the start)."""
    out = []
    for index in range(len(values)):
        part = values[max(0, index - window + 1) : index + 1]
        out.append(float(np.mean(part)))
    return out


def bootstrap_mean(
    values: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float | int | None]:
    """Mean of ``values`` with a percentile bootstrap interval (resampling the values)."""
    data = np.asarray([value for value in values if value is not None], dtype=np.float64)
    if data.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(resamples, data.size), replace=True).mean(axis=1)
    tail = (1.0 - level) / 2.0
    return {
        "mean": float(data.mean()),
        "low": float(np.quantile(means, tail)),
        "high": float(np.quantile(means, 1.0 - tail)),
        "n": int(data.size),
    }


# --- data: test sets and streams as bags ------------------------------------------------------


@dataclass(frozen=True)
class LabeledFrames:
    """Frames with pose targets ``(N, 4)`` (x, y, cos, sin yaw) and region labels ``(N,)``."""

    frames: Frames
    pose: FloatArray
    region: npt.NDArray[np.int64]

    def region_one_hot(self) -> FloatArray:
        """Region labels as ``(N, regions)`` one-hot columns (the region probe's targets)."""
        return np.eye(len(REGION_NAMES))[self.region]


def _image_message(store: Any, frame: Frames, stamp_ns: int) -> bytes:
    types = store.types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](
            sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000
        ),
        frame_id="camera",
    )
    height, width = frame.shape[:2]
    message = types["sensor_msgs/msg/Image"](
        header=header, height=height, width=width, encoding="rgb8", is_bigendian=0,
        step=3 * width, data=np.ascontiguousarray(frame).ravel(),
    )  # fmt: skip
    return bytes(store.serialize_cdr(message, "sensor_msgs/msg/Image"))


def _pose_message(store: Any, x: float, y: float, yaw: float, stamp_ns: int) -> bytes:
    types = store.types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](
            sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000
        ),
        frame_id="world",
    )
    pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
        orientation=types["geometry_msgs/msg/Quaternion"](
            x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0)
        ),
    )
    message = types["geometry_msgs/msg/PoseStamped"](header=header, pose=pose)
    return bytes(store.serialize_cdr(message, "geometry_msgs/msg/PoseStamped"))


def _string_message(store: Any, text: str) -> bytes:
    message = store.types["std_msgs/msg/String"](data=text)
    return bytes(store.serialize_cdr(message, "std_msgs/msg/String"))


def write_labeled_bag(
    path: Path, frames: Frames, poses: FloatArray, labels: Sequence[str] | None = None
) -> None:
    """Writes frames, their poses ``(N, 3)`` (x, y, yaw) and optional per-frame labels."""
    store = project_typestore()
    writer = BagWriter(path)
    writer.add_topic(IMAGE_TOPIC, "sensor_msgs/msg/Image")
    writer.add_topic(POSE_TOPIC, "geometry_msgs/msg/PoseStamped")
    if labels is not None:
        writer.add_topic(PHASE_TOPIC, "std_msgs/msg/String")
    for index, frame in enumerate(frames):
        stamp = (index + 1) * FRAME_PERIOD_NS
        x, y, yaw = (float(value) for value in poses[index])
        writer.write(POSE_TOPIC, stamp, _pose_message(store, x, y, yaw, stamp))
        if labels is not None:
            writer.write(PHASE_TOPIC, stamp, _string_message(store, labels[index]))
        writer.write(IMAGE_TOPIC, stamp, _image_message(store, frame, stamp))
    writer.close()


def read_labeled_bag(path: Path) -> tuple[LabeledFrames, list[str]]:
    """Reads a bag of :func:`write_labeled_bag` back (frames paired with poses by stamp).

    Raises:
        BagError: If the bag is unusable or a frame has no pose.
    """
    reader = BagReader([path])
    poses: dict[int, tuple[float, float, float]] = {}
    labels: dict[int, str] = {}
    frames: list[tuple[int, Frames]] = []
    for message in reader.messages([IMAGE_TOPIC, POSE_TOPIC, PHASE_TOPIC]):
        decoded = reader.deserialize(message)
        stamp = decoded.header.stamp.sec * 1_000_000_000 + decoded.header.stamp.nanosec if (
            message.topic != PHASE_TOPIC
        ) else message.timestamp_ns  # fmt: skip
        if message.topic == IMAGE_TOPIC:
            pixels = np.asarray(decoded.data, dtype=np.uint8).reshape(
                decoded.height, decoded.width, 3
            )
            frames.append((stamp, pixels))
        elif message.topic == POSE_TOPIC:
            orientation = decoded.pose.orientation
            yaw = 2.0 * math.atan2(orientation.z, orientation.w)
            poses[stamp] = (decoded.pose.position.x, decoded.pose.position.y, yaw)
        else:
            labels[stamp] = decoded.data
    frames.sort(key=lambda item: item[0])
    missing = [stamp for stamp, _ in frames if stamp not in poses]
    if missing:
        from pamiq_ros.io.bags import BagError

        raise BagError(f"{path}: {len(missing)} frames have no pose (first at {missing[0]} ns)")
    pose_rows = np.array([poses[stamp] for stamp, _ in frames], dtype=np.float64)
    targets = np.stack(
        [pose_rows[:, 0], pose_rows[:, 1], np.cos(pose_rows[:, 2]), np.sin(pose_rows[:, 2])],
        axis=1,
    )
    regions = np.array([region_of(x, y) for x, y, _ in pose_rows], dtype=np.int64)
    data = LabeledFrames(np.stack([pixels for _, pixels in frames]), targets, regions)
    return data, [labels.get(stamp, "") for stamp, _ in frames]


def render_test_set(
    experience: str, count: int, seed: int, width: int, height: int
) -> tuple[Frames, FloatArray]:
    """Frames of ``experience`` at ``count`` random poses (seeded), and the poses (x, y, yaw)."""
    layout = experience_layout(experience)
    renderer = Renderer(layout, width, height)
    poses = sample_poses(layout, count, seed)
    views = zip(poses.x, poses.y, poses.yaw, poses.time, strict=True)
    frames = np.stack([
        renderer.render_view(
            Pose(float(x), float(y), float(yaw)),
            EYE_HEIGHT,
            [pillar.position(float(when)) for pillar in layout.pillars],
        )
        for x, y, yaw, when in views
    ])  # fmt: skip
    return frames, np.stack([poses.x, poses.y, poses.yaw], axis=1)


def random_walk(
    experiences: Sequence[tuple[str, int]], seed: int, width: int, height: int
) -> tuple[Frames, FloatArray, list[str]]:
    """The avatar's view on one random walk through several experiences, at 10 Hz.

    The walk goes on where it was at each switch (only the look changes); a random command
    (walk or run forward, turn) is held for 1 to 3 s, so frames are correlated in time.

    Args:
        experiences: ``(experience, frames)`` in order.
        seed: Seed of the walk.
        width: Frame width (px).
        height: Frame height (px).

    Returns:
        Frames, poses ``(N, 3)`` (x, y, yaw) and each frame's experience.
    """
    rng = np.random.default_rng(seed)
    world = World(seed)
    total = sum(count for _, count in experiences)
    frames = np.empty((total, height, width, 3), dtype=np.uint8)
    poses = np.empty((total, 3), dtype=np.float64)
    labels: list[str] = []
    command = MotionCommand()
    hold = 0
    index = 0
    for experience, count in experiences:
        renderer = Renderer(experience_layout(experience), width, height)
        for _ in range(count):
            if hold <= 0:
                command = MotionCommand(
                    forward=float(rng.uniform(0.0, 1.5 * world.walk_speed)),
                    yaw_rate=float(rng.uniform(-1.0, 1.0) * world.turn_speed),
                )
                hold = int(rng.integers(10, 30))
            hold -= 1
            world.step(0.1, command)
            frames[index] = renderer.render(world)
            poses[index] = (world.pose.x, world.pose.y, world.pose.yaw)
            labels.append(experience)
            index += 1
    return frames, poses, labels


# --- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabConfig:
    """Everything a lab run is made of (see ``--help`` for each)."""

    sizes: tuple[str, ...] = ("S", "M")
    survivals: tuple[str, ...] = ("short", "long")
    seeds: tuple[int, ...] = (0, 1, 2)
    phases: tuple[tuple[str, int], ...] = (("A", 400), ("B", 400), ("A", 200))
    eval_every: int = 25
    test_frames: int = 200
    buffer_size: int = 200
    frames_per_step: int = 2
    batch_size: int = 16
    learning_rate: float = 3e-4
    frame_width: int = 64
    frame_height: int = 48
    smooth_window: int = 3
    budget_minutes: float = 22.0
    workers: int = 2

    @property
    def experiences(self) -> list[str]:
        """The experiences of the schedule, each once, in order of first use."""
        return list(dict.fromkeys(name for name, _ in self.phases))

    @property
    def total_steps(self) -> int:
        """Training steps over all phases."""
        return sum(steps for _, steps in self.phases)


@dataclass
class Curves:
    """Per experience and metric, the value at each evaluation step."""

    steps: list[int] = field(default_factory=list)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, step: int, figures: Mapping[str, Mapping[str, float]]) -> None:
        """Appends one evaluation: experience -> metric -> value."""
        self.steps.append(step)
        for experience, metrics in figures.items():
            target = self.values.setdefault(experience, {})
            for metric, value in metrics.items():
                target.setdefault(metric, []).append(float(value))


class Evaluator:
    """Measures an encoder on every experience's test set (same masks each time)."""

    def __init__(self, test_sets: Mapping[str, LabeledFrames], config: JepaConfig, seed: int):
        self.test_sets = dict(test_sets)
        self._images = {
            name: frame_to_square(data.frames[:LOSS_FRAMES], config.image_size, "cpu")
            for name, data in test_sets.items()
        }
        generator = torch.Generator().manual_seed(seed)
        count = min(LOSS_FRAMES, len(next(iter(test_sets.values())).frames))
        self._masks = sample_masks(config.grid, generator=generator, batch_size=count)
        self._frozen_target: VisionTransformer | None = None
        self._switch_features: dict[str, torch.Tensor] = {}

    def freeze(self, model: JepaEncoder) -> None:
        """Takes the target encoder and every experience's features as of now (a switch)."""
        self._frozen_target = copy.deepcopy(model.target_encoder).eval()
        self._switch_features = {
            name: torch.from_numpy(self._features(model, name)) for name in self.test_sets
        }

    def _features(self, model: JepaEncoder, name: str) -> FloatArray:
        return encoder_features(model.encode, self.test_sets[name].frames)

    def measure(self, model: JepaEncoder, probe_seed: int) -> dict[str, dict[str, float]]:
        """Every metric of :data:`METRICS` per experience."""
        model.eval()
        figures: dict[str, dict[str, float]] = {}
        for name, data in self.test_sets.items():
            features = self._features(model, name)
            tensor = torch.from_numpy(features)
            pose = linear_probe(features, data.pose, seed=probe_seed)
            region = linear_probe(
                features, data.region_one_hot(), target_names=REGION_NAMES, seed=probe_seed
            )
            figures[name] = {
                "pose_r2": pose.mean_r2,
                "region_r2": region.mean_r2,
                "jepa_loss": self._frozen_loss(model, name),
                "cka_to_switch": linear_cka(tensor, self._switch_features[name])
                if name in self._switch_features
                else 1.0,
                "spread": feature_spread(tensor),
                "effective_rank": effective_rank(tensor),
            }
        return figures

    @torch.no_grad()
    def _frozen_loss(self, model: JepaEncoder, name: str) -> float:
        if self._frozen_target is None:
            raise RuntimeError("freeze() before measure()")
        live = model.target_encoder
        model.target_encoder = self._frozen_target
        try:
            return float(model.loss(self._images[name], self._masks))
        finally:
            model.target_encoder = live


def _trainer(config: LabConfig, seed: int, model: JepaEncoder) -> JepaTrainer:
    trainer = JepaTrainer(
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        momentum=DEFAULT_EMA_MOMENTUM,
        min_buffer_size=config.batch_size,
        min_new_samples=1,
        seed=seed,
    )
    trainer.setup({trainer.model_name: model})
    return trainer


def _train_step(trainer: JepaTrainer, model: JepaEncoder, buffer: Any) -> None:
    trainer.train({trainer.model_name: model}, {trainer.buffer_name: buffer})


class _FrameArray:
    """A read-only stand-in buffer over a fixed array (the i.i.d. reference samples it)."""

    def __init__(self, frames: Frames) -> None:
        self._frames = frames

    def get_data(self) -> dict[str, Frames]:
        return {FRAME_KEY: self._frames}

    def __len__(self) -> int:
        return len(self._frames)


def continual_run(
    config: LabConfig,
    size: str,
    survival: str,
    seed: int,
    stream: Frames,
    evaluator_factory: Callable[[JepaConfig], Evaluator],
    progress: Callable[[str], object] = lambda line: None,
) -> dict[str, Any]:
    """One encoder trained through the schedule; its curves and times."""
    model_config = MODEL_SIZES[size]
    model = build_jepa(model_config, seed)
    trainer = _trainer(config, seed, model)
    buffer = RandomReplacementBuffer(
        [FRAME_KEY],
        config.buffer_size,
        expected_survival_length=round(config.buffer_size * SURVIVAL_SETTINGS[survival]),
        seed=seed,
    )
    evaluator = evaluator_factory(model_config)
    curves = Curves()
    cursor = 0
    step = 0
    switches: list[int] = []
    started = time.perf_counter()
    for phase_index, (_, steps) in enumerate(config.phases):
        switches.append(step)
        evaluator.freeze(model)
        curves.add(step, evaluator.measure(model, seed))
        for _ in range(steps):
            for _ in range(config.frames_per_step):
                buffer.add({FRAME_KEY: stream[cursor]})
                cursor += 1
            if len(buffer) >= config.batch_size:
                _train_step(trainer, model, buffer)
            step += 1
            if step % config.eval_every == 0 or step == switches[-1] + steps:
                curves.add(step, evaluator.measure(model, seed))
        progress(f"phase {phase_index + 1}/{len(config.phases)} done at step {step}")
    return {
        "size": size,
        "survival": survival,
        "seed": seed,
        "switch_steps": switches,
        "steps": curves.steps,
        "curves": curves.values,
        "times": phase_times(config, curves, switches),
        "seconds": time.perf_counter() - started,
    }


def iid_run(
    config: LabConfig,
    size: str,
    seed: int,
    stream: Frames,
    evaluator_factory: Callable[[JepaConfig], Evaluator],
) -> dict[str, Any]:
    """The same encoder and steps on the same frames, shuffled: batches uniform over all."""
    model_config = MODEL_SIZES[size]
    model = build_jepa(model_config, seed)
    trainer = _trainer(config, seed, model)
    frames = _FrameArray(stream[np.random.default_rng(seed).permutation(len(stream))])
    evaluator = evaluator_factory(model_config)
    evaluator.freeze(model)
    started = time.perf_counter()
    for _ in range(config.total_steps):
        _train_step(trainer, model, frames)
    return {
        "size": size,
        "seed": seed,
        "steps": config.total_steps,
        "final": evaluator.measure(model, seed),
        "seconds": time.perf_counter() - started,
    }


def phase_times(config: LabConfig, curves: Curves, switches: Sequence[int]) -> list[dict[str, Any]]:
    """Plasticity of each phase's experience and forgetting of the others, per time metric.

    Returns one entry per phase: its experience, the plasticity times of that experience and
    the forgetting times of each other experience that gained in its own latest phase.
    """
    steps = np.asarray(curves.steps)
    phase_ends = [*switches[1:], config.total_steps]
    last_gain: dict[str, dict[str, float]] = {}
    entries = []
    for (experience, _), start, end in zip(config.phases, switches, phase_ends, strict=True):
        inside = np.nonzero((steps >= start) & (steps <= end))[0]
        span = [float(s) for s in steps[inside]]
        entry: dict[str, Any] = {
            "phase_experience": experience,
            "start_step": start,
            "end_step": end,
            "plasticity": {},
            "forgetting": {},
        }
        for metric in TIME_METRICS:
            series = smooth(curves.values[experience][metric], config.smooth_window)
            values = [series[i] for i in inside]
            entry["plasticity"][metric] = {
                f"{round(f * 100)}%": plasticity_time(span, values, f, tail=config.smooth_window)
                for f in FRACTIONS
            }
            entry["plasticity"][metric]["gain"] = values[-1] - values[0]
            for other, gains in last_gain.items():
                if other == experience:
                    continue
                other_series = smooth(curves.values[other][metric], config.smooth_window)
                other_values = [other_series[i] for i in inside]
                gain = gains.get(metric, 0.0)
                entry["forgetting"].setdefault(other, {})[metric] = {
                    **{
                        f"{round(f * 100)}%": forgetting_time(span, other_values, gain, f)
                        for f in FRACTIONS
                    },
                    "gain": gain,
                    "lost": other_values[0] - other_values[-1],
                }
            last_gain.setdefault(experience, {})[metric] = values[-1] - values[0]
        entries.append(entry)
    return entries


# --- the whole lab ----------------------------------------------------------------------------


def _say(line: str) -> None:
    print(f"[continual] {line}", flush=True)


def measure_costs(config: LabConfig, test_sets: Mapping[str, LabeledFrames]) -> dict[str, Any]:
    """Seconds per training step and per evaluation, per size, measured here and now."""
    costs: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for size in config.sizes:
        model_config = MODEL_SIZES[size]
        model = build_jepa(model_config, 0)
        trainer = _trainer(config, 0, model)
        frames = _FrameArray(rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8))
        _train_step(trainer, model, frames)
        started = time.perf_counter()
        for _ in range(COST_STEPS):
            _train_step(trainer, model, frames)
        step_s = (time.perf_counter() - started) / COST_STEPS
        evaluator = Evaluator(test_sets, model_config, 0)
        evaluator.freeze(model)
        started = time.perf_counter()
        evaluator.measure(model, 0)
        costs[size] = {
            "train_step_s": step_s,
            "evaluation_s": time.perf_counter() - started,
            "parameters": count_parameters(model),
        }
    return costs


def job_seconds(config: LabConfig, costs: Mapping[str, Any], size: str) -> float:
    """Measured-cost estimate of one job: every survival setting and the i.i.d. run of a size."""
    evaluations = sum(steps // config.eval_every + 2 for _, steps in config.phases)
    cost = costs[size]
    continual = config.total_steps * cost["train_step_s"] + evaluations * cost["evaluation_s"]
    iid = config.total_steps * cost["train_step_s"] + cost["evaluation_s"]
    return len(config.survivals) * continual + iid


def schedule_jobs(config: LabConfig, costs: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Every (size, seed) job, longest first, so the workers finish close together."""
    jobs = [(size, seed) for seed in config.seeds for size in config.sizes]
    return sorted(jobs, key=lambda job: -job_seconds(config, costs, job[0]))


def projected_seconds(config: LabConfig, costs: Mapping[str, Any]) -> float:
    """The lab's projected run time: jobs longest first on the workers, costs x the margin."""
    finish = [0.0] * max(1, config.workers)
    for size, _ in schedule_jobs(config, costs):
        finish[finish.index(min(finish))] += job_seconds(config, costs, size)
    return max(finish) * COST_MARGIN


def fit_to_budget(config: LabConfig, costs: Mapping[str, Any]) -> tuple[LabConfig, float]:
    """The config with its phases scaled down (same proportions) to fit the time budget."""
    budget = config.budget_minutes * 60.0
    projected = projected_seconds(config, costs)
    if projected <= budget:
        return config, 1.0
    scale = budget / projected
    phases = tuple(
        (name, max(2 * config.eval_every, round(steps * scale))) for name, steps in config.phases
    )
    return replace(config, phases=phases), scale


def summarise(
    config: LabConfig, runs: Sequence[Mapping[str, Any]], iid: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per size and survival setting: times with bootstrap intervals, final and i.i.d. figures."""
    summary: dict[str, Any] = {}
    for size in config.sizes:
        iid_runs = [run for run in iid if run["size"] == size]
        reference = {
            experience: {
                metric: bootstrap_mean([run["final"][experience][metric] for run in iid_runs])
                for metric in ("pose_r2", "region_r2")
            }
            for experience in config.experiences
        }
        for survival in config.survivals:
            chosen = [r for r in runs if r["size"] == size and r["survival"] == survival]
            cell: dict[str, Any] = {"iid_reference": reference, "phases": [], "final": {}}
            for phase_index, (experience, _) in enumerate(config.phases):
                phase: dict[str, Any] = {"experience": experience, "plasticity": {},
                                         "forgetting": {}}  # fmt: skip
                for metric in TIME_METRICS:
                    entries = [r["times"][phase_index]["plasticity"][metric] for r in chosen]
                    for key in (f"{round(f * 100)}%" for f in FRACTIONS):
                        phase["plasticity"].setdefault(metric, {})[key] = _time_stats(entries, key)
                    for other in chosen[0]["times"][phase_index]["forgetting"] if chosen else ():
                        entries = [
                            r["times"][phase_index]["forgetting"][other][metric] for r in chosen
                        ]
                        target = phase["forgetting"].setdefault(other, {}).setdefault(metric, {})
                        for key in (f"{round(f * 100)}%" for f in FRACTIONS):
                            target[key] = _time_stats(entries, key)
                cell["phases"].append(phase)
            for experience in config.experiences:
                cell["final"][experience] = {
                    metric: bootstrap_mean([r["curves"][experience][metric][-1] for r in chosen])
                    for metric in METRICS
                }
            # Drift over each phase: CKA of the features at its end to those at its start.
            cell["cka_at_phase_end"] = [
                {
                    experience: bootstrap_mean(
                        [_value_at(r, experience, "cka_to_switch", end) for r in chosen]
                    )
                    for experience in config.experiences
                }
                for end in _phase_ends(config)
            ]
            summary[f"{size}/{survival}"] = cell
    return summary


def _time_stats(entries: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    """Bootstrap mean of the times reached; runs without gain and censored runs apart.

    A run with no gain in the phase has nothing to time; a censored one never reached the
    threshold within the phase.
    """
    values = [entry[key] for entry in entries]
    no_gain = sum(1 for entry in entries if not entry["gain"] > 0)
    return {
        **bootstrap_mean(values),
        "no_gain": no_gain,
        "censored": sum(value is None for value in values) - no_gain,
    }


def _phase_ends(config: LabConfig) -> list[int]:
    ends, step = [], 0
    for _, steps in config.phases:
        step += steps
        ends.append(step)
    return ends


def _value_at(run: Mapping[str, Any], experience: str, metric: str, step: int) -> float:
    """The metric measured at ``step`` (a phase's end: before the next phase resets it)."""
    index = min(i for i, s in enumerate(run["steps"]) if s == step)  # before the reset
    return float(run["curves"][experience][metric][index])


def _cell(stat: Mapping[str, Any] | None, digits: int = 0) -> str:
    if not stat:
        return "-"
    notes = "".join(
        f" {stat[key]}{mark}"
        for key, mark in (("censored", "c"), ("no_gain", "g"))
        if stat.get(key)
    )
    if stat.get("mean") is None:
        return ("none:" + notes) if notes else "-"
    return f"{stat['mean']:.{digits}f} [{stat['low']:.{digits}f},{stat['high']:.{digits}f}]" + notes


def format_table(config: LabConfig, summary: Mapping[str, Any]) -> str:
    """The printed table: pose-probe times (steps) and final R^2 with the i.i.d. reference."""
    lines = [
        "times in training steps after the switch (pose R^2), mean [95% bootstrap CI] over the "
        "seeds that reached it; Nc: seeds that never reached it in the phase (censored), "
        "Ng: seeds with no gain in the phase (nothing to time)",
        f"{'size/survival':<14} {'phase':<6} {'plastic 50%':<20} {'plastic 90%':<20} "
        f"{'forget 50%':<22} {'forget 90%':<22}",
    ]
    for key, cell in summary.items():
        for index, phase in enumerate(cell["phases"]):
            plastic = phase["plasticity"]["pose_r2"]
            forgetting = next(iter(phase["forgetting"].items()), None)
            forget50 = forget90 = "-"
            if forgetting is not None:
                other, metrics = forgetting
                forget50 = f"{other}: {_cell(metrics['pose_r2']['50%'])}"
                forget90 = f"{other}: {_cell(metrics['pose_r2']['90%'])}"
            lines.append(
                f"{key:<14} {index + 1}:{phase['experience']:<4} {_cell(plastic['50%']):<20} "
                f"{_cell(plastic['90%']):<20} {forget50:<22} {forget90:<22}"
            )
    lines.append("final pose R^2 per experience: continual end vs i.i.d. reference")
    for key, cell in summary.items():
        parts = []
        for experience in config.experiences:
            final = cell["final"][experience]["pose_r2"]
            reference = cell["iid_reference"][experience]["pose_r2"]
            parts.append(f"{experience}: {_cell(final, 3)} iid {_cell(reference, 3)}")
        lines.append(f"{key:<14} " + " | ".join(parts))
    return "\n".join(lines)


def plot(config: LabConfig, runs: Sequence[Mapping[str, Any]], iid: Sequence[Mapping[str, Any]],
         out_dir: Path) -> list[Path]:  # fmt: skip
    """One PNG per size and survival setting: each metric's curves per experience."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    colors = {"A": "tab:blue", "B": "tab:orange", "C": "tab:green"}
    for size in config.sizes:
        for survival in config.survivals:
            chosen = [r for r in runs if r["size"] == size and r["survival"] == survival]
            if not chosen:
                continue
            figure, axes = plt.subplots(2, 3, figsize=(15, 8))
            for axis, metric in zip(axes.flat, METRICS, strict=True):
                for experience in config.experiences:
                    color = colors.get(experience)
                    curves = np.array([r["curves"][experience][metric] for r in chosen])
                    steps = chosen[0]["steps"]
                    for curve in curves:
                        axis.plot(steps, curve, color=color, alpha=0.25, linewidth=0.8)
                    axis.plot(steps, curves.mean(axis=0), color=color, label=f"{experience}")
                    if metric in ("pose_r2", "region_r2"):
                        finals = [r["final"][experience][metric] for r in iid if r["size"] == size]
                        axis.axhline(float(np.mean(finals)), color=color, linestyle=":",
                                     label=f"{experience} i.i.d.")  # fmt: skip
                for switch in chosen[0]["switch_steps"][1:]:
                    axis.axvline(switch, color="grey", linestyle="--", linewidth=1)
                axis.set_title(metric)
                axis.set_xlabel("training step")
            axes.flat[0].legend(fontsize=8)
            schedule = " -> ".join(f"{name}({steps})" for name, steps in config.phases)
            figure.suptitle(
                f"size {size}, survival {survival} ({SURVIVAL_SETTINGS[survival]:g}x buffer), "
                f"{len(chosen)} seeds: {schedule}; dashed: switches, dotted: i.i.d. reference"
            )
            figure.tight_layout()
            path = out_dir / f"continual_{size}_{survival}.png"
            figure.savefig(path, dpi=90)
            plt.close(figure)
            written.append(path)
    return written


def _read_test_sets(config: LabConfig, out_dir: Path) -> dict[str, LabeledFrames]:
    return {
        experience: read_labeled_bag(out_dir / "test_sets" / experience)[0]
        for experience in config.experiences
    }


def _read_stream(config: LabConfig, out_dir: Path, seed: int) -> Frames:
    replayed, _ = read_labeled_bag(out_dir / "streams" / f"seed{seed}")
    side = max(MODEL_SIZES[size].image_size for size in config.sizes)
    return np.stack([square_frame(frame, side) for frame in replayed.frames])


def run_job(config: LabConfig, out_dir: Path, size: str, seed: int) -> dict[str, Any]:
    """Every run of one size and seed (each survival setting, then i.i.d.), data from bags.

    Runs in a worker process: it reads the test sets and the seed's stream from their bags.
    """
    torch.set_num_threads(1)
    test_sets = _read_test_sets(config, out_dir)
    stream = _read_stream(config, out_dir, seed)

    def evaluator_factory(model_config: JepaConfig) -> Evaluator:
        return Evaluator(test_sets, model_config, 0)

    runs = [
        continual_run(config, size, survival, seed, stream, evaluator_factory)
        for survival in config.survivals
    ]
    return {"runs": runs, "iid": iid_run(config, size, seed, stream, evaluator_factory)}


def _write_data(config: LabConfig, out_dir: Path) -> dict[str, LabeledFrames]:
    """Test sets and per-seed streams as bags, each checked by reading it back."""
    for index, experience in enumerate(config.experiences):
        path = out_dir / "test_sets" / experience
        frames, poses = render_test_set(
            experience, config.test_frames, 1000 + index, config.frame_width, config.frame_height
        )
        write_labeled_bag(path, frames, poses)
        if not np.array_equal(read_labeled_bag(path)[0].frames, frames):
            raise RuntimeError(f"{path}: frames read back differ from those written")
    for seed in config.seeds:
        path = out_dir / "streams" / f"seed{seed}"
        frames, poses, labels = random_walk(
            [(name, steps * config.frames_per_step) for name, steps in config.phases],
            seed, config.frame_width, config.frame_height,
        )  # fmt: skip
        write_labeled_bag(path, frames, poses, labels)
        if read_labeled_bag(path)[1] != labels:
            raise RuntimeError(f"{path}: experience labels read back differ")
    _say(f"test sets and streams written as bags and read back: {out_dir}")
    return _read_test_sets(config, out_dir)


def run_lab(config: LabConfig, out_dir: Path) -> dict[str, Any]:
    """The whole lab into ``out_dir``; returns the report (also ``continual.json``)."""
    torch.set_num_threads(1)
    lab_started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    costs = measure_costs(config, {
        name: LabeledFrames(*_labeled_stand_in(config, name)) for name in config.experiences
    })  # fmt: skip
    for size, cost in costs.items():
        step_ms = cost["train_step_s"] * 1000
        _say(
            f"size {size}: {cost['parameters']:,} parameters, train step {step_ms:.0f} ms, "
            f"evaluation {cost['evaluation_s']:.2f} s"
        )
    planned = projected_seconds(config, costs)
    config, scale = fit_to_budget(config, costs)
    if scale < 1.0:
        _say(f"projected {planned / 60:.1f} min > budget {config.budget_minutes:g} min: phases "
             f"scaled by {scale:.2f} to {config.phases}")  # fmt: skip
    projected = projected_seconds(config, costs)
    _say(f"schedule {config.phases}, {len(config.sizes)} sizes x {len(config.survivals)} "
         f"survival settings x {len(config.seeds)} seeds + i.i.d., {config.workers} worker "
         f"processes; projected {projected / 60:.1f} min")  # fmt: skip
    _write_data(config, out_dir)

    runs: list[dict[str, Any]] = []
    iid: list[dict[str, Any]] = []
    jobs = schedule_jobs(config, costs)
    train_started = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=context) as pool:
        futures = {
            pool.submit(run_job, config, out_dir, size, seed): (size, seed) for size, seed in jobs
        }
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            runs.extend(result["runs"])
            iid.append(result["iid"])
            size, seed = futures[future]
            _progress(done, len(jobs), train_started, f"size {size} seed {seed}")
    runs.sort(key=lambda run: (config.sizes.index(run["size"]), run["seed"],
                               config.survivals.index(run["survival"])))  # fmt: skip
    iid.sort(key=lambda run: (config.sizes.index(run["size"]), run["seed"]))
    summary = summarise(config, runs, iid)
    report = {
        "config": {**asdict(config), "phases": [list(phase) for phase in config.phases]},
        "scaled_by": scale,
        "projected_seconds": projected,
        "costs": costs,
        "machine": machine_description(),
        "model_sizes": {name: asdict(MODEL_SIZES[name]) for name in config.sizes},
        "survival_settings": {name: SURVIVAL_SETTINGS[name] for name in config.survivals},
        "summary": summary,
        "runs": runs,
        "iid": iid,
    }
    report["plots"] = [str(path) for path in plot(config, runs, iid, out_dir)]
    seconds = time.perf_counter() - lab_started
    report["seconds"] = seconds
    (out_dir / "continual.json").write_text(json.dumps(report, indent=1))
    print(format_table(config, summary))
    _say(f"done in {seconds / 60:.1f} min: {out_dir / 'continual.json'}")
    return report


def _labeled_stand_in(
    config: LabConfig, experience: str
) -> tuple[Frames, FloatArray, npt.NDArray[np.int64]]:
    """A test set's shape (random pixels and labels) for measuring costs before rendering."""
    rng = np.random.default_rng(0)
    count, shape = config.test_frames, (config.frame_height, config.frame_width, 3)
    frames = rng.integers(0, 255, (count, *shape), dtype=np.uint8)
    return frames, rng.normal(size=(count, 4)), rng.integers(0, len(REGION_NAMES), count)


def _progress(done: int, total: int, started: float, label: str) -> None:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done)
    _say(f"{done}/{total} {label} | {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")


def _parse_phases(text: str) -> tuple[tuple[str, int], ...]:
    phases = []
    for part in text.split(","):
        name, _, steps = part.strip().partition(":")
        try:
            experience_layout(name)
            count = int(steps)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"phase {part!r}: {error}") from None
        if count < 1:
            raise argparse.ArgumentTypeError(f"phase {part!r}: steps must be at least 1")
        phases.append((name, count))
    return tuple(phases)


def _parser() -> argparse.ArgumentParser:
    defaults = LabConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.continual",
        description="Plasticity and forgetting of the JEPA encoder on a schedule of sim "
        "experiences, per model size and buffer survival, with the i.i.d. reference.",
    )
    parser.add_argument("--out", default="", help="run folder (default runs/continual-<time>)")
    parser.add_argument(
        "--sizes",
        type=lambda text: comma_choices(text, list(MODEL_SIZES), "sizes"),
        default=list(defaults.sizes),
    )
    parser.add_argument(
        "--survivals",
        type=lambda text: comma_choices(text, list(SURVIVAL_SETTINGS), "survival settings"),
        default=list(defaults.survivals),
    )
    parser.add_argument("--seeds", type=int, default=len(defaults.seeds), help="seeds per cell")
    parser.add_argument(
        "--phases",
        type=_parse_phases,
        default=defaults.phases,
        help="schedule EXPERIENCE:STEPS,... (default A:400,B:400,A:200)",
    )
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--test-frames", type=int, default=defaults.test_frames)
    parser.add_argument("--buffer-size", type=int, default=defaults.buffer_size)
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=defaults.budget_minutes,
        help="phases are scaled down when the projected time (measured costs) exceeds it",
    )
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="worker processes (default 2)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one size, two seeds, short phases: a few minutes"
    )
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> LabConfig:
    """The lab's config from the command line (``--quick`` shrinks everything)."""
    config = LabConfig(
        sizes=tuple(arguments.sizes),
        survivals=tuple(arguments.survivals),
        seeds=tuple(range(arguments.seeds)),
        phases=tuple(arguments.phases),
        eval_every=arguments.eval_every,
        test_frames=arguments.test_frames,
        buffer_size=arguments.buffer_size,
        budget_minutes=arguments.budget_minutes,
        workers=arguments.workers,
    )
    if arguments.quick:
        config = replace(
            config,
            sizes=config.sizes[:1],
            seeds=(0, 1),
            phases=(("A", 12), ("B", 12), ("A", 8)),
            eval_every=4,
            test_frames=60,
            buffer_size=32,
            batch_size=8,
        )
    return config


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""One BLAS thread: on a shared 2-core machine threaded BLAS made each probe 50x slower."""


def main(args: Sequence[str] | None = None) -> int:
    """Runs the lab and prints its table (in a process with one BLAS thread)."""
    if any(os.environ.get(name) != "1" for name in BLAS_THREAD_VARIABLES):
        # BLAS reads these when NumPy loads, which has happened by now: start again.
        os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
        arguments_given = list(sys.argv[1:] if args is None else args)
        os.execv(
            sys.executable, [sys.executable, "-m", "pamiq_ros.bench.continual", *arguments_given]
        )
    arguments = _parser().parse_args(args)
    config = config_from_arguments(arguments)
    out_dir = Path(arguments.out or f"runs/continual-{time.strftime('%Y%m%d-%H%M%S')}")
    run_lab(config, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
