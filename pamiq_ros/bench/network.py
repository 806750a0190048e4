"""Network benchmark: weight freshness and experience delivery between namespaced hosts.

A trainer side (the real ``WeightPublisher`` and ``ExperienceReceiver``) runs on one host and
one or more agent sides (the real ``WeightSubscriber`` with a ``SwappableModel``, and the real
``ExperienceSender`` publishing 160x120 records at ``--rate-hz``) each on a host of their own:
network namespaces with their own host names and ``/dev/shm``, joined by veth
(:mod:`pamiq_ros.bench.network_hosts`), loss injected by nftables, DDS on the chosen network
profile. The trainer publishes a new version every ``--period`` s. After ``--seconds`` of
sending the agents stop and the outboxes drain (at most ``--drain`` s, loss still on).

Per case (loss %, agents) it reports: weight freshness (per version, the agent's own-clock time
from the announcement's arrival to the weights ready; and, sampled twice a second, how many
versions the agent is behind the trainer), bytes the trainer's link carried per version fetched
against the announced size, and experience delivery (records sent, received by the trainer as
new, lost after the drain, resends, repeats, throughput). Writes ``network.json`` and
``network.png``.

Usage (root; ~1 min per case)::

    python -m pamiq_ros.bench.network [--losses 0,2,10] [--fleet 2] [--seconds 20]
"""

import argparse
import datetime
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pamiq_ros.bench._process_group import GroupProcess
from pamiq_ros.bench.network_hosts import NamespacedHosts, missing_reason
from pamiq_ros.bench.weight_sync import build_model

MODEL_NAME = "bench_mlp"
STATUS_PERIOD_S = 0.5
IMAGE_SHAPE = (120, 160, 3)


def _write_status(path: Path, status: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(status))
    os.replace(temporary, path)


def _spin_reporting(
    node: Any, stop: threading.Event, status_path: Path, status: Callable[[], dict[str, Any]]
) -> None:
    """Spins ``node`` until ``stop``, writing ``status()`` to ``status_path`` twice a second."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    next_status = 0.0
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_PERIOD_S
                _write_status(status_path, status())
    finally:
        executor.shutdown(timeout_sec=1.0)


def _ros_start() -> tuple[Any, threading.Event]:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    return rclpy, stop


def run_trainer(parameters: int, period: float, status_path: Path) -> int:
    """The trainer's side: a version every ``period`` s; counts experience per agent."""
    rclpy, stop = _ros_start()
    from pamiq_ros_interfaces.msg import Experience

    from pamiq_ros.core.weight_store import SharedWeightStore
    from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
    from pamiq_ros.nodes._experience_link import ExperienceReceiver
    from pamiq_ros.nodes._weight_sync import WeightPublisher

    node = rclpy.create_node("trainer")
    store = SharedWeightStore()
    publisher = WeightPublisher(node, store)
    receiver = ExperienceReceiver(node)
    new_records: dict[str, int] = {}

    def on_experience(message: Any) -> None:
        if receiver.is_new(message):
            new_records[message.agent_id] = new_records.get(message.agent_id, 0) + 1

    node.create_subscription(Experience, EXPERIENCE_TOPIC, on_experience, EXPERIENCE_QOS)
    model = build_model(parameters, seed=0)
    published: list[dict[str, Any]] = []

    def publish_loop() -> None:
        version = 0
        while not stop.wait(period if version else 0.0):
            version += 1
            with_noise = {k: v + version * 1e-3 for k, v in model.state_dict().items()}
            stored = publisher.publish(MODEL_NAME, version, with_noise)
            published.append({"version": version, "size_bytes": stored.size_bytes,
                              "at": time.time()})  # fmt: skip

    thread = threading.Thread(target=publish_loop, daemon=True)
    thread.start()
    try:
        _spin_reporting(node, stop, status_path, lambda: {
            "published": published[-1] if published else None,
            "versions": len(published), "new_records": dict(new_records),
            "per_agent": receiver.per_agent(),
        })  # fmt: skip
    finally:
        publisher.close()
        store.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def run_agent(name: str, parameters: int, rate_hz: float, seconds: float, status_path: Path) -> int:
    """An agent's side: fetches versions, sends ``seconds`` of records, keeps reporting."""
    rclpy, stop = _ros_start()
    from pamiq_ros_interfaces.msg import Experience

    from pamiq_ros.core.swappable import SwappableModel
    from pamiq_ros.nodes._experience import EXPERIENCE_QOS, EXPERIENCE_TOPIC
    from pamiq_ros.nodes._experience_link import ExperienceSender
    from pamiq_ros.nodes._weight_sync import SyncTiming, WeightSubscriber

    node = rclpy.create_node(name)
    model = SwappableModel(MODEL_NAME, lambda: build_model(parameters, seed=1))
    syncs: list[dict[str, Any]] = []

    def on_ready(_: str, version: int, timing: SyncTiming) -> None:
        model.swap_if_ready()
        syncs.append({
            "version": version, "sync_ms": timing.received_to_ready_s * 1000,
            "transport": timing.transport, "bytes": timing.transferred_bytes,
            "size_bytes": timing.size_bytes, "retries": timing.chunk_retries,
        })  # fmt: skip

    subscriber = WeightSubscriber(
        node, {MODEL_NAME: model}, on_ready=on_ready, trainer_node="/trainer",
        on_error=lambda text: print(f"[{name}] {text}", file=sys.stderr, flush=True),
    )  # fmt: skip
    experience = node.create_publisher(Experience, EXPERIENCE_TOPIC, EXPERIENCE_QOS)
    sender = ExperienceSender(node, experience)
    pixels = bytes(IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * 3)
    sent_until = time.monotonic() + seconds

    def send_loop() -> None:
        step = 0
        while not stop.wait(1.0 / rate_hz) and time.monotonic() < sent_until:
            message = Experience(step=step, model_name=MODEL_NAME, weight_version=model.version)
            message.observation.height, message.observation.width = IMAGE_SHAPE[:2]
            message.observation.encoding, message.observation.step = "rgb8", IMAGE_SHAPE[1] * 3
            message.observation.data = pixels
            sender.send(message)
            step += 1

    thread = threading.Thread(target=send_loop, daemon=True)
    thread.start()
    try:
        _spin_reporting(node, stop, status_path, lambda: {
            "agent_id": sender.agent_id, "version": model.version,
            "sending": thread.is_alive(), "syncs": syncs, **sender.status(),
            **subscriber.status(), "refusals": subscriber.refusals(),
        })  # fmt: skip
    finally:
        subscriber.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def version_lags(samples: Sequence[dict[str, Any]]) -> list[int]:
    """Versions each agent was behind the trainer, sampled, from each agent's first weights on.

    Before its first weights, the lag only measures how long the processes took to start.
    """
    lags: list[int] = []
    for index in range(len(samples[0]["agents"]) if samples else 0):
        started = False
        for sample in samples:
            started = started or sample["agents"][index] > 0
            if started and sample["newest"]:
                lags.append(max(0, sample["newest"] - sample["agents"][index]))
    return lags


def run_case(
    loss: float, agents: int, seconds: float, drain: float, parameters: int, period: float,
    rate_hz: float, profile: str, out: Path, trainer_delay: float = 0.0,
    outage: tuple[float, float] | None = None, recreate: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One case on fresh hosts: host 0 the trainer, hosts 1.. the agents.

    Args:
        loss: Packets dropped on the link (%).
        agents: Agent hosts.
        seconds: Seconds each agent sends records.
        drain: Longest wait after that for the outboxes to empty.
        parameters: Size of the model whose weights are synced.
        period: Seconds between two versions.
        rate_hz: Records per second per agent.
        profile: Network profile (lan, wifi), or rmw for rmw_fastrtps's own transports.
        out: Folder for the case's logs and status files.
        trainer_delay: Seconds the agents send before the trainer starts (records sent before
            it matched must still arrive).
        outage: (start, length) in seconds after the first weights reached every agent: every
            packet is dropped
            meanwhile (the interfaces stay up, as when a robot leaves the WiFi's range).
        recreate: The outage deletes the interfaces instead, and makes them again with the same
            names and addresses after it.
    """
    from pamiq_ros.bringup.network_profiles import network_environment

    case_dir = out / f"loss{loss:g}-agents{agents}"
    case_dir.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, "-m", "pamiq_ros.bench.network"]
    samples: list[dict[str, Any]] = []
    with NamespacedHosts(agents + 1) as hosts:
        env = dict(os.environ)
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        env.pop("ROS_STATIC_PEERS", None)
        env["ROS_DOMAIN_ID"] = env.get("ROS_DOMAIN_ID", "0")
        if profile == "rmw":  # rmw_fastrtps's own transports, as main ran across hosts before
            env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        else:  # every host a static peer, beside multicast discovery
            env.update(network_environment(profile, ";".join(h.address for h in hosts.hosts)))
        hosts.set_loss(loss)
        trainer_command = hosts.command(
            0,
            [
                *me,
                "--role",
                "trainer",
                "--params",
                str(parameters),
                "--period",
                str(period),
                "--status",
                str(case_dir / "trainer.json"),
            ],
        )
        children = []  # fmt: skip
        for index in range(1, agents + 1):
            children.append(GroupProcess(hosts.command(index, [*me, "--role", "agent", "--name",
                f"agent{index}", "--params", str(parameters), "--rate-hz", str(rate_hz),
                "--seconds", str(seconds), "--status", str(case_dir / f"agent{index}.json")]),
                env, case_dir / f"agent{index}.log"))  # fmt: skip
        started = time.monotonic()
        link_up = True
        synced_at: float | None = None
        outage_ended_at: float | None = None
        try:
            deadline = started + seconds + drain + 20.0  # + start-up
            while time.monotonic() < deadline:
                time.sleep(STATUS_PERIOD_S)
                elapsed = time.monotonic() - started
                if len(children) == agents and elapsed >= trainer_delay:
                    children.append(GroupProcess(trainer_command, env, case_dir / "trainer.log"))
                if outage is not None and synced_at is not None:
                    since = elapsed - synced_at
                    down = outage[0] <= since < outage[0] + outage[1]
                    if down == link_up:
                        if recreate and down:
                            hosts.unlink()
                        elif recreate:
                            hosts.relink()
                            hosts.set_loss(loss)
                        else:  # out of the WiFi's range: every packet dropped
                            hosts.set_loss(100.0 if down else loss)
                        link_up = not down
                        outage_ended_at = None if down else elapsed
                trainer = _read(case_dir / "trainer.json")
                statuses = [_read(case_dir / f"agent{i}.json") for i in range(1, agents + 1)]
                newest = (trainer.get("published") or {}).get("version", 0)
                versions = [status.get("version", 0) for status in statuses]
                samples.append({"t": elapsed, "newest": newest, "agents": versions})
                if synced_at is None and all(versions):
                    synced_at = elapsed
                settled = outage is None or outage_ended_at is not None
                done = settled and all(
                    status and not status.get("sending")
                    and status.get("experience_unacknowledged") == 0
                    for status in statuses
                )  # fmt: skip
                if done:
                    break
            counters = hosts.counters(0)
            agent_counters = [hosts.counters(index) for index in range(1, agents + 1)]
        finally:
            for child in children:
                child.stop(timeout=10.0)
    trainer = _read(case_dir / "trainer.json")
    statuses = [_read(case_dir / f"agent{i}.json") for i in range(1, agents + 1)]
    syncs = [sync for status in statuses for sync in status.get("syncs", [])]
    sync_ms = [sync["sync_ms"] for sync in syncs]
    lags = version_lags(samples)
    fetched = len(syncs)
    size = syncs[0]["size_bytes"] if syncs else 0
    per_agent = []
    for status in statuses:
        agent_id = status.get("agent_id", "?")
        received = trainer.get("new_records", {}).get(agent_id, 0)
        per_agent.append({
            "agent_id": agent_id, "sent": status.get("experience_outbox_sent", 0),
            "received": received, "lost": status.get("experience_outbox_sent", 0) - received,
            "resent": status.get("experience_resent", 0),
            "dropped": status.get("experience_outbox_dropped", 0),
            "unacknowledged": status.get("experience_unacknowledged", -1),
            "repeats": trainer.get("per_agent", {}).get(agent_id, {}).get("repeats", 0),
            "versions_synced": status.get("weights_synced", 0),
            "last_version": status.get("version"), "path": status.get("weights_path"),
            "chunk_retries": status.get("weights_chunk_retries"),
            "refusals": status.get("refusals", {}),
        })  # fmt: skip
    return {
        "loss_percent": loss, "agents": agents, "profile": profile, "parameters": parameters,
        "versions_published": trainer.get("versions", 0), "versions_fetched": fetched,
        "sync_ms": {"p50": _percentile(sync_ms, 0.5), "p95": _percentile(sync_ms, 0.95),
                    "max": max(sync_ms, default=float("nan")), "values": sync_ms},
        "version_lag": {"p50": _percentile(lags, 0.5), "p95": _percentile(lags, 0.95),
                        "max": max(lags, default=0)},
        "announced_bytes": size,
        "trainer_tx_bytes": counters["tx_bytes"], "trainer_tx_packets": counters["tx_packets"],
        "tx_bytes_per_fetched_version": counters["tx_bytes"] / fetched if fetched else None,
        "agent_udp_receive_buffer_errors": [c["udp_receive_buffer_errors"] for c in agent_counters],
        "experience_records_per_s": sum(a["received"] for a in per_agent) / seconds,
        "per_agent": per_agent, "samples": samples, "outage_ended_at": outage_ended_at,
    }  # fmt: skip


def plot(cases: Sequence[dict[str, Any]], path: Path) -> None:
    """Sync time and experience delivery per case (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{c['loss_percent']:g}% x{c['agents']}" for c in cases]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.boxplot([c["sync_ms"]["values"] or [float("nan")] for c in cases], tick_labels=labels)
    left.set_ylabel("arrival -> ready (ms, agent clock)")
    left.set_yscale("log")
    left.set_title("weight freshness per version")
    sent = [sum(a["sent"] for a in c["per_agent"]) for c in cases]
    received = [sum(a["received"] for a in c["per_agent"]) for c in cases]
    positions = range(len(cases))
    right.bar([p - 0.2 for p in positions], sent, width=0.4, label="sent")
    right.bar([p + 0.2 for p in positions], received, width=0.4, label="received (new)")
    right.set_xticks(list(positions), labels)
    right.set_title("experience records after the drain")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", default="0,2,10", help="loss percentages, comma-separated")
    parser.add_argument("--fleet", type=int, default=2, help="agents of the fleet case (0: none)")
    parser.add_argument("--fleet-loss", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--drain", type=float, default=30.0, help="longest drain after sending")
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--period", type=float, default=1.0, help="seconds between versions")
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--profile", default="wifi", choices=["lan", "wifi", "rmw"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--role", choices=["trainer", "agent"], help=argparse.SUPPRESS)
    parser.add_argument("--name", default="agent1", help=argparse.SUPPRESS)
    parser.add_argument("--status", type=Path, help=argparse.SUPPRESS)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the cases (or one role) and writes network.json and network.png."""
    options = _parser().parse_args(args)
    if options.role == "trainer":
        return run_trainer(options.params, options.period, options.status)
    if options.role == "agent":
        return run_agent(options.name, options.params, options.rate_hz, options.seconds,
                         options.status)  # fmt: skip
    reason = missing_reason()
    if reason:
        print(f"network benchmark skipped: {reason}")
        return 0
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = options.out or Path("runs") / f"bench-network-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    plan = [(float(loss), 1) for loss in options.losses.split(",") if loss.strip()]
    if options.fleet > 1:
        plan.append((options.fleet_loss, options.fleet))
    cases = []
    for loss, agents in plan:
        case = run_case(loss, agents, options.seconds, options.drain, options.params,
                        options.period, options.rate_hz, options.profile, out)  # fmt: skip
        cases.append(case)
        lost = sum(a["lost"] for a in case["per_agent"])
        print(
            f"loss {loss:g}% agents {agents}: versions fetched {case['versions_fetched']}/"
            f"{case['versions_published']} sync p50 {case['sync_ms']['p50']:.0f} ms p95 "
            f"{case['sync_ms']['p95']:.0f} ms, lag p95 {case['version_lag']['p95']} | link "
            f"{(case['tx_bytes_per_fetched_version'] or 0) / max(1, case['announced_bytes']):.2f}x"
            f" announced, agent UDP buffer overflows {case['agent_udp_receive_buffer_errors']}"
            f" | experience {case['experience_records_per_s']:.1f}/s lost {lost}",
            flush=True,
        )
    result = {"machine": os.uname().nodename, "when": stamp, "cases": cases,
              "statistics_note": "one run per case; sync_ms percentiles over versions"}  # fmt: skip
    (out / "network.json").write_text(json.dumps(result, indent=1))
    plot(cases, out / "network.png")
    print(f"wrote {out / 'network.json'} and {out / 'network.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
