"""The curiosity benchmark through the full ROS stack (``--mode stack``): a confirmation.

For each seed, the whole sim stack (``pamiq-ros launch``) runs once per arm for the same
number of agent steps (``--steps``, counted on the agent's ``vrchat_input``, one message per
step): arm ``curiosity`` with the agent acting by its PPO policy (``policy: ppo``), arm
``uniform`` with the same world models and records but uniformly random actions
(``policy: random``). The fast mode's other two arms (action-matched random, zero-reward PPO)
need agent settings the agent node does not have, so the stack runs these two. Training
follows the trainer node's own data-driven schedule, not the fast mode's fixed one. Agent,
trainer and world get the seed. Each arm runs on a copy of the config with free ports, in a
DDS domain of the benchmark's own, loopback only, in its own process group (stopped by group).

Cost: an arm takes ``steps / rate_hz`` seconds of wall time (the agent runs in real time,
10 Hz in ``config/sim.yaml``: 3000 steps are 5 minutes) plus about 30 s to start and stop, so
two arms of two seeds at the default 3000 steps take about 22 minutes. Per arm it measures:

* visited area: this process subscribes to ``world/pose`` (the ground truth) and counts the
  distinct cells of a grid (``--cell-size``, 1 m) over ``x, y`` the avatar passed through,
  also over agent steps (every ``--area-interval`` steps);
* the forward-dynamics loss over time, read back from the trainer's TensorBoard events
  (``<run>/trainer/tensorboard``, tag ``forward_dynamics/loss``): a downsampled series and the
  means of its first and last 10 %;
* a linear probe: how well a ridge regression on the JEPA encoder's output recovers the pose
  (x, y, cos yaw, sin yaw; held-out R^2) on frames the sim renders at random poses, with the
  encoder at the start (``build_jepa(preset, seed)``, the trainer's version 0) and at the end
  (the weights in the run's newest trainer checkpoint). A ridge on downscaled pixels is
  reported beside it as a reference.

Across seeds it gives the paired difference of cells visited (curiosity minus uniform) with
a bootstrap 95 % interval. Progress lines go to stdout while it runs; at the end a table is
printed and ``<out>/curiosity_bench.json`` holds every figure, the settings, the seeds and the
machine. The stacks' output goes to ``<out>/logs/``, their run folders to ``<out>/runs/``.

Usage::

    python -m pamiq_ros.bench.curiosity --mode stack [--steps 3000] [--seeds 0[,1,...]]
        [--out DIR] [--config config/sim.yaml] [--domain-id N] [--cell-size 1.0]
        [--probe-samples 600]
"""

import argparse
import datetime
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import (
    BackgroundNode,
    comma_choices,
    isolate_for_benchmark,
    machine_description,
)
from pamiq_ros.bench.probe import (
    PROBE_TARGETS,
    ProbePoses,
    ProbeResult,
    VisitedCells,
    encoder_features,
    linear_probe,
    pixel_features,
    render_probe_dataset,
)
from pamiq_ros.bench.statistics import bootstrap_ci, paired_differences
from pamiq_ros.bringup.description import on_ports

ARMS: dict[str, str] = {"curiosity": "ppo", "uniform": "random"}
"""Arm name -> the agent's ``policy`` parameter."""

POSE_TOPIC = "world/pose"
ACTION_TOPIC = "vrchat_input"
"""The agent publishes one message here per step: what the benchmark counts steps on."""
FD_LOSS_TAG = "forward_dynamics/loss"
TRAINER_STORE = Path("trainer") / "checkpoints"
TRAINER_TENSORBOARD = Path("trainer") / "tensorboard"
ENCODER_FILE = Path("models") / "jepa.safetensors"
SERIES_POINTS = 60
"""Points kept of a loss series in the report (evenly spaced over the run)."""
STOP_GRACE_S = 120.0
"""How long past its expected time a stack may take to start and stop before it is stopped."""
SLOW_FACTOR = 2.0
"""How much slower than ``steps / rate_hz`` an arm may run (a loaded CPU) before it is stopped."""


# --- series from TensorBoard --------------------------------------------------------------------


@dataclass(frozen=True)
class ScalarPoint:
    """One logged scalar: seconds since the arm started, training step and value."""

    time_s: float
    step: int
    value: float


def read_scalars(log_dir: Path, tag: str, start_wall_time: float = 0.0) -> list[ScalarPoint]:
    """Every value of ``tag`` in the TensorBoard events under ``log_dir``, oldest first.

    Args:
        log_dir: The folder of the event files.
        tag: The scalar's tag.
        start_wall_time: Unix time subtracted from each event's wall time.

    Returns:
        The points; empty if the folder or the tag does not exist.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not log_dir.is_dir():
        return []
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return []
    return [
        ScalarPoint(event.wall_time - start_wall_time, int(event.step), float(event.value))
        for event in sorted(events.Scalars(tag), key=lambda event: (event.wall_time, event.step))
    ]


def scalar_tags(log_dir: Path) -> list[str]:
    """The scalar tags logged under ``log_dir`` (empty if none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not log_dir.is_dir():
        return []
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 1})
    events.Reload()
    return sorted(events.Tags().get("scalars", []))


def summarise_series(
    points: Sequence[ScalarPoint], max_points: int = SERIES_POINTS
) -> dict[str, Any]:
    """A loss series for the report: count, means of the first and last 10 %, downsampled points.

    The first and last 10 % hold at least one point each; means are None for an empty series.
    The downsampled series keeps the first and the last point.
    """
    count = len(points)
    if not count:
        return {"count": 0, "first_10pct_mean": None, "last_10pct_mean": None, "series": []}
    tenth = max(1, count // 10)
    values = [point.value for point in points]
    keep = sorted({round(i * (count - 1) / max(1, max_points - 1)) for i in range(max_points)})
    return {
        "count": count,
        "first_10pct_mean": float(np.mean(values[:tenth])),
        "last_10pct_mean": float(np.mean(values[-tenth:])),
        "series": [
            {"time_s": round(points[i].time_s, 2), "step": points[i].step, "value": points[i].value}
            for i in keep
        ],
    }


# --- configs, ports and checkpoints -------------------------------------------------------------


def free_port(kind: int) -> int:
    """A port on 127.0.0.1 that is free now (``socket.SOCK_DGRAM`` or ``socket.SOCK_STREAM``)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def arm_config(
    base: Mapping[str, Any],
    udp_port: int,
    tcp_port: int,
    overrides: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A copy of a config document on the given ports (OSC and video), with per-node overrides.

    Every node's OSC port (``osc_port``, ``port``) becomes ``udp_port``, the video server's port
    ``tcp_port`` and a camera ``source`` the stream URL on it, so the copy's nodes talk to each
    other only.

    Raises:
        ValueError: If an override names a node the config does not run.
    """
    document = on_ports(base, udp_port, tcp_port)
    for node, parameters in overrides.items():
        if node not in document:
            raise ValueError(f"the config runs no {node!r} node to set {sorted(parameters)} on")
        document[node].setdefault("ros__parameters", {}).update(parameters)
    return document


def check_config(document: Mapping[str, Any], path: Path) -> None:
    """Refuses a config that cannot run the benchmark, saying what is missing.

    The agent must declare ``policy`` (so the random arm really acts at random) and the trainer,
    agent and sim world must be in it.

    Raises:
        ValueError: Naming the config and what it lacks.
    """
    for node in ("sim_world", "camera_sensor", "osc_actuator", "agent", "trainer"):
        if not isinstance(document.get(node), dict):
            raise ValueError(f"{path}: no {node} section; the benchmark runs the full sim stack")
    agent = document["agent"].get("ros__parameters") or {}
    if "policy" not in agent:
        raise ValueError(
            f"{path}: the agent section has no 'policy' parameter; the benchmark needs the "
            "curiosity mind's agent (policy: ppo | random)"
        )


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint of a run folder that holds the encoder, or None."""
    from pamiq_ros.core.checkpoint import CheckpointStore

    store = CheckpointStore(run_dir / TRAINER_STORE)
    for checkpoint in reversed(store.checkpoints()):
        if (checkpoint / ENCODER_FILE).is_file():
            return checkpoint
    return None


# --- the probe ----------------------------------------------------------------------------------


@dataclass
class ProbeData:
    """The probe's frames and poses, the same for every arm, seed and time."""

    frames: npt.NDArray[np.uint8]
    poses: ProbePoses
    seed: int

    def probe(self, features: npt.NDArray[np.float64]) -> ProbeResult:
        """Held-out R^2 of a ridge regression from ``features`` to the poses."""
        return linear_probe(features, self.poses.targets(), PROBE_TARGETS, seed=self.seed)

    def pixel_features(self) -> npt.NDArray[np.float64]:
        """Downscaled frames as features: the reference an encoder should beat."""
        return pixel_features(self.frames)


def encoder_probe(data: ProbeData, preset: str, seed: int, checkpoint: Path | None) -> ProbeResult:
    """Probe of the JEPA encoder of ``preset`` and ``seed``, loaded from ``checkpoint`` if given.

    Raises:
        RuntimeError: If the checkpoint's encoder weights do not fit the preset.
    """
    from safetensors.torch import load_file

    from pamiq_ros.models.jepa import build_jepa

    model = build_jepa(preset, seed)
    if checkpoint is not None:
        try:
            model.load_state_dict(load_file(str(checkpoint / ENCODER_FILE)), strict=True)
        except (RuntimeError, OSError) as error:
            raise RuntimeError(
                f"{checkpoint / ENCODER_FILE} does not load into a {preset!r} JEPA: {error}"
            ) from error
    model.eval()
    return data.probe(encoder_features(model.encode, data.frames))


# --- one arm ------------------------------------------------------------------------------------


@dataclass
class PoseRecord:
    """What ``world/pose`` showed during one arm's first ``max_steps`` agent steps.

    Cells are timed by the agent steps counted when the pose arrived.
    """

    cells: VisitedCells
    max_steps: int
    steps: int = 0
    messages: int = 0
    first_pose_step: int | None = None
    distance_m: float = 0.0
    _last: tuple[float, float] | None = field(default=None, repr=False)

    def count_step(self) -> None:
        """Counts one agent step (one action message)."""
        self.steps += 1

    def add(self, x: float, y: float) -> None:
        """Records one pose, at the steps counted so far; after ``max_steps`` it is ignored."""
        if self.steps > self.max_steps or not (math.isfinite(x) and math.isfinite(y)):
            return
        self.messages += 1
        if self.first_pose_step is None:
            self.first_pose_step = self.steps
        if self._last is not None:
            self.distance_m += math.hypot(x - self._last[0], y - self._last[1])
        self._last = (x, y)
        self.cells.add(x, y, self.steps)


class PoseListener:
    """Subscribes to ``world/pose`` and the agent's actions, spinning in a thread of its own."""

    def __init__(self) -> None:
        from geometry_msgs.msg import PoseStamped
        from pamiq_ros_interfaces.msg import VRChatInput

        self._lock = threading.Lock()
        self._record: PoseRecord | None = None
        self._ros = BackgroundNode(
            "curiosity_bench",
            [
                (PoseStamped, POSE_TOPIC, self._on_pose, 50),
                (VRChatInput, ACTION_TOPIC, self._on_action, 50),
            ],
        )

    def record_into(self, record: PoseRecord | None) -> None:
        """Poses and steps go into ``record`` from now on (None: nowhere)."""
        with self._lock:
            self._record = record

    def close(self) -> None:
        """Stops listening and shuts this process's ROS context down."""
        self._ros.close()

    def _on_pose(self, message: Any) -> None:
        position = message.pose.position
        with self._lock:
            if self._record is not None:
                self._record.add(float(position.x), float(position.y))

    def _on_action(self, message: Any) -> None:
        del message  # one message per agent step; its content does not matter here
        with self._lock:
            if self._record is not None:
                self._record.count_step()


class _Stack(GroupProcess):
    """``pamiq-ros launch`` of one arm in its own process group, stopped by group."""


@dataclass(frozen=True)
class BenchOptions:
    """What every arm shares."""

    base_config: Mapping[str, Any]
    config_path: Path
    steps: int
    rate_hz: float
    cell_size: float
    area_interval: float
    out_dir: Path
    env: Mapping[str, str]
    preset: str | None
    device: str | None
    loss_tag: str


def say(line: str) -> None:
    """A progress line with the time, flushed at once."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


def run_arm(
    arm: str, seed: int, options: BenchOptions, listener: PoseListener, data: ProbeData
) -> dict[str, Any]:
    """Runs one arm's stack for ``options.steps`` agent steps and measures it (module docstring).

    Raises:
        RuntimeError: If the stack published no pose or left no usable trainer checkpoint.
    """
    name = f"{arm}-seed{seed}"
    agent: dict[str, Any] = {"policy": ARMS[arm], "seed": seed}
    trainer: dict[str, Any] = {"seed": seed}
    if options.preset:
        agent["preset"] = trainer["preset"] = options.preset
    if options.device:
        agent["device"] = trainer["device"] = options.device
    overrides = {"agent": agent, "trainer": trainer, "sim_world": {"seed": seed}}
    document = arm_config(
        options.base_config, free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM), overrides
    )
    config_path = options.out_dir / "configs" / f"{name}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    preset = str(document["trainer"]["ros__parameters"].get("preset", "tiny"))
    limit_s = SLOW_FACTOR * options.steps / options.rate_hz + STOP_GRACE_S
    runs_dir = options.out_dir / "runs" / name
    log_path = options.out_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pamiq_ros.cli", "launch", str(config_path),
        "--duration", f"{limit_s:g}", "--runs-dir", str(runs_dir),
    ]  # fmt: skip

    record = PoseRecord(VisitedCells(options.cell_size), options.steps)
    say(f"{name}: starting the stack for {options.steps} agent steps (log {log_path})")
    start_wall, start = time.time(), time.monotonic()
    listener.record_into(record)
    stack = _Stack(command, options.env, log_path)
    try:
        next_report = options.area_interval
        while stack.popen.poll() is None and record.steps < options.steps:
            elapsed = time.monotonic() - start
            if elapsed > limit_s + STOP_GRACE_S:
                say(f"{name}: only {record.steps} steps after {elapsed:.0f} s; stopping it")
                break
            if record.steps >= next_report:
                say(
                    f"{name}: step {record.steps}/{options.steps}: {record.cells.count} cells "
                    f"visited, {record.distance_m:.1f} m walked, {elapsed:.0f} s"
                )
                next_report += options.area_interval
            time.sleep(0.2)
    finally:
        stack.stop()
        listener.record_into(None)
    elapsed = time.monotonic() - start
    exit_code = stack.popen.returncode
    if not record.messages:
        raise RuntimeError(f"{name}: no {POSE_TOPIC} message arrived; last output:\n{stack.tail()}")
    run_dirs = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    if not run_dirs:
        raise RuntimeError(f"{name}: no run folder under {runs_dir}")
    run_dir = run_dirs[-1]
    checkpoint = newest_checkpoint(run_dir)
    if checkpoint is None:
        raise RuntimeError(
            f"{name}: no trainer checkpoint with {ENCODER_FILE} under {run_dir / TRAINER_STORE}; "
            f"last output:\n{stack.tail()}"
        )
    tensorboard = run_dir / TRAINER_TENSORBOARD
    loss = summarise_series(read_scalars(tensorboard, options.loss_tag, start_wall))
    say(f"{name}: stack stopped (exit {exit_code}, {elapsed:.0f} s); probing {checkpoint.name}")
    probe_end = encoder_probe(data, preset, seed, checkpoint)

    steps = area_sample_times(options.steps, options.area_interval)
    result = {
        "arm": arm,
        "policy": ARMS[arm],
        "seed": seed,
        "preset": preset,
        "run_dir": str(run_dir),
        "config": str(config_path),
        "log": str(log_path),
        "exit_code": exit_code,
        "elapsed_s": round(elapsed, 1),
        "agent_steps": record.steps,
        "pose_messages": record.messages,
        "first_pose_step": record.first_pose_step,
        "distance_m": round(record.distance_m, 2),
        "cells_visited": record.cells.count,
        "area_m2": record.cells.area,
        "cells_over_steps": [
            {"step": int(step), "cells": cells}
            for step, cells in record.cells.counts_over_time(steps)
        ],
        "fd_loss": {"tag": options.loss_tag, **loss},
        "tensorboard_tags": scalar_tags(tensorboard),
        "checkpoint": str(checkpoint),
        "probe_end": probe_end.as_dict(),
    }
    fd_first, fd_last = loss["first_10pct_mean"], loss["last_10pct_mean"]
    say(
        f"{name}: {record.cells.count} cells, FD loss "
        + (f"{fd_first:.4g} -> {fd_last:.4g}" if fd_first is not None else "not logged")
        + f", probe R^2 at end {probe_end.mean_r2:.3f}"
    )
    if exit_code != 0:
        say(f"{name}: WARNING: the stack exited with status {exit_code}; see {log_path}")
    return result


def area_sample_times(seconds: float, interval: float) -> list[float]:
    """Every ``interval`` seconds up to ``seconds``, and ``seconds`` itself."""
    times = [step * interval for step in range(1, int(seconds // interval) + 1)]
    if not times or times[-1] < seconds:
        times.append(seconds)
    return times


# --- the report ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _probe_cell(probe: Mapping[str, Any]) -> str:
    parts = " ".join(f"{probe['r2'][name]:+.2f}" for name in PROBE_TARGETS)
    return f"{probe['mean_r2']:+.3f} ({parts})"


def format_table(report: Mapping[str, Any]) -> str:
    """The report as a text table: one row per seed and arm, the probe at start per seed."""
    header = (
        f"{'seed':>4}  {'arm':<10} {'cells':>5} {'area m2':>8} {'walked m':>8}  "
        f"{'FD loss first 10% -> last 10%':<30}  probe R^2 mean (x y cos sin)"
    )
    lines = [header, "-" * len(header)]
    for seed, entry in report["seeds"].items():
        lines.append(
            f"{seed:>4}  {'start':<10} {'-':>5} {'-':>8} {'-':>8}  {'-':<30}  "
            + _probe_cell(entry["probe_start"])
        )
        for arm, result in entry["arms"].items():
            loss = result["fd_loss"]
            loss_cell = f"{_fmt(loss['first_10pct_mean'], 4)} -> {_fmt(loss['last_10pct_mean'], 4)}"
            loss_cell += f" ({loss['count']})"
            lines.append(
                f"{seed:>4}  {arm:<10} {result['cells_visited']:>5} {result['area_m2']:>8.1f} "
                f"{result['distance_m']:>8.1f}  {loss_cell:<30}  "
                + _probe_cell(result["probe_end"])
            )
    lines.append(f"pixel reference probe R^2: {_probe_cell(report['probe_pixels'])}")
    return "\n".join(lines)


def summarise_arms(seeds: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per arm, means over the seeds of cells visited, FD losses and end probe R^2."""

    def mean(values: list[Any]) -> float | None:
        present = [value for value in values if value is not None]
        return float(np.mean(present)) if present else None

    summary: dict[str, dict[str, float | None]] = {}
    for arm in ARMS:
        results = [entry["arms"][arm] for entry in seeds.values() if arm in entry["arms"]]
        if not results:
            continue
        summary[arm] = {
            "cells_visited_mean": mean([r["cells_visited"] for r in results]),
            "distance_m_mean": mean([r["distance_m"] for r in results]),
            "fd_loss_first_10pct_mean": mean([r["fd_loss"]["first_10pct_mean"] for r in results]),
            "fd_loss_last_10pct_mean": mean([r["fd_loss"]["last_10pct_mean"] for r in results]),
            "probe_end_mean_r2": mean([r["probe_end"]["mean_r2"] for r in results]),
        }
    summary["start"] = {
        "probe_start_mean_r2": mean([e["probe_start"]["mean_r2"] for e in seeds.values()])
    }
    return summary


def paired_cells(seeds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Cells visited, curiosity minus uniform, paired by seed, with a bootstrap 95 % interval.

    None unless some seed ran both arms.
    """
    by_arm = {
        arm: {
            int(seed): float(entry["arms"][arm]["cells_visited"])
            for seed, entry in seeds.items()
            if arm in entry["arms"]
        }
        for arm in ("curiosity", "uniform")
    }
    if not set(by_arm["curiosity"]) & set(by_arm["uniform"]):
        return None
    differences = paired_differences(by_arm["curiosity"], by_arm["uniform"])
    return {
        "per_seed": {str(seed): value for seed, value in differences.items()},
        **bootstrap_ci(list(differences.values())).as_dict(),
    }


# --- command line -------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """Distinct non-negative seeds separated by commas (argparse type)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers separated by commas: {text!r}"
        ) from None
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct non-negative integers: {text!r}")
    return seeds


def _parse_arms(text: str) -> list[str]:
    return comma_choices(text, list(ARMS), "arms")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.curiosity --mode stack",
        description="Curiosity agent vs. uniformly random policy through the full sim stack, "
        "equal agent steps per arm: visited area, forward-dynamics loss and a linear pose "
        "probe of the encoder at start and end.",
    )
    parser.add_argument("--steps", type=int, default=3000, help="agent steps per arm")
    parser.add_argument(
        "--seeds", type=parse_seeds, default=[0], help="comma-separated seeds (default 0)"
    )
    parser.add_argument(
        "--arms", type=_parse_arms, default=list(ARMS), help="default: curiosity,uniform"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default runs/bench-curiosity-<time>/"
    )
    parser.add_argument(
        "--config", type=Path, default=Path("config/sim.yaml"), help="the sim stack's config"
    )
    parser.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="DDS domain of the stacks and this process (default: 1 + PID mod 101, never 0)",
    )
    parser.add_argument("--cell-size", type=float, default=1.0, help="visited-area grid (m)")
    parser.add_argument(
        "--area-interval", type=int, default=300, help="agent steps between area samples"
    )
    parser.add_argument(
        "--probe-samples", type=int, default=600, help="frames rendered for the linear probe"
    )
    parser.add_argument("--probe-seed", type=int, default=0, help="poses and split of the probe")
    parser.add_argument(
        "--preset", default=None, help="model size preset for agent and trainer (default: config)"
    )
    parser.add_argument(
        "--device", default=None, help="torch device of agent and trainer (default: config)"
    )
    parser.add_argument("--loss-tag", default=FD_LOSS_TAG, help="TensorBoard tag of the FD loss")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status."""
    parser = _parser()
    options = parser.parse_args(args)
    if options.steps < 1 or not options.cell_size > 0 or options.area_interval < 1:
        parser.error("--steps, --cell-size and --area-interval must be positive")
    if options.probe_samples < 20:
        parser.error("--probe-samples must be at least 20")
    domain_id = options.domain_id if options.domain_id is not None else 1 + os.getpid() % 101
    if not 1 <= domain_id <= 232:
        parser.error("--domain-id must be in 1..232")
    try:
        base_config = yaml.safe_load(options.config.read_text())
        if not isinstance(base_config, dict):
            raise ValueError(f"{options.config}: not a ROS 2 parameter file")
        check_config(base_config, options.config)
        rate_hz = float(base_config["agent"]["ros__parameters"].get("rate_hz", 10.0))
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"curiosity benchmark: {error}", file=sys.stderr)
        return 2
    out_dir = options.out or Path("runs") / f"bench-curiosity-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    env = isolate_for_benchmark(domain_id, out_dir)
    bench = BenchOptions(
        base_config=base_config,
        config_path=options.config,
        steps=options.steps,
        rate_hz=rate_hz,
        cell_size=options.cell_size,
        area_interval=options.area_interval,
        out_dir=out_dir,
        env=env,
        preset=options.preset,
        device=options.device,
        loss_tag=options.loss_tag,
    )
    started = time.time()
    say(
        f"curiosity benchmark (stack): arms {', '.join(options.arms)}, seeds {options.seeds}, "
        f"{options.steps} agent steps each (about {options.steps / rate_hz / 60:.1f} min at "
        f"{rate_hz:g} Hz), DDS domain {domain_id} (loopback only), out {out_dir}"
    )
    say(f"rendering {options.probe_samples} probe frames")
    frames, poses = render_probe_dataset(options.probe_samples, seed=options.probe_seed)
    data = ProbeData(frames, poses, options.probe_seed)
    pixel_probe = data.probe(data.pixel_features())
    say(f"pixel reference probe R^2 {pixel_probe.mean_r2:.3f}")

    seeds: dict[str, dict[str, Any]] = {}
    listener = PoseListener()
    try:
        for seed in options.seeds:
            preset = options.preset or str(
                base_config["trainer"]["ros__parameters"].get("preset", "tiny")
            )
            probe_start = encoder_probe(data, preset, seed, None)
            say(f"seed {seed}: probe R^2 of the initial encoder {probe_start.mean_r2:.3f}")
            entry: dict[str, Any] = {"probe_start": probe_start.as_dict(), "arms": {}}
            seeds[str(seed)] = entry
            for arm in options.arms:
                entry["arms"][arm] = run_arm(arm, seed, bench, listener, data)
    except RuntimeError as error:
        print(f"curiosity benchmark failed: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("curiosity benchmark interrupted", file=sys.stderr, flush=True)
        return 130
    finally:
        listener.close()
    report: dict[str, Any] = {
        "benchmark": "curiosity",
        "mode": "stack",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "machine": machine_description(),
        "settings": {
            "config": str(options.config),
            "steps": options.steps,
            "agent_rate_hz": rate_hz,
            "seeds": options.seeds,
            "arms": {arm: ARMS[arm] for arm in options.arms},
            "cell_size_m": options.cell_size,
            "area_interval_steps": options.area_interval,
            "probe_samples": options.probe_samples,
            "probe_seed": options.probe_seed,
            "probe_targets": list(PROBE_TARGETS),
            "probe_split": "70% fit (alpha by 5-fold CV), 30% held out",
            "preset": options.preset,
            "device": options.device,
            "loss_tag": options.loss_tag,
            "domain_id": domain_id,
        },
        "probe_pixels": pixel_probe.as_dict(),
        "seeds": seeds,
        "summary": summarise_arms(seeds),
        "paired_cells_curiosity_minus_uniform": paired_cells(seeds),
    }
    path = out_dir / "curiosity_bench.json"
    path.write_text(json.dumps(report, indent=1))
    print()
    print(format_table(report))
    paired = report["paired_cells_curiosity_minus_uniform"]
    if paired is not None:
        print(
            f"paired cells, curiosity minus uniform: {paired['estimate']:+.1f} "
            f"[{paired['low']:+.1f}, {paired['high']:+.1f}] over {paired['samples']} seed(s)"
        )
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
