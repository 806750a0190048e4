"""Hearing's figures: audio latency and drift, the acting step with and without audio, sizes.

``python -m pamiq_ros.bench.audio [--seconds 120] [--steps 300] [--out runs/bench-audio-<time>]``

1. **Stream** (``--seconds``, default the issue's 2 minutes): the simulated world's sound server
   runs in this process, the real ``audio_sensor`` node (its own process, over DDS on loopback)
   opens its stream, and a listener here receives the chunks. Latency: receipt time minus the
   capture time of each chunk's newest frame (its stamp plus its length), p50/p99. Drift: a line
   fitted to receipt times against the sample clock (frames over the rate), its end point less
   the sample clock's, over the run after the first second (ms and ppm); and the same for the
   stamps. Chunks lost: gaps in ``first_frame``.
2. **Acting step** (``--steps`` per arm, tiny preset, ``--torch-threads``, default 1 as the
   agent): what the curiosity mind computes per step, image-only against image+audio: encode
   the frame (image JEPA), [encode a 1 s window (audio JEPA) and fuse], the reward against the
   imagined trajectories, the temporal encoder's step, the policy's choice, the forward model's
   imagination. The arms alternate step by step, so load from other work falls on both alike.
   p50/p99 of each arm with a bootstrap 95 % interval of the p50, against the 10 Hz budget
   (100 ms), and the paired per-step extra cost of hearing (median, bootstrap 95 % interval).
3. **Parameters** per preset and modality, model by model.

Raw numbers go to ``<out>/audio.json``; a summary is printed. (About 4 minutes on 2 cores.)
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import BackgroundNode, isolate_for_benchmark, machine_description

BUDGET_MS = 100.0
"""The acting step's budget at 10 Hz."""


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q``-th percentile of seconds, in ms."""
    return float(np.percentile(np.asarray(values) * 1e3, q))


def bootstrap_p50_ci(values: list[float], seed: int = 0, resamples: int = 2000) -> list[float]:
    """A 95 % bootstrap interval of the median (ms)."""
    rng = np.random.default_rng(seed)
    data = np.asarray(values) * 1e3
    medians = np.median(rng.choice(data, size=(resamples, len(data))), axis=1)
    return [float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))]


def stream_figures(seconds: float, out_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Runs the sim world's stream through the real audio_sensor node for ``seconds``."""
    from pamiq_ros_interfaces.msg import AudioChunk

    from pamiq_ros.sim.audio_server import AudioStreamServer
    from pamiq_ros.sim.sound import SoundSnapshot, world_emitters
    from pamiq_ros.sim.world import World

    world = World()
    server = AudioStreamServer(lambda: SoundSnapshot(world.pose, world_emitters(world)), port=0)
    server.start()
    received: list[tuple[float, float, int, int, int]] = []

    def on_chunk(message: Any) -> None:
        stamp = message.header.stamp.sec + message.header.stamp.nanosec * 1e-9
        received.append(
            (time.time(), stamp, message.first_frame, message.frames, message.sample_rate)
        )

    from rclpy.qos import qos_profile_sensor_data

    sensor_qos: Any = qos_profile_sensor_data  # the node publishes best effort
    listener = BackgroundNode("audio_bench", [(AudioChunk, "audio/chunk", on_chunk, sensor_qos)])
    node = GroupProcess(
        [sys.executable, "-m", "pamiq_ros.nodes.audio_sensor", "--ros-args",
         "-p", f"source:={server.url}", "-p", "chunk_ms:=50.0"],
        env, out_dir / "audio_sensor.log",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30.0
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        if not received:
            raise RuntimeError(f"no audio chunk within 30 s; node log:\n{node.tail()}")
        time.sleep(seconds)
    finally:
        node.stop()
        listener.close()
        server.close()
    return analyse_stream(received, seconds)


def analyse_stream(
    received: list[tuple[float, float, int, int, int]], seconds: float
) -> dict[str, Any]:
    """Latency, drift and losses of ``(receipt, stamp, first_frame, frames, rate)`` rows."""
    unique = {row[2]: row for row in received}  # one row per chunk, in frame order
    rows = [unique[key] for key in sorted(unique)]
    start = rows[0][0]
    settled = [row for row in rows if row[0] - start > 1.0]
    rate = settled[0][4]
    frames = np.array([row[2] for row in settled], dtype=np.float64)
    sample_clock = (frames - frames[0]) / rate
    receipts = np.array([row[0] for row in settled]) - settled[0][0]
    stamps = np.array([row[1] for row in settled]) - settled[0][1]
    latency = [row[0] - (row[1] + row[3] / row[4]) for row in settled]

    def drift(clock: np.ndarray) -> dict[str, float]:
        slope, _ = np.polyfit(sample_clock, clock, 1)
        span = float(sample_clock[-1])
        return {"drift_ms": float((slope - 1.0) * span * 1e3), "drift_ppm": (slope - 1.0) * 1e6}

    steps = np.diff(frames)
    chunk = float(np.median(steps))
    return {
        "seconds_requested": seconds,
        "seconds_measured": float(sample_clock[-1]),
        "chunks": len(settled),
        "chunk_frames": chunk,
        "sample_rate": rate,
        "chunks_lost": int(np.sum(np.maximum(steps / chunk - 1, 0))),
        "latency_p50_ms": percentile_ms(latency, 50),
        "latency_p99_ms": percentile_ms(latency, 99),
        "latency_max_ms": percentile_ms(latency, 100),
        "receipt_vs_sample_clock": drift(receipts),
        "stamp_vs_sample_clock": drift(stamps),
        "latency_definition": "receipt time minus the capture time of the chunk's newest frame",
    }


def acting_step_figures(steps: int, threads: int, seed: int = 0) -> dict[str, Any]:
    """Per-step time of the curiosity mind's computation, image-only and image+audio (tiny)."""
    import torch

    from pamiq_ros.core.actions import ACTION_SIZES
    from pamiq_ros.minds.curiosity import (
        FORWARD_DYNAMICS,
        JEPA,
        POLICY,
        TEMPORAL,
        CuriosityDimensions,
    )
    from pamiq_ros.models.audio_jepa import build_audio_jepa
    from pamiq_ros.models.curiosity import RollingImagination
    from pamiq_ros.models.temporal import fuse_observations

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (16, 120, 160, 3), dtype=np.uint8)
    windows = (rng.standard_normal((16, 16000, 2)) * 0.05).astype(np.float32)
    arms = ("image", "image+audio")

    def pipeline(modalities: str) -> Any:
        """One arm's models and states, and a function that runs its step ``index``."""
        dims = CuriosityDimensions.of("tiny", modalities)
        encoder, world = dims.build(JEPA, seed), dims.build(TEMPORAL, seed)
        dynamics, policy = dims.build(FORWARD_DYNAMICS, seed), dims.build(POLICY, seed)
        hearing = build_audio_jepa(dims.audio, seed) if modalities != "image" else None
        imagination = RollingImagination(dims.horizon)
        state = {
            "hidden": torch.zeros(1, dims.temporal.hidden_dim),
            "policy": torch.zeros(dims.policy.num_layers, 1, dims.policy.hidden_size),
        }
        generator = torch.Generator().manual_seed(seed)

        def step(index: int) -> float:
            started = time.perf_counter()
            with torch.inference_mode():
                parts = [encoder.encode(frames[index % 16][None])]  # type: ignore[operator]
                if hearing is not None:
                    parts.append(hearing.encode(windows[index % 16]))
                obs = fuse_observations(parts)
                imagination.observe(obs[0])
                state["hidden"] = world.step(obs, state["hidden"])  # type: ignore[operator]
                action, _, _, state["policy"] = policy.act(  # type: ignore[operator]
                    state["hidden"], state["policy"], generator
                )
                imagination.advance(dynamics, state["hidden"], obs, action)  # type: ignore[arg-type]
            return time.perf_counter() - started

        return dims.obs_dim, step

    built = {arm: pipeline(arm) for arm in arms}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    # The arms alternate step by step (the order flipping each step), so the machine's load,
    # shared with other work, falls on both alike; the first 10 steps warm caches.
    for index in range(steps + 10):
        order = arms if index % 2 == 0 else arms[::-1]
        for arm in order:
            elapsed = built[arm][1](index)
            if index >= 10:
                times[arm].append(elapsed)
    results: dict[str, Any] = {"threads": threads, "steps": steps, "preset": "tiny"}
    for arm in arms:
        results[arm] = {
            "obs_dim": built[arm][0],
            "step_p50_ms": percentile_ms(times[arm], 50),
            "step_p50_ci95_ms": bootstrap_p50_ci(times[arm], seed),
            "step_p99_ms": percentile_ms(times[arm], 99),
            "within_budget_p99": percentile_ms(times[arm], 99) < BUDGET_MS,
            "raw_ms": [t * 1e3 for t in times[arm]],
        }
    extra = [a - b for a, b in zip(times["image+audio"], times["image"], strict=True)]
    results["audio_extra_p50_ms"] = percentile_ms(extra, 50)
    results["audio_extra_p50_ci95_ms"] = bootstrap_p50_ci(extra, seed)
    results["action_heads"] = list(ACTION_SIZES)
    return results


def parameter_counts() -> dict[str, Any]:
    """Parameters of every model per preset and modality (the VRChat 9-head policy too)."""
    from dataclasses import replace

    from pamiq_ros.core.actions import VRCHAT_ACTION_SIZES
    from pamiq_ros.minds.curiosity import MODEL_NAMES, POLICY, PRESET_NAMES, CuriosityDimensions
    from pamiq_ros.models import forward_dynamics, ppo
    from pamiq_ros.models.audio_jepa import build_audio_jepa

    def count(model: Any) -> int:
        return sum(p.numel() for p in model.parameters())

    counts: dict[str, Any] = {}
    for preset in PRESET_NAMES:
        for modalities in ("image", "image+audio"):
            dims = CuriosityDimensions.of(preset, modalities)
            models = {name: count(dims.build(name)) for name in MODEL_NAMES}
            if modalities != "image":
                models["audio_jepa"] = count(build_audio_jepa(dims.audio))
            nine = dims.policy
            models["policy_9_heads"] = count(ppo.PolicyValueNet(replace(nine), VRCHAT_ACTION_SIZES))
            models["forward_dynamics_9_heads"] = count(
                forward_dynamics.ForwardDynamics(
                    dims.temporal.hidden_dim, dims.obs_dim, dims.forward_dynamics,
                    action_sizes=VRCHAT_ACTION_SIZES,
                )
            )  # fmt: skip
            models["total_5_heads"] = sum(models[name] for name in MODEL_NAMES) + models.get(
                "audio_jepa", 0
            )
            models["total_9_heads"] = (
                models["total_5_heads"]
                - models[POLICY]
                - models[MODEL_NAMES[2]]
                + models["policy_9_heads"]
                + models["forward_dynamics_9_heads"]
            )
            counts[f"{preset}/{modalities}"] = models
    return counts


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark and writes ``audio.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="stream run length (s)")
    parser.add_argument("--steps", type=int, default=300, help="acting steps per arm")
    parser.add_argument("--torch-threads", type=int, default=1, help="CPU threads for acting")
    parser.add_argument(
        "--out", type=Path, default=Path("runs") / time.strftime("bench-audio-%Y%m%d-%H%M%S")
    )
    parser.add_argument("--domain-id", type=int, default=87, help="ROS_DOMAIN_ID of the run")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to leave out: stream,step,parameters"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = isolate_for_benchmark(args.domain_id, args.out)
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    report: dict[str, Any] = {"machine": machine_description()}
    if "parameters" not in skip:
        report["parameters"] = parameter_counts()
    if "step" not in skip:
        report["acting_step"] = acting_step_figures(args.steps, args.torch_threads)
    if "stream" not in skip:
        report["stream"] = stream_figures(args.seconds, args.out, env)
    path = args.out / "audio.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(summary(report), indent=2))
    print(f"raw figures: {path}")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without raw arrays, totals only for the parameters."""
    short: dict[str, Any] = {}
    if "parameters" in report:
        short["parameters"] = {
            key: {"total_5_heads": value["total_5_heads"], "total_9_heads": value["total_9_heads"]}
            for key, value in report["parameters"].items()
        }
    if "acting_step" in report:
        short["acting_step"] = {
            key: {k: v for k, v in value.items() if k != "raw_ms"}
            if isinstance(value, dict)
            else value
            for key, value in report["acting_step"].items()
        }
    if "stream" in report:
        short["stream"] = report["stream"]
    return {key: _finite(value) for key, value in short.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


if __name__ == "__main__":
    main()
