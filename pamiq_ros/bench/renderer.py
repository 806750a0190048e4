"""Renderer speed: frames per second of the sim world's renderer at several sizes, on one core.

Each size renders the world (moving pillars, walking avatar) for a number of frames in this
process (NumPy's element-wise work runs in one thread). Two figures per size: **wall**
frames/s (what a loaded machine gave) and **CPU** frames/s (frames per second of this
process's CPU time: what one core gives when it is not shared; the target is read on it).
The machine's load average is recorded beside every size, because on a shared 2-core machine
the wall figures are pessimistic. Repeats give a spread (min, median, max per repeat).

Usage::

    python -m pamiq_ros.bench.renderer [--frames 60] [--repeats 5] [--out FILE]
"""

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pamiq_ros.bench._shared import load_now, machine_description
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import MotionCommand, World

SIZES: tuple[tuple[int, int], ...] = ((160, 120), (320, 240), (640, 480))
"""The sizes measured, smallest first."""

TARGET_SIZE, TARGET_FPS = (640, 480), 60.0
"""The issue's target: 640x480 at 60 frames/s or more on one core."""


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 1),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def measure_size(width: int, height: int, frames: int, repeats: int) -> dict[str, Any]:
    """Renders ``frames`` frames ``repeats`` times at one size; returns the figures.

    Raises:
        ValueError: If ``frames`` or ``repeats`` is below 1.
    """
    if frames < 1 or repeats < 1:
        raise ValueError(f"frames and repeats must be at least 1, got {frames}, {repeats}")
    world = World(seed=0)
    renderer = Renderer(world.layout, width, height)
    renderer.render(world)  # first-call costs (allocation, caches) are not the steady state
    walk = MotionCommand(forward=0.8, yaw_rate=0.4)
    wall_fps, cpu_fps = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(frames):
            world.step(1.0 / 30.0, walk)
            renderer.render(world)
        wall_fps.append(frames / max(time.perf_counter() - wall, 1e-9))
        cpu_fps.append(frames / max(time.process_time() - cpu, 1e-9))
    return {
        "width": width,
        "height": height,
        "frames_per_repeat": frames,
        "repeats": repeats,
        "wall_fps": _spread(wall_fps),
        "cpu_fps": _spread(cpu_fps),
        "cpu_ms_per_frame_median": round(1000.0 / statistics.median(cpu_fps), 2),
        **load_now(),
    }


def measure_renderer(frames: int = 60, repeats: int = 5) -> dict[str, Any]:
    """Every size of :data:`SIZES`, with the target judged on the CPU figure at 640x480."""
    sizes = [measure_size(width, height, frames, repeats) for width, height in SIZES]
    target = next(s for s in sizes if (s["width"], s["height"]) == TARGET_SIZE)
    value = target["cpu_fps"]["median"]
    return {
        "sizes": sizes,
        "target": {
            "target": f"{TARGET_SIZE[0]}x{TARGET_SIZE[1]} at >= {TARGET_FPS:g} frames/s, one core",
            "value": value,
            "unit": "frames/s (CPU time, median)",
            "met": value >= TARGET_FPS,
            "wall_fps_median": target["wall_fps"]["median"],
        },
    }


def main(args: Sequence[str] | None = None) -> int:
    """Prints the figures and writes them as JSON; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.renderer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--frames", type=int, default=60, help="frames per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per size")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    options = parser.parse_args(args)
    if options.frames < 1 or options.repeats < 1:
        parser.error("--frames and --repeats must be at least 1")
    figures = {"machine": machine_description(), **measure_renderer(options.frames,
                                                                    options.repeats)}  # fmt: skip
    for size in figures["sizes"]:
        print(
            f"{size['width']}x{size['height']}: CPU {size['cpu_fps']['median']:.0f} frames/s "
            f"(min {size['cpu_fps']['min']:.0f}), wall {size['wall_fps']['median']:.0f} frames/s"
            f" at load {size['load_1m']}"
        )
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(figures, indent=1))
        print(f"written: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
