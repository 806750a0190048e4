"""Frame-to-action latency, broken down along the pipeline, in both step modes; start and stop.

One sim stack per step mode (``rate``: fixed ``rate_hz``; ``frame``: a step on each new frame,
at most ``rate_hz``), the trainer training, the world streaming at ``fps`` and the camera
publishing at that rate, with the latency hooks of :mod:`pamiq_ros.io.frame_stamp` on: the world
writes each frame's send time into its pixels just before JPEG encoding, the camera stamps the
image with it, the agent acts on it and the actuator tags the OSC answer with it, and the world
times the answer. Every figure is an age since the frame left the world (after rendering), on one
clock, as p50 and p99, at each point the stack can see:

* ``camera_capture_to_publish``: the camera's own figure (decoded frame -> published);
* ``agent_receipt``: stamp -> the agent has the frame (encode, HTTP, camera decode and publish,
  DDS, the agent's decode and fit): the agent's window of its newest 200 frames;
* ``agent_step``: stamp -> the step that acts on it starts (the wait for a step);
* ``answer``: stamp -> the OSC answer arrives in the world (the step's compute, publishing,
  the actuator, UDP): the world's figure over every answer since start-up (warm-up included,
  so it is on the safe side).

Render, JPEG encode and decode are timed in this process at the stream's size and quality (CPU
ms, median of repeats), as those happen in single calls the stack does not report apart.
Stages are differences of p50s (``stages_p50_ms``); differences of p99s are not stage p99s,
so p99s are given only cumulatively.

Each run also measures **start and stop**: from starting ``pamiq-ros launch`` to the first
``cmd_vel`` message heard (the agent's first step), and from Ctrl-C (SIGINT to the launcher's
process group) to the launcher's exit.

Usage::

    python -m pamiq_ros.bench.latency [--seconds 40] [--warmup 15] [--fps 30] [--modes rate,frame]
        [--out DIR]
"""

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pamiq_ros.bench._shared import (
    comma_choices,
    isolate_for_benchmark,
    load_now,
    machine_description,
)
from pamiq_ros.core.step_loop import TRIGGERS

STARTUP_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 60.0
"""Longest wait for the launcher to exit after Ctrl-C before it is killed (and reported so)."""

FRAME_MODE_TARGET_MS = 30.0
FIXED_RATE_SLACK_MS = 20.0
"""Targets: p99 frame-to-answer < 30 ms in frame mode; < one camera period + 20 ms in rate mode."""

START_TARGET_S, STOP_TARGET_S = 5.0, 3.0


def codec_times(width: int, height: int, quality: int, repeats: int = 30) -> dict[str, float]:
    """CPU ms per call (median) of rendering, JPEG encoding and decoding one frame of this size."""
    import cv2

    from pamiq_ros.sim.renderer import Renderer
    from pamiq_ros.sim.world import World

    world = World(seed=0)
    renderer = Renderer(world.layout, width, height)
    frame = renderer.render(world)
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]

    def timed(call: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            started = time.process_time()
            call()
            times.append((time.process_time() - started) * 1000.0)
        return round(statistics.median(times), 3)

    return {
        "render_ms": timed(lambda: renderer.render(world)),
        "encode_ms": timed(lambda: cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])),
        "decode_ms": timed(lambda: cv2.imdecode(encoded, cv2.IMREAD_COLOR)),
    }


def _number(values: Mapping[str, str], key: str) -> float | None:
    try:
        value = float(values[key])
    except (KeyError, ValueError):
        return None
    return round(value, 3) if math.isfinite(value) else None


def pipeline_figures(
    world: Mapping[str, str],
    camera: Mapping[str, str],
    agent: Mapping[str, str],
    codec: Mapping[str, float],
) -> dict[str, Any]:
    """The cumulative ages (p50, p99) and the stages between them, from the nodes' statuses."""
    points = {
        "camera_capture_to_publish": ("frame_age_p50_ms", "frame_age_p99_ms", camera),
        "agent_receipt": ("frame_age_at_receipt_p50_ms", "frame_age_at_receipt_p99_ms", agent),
        "agent_step": ("frame_age_at_step_p50_ms", "frame_age_at_step_p99_ms", agent),
        "answer": ("answer_latency_p50_ms", "answer_latency_p99_ms", world),
    }
    cumulative = {
        name: {"p50_ms": _number(source, p50), "p99_ms": _number(source, p99)}
        for name, (p50, p99, source) in points.items()
    }

    def minus(a: float | None, *others: float | None) -> float | None:
        if a is None or any(o is None for o in others):
            return None
        return round(a - sum(o for o in others if o is not None), 3)

    receipt = cumulative["agent_receipt"]["p50_ms"]
    step = cumulative["agent_step"]["p50_ms"]
    answer = cumulative["answer"]["p50_ms"]
    compute = _number(agent, "step_compute_mean_ms")
    stages = {
        "render": codec["render_ms"],
        "encode": codec["encode_ms"],
        "http_dds_and_fit": minus(
            receipt,
            codec["encode_ms"],
            codec["decode_ms"],
            cumulative["camera_capture_to_publish"]["p50_ms"],
        ),
        "decode": codec["decode_ms"],
        "publish": cumulative["camera_capture_to_publish"]["p50_ms"],
        "wait_for_step": minus(step, receipt),
        "agent_step_compute_mean": compute,
        "actuator_and_udp": minus(answer, step, compute),
    }
    return {"cumulative_from_frame_sent": cumulative, "stages_p50_ms": stages}


def _config(
    base: Mapping[str, Any], trigger: str, fps: float, rate_hz: float | None
) -> dict[str, Any]:
    from pamiq_ros.bench.curiosity import arm_config, free_port

    period = {"report_period": 1.0}
    agent: dict[str, Any] = {**period, "step_trigger": trigger}
    if rate_hz is not None:
        agent["rate_hz"] = rate_hz
    return arm_config(
        base,
        free_port(socket.SOCK_DGRAM),
        free_port(socket.SOCK_STREAM),
        {
            "sim_world": {**period, "fps": fps, "stamp_frames": True},
            "camera_sensor": {**period, "rate_hz": fps, "stamp_from_frame": True},
            "osc_actuator": {**period, "tag_answers": True},
            "agent": agent,
            "trainer": period,
        },
    )


def measure_mode(
    base: Mapping[str, Any],
    trigger: str,
    seconds: float,
    warmup_s: float,
    fps: float,
    out_dir: Path,
    env: Mapping[str, str],
    say: Callable[[str], None] = lambda _: None,
    rate_hz: float | None = None,
) -> dict[str, Any]:
    """One stack run in step mode ``trigger``: pipeline figures, start and stop times.

    Raises:
        ValueError: If ``trigger`` is not a step mode.
        RuntimeError: If the agent never acted.
    """
    from pamiq_ros.bench._process_group import GroupProcess
    from pamiq_ros.bench.step_timing import StackListener

    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {list(TRIGGERS)}, got {trigger!r}")
    document = _config(base, trigger, fps, rate_hz)
    name = f"latency-{trigger}"
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path, log_path = out_dir / f"{name}.yaml", out_dir / f"{name}.log"
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    command = [
        sys.executable, "-m", "pamiq_ros.cli", "launch", str(config_path),
        "--duration", f"{STARTUP_TIMEOUT_S + warmup_s + seconds + 30:g}",
        "--runs-dir", str(out_dir / "runs" / name),
    ]  # fmt: skip
    world_settings = document["sim_world"]["ros__parameters"]
    width, height = (
        int(world_settings.get("frame_width", 160)),
        int(world_settings.get("frame_height", 120)),
    )
    codec = codec_times(width, height, int(world_settings.get("jpeg_quality", 90)))
    listener = StackListener()
    say(f"{name}: starting the stack (log {log_path})")
    launched = time.monotonic()
    stack = GroupProcess(command, env, log_path)
    exit_s: float | None = None
    try:
        first_action = _wait(lambda: listener.arrivals(), stack, STARTUP_TIMEOUT_S)
        if first_action is None:
            raise RuntimeError(
                f"{name}: no cmd_vel within {STARTUP_TIMEOUT_S:g} s:\n{stack.tail()}"
            )
        start_s = first_action - launched
        say(f"{name}: first action {start_s:.1f} s after launch; warm-up {warmup_s:g} s")
        time.sleep(warmup_s + seconds)
        end = time.monotonic()
        statuses = {
            node: listener.wait_status(node, end, 5.0) or {}
            for node in ("sim_world", "camera_sensor", "agent")
        }
        load = load_now()
        interrupted = time.monotonic()
        stack.signal_group(signal.SIGINT)
        try:
            stack.popen.wait(timeout=EXIT_TIMEOUT_S)
            exit_s = time.monotonic() - interrupted
        except subprocess.TimeoutExpired:
            exit_s = None
    finally:
        stack.stop()
        listener.close()
    figures = pipeline_figures(
        statuses["sim_world"], statuses["camera_sensor"], statuses["agent"], codec
    )
    answer_p99 = figures["cumulative_from_frame_sent"]["answer"]["p99_ms"]
    target_ms = FRAME_MODE_TARGET_MS if trigger == "frame" else 1000.0 / fps + FIXED_RATE_SLACK_MS
    say(
        f"{name}: frame -> answer p99 {answer_p99} ms (target < {target_ms:.0f}); exit "
        f"{exit_s if exit_s is None else round(exit_s, 1)} s after Ctrl-C"
    )
    return {
        "trigger": trigger,
        "fps": fps,
        "frame_size": [width, height],
        "seconds": seconds,
        "warmup_s": warmup_s,
        **figures,
        "answers_timed": _number(statuses["sim_world"], "answers_timed"),
        "agent_rate_hz": _number(statuses["agent"], "rate_hz"),
        "target": {
            "target": f"p99 frame -> OSC answer < {target_ms:.0f} ms ({trigger} mode, "
            f"{fps:g} fps camera)",
            "value": answer_p99,
            "unit": "ms",
            "met": None if answer_p99 is None else answer_p99 < target_ms,
        },
        "start_to_first_action_s": round(start_s, 2),
        "exit_after_ctrl_c_s": None if exit_s is None else round(exit_s, 2),
        "exit_timed_out": exit_s is None,
        "log": str(log_path),
        **load,
    }


def _wait(
    arrivals: Callable[[], list[float]], stack: Any, timeout: float
) -> float | None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and stack.popen.poll() is None:
        found = arrivals()
        if found:
            return found[0]
        time.sleep(0.02)
    return None


def start_stop_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Start and stop figures over the runs, with the issue's targets."""
    starts = [float(r["start_to_first_action_s"]) for r in runs]
    exits = [r["exit_after_ctrl_c_s"] for r in runs]
    timed = [float(e) for e in exits if e is not None]
    start = max(starts) if starts else None
    stop = None if (not timed or len(timed) < len(exits)) else max(timed)
    # A run that had to be killed did not exit in time: the target is not met.
    stop_met = (False if exits else None) if stop is None else stop < STOP_TARGET_S
    return {
        "start_to_first_action_s": starts,
        "exit_after_ctrl_c_s": exits,
        "targets": [
            {
                "target": f"launch to first action < {START_TARGET_S:g} s (worst run)",
                "value": start,
                "unit": "s",
                "met": None if start is None else start < START_TARGET_S,
            },
            {
                "target": f"exit < {STOP_TARGET_S:g} s after Ctrl-C (worst run)",
                "value": stop,
                "unit": "s",
                "met": stop_met,
            },
        ],
    }


def measure_latency(
    base: Mapping[str, Any],
    modes: Sequence[str],
    seconds: float,
    warmup_s: float,
    fps: float,
    out_dir: Path,
    env: Mapping[str, str],
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every mode of ``modes``, then the start/stop summary over their runs."""
    runs = {mode: measure_mode(base, mode, seconds, warmup_s, fps, out_dir, env, say)
            for mode in modes}  # fmt: skip
    return {"modes": runs, "start_stop": start_stop_summary(list(runs.values()))}


def main(args: Sequence[str] | None = None) -> int:
    """Runs the latency bench, prints and writes ``latency.json``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--fps", type=float, default=30.0, help="world and camera rate")
    parser.add_argument(
        "--modes", type=lambda text: comma_choices(text, TRIGGERS, "modes"),
        default=list(TRIGGERS),
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=Path("config/sim.yaml"))
    parser.add_argument("--out", type=Path, default=None, help="default runs/bench-latency-<time>")
    parsed = parser.parse_args(args)
    out_dir = (
        parsed.out or Path("runs") / f"bench-latency-{time.strftime('%Y%m%d-%H%M%S')}"
    ).absolute()
    env = isolate_for_benchmark(1 + os.getpid() % 101, out_dir)
    try:
        base = yaml.safe_load(parsed.config.read_text())
        figures = {
            "machine": machine_description(),
            **measure_latency(
                base, parsed.modes, parsed.seconds, parsed.warmup, parsed.fps, out_dir, env, print
            ),
        }
    except (OSError, ValueError, RuntimeError) as error:
        print(f"latency: {error}", file=sys.stderr)
        return 1
    path = out_dir / "latency.json"
    path.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
