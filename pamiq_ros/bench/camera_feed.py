"""A big camera feeding the agent: whether it keeps its rate and takes every frame.

A robot's camera driver publishes large raw images; the agent decodes and fits each one in its
subscription callback, off the acting thread. This bench starts a real agent process (the
default curiosity mind, ``config``'s agent parameters), publishes ``width`` x ``height`` frames
in ``encoding`` at ``rate_hz`` from its own rclpy node, stamped at send time, for ``seconds``,
and reads the agent's ``/diagnostics``: frames received per second (after warm-up), its step
rate and step-interval error, frame age at receipt and at the step, and gap steps.

Usage::

    python -m pamiq_ros.bench.camera_feed [--width 1920 --height 1080 --encoding bgr8 \
        --rate-hz 10 --seconds 30 --out DIR]
"""

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import isolate_for_benchmark
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.io.image_codec import encode_image

KEYS = (
    "rate_hz", "missed_deadlines", "interval_error_p50_ms", "interval_error_p99_ms",
    "interval_error_max_ms", "frames_received", "frames_rejected", "gap_steps",
    "frame_age_at_receipt_p50_ms", "frame_age_at_receipt_p99_ms", "frame_age_at_step_p50_ms",
    "frame_age_at_step_p99_ms", "last_frame_width", "last_frame_height",
)  # fmt: skip


def measure_camera_feed(
    width: int, height: int, encoding: str, rate_hz: float, seconds: float, warmup_s: float,
    config: Path, out_dir: Path, env: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """Runs the feed and returns the figures (see the module docstring)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    document = yaml.safe_load(config.read_text())
    parameters = dict(document.get("agent", {}).get("ros__parameters", {}))
    parameters.update(report_period=1.0, run_dir=str(out_dir / "agent_run"))
    params_file = out_dir / "agent.yaml"
    params_file.write_text(yaml.safe_dump({"agent": {"ros__parameters": parameters}}))
    command = [sys.executable, "-m", NODE_EXECUTABLES["agent"], "--ros-args",
               "--params-file", str(params_file)]  # fmt: skip
    agent = GroupProcess(command, env, out_dir / "agent.log")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("camera_feed_bench", context=context)
    reports: list[tuple[float, dict[str, str]]] = []
    lock = threading.Lock()

    def on_diagnostics(array: Any) -> None:
        for status in array.status:
            if status.name == "/agent":
                with lock:
                    reports.append((time.monotonic(), {v.key: v.value for v in status.values}))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    publisher = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinning = threading.Event()

    def spin() -> None:
        while not spinning.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    message = Image()
    encode_image(pixels, encoding).fill(message)
    published = 0
    try:
        deadline = time.monotonic() + 60.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            message.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(message)
            published += 1
            time.sleep(max(0.0, start + published / rate_hz - time.monotonic()))
        time.sleep(1.5)  # the last report
    finally:
        spinning.set()
        spinner.join(timeout=5.0)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        context.try_shutdown()
        agent.stop()
    with lock:
        timed = [(t - start, values) for t, values in reports if t >= start]
    after = [(t, float(v["frames_received"])) for t, v in timed if t >= warmup_s]
    received_rate = (
        (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])
        if len(after) >= 2 and after[-1][0] > after[0][0]
        else None
    )
    last = timed[-1][1] if timed else {}
    return {
        "width": width,
        "height": height,
        "encoding": encoding,
        "megabytes_per_frame": round(len(message.data) / 1e6, 2),
        "publish_rate_hz": rate_hz,
        "frames_published": published,
        "agent_frames_per_second": None if received_rate is None else round(received_rate, 2),
        "agent": {key: last.get(key) for key in KEYS},
        "seconds": seconds,
        "warmup_seconds": warmup_s,
        "agent_log": str(out_dir / "agent.log"),
    }


def main(args: Sequence[str] | None = None) -> int:
    """Runs the bench, prints the figures and writes ``camera_feed.json``."""
    parser = argparse.ArgumentParser(prog="python -m pamiq_ros.bench.camera_feed")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--encoding", default="bgr8", choices=("rgb8", "bgr8", "mono8"))
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--config", type=Path, default=Path("config/robot.yaml"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--domain-id", type=int, default=None)
    parsed = parser.parse_args(args)
    out_dir = parsed.out or Path("runs") / f"bench-camera-feed-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    domain_id = parsed.domain_id if parsed.domain_id is not None else 1 + os.getpid() % 101
    env = isolate_for_benchmark(domain_id, out_dir)
    figures = measure_camera_feed(
        parsed.width, parsed.height, parsed.encoding, parsed.rate_hz, parsed.seconds,
        parsed.warmup_seconds, parsed.config, out_dir, env,
    )  # fmt: skip
    path = out_dir / "camera_feed.json"
    path.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
