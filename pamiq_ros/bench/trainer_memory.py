"""Trainer memory: resident memory of the trainer's training objects once its buffers are full.

No ROS: the trainer node's learner (:func:`pamiq_ros.nodes.trainer.build_learner`, the config's
trainer parameters) fed with the sim world's experience by the curiosity mind acting on rendered
frames (the baselines' actor, :mod:`pamiq_ros.bench.baselines`), training as the node's training
thread does: ``train_next()`` in a loop, and after each run that updated a model what the node
does with it (``non_finite_parameters`` and ``weights``, the health figures every
``health_period_runs``). ``records_per_run`` experience records arrive per training run, so the
buffers fill in minutes rather than the stack's hours; ``--buffer-size`` makes them smaller still.

The process's RSS is sampled every ``sample_period`` seconds. The figure is the growth after every
buffer is full, as a least-squares slope in MB per minute (and per 1000 training runs, which
does not depend on the machine's speed), over the whole period after the fill and its second
half. With ``--tracemalloc`` the Python allocations (NumPy arrays included) still held at the
end and not at the fill are listed by source line, the largest first: where growth comes from.
The load average is recorded with the figures: on a shared machine fewer runs fit in a minute.

``--mode stack`` (the default) runs the trainer node in the sim stack instead and samples its
process's memory (total, anonymous, file-backed and shared), with the slopes after the
buffers are full: the figure the issue's target is read on.

Usage::

    python -m pamiq_ros.bench.trainer_memory [--mode stack|objects] [--seconds 300]
        [--buffer-size N] [--tracemalloc] [--records-per-run 4] [--config config/sim.yaml]
        [--out FILE]
"""

import argparse
import json
import math
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import torch
import yaml

from pamiq_ros.bench._shared import isolate_for_benchmark, load_now, machine_description
from pamiq_ros.bench.stack_figures import rss_summary

TARGET_MB_PER_MIN = 0.1
"""The issue's target: flat trainer memory after the buffers fill."""


@dataclass(frozen=True)
class MemoryRunOptions:
    """One run of the trainer's training objects.

    Attributes:
        seconds: Length of the run (s), the fill included.
        trainer_parameters: The config's trainer parameters.
        agent_parameters: The config's agent parameters (frame size, speeds).
        world_parameters: The config's sim_world parameters.
        buffer_size: Replaces the config's ``buffer_size`` and ``sequence_buffer_size`` (None
            keeps them), so every buffer fills within the run.
        records_per_run: Experience records added before each training run.
        sample_period: Seconds between RSS samples.
        trace: Whether to trace Python allocations (slower; lists where growth comes from).
        seed: Seed of models, world and actions.
        fixed_mmap_threshold: Set glibc's mmap threshold as the trainer node does
            (:func:`pamiq_ros.nodes._runtime.hold_memory_in_bounds`); False keeps glibc's
            dynamic threshold, for the comparison that names the growth's cause.
    """

    seconds: float = 300.0
    trainer_parameters: Mapping[str, Any] = field(default_factory=dict)
    agent_parameters: Mapping[str, Any] = field(default_factory=dict)
    world_parameters: Mapping[str, Any] = field(default_factory=dict)
    buffer_size: int | None = None
    records_per_run: int = 4
    sample_period: float = 5.0
    trace: bool = False
    seed: int = 0
    fixed_mmap_threshold: bool = True

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and self.sample_period > 0 and self.records_per_run >= 1):
            raise ValueError(
                "seconds and sample_period must be positive and records_per_run at least 1, got "
                f"{self.seconds}, {self.sample_period}, {self.records_per_run}"
            )
        if self.buffer_size is not None and self.buffer_size < 64:
            raise ValueError(f"buffer_size must be at least 64, got {self.buffer_size}")


FLOOR_WINDOW_S = 60.0
"""Window of the floor figure: the smallest sample per minute."""


def floor_summary(
    samples: Sequence[tuple[float, float]], after_s: float, window_s: float = FLOOR_WINDOW_S
) -> dict[str, Any]:
    """The slope of the memory's floor after ``after_s``: the smallest sample of each window.

    Training allocates and frees tens of MB per run, a sawtooth that makes the slope of all
    samples noisy; memory that is kept raises the floor, which this follows.
    """
    import numpy as np

    windows: dict[int, float] = {}
    for seconds, mb in samples:
        if seconds >= after_s:
            key = int((seconds - after_s) // window_s)
            windows[key] = min(mb, windows.get(key, math.inf))
    keys = sorted(windows)[:-1]  # the last window may be short: its minimum is biased up
    floors = [windows[key] for key in keys]
    summary = rss_summary([(key * window_s, mb) for key, mb in zip(keys, floors, strict=True)],
                          0.0)  # fmt: skip
    return {
        "windows": len(floors),
        "floor_mb": [round(mb, 1) for mb in floors],
        "slope_mb_per_min": summary["slope_mb_per_min"],
        "slope_ci95_mb_per_min": summary["slope_ci95_mb_per_min"],
        "slope_second_half_mb_per_min": summary["slope_second_half_mb_per_min"],
        "spread_mb": round(float(np.ptp(floors)), 1) if floors else None,
    }


def flat_memory_target(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The flat-memory target judged on a slope after the fill (all samples or the floor).

    ``met`` is the slope's verdict; ``inside_noise`` says when the slope's 95 % interval holds
    both the target and zero, so that the verdict is not a finding.
    """
    slope, interval = summary.get("slope_mb_per_min"), summary.get("slope_ci95_mb_per_min")
    return {
        "target": f"trainer RSS flat after the buffers fill (< {TARGET_MB_PER_MIN:g} MB/min, "
        "slope of the per-minute floor)",
        "value": slope,
        "unit": "MB/min",
        "ci95": interval,
        "met": None if slope is None else slope < TARGET_MB_PER_MIN,
        "inside_noise": None if interval is None else interval[0] < 0 < TARGET_MB_PER_MIN
        < interval[1],
    }  # fmt: skip


def rss_mb() -> float:
    """Resident memory (MB) of the calling process."""
    return float(psutil.Process().memory_info().rss) / 1e6


def growth_per_runs(samples: Sequence[tuple[float, float, int]], after_s: float) -> float | None:
    """MB per 1000 training runs, a least-squares slope over ``(s, MB, runs)`` after ``after_s``."""
    import numpy as np

    kept = [(runs, mb) for seconds, mb, runs in samples if seconds >= after_s]
    if len(kept) < 2 or kept[-1][0] == kept[0][0]:
        return None
    runs, mb = np.array(kept, dtype=np.float64).T
    return float(np.polyfit(runs / 1000.0, mb, 1)[0])


def top_growth(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int = 12
) -> list[dict[str, Any]]:
    """The source lines whose live Python allocations grew most between two snapshots."""
    stats = after.compare_to(before, "lineno")
    grown = [stat for stat in stats if stat.size_diff > 0][:count]
    return [
        {
            "where": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}",
            "grew_kb": round(stat.size_diff / 1e3, 1),
            "held_kb": round(stat.size / 1e3, 1),
            "blocks_grew": stat.count_diff,
        }
        for stat in grown
    ]


def run_memory(
    options: MemoryRunOptions, say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Runs the training objects for ``options.seconds``; returns the memory figures."""
    from pamiq_ros.bench.baselines import BaselineOptions, _Actor, build_learner

    trainer_parameters = dict(options.trainer_parameters)
    if options.buffer_size is not None:
        trainer_parameters["buffer_size"] = options.buffer_size
        trainer_parameters["sequence_buffer_size"] = options.buffer_size
    torch.set_num_threads(1)
    if options.fixed_mmap_threshold:
        from pamiq_ros.nodes._runtime import hold_memory_in_bounds

        hold_memory_in_bounds()
    if options.trace:
        tracemalloc.start(1)
    baseline = BaselineOptions(
        seed=options.seed, preset=str(trainer_parameters.get("preset", "tiny")),
        trainer_parameters=trainer_parameters, agent_parameters=options.agent_parameters,
        world_parameters=options.world_parameters,
    )  # fmt: skip
    learner = build_learner(baseline)
    actor = _Actor(baseline, learner)
    health_period = int(trainer_parameters.get("health_period_runs", 20))
    samples: list[tuple[float, float, int]] = []
    runs = 0
    full_at: float | None = None
    full_snapshot: tracemalloc.Snapshot | None = None
    started = time.monotonic()
    next_sample = started
    while (now := time.monotonic()) - started < options.seconds:
        if now >= next_sample:
            samples.append((round(now - started, 2), round(rss_mb(), 2), runs))
            next_sample += options.sample_period
        for _ in range(options.records_per_run):
            actor.act()
        if full_at is None and all(
            len(buffer) >= buffer.max_size for buffer in learner.buffers.values()
        ):
            full_at = now - started
            say(f"buffers full after {full_at:.0f} s ({runs} runs), RSS {rss_mb():.1f} MB")
            if options.trace:
                full_snapshot = tracemalloc.take_snapshot()
        result = learner.train_next()
        if result is None:
            continue
        runs += 1
        for model in result.updated_models:
            learner.non_finite_parameters(model)
            learner.weights(model)
        if health_period and runs % health_period == 0:
            learner.health()
    samples.append((round(time.monotonic() - started, 2), round(rss_mb(), 2), runs))
    growth: list[dict[str, Any]] = []
    if full_snapshot is not None:
        growth = top_growth(full_snapshot, tracemalloc.take_snapshot())
    if options.trace:
        tracemalloc.stop()
    after = full_at if full_at is not None else math.inf
    summary = rss_summary([(t, mb) for t, mb, _ in samples], after)
    return {
        "seconds": options.seconds,
        "buffer_sizes": {name: buffer.max_size for name, buffer in learner.buffers.items()},
        "records_per_run": options.records_per_run,
        "fixed_mmap_threshold": options.fixed_mmap_threshold,
        "records_added": actor.steps,
        "training_runs": runs,
        "buffers_full_after_s": None if full_at is None else round(full_at, 1),
        "rss_after_full": summary,
        "mb_per_1000_runs_after_full": (
            None if full_at is None else _rounded(growth_per_runs(samples, full_at))
        ),
        "target": flat_memory_target(summary),
        "python_allocations_grown_after_full": growth,
        "samples_s_mb_runs": samples,
        **load_now(),
    }


# --- the trainer node in the sim stack -----------------------------------------------------------

MEMORY_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
"""``/proc/<pid>/status`` fields sampled: the total and its anonymous (heap, torch), file-backed
(libraries) and shared-memory parts, so a growth is placed before it is explained."""


def status_memory_mb(pid: int) -> dict[str, float] | None:
    """The :data:`MEMORY_FIELDS` of a process in MB, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in MEMORY_FIELDS:
            found[key] = round(int(rest.split()[0]) / 1000.0, 2)  # kB -> MB
    return found


def measure_stack_memory(
    config: Mapping[str, Any],
    seconds: float,
    out_dir: Path,
    env: Mapping[str, str],
    buffer_size: int | None = None,
    sample_period: float = 5.0,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Runs the sim stack for ``seconds`` and samples the trainer process's memory.

    The buffers count as full once the trainer received as many records as its largest buffer
    holds (``experience_received`` in its status); slopes are taken after that.

    Raises:
        RuntimeError: If the trainer never started.
    """
    import socket

    import yaml as yaml_module

    from pamiq_ros.bench._process_group import GroupProcess
    from pamiq_ros.bench.curiosity import arm_config, free_port
    from pamiq_ros.bench.stack_figures import DiagnosticsListener, launched_pids

    trainer: dict[str, Any] = {"report_period": 2.0}
    if buffer_size is not None:
        trainer["buffer_size"] = trainer["sequence_buffer_size"] = buffer_size
    document = arm_config(
        config, free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM), {"trainer": trainer}
    )
    parameters = document["trainer"]["ros__parameters"]
    capacity = max(int(parameters.get(name, 0)) for name in (
        "buffer_size", "sequence_buffer_size", "policy_buffer_size"))  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path, log_path = out_dir / "memory-stack.yaml", out_dir / "memory-stack.log"
    config_path.write_text(yaml_module.safe_dump(document, sort_keys=False))
    command = [
        sys.executable, "-m", "pamiq_ros.cli", "launch", str(config_path),
        "--duration", f"{seconds + 60:g}", "--runs-dir", str(out_dir / "runs"),
    ]  # fmt: skip
    listener = DiagnosticsListener()
    samples: list[dict[str, float]] = []
    full_at: float | None = None
    say(f"memory: the sim stack for {seconds:g} s (log {log_path})")
    stack = GroupProcess(command, env, log_path)
    started = time.monotonic()
    try:
        next_sample = started
        while (now := time.monotonic()) - started < seconds and stack.popen.poll() is None:
            if now >= next_sample:
                next_sample += sample_period
                pid = launched_pids(log_path.read_text(errors="replace")).get("trainer")
                memory = None if pid is None else status_memory_mb(pid)
                received = listener.last("trainer").get("experience_received")
                if memory is not None:
                    samples.append({"s": round(now - started, 1), **memory})
                if full_at is None and isinstance(received, float) and received >= capacity:
                    full_at = now - started
                    say(f"memory: buffers full after {full_at:.0f} s")
            time.sleep(0.2)
        runs = listener.last("trainer").get("runs")
    finally:
        stack.stop()
        listener.close()
    if not samples:
        raise RuntimeError(f"memory: the trainer never ran; see {log_path}")
    after = full_at if full_at is not None else math.inf
    breakdown = {
        field: rss_summary([(row["s"], row[field]) for row in samples if field in row], after)
        for field in MEMORY_FIELDS
    }
    floor = floor_summary([(row["s"], row["VmRSS"]) for row in samples if "VmRSS" in row], after)
    return {
        "seconds": seconds,
        "buffer_capacity_records": capacity,
        "buffers_full_after_s": None if full_at is None else round(full_at, 1),
        "trainer_runs": runs if isinstance(runs, float) else None,
        "after_full": breakdown,
        "floor_after_full": floor,
        "target": flat_memory_target(floor),
        "samples": samples,
        "log": str(log_path),
        **load_now(),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _parameters(config: Mapping[str, Any], node: str) -> dict[str, Any]:
    section = config.get(node)
    return dict(section.get("ros__parameters") or {}) if isinstance(section, Mapping) else {}


def main(args: Sequence[str] | None = None) -> int:
    """Runs the memory bench, prints the figures and writes them as JSON; returns the status."""
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.trainer_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--mode", choices=("stack", "objects"), default="stack",
        help="stack: the trainer node in the sim stack; objects: its training objects alone",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the run")
    parser.add_argument(
        "--buffer-size", type=int, default=None,
        help="buffer_size and sequence_buffer_size both (default: the config's)",
    )  # fmt: skip
    parser.add_argument("--records-per-run", type=int, default=4)
    parser.add_argument("--sample-period", type=float, default=5.0)
    parser.add_argument("--tracemalloc", action="store_true", help="list where growth comes from")
    parser.add_argument(
        "--glibc-mmap-threshold", action="store_true",
        help="objects: keep glibc's dynamic mmap threshold (the trainer node fixes it)",
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=Path("config/sim.yaml"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parsed = parser.parse_args(args)
    try:
        config = yaml.safe_load(parsed.config.read_text())
        options = MemoryRunOptions(
            seconds=parsed.seconds, trainer_parameters=_parameters(config, "trainer"),
            agent_parameters=_parameters(config, "agent"),
            world_parameters=_parameters(config, "sim_world"), buffer_size=parsed.buffer_size,
            records_per_run=parsed.records_per_run, sample_period=parsed.sample_period,
            trace=parsed.tracemalloc, seed=parsed.seed,
            fixed_mmap_threshold=not parsed.glibc_mmap_threshold,
        )  # fmt: skip
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as error:
        print(f"trainer memory: {error}", file=sys.stderr)
        return 2
    if parsed.mode == "stack":
        out_dir = (parsed.out.parent if parsed.out else Path("runs") / "bench-memory").absolute()
        env = isolate_for_benchmark(1 + os.getpid() % 101, out_dir)
        try:
            measured = measure_stack_memory(
                config, parsed.seconds, out_dir, env, parsed.buffer_size, parsed.sample_period,
                print,
            )  # fmt: skip
        except RuntimeError as error:
            print(f"trainer memory: {error}", file=sys.stderr)
            return 1
    else:
        measured = run_memory(options, print)
    figures = {"machine": machine_description(), "mode": parsed.mode, **measured}
    shown = {k: v for k, v in figures.items() if k not in ("samples_s_mb_runs", "samples")}
    print(json.dumps(shown, indent=1))
    if parsed.out is not None:
        parsed.out.parent.mkdir(parents=True, exist_ok=True)
        parsed.out.write_text(json.dumps(figures, indent=1))
        print(f"written: {parsed.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
