"""Stack figures: end-to-end latency, camera-to-agent throughput, memory and weight freshness.

Every stack is a copy of the sim config (``pamiq-ros launch``) on free ports, in the DDS domain
of the caller, loopback only, in its own process group (stopped by group). This process reads
the nodes' ``/diagnostics`` and samples their resident memory. Three parts:

1. **Full stack** (``stack_seconds``, 10 minutes in ``make bench``), with the latency hooks on:
   ``sim_world.stamp_frames`` writes each frame's send time (wall clock) into its pixels just
   before JPEG encoding, ``camera_sensor.stamp_from_frame`` reads it back as the image stamp,
   the agent stamps ``vrchat_input`` with the stamp of the frame it acted on, and
   ``osc_actuator.tag_answers`` follows that step's OSC inputs with ``/pamiq/answers`` carrying
   it; the world times the first answer to each frame on arrival. One machine, one clock. From
   this run:

   * ``latency``: frame leaves the world -> the OSC answer arrives, p50/p99/max/mean (ms), from
     the world's figures at the end of the run (every answer since start-up);
   * ``memory``: RSS of each node's process tree (pids from the launcher's ``started X (pid N)``
     lines, children included), sampled every ``memory_sample_period`` s; start (first sample
     after ``warmup_seconds``), end, max, and growth as a least-squares slope (MB per minute)
     over the samples after warm-up;
   * ``freshness.default_model``: the agent's ``sync_latency_p50_ms`` / ``_max_ms``
     (announcement by the trainer, right after a run, to the first step acting with the new
     weights) and the trainer's ``policy_lag_mean`` (versions), as last reported.

2. **Throughput** at each of ``throughput_sizes``: world, camera and agent only (no trainer,
   no actuator), world and camera at ``throughput_fps``; frames the agent received per second
   (its ``frames_received`` over the time between the first report after warm-up and the last).

3. **Frame age** (``frame_age_seconds``): the full stack with a ``frame_age_size`` (640x480)
   MJPEG stream at ``frame_age_fps`` into the camera (native size), the agent fitting each
   frame to its input and the trainer training on the agent's experience. The stream comes
   from ffmpeg, like an IP camera (``frame_age_source`` ``ffmpeg``, the default when ffmpeg is
   installed; the world keeps its own small frames for the OSC loop), or from the world
   rendering at that size (``sim_world``, which a loaded 2-core machine cannot render at
   20 fps). Each frame carries its send time in its pixels, the camera stamps the image with
   it (``stamp_from_frame``), and the agent reports the age of the frames it receives (stamp to
   receipt) as p50/p99 over its newest 200 frames. Windows that do not
   overlap (reports at least 200 frames apart, after warm-up) are kept; the figure is the
   median of their p50s and the largest of their p99s (conservative), each window in the
   JSON. Target: p99 under two frame periods. The camera's own capture-to-publish age and the
   trainer's runs during the measurement are reported beside it.

4. **Weight freshness of larger models** (``weight_sizes``, about 10 M and 50 M parameters):
   the weight-sync bench's publish -> ready figures over shared memory
   (``pamiq_ros.bench.weight_sync.run_case``), plus the agent's swap wait: ready weights are
   swapped in at the next step, so at ``rate_hz`` the wait is uniform in [0, 1/rate_hz]:
   ``acting_p50_ms = ready_p50_ms + 0.5 / rate_hz``, ``acting_max_ms = ready_max_ms +
   1 / rate_hz`` (the bound). Running the stack with a bigger preset was not done: on a 2-core
   machine the trainer's runs, not the sync, would dominate and the run would take far longer.

Usage::

    python -m pamiq_ros.bench.stack_figures [--quick] [--out DIR] [--stack-seconds 600] ...
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
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
import psutil  # type: ignore[import-untyped]
import yaml

from pamiq_ros.bench._ffmpeg_stream import StampedMjpegStream, ffmpeg_available
from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import BackgroundNode, isolate_for_benchmark
from pamiq_ros.bench.curiosity import arm_config, free_port
from pamiq_ros.bringup.description import loopback_dds_environment
from pamiq_ros.core.frame_age import FRAME_AGE_WINDOW

DIAGNOSTICS_TOPIC = "/diagnostics"
STACK_NODES = ("sim_world", "camera_sensor", "osc_actuator", "agent", "trainer")
THROUGHPUT_NODES = ("sim_world", "camera_sensor", "agent")
LATENCY_KEYS = (
    "answer_latency_p50_ms", "answer_latency_p99_ms", "answer_latency_max_ms",
    "answer_latency_mean_ms", "answers", "answers_timed", "answers_unmatched", "answers_repeated",
)  # fmt: skip
"""The world's latency figures (``pamiq_ros.sim.answer_latency``) copied into the report."""
STARTED_LINE = re.compile(r"\b(?:started|restarted) (\w+) \(pid (\d+)\)")
STOP_GRACE_S = 60.0
"""Longest a stack may overrun its duration (start-up and shutdown) before it is stopped."""


@dataclass(frozen=True)
class StackFigureOptions:
    """What :func:`measure_stack_figures` runs; defaults are the real benchmark's.

    Attributes:
        out_dir: Where configs, logs and the memory plot go.
        config: The sim stack's config (it must run all five nodes).
        stack_seconds: Length of the full-stack run (latency, memory, default-model freshness).
        warmup_seconds: Start-up time excluded from memory start/slope and from throughput.
        memory_sample_period: Seconds between RSS samples.
        throughput_sizes: Frame sizes (width, height) for the throughput runs.
        throughput_seconds: Length of each throughput run (warm-up included).
        throughput_fps: World fps and camera rate in the throughput runs.
        frame_age_size: Frame size (width, height) of the frame-age run.
        frame_age_fps: World fps and camera rate of the frame-age run.
        frame_age_seconds: Length of the frame-age run (warm-up included); 0 skips it.
        frame_age_source: ``ffmpeg`` (an ffmpeg MJPEG server; the default where ffmpeg is
            installed) or ``sim_world`` (the world renders at that size).
        weight_sizes: Parameter counts for the weight-sync freshness figures (empty: skip).
        weight_repeats: Measured versions per size.
        weight_warmup: Warm-up versions per size (reported apart by the weight-sync bench).
        report_period: The nodes' ``report_period`` during the runs (s).
        env: Environment of the stacks (DDS domain, loopback discovery); default this process's.
        plot: Whether to write ``memory.png`` (RSS over time).
        quick: Use :data:`QUICK` instead (a smoke run of about four minutes).
        only_frame_age: Run the frame-age part alone.
    """

    out_dir: Path
    config: Path = Path("config/sim.yaml")
    stack_seconds: float = 600.0
    warmup_seconds: float = 30.0
    memory_sample_period: float = 5.0
    throughput_sizes: tuple[tuple[int, int], ...] = ((84, 84), (640, 480))
    throughput_seconds: float = 60.0
    throughput_fps: float = 60.0
    frame_age_size: tuple[int, int] = (640, 480)
    frame_age_fps: float = 20.0
    frame_age_seconds: float = 180.0
    frame_age_source: str = field(
        default_factory=lambda: "ffmpeg" if ffmpeg_available() else "sim_world"
    )
    weight_sizes: tuple[int, ...] = (10_000_000, 50_000_000)
    weight_repeats: int = 5
    weight_warmup: int = 3
    report_period: float = 2.0
    env: Mapping[str, str] | None = None
    plot: bool = True
    quick: bool = False
    only_frame_age: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", Path(self.config))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        for name in ("stack_seconds", "memory_sample_period", "throughput_seconds",
                     "throughput_fps", "report_period"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_seconds < min(self.stack_seconds, self.throughput_seconds):
            raise ValueError(
                f"warmup_seconds ({self.warmup_seconds}) must be below stack_seconds and "
                "throughput_seconds"
            )


QUICK: dict[str, Any] = {
    "stack_seconds": 60.0, "warmup_seconds": 15.0, "throughput_seconds": 25.0,
    "frame_age_seconds": 60.0,
    "weight_sizes": (10_000_000,), "weight_repeats": 3, "weight_warmup": 2,
}  # fmt: skip
"""What ``quick`` changes: short runs, the 10 M model only."""


# --- pure parts ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), fraction * 100))


def rss_summary(
    samples: Sequence[tuple[float, float]], warmup_s: float
) -> dict[str, float | int | list[float] | None]:
    """RSS figures of one node from ``(seconds since start, MB)`` samples.

    Start is the first sample at or after ``warmup_s``; the slope (MB per minute) is a
    least-squares line through the samples from then on, and again through the second half of
    them (a buffer filling early is growth that stops); None with fewer than two samples.
    """
    after = [(t, mb) for t, mb in samples if t >= warmup_s]
    if not after:
        return {"samples": 0, "slope_ci95_mb_per_min": None, "start_mb": None, "end_mb": None,
                "max_mb": None, "growth_mb": None, "slope_mb_per_min": None,
                "slope_second_half_mb_per_min": None}  # fmt: skip
    times = np.array([t for t, _ in after]) / 60.0
    values = np.array([mb for _, mb in after])
    slope = _slope(times, values)
    # A buffer filling up grows early on; the second half says whether growth goes on.
    half = times >= (times[0] + times[-1]) / 2
    late_slope = _slope(times[half], values[half])
    interval = _slope_ci95(times, values)
    return {
        "samples": len(after),
        "slope_ci95_mb_per_min": None if interval is None else [round(v, 3) for v in interval],
        "start_mb": round(float(values[0]), 1),
        "end_mb": round(float(values[-1]), 1),
        "max_mb": round(float(values.max()), 1),
        "growth_mb": round(float(values[-1] - values[0]), 1),
        "slope_mb_per_min": None if slope is None else round(slope, 3),
        "slope_second_half_mb_per_min": None if late_slope is None else round(late_slope, 3),
    }


def _slope_ci95(
    minutes: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> tuple[float, float] | None:
    """An approximate 95 % confidence interval of the least-squares slope.

    Slope +- 2 standard errors (the t quantile is about 2 for the 20 or more samples a run
    has). RSS samples are not independent (a sawtooth of transient allocations), so read it as
    a lower bound of the uncertainty.
    """
    if len(minutes) < 3 or not np.ptp(minutes):
        return None
    slope, intercept = np.polyfit(minutes, values, 1)
    residuals = values - (slope * minutes + intercept)
    spread = float(np.sum((minutes - minutes.mean()) ** 2))
    error = math.sqrt(float(np.sum(residuals**2)) / (len(minutes) - 2) / spread)
    return float(slope) - 2.0 * error, float(slope) + 2.0 * error


def _slope(minutes: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> float | None:
    if len(minutes) < 2 or not np.ptp(minutes):
        return None
    return float(np.polyfit(minutes, values, 1)[0])


def launched_pids(log_text: str) -> dict[str, int]:
    """Node name -> pid of its newest process, from the launcher's ``started X (pid N)`` lines."""
    return {match[1]: int(match[2]) for match in STARTED_LINE.finditer(log_text)}


def counter_rate(points: Sequence[tuple[float, float]], warmup_s: float) -> float | None:
    """Per-second rate of a growing counter from ``(seconds, count)`` reports after warm-up."""
    after = [(t, count) for t, count in points if t >= warmup_s]
    if len(after) < 2 or after[-1][0] <= after[0][0]:
        return None
    return (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])


def freshness_of_size(case: Mapping[str, Any], rate_hz: float) -> dict[str, Any]:
    """Weight-sync case -> time from publish to acting: ready plus the agent's swap wait."""
    period_ms = 1000.0 / rate_hz
    return {
        "parameters": case["parameters"],
        "megabytes": round(case["megabytes"], 1),
        "transport": case["transport"],
        "repeats": case["repeats"],
        "ready_p50_ms": round(case["ready_p50_ms"], 1),
        "ready_max_ms": round(case["ready_max_ms"], 1),
        "swap_wait_mean_ms": round(period_ms / 2, 1),
        "swap_wait_max_ms": round(period_ms, 1),
        "acting_p50_ms": round(case["ready_p50_ms"] + period_ms / 2, 1),
        "acting_max_ms": round(case["ready_max_ms"] + period_ms, 1),
    }


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


# --- watching a running stack -------------------------------------------------------------------


class DiagnosticsListener:
    """Keeps every ``/diagnostics`` status heard, per node and timed; spins in a thread."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._reports: dict[str, list[tuple[float, dict[str, float | str]]]] = {}
        self._ros = BackgroundNode(
            "stack_figures_bench", [(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_array, 100)]
        )

    def restart(self) -> None:
        """Forgets what was heard and times reports from now."""
        with self._lock:
            self._reports, self._start = {}, time.monotonic()

    def reports(self, node: str) -> list[tuple[float, dict[str, float | str]]]:
        """``(seconds since restart, values)`` of every report of ``node`` (e.g. ``agent``)."""
        with self._lock:
            return list(self._reports.get(node, []))

    def last(self, node: str) -> dict[str, float | str]:
        """The newest values ``node`` reported (empty if none)."""
        reports = self.reports(node)
        return reports[-1][1] if reports else {}

    def series(self, node: str, key: str) -> list[tuple[float, float]]:
        """``(seconds, value)`` of a numeric figure over the node's reports."""
        return [
            (t, float(values[key]))
            for t, values in self.reports(node)
            if isinstance(values.get(key), float)
        ]

    def close(self) -> None:
        """Stops listening and shuts this process's ROS context down."""
        self._ros.close()

    def _on_array(self, message: Any) -> None:
        now = time.monotonic()
        with self._lock:
            for status in message.status:
                name = str(status.name).rsplit("/", 1)[-1]
                values = {kv.key: _number(kv.value) for kv in status.values}
                self._reports.setdefault(name, []).append((now - self._start, values))


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory (MB) of a process and all its children, or None if it is gone."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child may end meanwhile
                total += child.memory_info().rss
    except psutil.Error:
        return None
    return total / 1e6


@dataclass
class StackRun:
    """One ``pamiq-ros launch`` of a config copy, with RSS sampling of its nodes."""

    name: str
    document: dict[str, Any]
    seconds: float
    options: StackFigureOptions
    env: Mapping[str, str]
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    exit_code: int | None = None
    log_path: Path = Path()

    def run(self, listener: DiagnosticsListener, sample_memory: bool) -> None:
        """Runs the stack for ``seconds``, sampling RSS if asked; stops it by group."""
        out = self.options.out_dir
        config_path = out / "configs" / f"{self.name}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(self.document, sort_keys=False))
        self.log_path = out / "logs" / f"{self.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "pamiq_ros.cli", "launch", str(config_path),
            "--duration", f"{self.seconds:g}", "--runs-dir", str(out / "runs" / self.name),
        ]  # fmt: skip
        _say(f"{self.name}: running for {self.seconds:g} s (log {self.log_path})")
        listener.restart()
        start = time.monotonic()
        stack = GroupProcess(command, self.env, self.log_path)
        next_sample = start
        try:
            while stack.popen.poll() is None:
                now = time.monotonic()
                if now - start > self.seconds + STOP_GRACE_S:
                    _say(f"{self.name}: overran its time by {STOP_GRACE_S:g} s; stopping it")
                    break
                # Sample only while the nodes run, not during the launcher's shutdown.
                if sample_memory and now >= next_sample and now - start < self.seconds - 1.0:
                    self._sample(now - start)
                    next_sample += self.options.memory_sample_period
                time.sleep(0.2)
        finally:
            stack.stop()
        self.exit_code = stack.popen.returncode
        if self.exit_code != 0:
            _say(f"{self.name}: WARNING: exit status {self.exit_code}; see {self.log_path}")

    def _sample(self, elapsed: float) -> None:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for node, pid in launched_pids(text).items():
            rss = tree_rss_mb(pid)
            if rss is not None:
                self.rss.setdefault(node, []).append((round(elapsed, 2), round(rss, 2)))


# --- the parts ----------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(f"[stack-figures {time.strftime('%H:%M:%S')}] {line}", flush=True)


def _on_free_ports(
    base: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    return arm_config(base, free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM), overrides)


def _figure(values: Mapping[str, float | str], key: str) -> float | None:
    value = values.get(key)
    return round(value, 3) if isinstance(value, float) and math.isfinite(value) else None


def _full_stack(
    base: Mapping[str, Any], options: StackFigureOptions, env: Mapping[str, str],
    listener: DiagnosticsListener,
) -> tuple[dict[str, Any], float]:  # fmt: skip
    period = {"report_period": options.report_period}
    document = _on_free_ports(
        base,
        {
            "sim_world": {**period, "stamp_frames": True},
            "camera_sensor": {**period, "stamp_from_frame": True},
            "osc_actuator": {**period, "tag_answers": True},
            "agent": period,
            "trainer": period,
        },
    )
    run = StackRun("full-stack", document, options.stack_seconds, options, env)
    run.run(listener, sample_memory=True)
    world, camera = listener.last("sim_world"), listener.last("camera_sensor")
    agent, trainer = listener.last("agent"), listener.last("trainer")
    if not world:
        raise RuntimeError(f"full stack: sim_world reported nothing; see {run.log_path}")
    latency: dict[str, Any] = {key: _figure(world, key) for key in LATENCY_KEYS}
    latency["camera_stamps_read"] = _figure(camera, "stamps_read")
    latency["camera_stamps_missing"] = _figure(camera, "stamps_missing")
    memory = {
        node: rss_summary(samples, options.warmup_seconds) for node, samples in run.rss.items()
    }
    if options.plot and run.rss:
        _plot_rss(run.rss, options.out_dir / "memory.png")
    agent_rate = float(base["agent"]["ros__parameters"].get("rate_hz", 10.0))
    default = {
        "sync_latency_p50_ms": _figure(agent, "sync_latency_p50_ms"),
        "sync_latency_max_ms": _figure(agent, "sync_latency_max_ms"),
        "weight_swaps": _figure(agent, "weight_swaps"),
        "weight_version": _figure(agent, "weight_version"),
        "policy_lag_mean_versions": _figure(trainer, "policy_lag_mean"),
        "target_ms": 100.0,
    }
    p50 = default["sync_latency_p50_ms"]
    default["within_target"] = None if p50 is None else p50 <= 100.0
    result = {
        "stack_seconds": options.stack_seconds,
        "exit_code": run.exit_code,
        "log": str(run.log_path),
        "latency": latency,
        "memory": memory,
        "memory_samples": run.rss,
        "default_model": default,
        "frames_per_second_160x120": _rate(listener, options.warmup_seconds),
    }
    return result, agent_rate


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _rate(listener: DiagnosticsListener, warmup_s: float) -> float | None:
    rate = counter_rate(listener.series("agent", "frames_received"), warmup_s)
    return None if rate is None else round(rate, 2)


def _throughput(
    base: Mapping[str, Any], size: tuple[int, int], options: StackFigureOptions,
    env: Mapping[str, str], listener: DiagnosticsListener,
) -> dict[str, Any]:  # fmt: skip
    width, height = size
    fps = options.throughput_fps
    period = {"report_period": options.report_period}
    document = _on_free_ports(
        base,
        {
            "sim_world": {**period, "frame_width": width, "frame_height": height, "fps": fps},
            "camera_sensor": {**period, "width": width, "height": height, "rate_hz": fps},
            "agent": {
                **period,
                "image_width": width,
                "image_height": height,
                "send_experience": False,
            },
        },
    )
    for node in list(document):
        if node in STACK_NODES and node not in THROUGHPUT_NODES:
            del document[node]
    run = StackRun(f"throughput-{width}x{height}", document, options.throughput_seconds,
                   options, env)  # fmt: skip
    run.run(listener, sample_memory=False)
    warm = options.warmup_seconds
    rate = _rate(listener, warm)
    camera = counter_rate(listener.series("camera_sensor", "frames_published"), warm)
    world = listener.last("sim_world")
    _say(f"{width}x{height}: agent received {rate} frames/s (camera published {camera})")
    return {
        "width": width,
        "height": height,
        "world_and_camera_fps": fps,
        "agent_frames_per_second": rate,
        "camera_published_per_second": None if camera is None else round(camera, 2),
        "world_render_fps": _figure(world, "fps"),
        "agent_frames_rejected": _figure(listener.last("agent"), "frames_rejected"),
        "exit_code": run.exit_code,
        "log": str(run.log_path),
    }


def age_windows(
    reports: Sequence[tuple[float, Mapping[str, float | str]]], warmup_s: float
) -> list[dict[str, float]]:
    """Agent reports whose 200-frame age windows do not overlap, after warm-up.

    A report is kept when at least ``FRAME_AGE_WINDOW`` frames arrived since the last kept one
    (by ``frames_received``), so each frame counts in one window at most.
    """
    windows: list[dict[str, float]] = []
    last_count = -math.inf
    for seconds, values in reports:
        count, p50 = values.get("frames_received"), values.get("frame_age_at_receipt_p50_ms")
        p99 = values.get("frame_age_at_receipt_p99_ms")
        if seconds < warmup_s or not all(isinstance(v, float) for v in (count, p50, p99)):
            continue
        assert isinstance(count, float) and isinstance(p50, float) and isinstance(p99, float)
        if count - last_count >= FRAME_AGE_WINDOW:
            windows.append({"seconds": round(seconds, 1), "p50_ms": p50, "p99_ms": p99})
            last_count = count
    return windows


def _frame_age(
    base: Mapping[str, Any], options: StackFigureOptions, env: Mapping[str, str],
    listener: DiagnosticsListener,
) -> dict[str, Any]:  # fmt: skip
    width, height = options.frame_age_size
    fps = options.frame_age_fps
    period = {"report_period": options.report_period}
    camera_parameters = {"width": 0, "height": 0, "rate_hz": fps, "stamp_from_frame": True}
    world: dict[str, Any] = {"frame_width": width, "frame_height": height, "fps": fps,
                             "stamp_frames": True}  # fmt: skip
    stream = None
    if options.frame_age_source == "ffmpeg":
        stream = StampedMjpegStream(free_port(socket.SOCK_STREAM), fps, width, height)
        world = {}
    document = _on_free_ports(
        base,
        {
            "sim_world": {**period, **world},
            "camera_sensor": {**period, **camera_parameters},
            "osc_actuator": period,
            "agent": period,
            "trainer": period,
        },
    )
    if stream is not None:
        document["camera_sensor"]["ros__parameters"]["source"] = stream.url
    run = StackRun(f"frame-age-{width}x{height}", document, options.frame_age_seconds, options,
                   env)  # fmt: skip
    try:
        run.run(listener, sample_memory=False)
    finally:
        if stream is not None:
            stream.kill()
    warm = options.warmup_seconds
    windows = age_windows(listener.reports("agent"), warm)
    trainer_runs = listener.series("trainer", "runs")
    runs_after = [count for t, count in trainer_runs if t >= warm]
    camera = listener.last("camera_sensor")
    period_ms = 1000.0 / fps
    p50 = float(np.median([w["p50_ms"] for w in windows])) if windows else None
    p99 = max((w["p99_ms"] for w in windows), default=None)
    _say(f"frame age {width}x{height} at {fps:g} fps while training: p50 {p50} ms, p99 {p99} ms")
    return {
        "width": width,
        "height": height,
        "fps": fps,
        "source": options.frame_age_source,
        "frame_period_ms": round(period_ms, 1),
        "agent_frame_age_p50_ms": None if p50 is None else round(p50, 1),
        "agent_frame_age_p99_ms": None if p99 is None else round(p99, 1),
        "target_p99_ms": round(2 * period_ms, 1),
        "within_target": None if p99 is None else p99 < 2 * period_ms,
        "windows": windows,
        "agent_frames_per_second": _rate(listener, warm),
        "world_render_fps": _figure(listener.last("sim_world"), "fps"),
        "ffmpeg_frames_fed": None if stream is None else stream.frames_sent,
        "camera_published_per_second": _rounded(
            counter_rate(listener.series("camera_sensor", "frames_published"), warm)
        ),
        "agent_gap_steps": _figure(listener.last("agent"), "gap_steps"),
        "camera_capture_to_publish_p50_ms": _figure(camera, "frame_age_p50_ms"),
        "camera_capture_to_publish_p99_ms": _figure(camera, "frame_age_p99_ms"),
        "camera_frames_dropped": _figure(camera, "frames_dropped"),
        "trainer_runs_during_measurement": (
            round(runs_after[-1] - runs_after[0]) if len(runs_after) >= 2 else None
        ),
        "exit_code": run.exit_code,
        "log": str(run.log_path),
    }


def _weight_freshness(
    options: StackFigureOptions, env: Mapping[str, str], rate_hz: float
) -> dict[str, Any]:
    from pamiq_ros.bench.weight_sync import run_case

    figures: dict[str, Any] = {}
    for size in options.weight_sizes:
        _say(f"weight sync of {size:.0e} parameters over shm")
        case = run_case(
            size, "shm", options.weight_repeats, options.weight_warmup, dict(env),
            options.out_dir / "weight_sync",
        )  # fmt: skip
        figures[f"{size / 1e6:g}M"] = freshness_of_size(case, rate_hz)
    return figures


def _plot_rss(rss: Mapping[str, Sequence[tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for node, samples in sorted(rss.items()):
        axes.plot([t / 60 for t, _ in samples], [mb for _, mb in samples], label=node)
    axes.set_xlabel("minutes")
    axes.set_ylabel("RSS (MB, process tree)")
    axes.set_title("Resident memory of each node")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def measure_stack_figures(options: StackFigureOptions) -> dict[str, Any]:
    """Runs the stack-figure benchmark (see the module docstring) and returns every figure.

    The caller sets the DDS domain (``ROS_DOMAIN_ID``) and the loopback DDS variables
    (:func:`pamiq_ros.bringup.description.loopback_dds_environment`) in ``options.env`` or this
    process's environment; this process listens to ``/diagnostics`` in that domain.

    Returns:
        ``{"latency": ..., "throughput": [...], "memory": {node: ...}, "freshness":
        {"default_model": ..., "<N>M": ...}, "settings": ...}``, units in the key names;
        a figure that could not be measured is None.

    Raises:
        RuntimeError: If a stack could not run or a weight-sync case failed.
        ValueError: If the config cannot run the stack.
    """
    if options.quick:
        options = dataclasses.replace(options, **QUICK, quick=False)
    base = yaml.safe_load(options.config.read_text())
    if not isinstance(base, dict) or any(not isinstance(base.get(n), dict) for n in STACK_NODES):
        raise ValueError(f"{options.config}: must run all of {', '.join(STACK_NODES)}")
    env = dict(options.env if options.env is not None else os.environ)
    if "ROS_AUTOMATIC_DISCOVERY_RANGE" not in env:
        env.update(loopback_dds_environment())
    env["PYTHONUNBUFFERED"] = "1"
    options.out_dir.mkdir(parents=True, exist_ok=True)
    listener = DiagnosticsListener()
    if options.only_frame_age:
        try:
            return {"frame_age": _frame_age(base, options, env, listener)}
        finally:
            listener.close()
    try:
        stack, rate_hz = _full_stack(base, options, env, listener)
        throughput = [
            _throughput(base, size, options, env, listener) for size in options.throughput_sizes
        ]
        frame_age = (
            _frame_age(base, options, env, listener) if options.frame_age_seconds > 0 else None
        )
    finally:
        listener.close()
    freshness: dict[str, Any] = {"default_model": stack.pop("default_model")}
    freshness.update(_weight_freshness(options, env, rate_hz))
    freshness["larger_models_method"] = (
        "weight-sync bench publish->ready over shm, plus the agent's swap wait at "
        f"{rate_hz:g} Hz (mean half a step, at most one step)"
    )
    return {
        "latency": stack.pop("latency"),
        "throughput": throughput,
        "frame_age": frame_age,
        "memory": stack.pop("memory"),
        "freshness": freshness,
        "full_stack": stack,
        "settings": {
            "config": str(options.config),
            "stack_seconds": options.stack_seconds,
            "warmup_seconds": options.warmup_seconds,
            "memory_sample_period_s": options.memory_sample_period,
            "throughput_seconds": options.throughput_seconds,
            "throughput_fps": options.throughput_fps,
            "frame_age_seconds": options.frame_age_seconds,
            "weight_sizes": list(options.weight_sizes),
            "memory_plot": str(options.out_dir / "memory.png") if options.plot else None,
        },
    }


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.stack_figures",
        description="Stack figures: end-to-end latency, throughput, memory, weight freshness.",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, 10M weights only")
    parser.add_argument("--out", type=Path, default=None, help="default runs/bench-stack-<time>/")
    parser.add_argument("--config", type=Path, default=Path("config/sim.yaml"))
    parser.add_argument("--stack-seconds", type=float, default=None)
    parser.add_argument("--throughput-seconds", type=float, default=None)
    parser.add_argument(
        "--frame-age-seconds", type=float, default=None, help="0 skips the frame-age run"
    )
    parser.add_argument("--only-frame-age", action="store_true", help="run only the frame-age part")
    parser.add_argument(
        "--frame-age-source", choices=("ffmpeg", "sim_world"), default=None,
        help="the 640x480 stream: ffmpeg (default where installed) or the world rendering it",
    )  # fmt: skip
    parser.add_argument("--domain-id", type=int, default=None, help="default 1 + PID mod 101")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the figures alone, prints them and writes ``stack_figures.json``; returns the status."""
    parsed = _parser().parse_args(args)
    out_dir = parsed.out or Path("runs") / f"bench-stack-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = out_dir.absolute()
    domain_id = parsed.domain_id if parsed.domain_id is not None else 1 + os.getpid() % 101
    isolate_for_benchmark(domain_id, out_dir)
    quick: dict[str, Any] = dict(QUICK) if parsed.quick else {}
    if parsed.stack_seconds is not None:
        quick["stack_seconds"] = parsed.stack_seconds
    if parsed.throughput_seconds is not None:
        quick["throughput_seconds"] = parsed.throughput_seconds
    if parsed.frame_age_seconds is not None:
        quick["frame_age_seconds"] = parsed.frame_age_seconds
    if parsed.frame_age_source is not None:
        quick["frame_age_source"] = parsed.frame_age_source
    try:
        options = StackFigureOptions(
            out_dir=out_dir, config=parsed.config, only_frame_age=parsed.only_frame_age, **quick
        )
        figures = measure_stack_figures(options)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"stack figures failed: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("stack figures interrupted", file=sys.stderr, flush=True)
        return 130
    path = out_dir / "stack_figures.json"
    path.write_text(json.dumps(figures, indent=1))
    shown = {key: value for key, value in figures.items() if key != "full_stack"}
    print(json.dumps(shown, indent=1))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
