"""Recording benchmark: the agent's step timing with and without the recorder, and bag sizes.

``make bench-recording`` (or ``python -m pamiq_ros.bench.recording --help``). One run, same
machine, seed and models: the sim stack (trainer training) without a recorder, then with the
recorder storing the default topics with raw images, then with JPEG images. Each arm measures
the agent's step-interval error and missed deadlines over the same period
(:func:`pamiq_ros.bench.step_timing.measure_stack_timing`). Each recording arm's bag is then
read back: messages and bytes per topic, bytes per stored camera frame, and what a day at
10 Hz takes (frames alone, and everything recorded at the rate seen). Writes
``recording.json`` in the run folder and prints a table.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pamiq_ros.bench._shared import isolate_for_benchmark, machine_description
from pamiq_ros.io.bags import BagReader, inspect_bag

ARMS = {"off": None, "raw": False, "jpeg": True}
"""Arm -> the recorder's ``compress_images`` (None: no recorder)."""
CAMERA_TOPIC = "/camera/image_raw"
SECONDS_PER_DAY = 86_400
FRAMES_PER_SECOND = 10.0


def bag_figures(bag: Path) -> dict[str, Any]:
    """Messages and payload bytes per topic, file bytes, and the day-at-10-Hz projections."""
    info = inspect_bag(bag)
    reader = BagReader([bag])
    payload: dict[str, int] = {}
    for message in reader.messages():
        payload[message.topic] = payload.get(message.topic, 0) + len(message.data)
    file_bytes = sum(path.stat().st_size for path in info.files)
    camera = next((t for t in info.counts if t.startswith(CAMERA_TOPIC)), None)
    frames = info.counts.get(camera, 0) if camera else 0
    seconds = info.duration_ns / 1e9
    per_frame = payload[camera] / frames if camera and frames else None
    return {
        "bag": str(bag),
        "seconds": seconds,
        "messages": info.counts,
        "payload_bytes": payload,
        "file_bytes": file_bytes,
        "camera_topic": camera,
        "camera_frames": frames,
        "bytes_per_frame": per_frame,
        "frames_per_day_10hz_bytes": per_frame * FRAMES_PER_SECOND * SECONDS_PER_DAY
        if per_frame
        else None,
        "everything_per_day_bytes": file_bytes / seconds * SECONDS_PER_DAY if seconds else None,
    }


def recorder_section(bag: Path, compress: bool) -> dict[str, Any]:
    """The config section that adds a recorder writing ``bag``."""
    return {"ros__parameters": {"output": str(bag), "compress_images": compress}}


def _say(line: str) -> None:
    print(f"[recording] {line}", flush=True)


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.1f} GiB"


def format_table(report: dict[str, Any]) -> str:
    """Step timing per arm, then bag sizes per recording arm."""
    lines = [
        f"{'arm':<6} {'agent p50 ms':>12} {'p99 ms':>8} {'max ms':>8} {'missed':>7} {'steps':>6}"
    ]
    for name, arm in report["arms"].items():
        agent = arm["timing"]["agent"]
        p50, p99, worst = (
            agent.get(f"interval_error_{key}_ms", "-") for key in ("p50", "p99", "max")
        )
        lines.append(
            f"{name:<6} {p50:>12} {p99:>8} {worst:>8} "
            f"{agent.get('missed_deadlines', '-'):>7} {agent.get('steps', '-'):>6}"
        )
    for name, arm in report["arms"].items():
        bag = arm.get("bag")
        if not bag:
            continue
        lines.append(
            f"{name}: {bag['camera_frames']} frames, {bag['bytes_per_frame'] or 0:.0f} B/frame -> "
            f"frames for a day at 10 Hz {_gib(bag['frames_per_day_10hz_bytes'])}; everything "
            f"recorded {_gib(bag['everything_per_day_bytes'])}/day"
        )
    return "\n".join(lines)


def main(args: Sequence[str] | None = None) -> int:
    """Runs the three arms and prints the table."""
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.recording",
        description="Agent step timing without and with the recorder (raw, JPEG); bag sizes.",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured period per arm")
    parser.add_argument("--warmup", type=float, default=15.0, help="warm-up before it (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="config/sim.yaml")
    parser.add_argument("--out", default="", help="run folder (default runs/bench-recording-*)")
    parser.add_argument("--domain-id", type=int, default=97, help="DDS domain of the run")
    options = parser.parse_args(args)

    from pamiq_ros.bench.step_timing import StackListener, StackTimingOptions, measure_stack_timing

    out_dir = Path(options.out or f"runs/bench-recording-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    isolate_for_benchmark(options.domain_id, out_dir)
    base = yaml.safe_load(Path(options.config).read_text())
    report: dict[str, Any] = {
        "machine": machine_description(),
        "settings": {
            "seconds": options.seconds,
            "warmup_s": options.warmup,
            "seed": options.seed,
            "config": options.config,
        },
        "arms": {},
    }
    listener = StackListener()
    try:
        for name, compress in ARMS.items():
            document = dict(base)
            bag = out_dir / "bags" / name
            if compress is not None:
                document["recorder"] = recorder_section(bag, compress)
            stack_options = StackTimingOptions(
                base_config=document, seconds=options.seconds, warmup_s=options.warmup,
                seed=options.seed, preset=None, out_dir=out_dir, env=dict(os.environ),
            )  # fmt: skip
            timing = measure_stack_timing(name, False, stack_options, listener, _say)
            arm: dict[str, Any] = {"timing": timing}
            if compress is not None:
                arm["bag"] = bag_figures(bag)
            report["arms"][name] = arm
    finally:
        listener.close()
    path = out_dir / "recording.json"
    path.write_text(json.dumps(report, indent=1))
    print(format_table(report))
    _say(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
