"""The weight-sync benchmark command runs end to end with tiny models and reports every figure."""

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from pamiq_ros.bench.weight_sync import (
    STAGE_KEYS,
    acting_targets,
    build_model,
    measure_sync,
    model_shape,
    parameter_count,
)


def processes_with_log_dir(log_dir: Path) -> list[int]:
    """PIDs of this user's processes whose environment names ``log_dir`` as ROS_LOG_DIR."""
    needle = f"ROS_LOG_DIR={log_dir}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.e2e
def test_bench_command_writes_every_figure_and_leaves_no_process(spawn, domain_id, tmp_path):
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "pamiq_ros.bench.weight_sync", "--sizes", "1e4",
               "--repeats", "2", "--warmup", "1", "--out", str(out),
               "--domain-id", str(domain_id)]  # fmt: skip
    bench = spawn("bench", command)
    status = bench.popen.wait(timeout=150)
    output = bench.output()
    assert status == 0, output
    assert "p50 ms" in output and "max ms" in output
    assert processes_with_log_dir(out / "ros_log") == []

    report = json.loads((out / "weight_sync.json").read_text())
    assert report["repeats"] == 2 and report["warmup"] == 1
    assert report["domain_id"] == domain_id
    cases = report["cases"]
    assert [case["transport"] for case in cases] == ["shm", "bytes"]
    for case in cases:
        assert case["requested_parameters"] == 10_000
        assert case["parameters"] == parameter_count(build_model(10_000))
        assert case["size_bytes"] > 4 * case["parameters"]
        assert case["megabytes"] == case["size_bytes"] / 1e6
        assert case["repeats"] == 2
        for key in ("ready_p50_ms", "ready_max_ms", "ready_min_ms", "warmup_ready_max_ms"):
            assert math.isfinite(case[key]) and case[key] > 0.0, key
        assert case["ready_min_ms"] <= case["ready_p50_ms"] <= case["ready_max_ms"]
        assert case["ready_p50_ms"] <= case["acting_p50_ms"] <= case["acting_p99_ms"]
        assert case["acting_p99_ms"] <= case["acting_max_ms"]
        assert set(case["stages_p50_ms"]) == set(STAGE_KEYS)
        assert all(math.isfinite(value) for value in case["stages_p50_ms"].values())
        samples = case["samples"]
        assert [sample["version"] for sample in samples] == [0, 1, 2]
        assert {sample["transport"] for sample in samples} == {case["transport"]}
        assert all(sample["ready_ms"] <= sample["swapped_ms"] for sample in samples)


@pytest.mark.parametrize("requested", [10_000, 1_000_000, 10_000_000, 50_000_000])
def test_model_sizes_are_close_to_the_requested_parameter_counts(requested):
    width, layers = model_shape(requested)
    assert abs(layers * (width * width + width) - requested) / requested < 0.1
    if requested <= 1_000_000:
        assert parameter_count(build_model(requested)) == layers * (width * width + width)


def test_bad_arguments_are_refused(capsys):
    from pamiq_ros.bench.weight_sync import main

    for arguments in (["--sizes", "1e4,x"], ["--transports", "udp"], ["--repeats", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(arguments)
        assert exit_info.value.code == 2
    assert "is not a number" in capsys.readouterr().err


# --- make bench's part --------------------------------------------------------------------------


def _case(size: int, p99: float) -> dict[str, Any]:
    return {"requested_parameters": size, "parameters": size + 5, "transport": "shm",
            "acting_p50_ms": p99 / 2, "acting_p99_ms": p99, "acting_max_ms": p99}  # fmt: skip


def test_acting_targets_beside_the_issues_sizes() -> None:
    targets = acting_targets([_case(10_000_000, 80.0), _case(50_000_000, 300.0)])
    assert [(t["parameters"], t["limit_ms"], t["value"], t["met"]) for t in targets] == [
        (10_000_000, 100.0, 80.0, True),
        (50_000_000, 250.0, 300.0, False),
    ]
    assert "10 M" in targets[0]["target"] and "shm" in targets[0]["target"]
    missing = acting_targets([_case(10_000_000, math.nan)])
    assert [t["met"] for t in missing] == [None, None]


def test_suite_part_runs_each_target_size_and_keeps_a_failure(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []

    def run(size: int, transport: str, repeats: int, warmup: int, env: Any, out: Path) -> Any:
        calls.append((size, transport, repeats, warmup, out))
        if size == 50_000_000:
            raise RuntimeError("case 5e07-shm failed\nlog")
        return _case(size, 70.0)

    part = measure_sync(7, 2, {}, tmp_path, lambda _: None, run=run)
    assert calls == [(10_000_000, "shm", 7, 2, tmp_path), (50_000_000, "shm", 7, 2, tmp_path)]
    assert [case["requested_parameters"] for case in part["cases"]] == [10_000_000]
    assert "load_1m" in part["cases"][0]
    assert part["failed"] == ["case 5e07-shm failed\nlog"]
    assert [t["met"] for t in part["targets"]] == [True, None]
