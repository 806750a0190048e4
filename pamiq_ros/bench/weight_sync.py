"""Weight-sync benchmark: trainer publishes -> agent ready to act with the new weights.

For each model size and each transport, a publisher process (the trainer's side:
``WeightPublisher``) and a subscriber process (the agent's side: ``WeightSubscriber`` and a
``SwappableModel``) run over real DDS, each in its own process group, on loopback only and in
a DDS domain of their own. The publisher sends ``warmup`` versions (from version 0), then
``repeats`` measured ones, one at a time; the subscriber acknowledges each version once it is
prepared and swapped in. The warm-up versions are reported apart: they pay for memory written
for the first time (the agent's receive buffer, the trainer's first shared-memory files; on the
2-core virtual machine this was measured on, first writes into new pages were several times
slower than later ones). The latency of a version is
wall-clock time from the start of ``publish()`` (weights in hand, before encoding) to the
swap. A table is printed and ``weight_sync.json`` is written with every figure, including
where the time went (store = NaN/Inf check + file write with the BLAKE3 hashing, announcement,
service call, file read or chunk assembly with hashing, checksum comparison, parsing, loading
into the spare copy), and publish to acting (p50, p99: the subscriber swaps at once).

Usage::

    python -m pamiq_ros.bench.weight_sync [--sizes 1e6,1e7,5e7] [--transports shm,bytes]
        [--repeats 5] [--warmup 5] [--out DIR] [--domain-id N] [--chunk-size BYTES]
"""

import argparse
import datetime
import json
import math
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench._shared import isolate_for_benchmark, load_now, machine_description
from pamiq_ros.core.weight_store import DEFAULT_CHUNK_SIZE

TRAINER_NODE = "bench_trainer"
"""The trainer side's node: the subscriber takes weights only from it."""

MODEL_NAME = "bench_mlp"
ACK_TOPIC = "bench/ready"
MAX_WIDTH = 1024
VERSION_TIMEOUT_S = 120.0
"""Longest wait for one version to be acknowledged (50 M parameters over bytes included)."""

START_TIMEOUT_S = 60.0
"""Longest wait for the two processes to find each other and sync the warm-up version."""

STAGE_KEYS = (
    "publish_store_ms",
    "publish_encode_ms",
    "publish_write_ms",
    "publish_hash_ms",
    "publish_announce_ms",
    "announcement_ms",
    "request_ms",
    "read_ms",
    "checksum_ms",
    "decode_ms",
    "load_ms",
    "swap_wait_ms",
)


def model_shape(parameters: int) -> tuple[int, int]:
    """Width and number of the square Linear layers that hold about ``parameters`` parameters."""
    width = min(MAX_WIDTH, max(4, math.isqrt(parameters)))
    layers = max(1, round(parameters / (width * width + width)))
    return width, layers


def build_model(parameters: int, seed: int = 0) -> torch.nn.Sequential:
    """A stack of square Linear layers (ReLU between) with about ``parameters`` parameters."""
    width, layers = model_shape(parameters)
    torch.manual_seed(seed)
    modules: list[torch.nn.Module] = []
    for index in range(layers):
        if index:
            modules.append(torch.nn.ReLU())
        modules.append(torch.nn.Linear(width, width))
    return torch.nn.Sequential(*modules)


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters of a model."""
    return sum(parameter.numel() for parameter in model.parameters())


# --- the two roles (each runs in its own process) ------------------------------------------


def _ack_qos() -> Any:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        depth=100,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def run_publisher(parameters: int, versions: int, result_path: Path, chunk_size: int) -> int:
    """The trainer's side: publishes versions 0 .. ``versions - 1``, one per acknowledgement."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from std_msgs.msg import String

    from pamiq_ros.core.weight_store import SharedWeightStore
    from pamiq_ros.nodes._weight_sync import WeightPublisher

    rclpy.init()
    node = rclpy.create_node(TRAINER_NODE)
    acks: dict[int, dict[str, Any]] = {}
    arrived = threading.Condition()

    def on_ack(message: Any) -> None:
        payload = json.loads(message.data)
        with arrived:
            acks[int(payload["version"])] = payload
            arrived.notify_all()

    node.create_subscription(String, ACK_TOPIC, on_ack, _ack_qos())
    store = SharedWeightStore(chunk_size=chunk_size)
    publisher = WeightPublisher(node, store)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin, name="spin")
    spinner.start()
    model = build_model(parameters)
    samples: list[dict[str, Any]] = []
    status = 0
    try:
        for version in range(versions):
            if version:
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter.add_(1e-3)  # new values, same shapes: a trainer's update
            state_dict = model.state_dict()
            started_wall = time.time()
            publisher.publish(MODEL_NAME, version, state_dict)
            timing = publisher.last_timing
            assert timing is not None
            timeout = START_TIMEOUT_S if version == 0 else VERSION_TIMEOUT_S
            with arrived:
                if not arrived.wait_for(lambda: version in acks, timeout):  # noqa: B023
                    raise TimeoutError(f"version {version} not acknowledged within {timeout} s")
                ack = acks[version]
            samples.append(
                {
                    "version": version,
                    "publish_started": started_wall,
                    "ready_ms": (ack["ready_wall"] - started_wall) * 1000,
                    "swapped_ms": (ack["swapped_wall"] - started_wall) * 1000,
                    "publish_store_ms": timing.store_s * 1000,
                    "publish_announce_ms": timing.announce_s * 1000,
                    "publish_encode_ms": timing.encode_s * 1000,
                    "publish_write_ms": timing.write_s * 1000,
                    "publish_hash_ms": timing.hash_s * 1000,
                    "preallocated": timing.preallocated,
                    "size_bytes": timing.size_bytes,
                    **{key: value for key, value in ack.items() if key.endswith("_ms")},
                    "transport": ack["transport"],
                }
            )
    except (TimeoutError, RuntimeError) as error:
        print(f"[bench publisher] {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        result_path.write_text(
            json.dumps({"parameters": parameter_count(model), "samples": samples}, indent=1)
        )
        publisher.close()
        done.set()
        spinner.join()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        store.close()
        rclpy.try_shutdown()
    return status


def run_subscriber(parameters: int, transport: str) -> int:
    """The agent's side: prepares each announced version, swaps it in and acknowledges it."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import String

    from pamiq_ros.core.swappable import SwappableModel
    from pamiq_ros.nodes._weight_sync import SyncTiming, WeightSubscriber

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_agent")
    ack_publisher = node.create_publisher(String, ACK_TOPIC, _ack_qos())
    model = SwappableModel(MODEL_NAME, lambda: build_model(parameters, seed=1))

    def on_ready(name: str, version: int, timing: SyncTiming) -> None:
        ready_wall = time.time()
        # The acting thread would swap at its next step; here it happens at once.
        swapped = model.swap_if_ready()
        swapped_wall = time.time()
        payload = {
            "version": version,
            "swapped_version": swapped,
            "ready_wall": ready_wall,
            "swapped_wall": swapped_wall,
            "transport": timing.transport,
            "announcement_ms": timing.announcement_s * 1000,
            "request_ms": timing.request_s * 1000,
            "read_ms": timing.read_s * 1000,
            "checksum_ms": timing.checksum_s * 1000,
            "decode_ms": timing.decode_s * 1000,
            "load_ms": timing.load_s * 1000,
            "announced_to_received_ms": timing.announced_to_received_s * 1000,
            "announced_to_ready_ms": timing.announced_to_ready_s * 1000,
        }
        ack_publisher.publish(String(data=json.dumps(payload)))

    def on_error(message: str) -> None:
        print(f"[bench subscriber] {message}", file=sys.stderr, flush=True)

    subscriber = WeightSubscriber(
        node, {MODEL_NAME: model}, transport=transport, on_ready=on_ready, on_error=on_error,
        trainer_node=TRAINER_NODE,
    )  # fmt: skip
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        subscriber.close()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# --- the orchestrator ----------------------------------------------------------------------


class _Child(GroupProcess):
    """A role process in its own process group, stopped by group."""

    def __init__(self, name: str, arguments: Sequence[str], env: dict[str, str], logs: Path):
        self.name = name
        command = [sys.executable, "-m", "pamiq_ros.bench.weight_sync", *arguments]
        super().__init__(command, env, logs / f"{name}.log")


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise_case(
    requested: int, transport: str, parameters: int, samples: list[dict[str, Any]], warmup: int
) -> dict[str, Any]:
    """The figures of one size and transport: p50/max latency, stage medians, warm-up apart."""
    measured = [sample for sample in samples if sample["version"] >= warmup]
    warming = [sample["ready_ms"] for sample in samples if sample["version"] < warmup]
    ready = [sample["ready_ms"] for sample in measured]
    # Publish to acting: the subscriber swaps a version in as soon as it is ready.
    acting = [sample["swapped_ms"] for sample in measured]
    size_bytes = samples[0]["size_bytes"] if samples else 0
    stages: dict[str, float] = {}
    for key in STAGE_KEYS:
        if key == "swap_wait_ms":
            values = [sample["swapped_ms"] - sample["ready_ms"] for sample in measured]
        else:
            values = [sample[key] for sample in measured if key in sample]
        stages[key] = statistics.median(values) if values else math.nan
    return {
        "requested_parameters": requested,
        "parameters": parameters,
        "transport": transport,
        "size_bytes": size_bytes,
        "megabytes": size_bytes / 1e6,
        "repeats": len(measured),
        "ready_p50_ms": _percentile(ready, 0.5),
        "ready_max_ms": max(ready) if ready else math.nan,
        "ready_min_ms": min(ready) if ready else math.nan,
        "acting_p50_ms": _percentile(acting, 0.5),
        "acting_p99_ms": _percentile(acting, 0.99),
        "acting_max_ms": max(acting) if acting else math.nan,
        "warmup_versions": warmup,
        "warmup_ready_ms": warming,
        "warmup_ready_max_ms": max(warming) if warming else math.nan,
        "stages_p50_ms": stages,
        "samples": samples,
    }


def run_case(
    requested: int,
    transport: str,
    repeats: int,
    warmup: int,
    env: dict[str, str],
    out_dir: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, Any]:
    """Runs one size and transport with a fresh publisher and subscriber process."""
    label = f"{requested:.0e}-{transport}".replace("+", "")
    result_path = out_dir / f"publisher-{label}.json"
    result_path.unlink(missing_ok=True)
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    versions = warmup + repeats
    size_argument = ["--params", str(requested)]
    result_argument = ["--result", str(result_path), "--chunk-size", str(chunk_size)]
    subscriber = _Child(
        f"subscriber-{label}",
        ["--role", "subscriber", *size_argument, "--transport", transport],
        env,
        logs,
    )
    publisher = _Child(
        f"publisher-{label}",
        ["--role", "publisher", *size_argument, "--versions", str(versions), *result_argument],
        env,
        logs,
    )
    try:
        publisher.popen.wait(timeout=START_TIMEOUT_S + VERSION_TIMEOUT_S * versions)
    finally:
        publisher.stop()
        subscriber.stop()
    if publisher.popen.returncode != 0 or not result_path.exists():
        raise RuntimeError(
            f"case {label} failed (publisher status {publisher.popen.returncode})\n"
            f"--- publisher log ---\n{publisher.tail()}\n--- subscriber log ---\n"
            f"{subscriber.tail()}"
        )
    result = json.loads(result_path.read_text())
    return summarise_case(requested, transport, result["parameters"], result["samples"], warmup)


ACTING_P99_TARGETS_MS = {10_000_000: 100.0, 50_000_000: 250.0}
"""Publish to acting p99 targets by parameter count (issue 16, goal 4)."""

SUITE_SIZES = tuple(ACTING_P99_TARGETS_MS)
SUITE_TRANSPORT = "shm"
"""What ``make bench`` runs: the target sizes over shared memory (the agent's ``auto`` on one
host)."""

SUITE_REPEATS, SUITE_WARMUP = 30, 5
QUICK_SUITE_REPEATS, QUICK_SUITE_WARMUP = 5, 2
"""Measured and warm-up versions per size in ``make bench`` (about 1.5 min for both sizes) and
with ``--quick``. Of 30 versions, p99 lies between the two slowest."""


def acting_targets(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's publish-to-acting p99 targets beside the cases of those sizes.

    A size without a measured case is "not measured" (``met`` None).
    """
    targets = []
    for size, limit_ms in ACTING_P99_TARGETS_MS.items():
        case = next((c for c in cases if c["requested_parameters"] == size), None)
        value = case["acting_p99_ms"] if case is not None else None
        if value is not None and not math.isfinite(value):
            value = None
        transport = f", {case['transport']}" if case is not None else ""
        targets.append(
            {
                "target": f"weights {size / 1e6:g} M params publish -> acting p99 < "
                f"{limit_ms:g} ms{transport}",
                "value": value,
                "unit": "ms",
                "met": None if value is None else value < limit_ms,
                "parameters": size,
                "limit_ms": limit_ms,
            }
        )
    return targets


def measure_sync(
    repeats: int,
    warmup: int,
    env: dict[str, str],
    out_dir: Path,
    say: Callable[[str], None],
    sizes: Sequence[int] = SUITE_SIZES,
    run: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``make bench``'s weight-sync part: each size once over shm, with the targets beside them.

    Each case records the load average at its end; a failed case is reported, not raised.
    ``run`` (one size: :func:`run_case`'s arguments) defaults to :func:`run_case`.
    """
    run = run or run_case
    cases: list[dict[str, Any]] = []
    failures: list[str] = []
    for size in sizes:
        say(f"weight sync: {size / 1e6:g} M parameters, {warmup} + {repeats} versions")
        try:
            case = run(size, SUITE_TRANSPORT, repeats, warmup, env, out_dir)
        except RuntimeError as error:
            failures.append(str(error))
            say(f"weight sync: {size / 1e6:g} M failed: {str(error).splitlines()[0]}")
            continue
        cases.append({**case, **load_now()})
        say(
            f"weight sync: {size / 1e6:g} M: publish -> acting p50 {case['acting_p50_ms']:.1f} "
            f"ms, p99 {case['acting_p99_ms']:.1f} ms"
        )
    return {
        "measure": "wall-clock ms from WeightPublisher.publish() start to the new weights "
        "swapped in by the agent process",
        "transport": SUITE_TRANSPORT,
        "repeats": repeats,
        "warmup": warmup,
        "cases": cases,
        "failed": failures,
        "targets": acting_targets(cases),
    }


def format_table(cases: Sequence[dict[str, Any]]) -> str:
    """The printed table: one row per size and transport."""
    header = (
        f"{'size':>6} {'params':>11} {'transport':>9} {'MB':>8} {'p50 ms':>8} {'max ms':>8} "
        f"{'act p50':>8} {'act p99':>8} {'warm-up max':>11}  "
        "stages p50 ms (store/announce/request/read/checksum/decode/load)"
    )
    rows = [header, "-" * len(header)]
    for case in cases:
        stages = case["stages_p50_ms"]
        stage_text = "/".join(
            f"{stages[key]:.1f}"
            for key in (
                "publish_store_ms",
                "publish_announce_ms",
                "request_ms",
                "read_ms",
                "checksum_ms",
                "decode_ms",
                "load_ms",
            )
        )
        rows.append(
            f"{case['requested_parameters']:>6.0e} {case['parameters']:>11,} "
            f"{case['transport']:>9} {case['megabytes']:>8.1f} {case['ready_p50_ms']:>8.1f} "
            f"{case['ready_max_ms']:>8.1f} {case['acting_p50_ms']:>8.1f} "
            f"{case['acting_p99_ms']:>8.1f} {case['warmup_ready_max_ms']:>11.1f}  {stage_text}"
        )
    return "\n".join(rows)


def _parse_sizes(text: str) -> list[int]:
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {item!r} is not a number") from None
        if not math.isfinite(value) or value < 16:
            raise argparse.ArgumentTypeError(f"size {item!r} must be at least 16 parameters")
        sizes.append(round(value))
    return sizes


def _parse_transports(text: str) -> list[str]:
    transports = [item.strip() for item in text.split(",") if item.strip()]
    for transport in transports:
        if transport not in ("shm", "bytes"):
            raise argparse.ArgumentTypeError(f"transport {transport!r} is not shm or bytes")
    return transports


def _default_out_dir() -> Path:
    return Path("runs") / f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.weight_sync",
        description="Weight-sync latency (trainer publish -> agent ready) over real processes.",
    )
    parser.add_argument("--sizes", type=_parse_sizes, default=_parse_sizes("1e6,1e7,5e7"))
    parser.add_argument("--transports", type=_parse_transports, default=["shm", "bytes"])
    parser.add_argument("--repeats", type=int, default=5, help="measured versions per case")
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="versions sent first and reported apart (5: each file of the trainer's store, "
        "3 kept + 1 allocated ahead, has been written once)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default runs/bench-<time>/")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="bytes per chunk on the bytes path",
    )
    parser.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="DDS domain of the benchmark's processes (default: 1 + PID mod 101, never 0)",
    )
    # The roles, run by the benchmark itself.
    parser.add_argument("--role", choices=["publisher", "subscriber"], help=argparse.SUPPRESS)
    parser.add_argument("--params", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--versions", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--transport", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the benchmark (or one of its roles); returns the exit status."""
    parser = _parser()
    options = parser.parse_args(args)
    if options.role == "publisher":
        return run_publisher(options.params, options.versions, options.result, options.chunk_size)
    if options.role == "subscriber":
        return run_subscriber(options.params, options.transport)
    if options.repeats < 1 or options.warmup < 1:
        parser.error("--repeats and --warmup must be at least 1")
    domain_id = options.domain_id if options.domain_id is not None else 1 + os.getpid() % 101
    if not 1 <= domain_id <= 232:
        parser.error("--domain-id must be in 1..232")
    out_dir = (options.out or _default_out_dir()).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    env = isolate_for_benchmark(domain_id, out_dir)

    cases = []
    started = time.time()
    print(
        f"weight-sync benchmark: sizes {options.sizes}, transports {options.transports}, "
        f"{options.warmup} warm-up + {options.repeats} measured versions each, DDS domain "
        f"{domain_id} (loopback only)",
        flush=True,
    )
    try:
        for size in options.sizes:
            for transport in options.transports:
                case = run_case(
                    size,
                    transport,
                    options.repeats,
                    options.warmup,
                    env,
                    out_dir,
                    options.chunk_size,
                )
                cases.append(case)
                print(
                    f"  {size:.0e} {transport}: p50 {case['ready_p50_ms']:.1f} ms, "
                    f"max {case['ready_max_ms']:.1f} ms",
                    flush=True,
                )
    except RuntimeError as error:
        print(f"benchmark failed: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr, flush=True)
        return 130
    report = {
        "benchmark": "weight_sync",
        "measure": "wall-clock ms from WeightPublisher.publish() start to the prepared "
        "weights swapped in by the agent process",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "duration_s": time.time() - started,
        "host": machine_description(),
        "domain_id": domain_id,
        "repeats": options.repeats,
        "warmup": options.warmup,
        "chunk_size": options.chunk_size,
        "cases": cases,
    }
    path = out_dir / "weight_sync.json"
    path.write_text(json.dumps(report, indent=1))
    print()
    print(format_table(cases))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
