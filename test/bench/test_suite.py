"""``make bench``: step statistics, the agent's period figures, targets, table, plots and JSON."""

import json
import math
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from pamiq_ros.bench import suite
from pamiq_ros.bench.stack_figures import StackFigureOptions
from pamiq_ros.bench.step_timing import (
    IDLE_TRAINER,
    StackTimingOptions,
    agent_period_figures,
    estimated_missed,
    in_window,
    numbers,
    stack_config,
    timing_figures,
)
from pamiq_ros.bench.suite import (
    evaluate_targets,
    format_table,
    json_safe,
    main,
    part_targets,
    scale_targets,
    stack_figures,
    write_part_plots,
    write_plots,
)

PERIOD = 0.1
SIM_CONFIG = Path(__file__).resolve().parents[2] / "config" / "sim.yaml"


# --- statistics ---------------------------------------------------------------------------------


def test_figures_of_a_loop_with_one_stall() -> None:
    # Steps on time except one 300 ms gap: two deadlines passed with no step.
    starts = [0.0, 0.1, 0.2, 0.5, 0.6]
    figures = timing_figures(starts, PERIOD)
    assert figures.steps == 5
    assert figures.interval_error_p50_ms == pytest.approx(0.0, abs=1e-6)
    assert figures.interval_error_max_ms == pytest.approx(200.0)
    assert figures.longest_stall_ms == pytest.approx(200.0)
    assert figures.missed_deadlines == 2
    assert figures.rate_hz == pytest.approx(4 / 0.6)
    assert 0 < figures.interval_error_p99_ms <= figures.interval_error_max_ms


def test_figures_take_the_loops_own_missed_count_and_sort_starts() -> None:
    figures = timing_figures([0.2, 0.0, 0.1], PERIOD, missed_deadlines=7)
    assert figures.missed_deadlines == 7
    assert figures.interval_error_max_ms == pytest.approx(0.0, abs=1e-6)
    assert figures.longest_stall_ms == 0.0


def test_early_steps_count_as_error_but_not_as_stall() -> None:
    figures = timing_figures([0.0, 0.08, 0.18], PERIOD)
    assert figures.interval_error_max_ms == pytest.approx(20.0)
    assert figures.longest_stall_ms == pytest.approx(0.0, abs=1e-6)
    assert figures.missed_deadlines == 0


def test_too_few_steps_give_no_interval_figures() -> None:
    figures = timing_figures([1.0], PERIOD)
    assert figures.steps == 1
    assert math.isnan(figures.interval_error_p99_ms)
    assert figures.missed_deadlines == 0
    with pytest.raises(ValueError, match="positive"):
        timing_figures([0.0, 0.1], 0.0)


def test_missed_deadlines_estimated_from_intervals() -> None:
    assert estimated_missed([0.1, 0.12, 0.14], PERIOD) == 0
    assert estimated_missed([0.21, 0.1, 0.41], PERIOD) == 1 + 3
    assert estimated_missed([], PERIOD) == 0


def test_in_window_keeps_both_ends() -> None:
    assert in_window([0.5, 1.0, 1.5, 2.0, 2.5], 1.0, 2.0) == [1.0, 1.5, 2.0]


# --- our stack ----------------------------------------------------------------------------------


def test_status_numbers_skip_text_values() -> None:
    status = {"steps": "120", "rate_hz": "9.99", "sync_latency_p50_ms": "none"}
    assert numbers(status, ["steps", "rate_hz", "sync_latency_p50_ms", "absent"]) == {
        "steps": 120.0,
        "rate_hz": 9.99,
    }


def test_agent_figures_difference_counters_and_flag_the_window() -> None:
    start = {"steps": 200.0, "missed_deadlines": 3.0, "weight_swaps": 10.0}
    end = {
        "steps": 1400.0, "missed_deadlines": 3.0, "weight_swaps": 50.0,
        "interval_error_p50_ms": 0.4, "interval_error_p99_ms": 2.5,
        "interval_error_max_ms": 9.0, "rate_hz": 10.0,
    }  # fmt: skip
    figures = agent_period_figures(start, end, PERIOD)
    assert figures["steps"] == 1200
    assert figures["missed_deadlines"] == 0  # the 3 came during start-up
    assert figures["weight_swaps"] == 40
    assert figures["interval_error_p99_ms"] == 2.5
    assert figures["window_within_period"] is True
    short = agent_period_figures(start, {**end, "steps": 400.0}, PERIOD)
    assert short["window_steps"] == 400
    assert short["window_within_period"] is False


def test_stack_config_idles_the_trainer_only_when_asked(tmp_path: Path) -> None:
    base = yaml.safe_load(SIM_CONFIG.read_text())
    options = StackTimingOptions(base, 10.0, 5.0, 7, None, tmp_path, {})
    idle = stack_config(options, True, 19001, 18081)
    busy = stack_config(options, False, 19002, 18082)
    idle_trainer = idle["trainer"]["ros__parameters"]
    busy_trainer = busy["trainer"]["ros__parameters"]
    for key, value in IDLE_TRAINER.items():
        assert idle_trainer[key] == value
    assert busy_trainer["min_buffer_size"] == base["trainer"]["ros__parameters"]["min_buffer_size"]
    for document in (idle, busy):
        for node in ("agent", "trainer", "sim_world"):
            assert document[node]["ros__parameters"]["seed"] == 7
    assert idle["sim_world"]["ros__parameters"]["osc_port"] == 19001
    assert base["trainer"]["ros__parameters"]["min_buffer_size"] != IDLE_TRAINER["min_buffer_size"]


# --- report -------------------------------------------------------------------------------------


def _ours(p99: float, missed: int, arrival_p99: float = 20.0) -> dict[str, Any]:
    return {
        "agent": {
            "steps": 1200, "interval_error_p50_ms": 0.3, "interval_error_p99_ms": p99,
            "interval_error_max_ms": p99 * 2, "missed_deadlines": missed,
            "window_within_period": True,
        },
        "arrivals": {
            "steps": 1190, "interval_error_p50_ms": 0.9, "interval_error_p99_ms": arrival_p99,
            "interval_error_max_ms": 40.0, "missed_deadlines": 0, "longest_stall_ms": 35.0,
        },
        "training_runs": 300,
        "intervals_ms": [100.0, 101.0, 99.5, 104.0] * 10,
    }  # fmt: skip


def _baseline(p99: float) -> dict[str, Any]:
    return {
        "steps": 1100, "interval_error_p50_ms": 1.0, "interval_error_p99_ms": p99,
        "interval_error_max_ms": p99 * 3, "missed_deadlines": 12, "longest_stall_ms": 250.0,
        "training_runs": 900, "intervals_ms": [100.0, 150.0, 350.0, 100.0] * 10,
    }  # fmt: skip


def _report(arms: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": {"rate_hz": 10.0, "seconds": 120.0},
        "step_timing": arms,
        "targets": evaluate_targets(arms),
    }


def test_targets_met_and_not_met() -> None:
    met = evaluate_targets(
        {"ours_training": _ours(1.5, 0, arrival_p99=4.0), "baseline_threads": _baseline(3.0)}
    )
    assert [target["met"] for target in met] == [True, True, True]
    assert met[1]["value"] == pytest.approx(-1.5)  # ours - threads
    missed = evaluate_targets({"ours_training": _ours(6.0, 2), "baseline_threads": _baseline(3.0)})
    assert [target["met"] for target in missed] == [False, False, False]


def test_the_best_real_time_variant_is_judged_beside_the_plain_arm() -> None:
    targets = evaluate_targets({
        "ours_training": _ours(6.0, 0), "ours_training_fifo": _ours(1.0, 0, arrival_p99=3.0),
        "ours_training_mlock": _ours(5.0, 0), "baseline_threads": _baseline(3.0),
    })  # fmt: skip
    assert [target["met"] for target in targets] == [False, False, False, True, True, True]
    assert all("[fifo]" in target["target"] for target in targets[3:])


def test_targets_not_measured_without_the_arms() -> None:
    targets = evaluate_targets({"baseline_loop": _baseline(300.0)})
    assert [target["met"] for target in targets] == [None, None, None]
    nan_ours = evaluate_targets({"ours_training": _ours(math.nan, 0)})
    assert nan_ours[0]["met"] is None


def test_the_other_parts_targets_follow_in_order() -> None:
    report = {
        "renderer": {"target": {"target": "r", "met": True}},
        "latency": {
            "modes": {"rate": {"target": {"target": "lr"}}, "frame": {"target": {"target": "lf"}}},
            "start_stop": {"targets": [{"target": "start"}, {"target": "stop"}]},
        },
        "memory": {"target": {"target": "m"}},
    }
    assert [t["target"] for t in part_targets(report)] == ["r", "lr", "lf", "start", "stop", "m"]
    assert part_targets({"renderer": {"failed": "x"}}) == []


def test_table_shows_every_arm_and_the_verdicts() -> None:
    arms = {
        "ours_idle": _ours(1.0, 0), "ours_training": _ours(6.0, 1),
        "baseline_loop": _baseline(300.0), "baseline_threads": _baseline(3.0),
    }  # fmt: skip
    table = format_table(_report(arms))
    for label in ("ours, trainer idle", "ours, trainer training", "(a) loop", "(b) threads"):
        assert label in table
    row = next(line for line in table.splitlines() if line.startswith("ours, trainer training"))
    assert row.split()[3:10] == ["1200", "0.30", "6.00", "12.00", "1", "12.0", "300"]
    arrivals = next(
        line for line in table.splitlines() if line.startswith("arrivals, trainer training")
    )
    assert arrivals.split()[3:10] == ["1190", "0.90", "20.00", "40.00", "0", "35.0", "300"]
    assert "start-up" not in table
    assert table.count("NOT met") == 3
    partial = format_table({**_report({"baseline_loop": _baseline(300.0)}), "stack": {
        "skipped": "no module"
    }})  # fmt: skip
    assert "ours" not in partial.split("targets:")[0]
    assert "not measured" in partial
    assert "stack figures: skipped (no module)" in partial


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib's log-axis mathtext
def test_plots_are_written(tmp_path: Path) -> None:
    arms = {"ours_training": _ours(2.0, 0), "baseline_threads": _baseline(40.0)}
    names = write_plots(_report(arms), tmp_path)
    assert names == ["step_interval_error.png", "step_intervals.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert write_plots(_report({}), tmp_path / "none") == []


def test_json_safe_replaces_non_finite_numbers() -> None:
    value = {"a": math.nan, "b": [1.0, math.inf], "c": Path("/x"), "d": (2, "t")}
    assert json_safe(value) == {"a": None, "b": [1.0, None], "c": "/x", "d": [2, "t"]}


# --- stack figures and the whole command --------------------------------------------------------


def test_stack_figures_are_passed_the_options_and_a_failure_is_reported(tmp_path: Path) -> None:
    options = StackFigureOptions(out_dir=tmp_path, quick=True)
    seen: list[StackFigureOptions] = []

    def measure(given: StackFigureOptions) -> dict[str, Any]:
        seen.append(given)
        return {"latency_p50_ms": 12.5}

    assert stack_figures(options, measure) == {"latency_p50_ms": 12.5}
    assert seen == [options]

    def broken(given: StackFigureOptions) -> dict[str, Any]:
        raise RuntimeError("no stack")

    assert stack_figures(options, broken) == {"failed": "RuntimeError: no stack"}


@pytest.fixture
def restored_environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    """main() sets the DDS environment and a SIGTERM handler for its process: put them back."""
    for name in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR"):
        monkeypatch.setenv(name, "unchanged")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


@pytest.mark.usefixtures("restored_environment")
def test_main_writes_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Any] = []

    def measure(options: StackFigureOptions) -> dict[str, Any]:
        seen.append(options)
        return {"latency_p50_ms": 12.5}

    monkeypatch.setattr(suite, "measure_stack_figures", measure)
    out = tmp_path / "run"
    status = main(["--only", "stack", "--quick", "--out", str(out), "--config", str(SIM_CONFIG)])
    assert status == 0
    report = json.loads((out / "bench.json").read_text())
    assert report["benchmark"] == "suite"
    assert report["stack"] == {"latency_p50_ms": 12.5}
    assert report["settings"]["quick"] is True
    assert report["settings"]["seconds"] > 0
    assert report["settings"]["torch_threads"]["baselines"] == 1
    assert report["machine"]["cpu_count"] >= 1
    assert "torch" in report["machine"]
    assert [target["met"] for target in report["targets"]] == [None, None, None]
    assert report["step_timing"] == {}
    assert seen[0].out_dir == out / "stack"


@pytest.mark.usefixtures("restored_environment")
def test_main_refuses_another_mind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load(SIM_CONFIG.read_text())
    config["agent"]["ros__parameters"]["mind"] = "autoencoder"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--only", "stack", "--out", str(tmp_path / "x"), "--config", str(path)]) == 2
    assert "curiosity" in capsys.readouterr().err


@pytest.mark.usefixtures("restored_environment")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib's log-axis mathtext
def test_quick_renderer_part_writes_its_figures_target_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    status = main(["--only", "renderer", "--quick", "--out", str(out), "--config", str(SIM_CONFIG)])
    assert status == 0
    report = json.loads((out / "bench.json").read_text())
    sizes = report["renderer"]["sizes"]
    assert [(s["width"], s["height"]) for s in sizes] == [(160, 120), (320, 240), (640, 480)]
    assert all("load_1m" in s for s in sizes)
    assert report["targets"][-1]["target"].startswith("640x480")
    assert "renderer.png" in report["plots"]
    assert (out / "renderer.png").read_bytes()[:4] == b"\x89PNG"


# --- scale and weight sync ----------------------------------------------------------------------


def _scale(small_p99: float, threads_p99: float, arrival_p99: float = 4.0) -> dict[str, Any]:
    return {
        "seconds": 60.0, "warmup_s": 20.0, "seed": 0,
        "cases": {
            "small_cpu": {
                "preset": "small", "device": "cpu", "precision": "float32",
                "trainer": "cpu float32",
                "arms": {"ours_training": _ours(small_p99, 0, arrival_p99),
                         "baseline_threads": _baseline(threads_p99)},
            },
            "base_cuda": {"preset": "base", "device": "cuda", "precision": "bfloat16",
                          "trainer": "cuda bfloat16", "skipped": "no CUDA device: skipped"},
        },
    }  # fmt: skip


def _sync() -> dict[str, Any]:
    cases = [
        {"requested_parameters": 10_000_000, "parameters": 10_003_000, "transport": "shm",
         "acting_p50_ms": 60.0, "acting_p99_ms": 90.0, "acting_max_ms": 95.0, "load_1m": 2.5},
        {"requested_parameters": 50_000_000, "parameters": 50_010_000, "transport": "shm",
         "acting_p50_ms": 200.0, "acting_p99_ms": 280.0, "acting_max_ms": 290.0, "load_1m": 2.6},
    ]  # fmt: skip
    from pamiq_ros.bench.weight_sync import acting_targets

    return {"transport": "shm", "repeats": 30, "warmup": 5, "cases": cases, "failed": [],
            "targets": acting_targets(cases)}  # fmt: skip


def test_scale_and_sync_targets_follow_the_other_parts() -> None:
    targets = part_targets({"scale": _scale(1.5, 3.0), "weight_sync": _sync()})
    assert [target["met"] for target in targets] == [True, True, True, None, True, False]
    assert all("[small, trainer cpu float32]" in t["target"] for t in targets[:3])
    assert targets[3]["note"] == "no CUDA device: skipped"
    assert "[base, trainer cuda bfloat16]" in targets[3]["target"]
    assert targets[4]["value"] == 90.0 and targets[5]["value"] == 280.0
    missed = scale_targets(_scale(6.0, 3.0, arrival_p99=20.0))
    assert [target["met"] for target in missed] == [False, False, False, None]
    assert missed[1]["value"] == pytest.approx(3.0)  # ours - threads


def test_table_shows_the_scale_rows_the_sync_figures_and_why_a_case_did_not_run() -> None:
    report = {**_report({}), "scale": _scale(6.0, 3.0), "weight_sync": _sync()}
    report["targets"] = evaluate_targets({}) + part_targets(report)
    table = format_table(report)
    assert "small_cpu ours" in table and "small_cpu (b) threads" in table
    assert "base_cuda: no CUDA device: skipped" in table
    assert "10,003,000 params: p50 60.0 ms, p99 90.0 ms" in table
    assert "not measured (no CUDA device: skipped)" in table


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib's log-axis mathtext
def test_scale_and_sync_plots_are_written(tmp_path: Path) -> None:
    report = {**_report({}), "scale": _scale(2.0, 3.0), "weight_sync": _sync()}
    names = write_part_plots(report, tmp_path)
    assert names == ["scale.png", "weight_sync.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    nothing = {**_report({}), "scale": {"cases": {}}, "weight_sync": {"cases": []}}
    assert write_part_plots(nothing, tmp_path / "none") == []


@pytest.mark.usefixtures("restored_environment")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # matplotlib's log-axis mathtext
def test_quick_scale_and_sync_parts_reach_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pamiq_ros.bench import scale, weight_sync

    measured: list[tuple[str, float]] = []
    synced: list[tuple[int, int, int]] = []

    def measure_case(name: str, options: Any, say: Any) -> dict[str, Any]:
        measured.append((name, options.seconds))
        return {"ours_training": _ours(1.0, 0), "baseline_threads": _baseline(2.0)}

    def run_case(size: int, transport: str, repeats: int, warmup: int, env: Any, out: Path) -> Any:
        synced.append((size, repeats, warmup))
        return {"requested_parameters": size, "parameters": size, "transport": transport,
                "acting_p50_ms": 40.0, "acting_p99_ms": 50.0, "acting_max_ms": 55.0}  # fmt: skip

    monkeypatch.setattr(scale, "measure_case", measure_case)
    monkeypatch.setattr(scale, "cuda_available", lambda: False)
    monkeypatch.setattr(weight_sync, "run_case", run_case)
    out = tmp_path / "run"
    status = main(
        ["--only", "scale,sync", "--quick", "--out", str(out), "--config", str(SIM_CONFIG)]
    )
    assert status == 0
    assert measured == [("small_cpu", scale.QUICK_SCALE_SECONDS)]
    quick = (weight_sync.QUICK_SUITE_REPEATS, weight_sync.QUICK_SUITE_WARMUP)
    assert synced == [(10_000_000, *quick), (50_000_000, *quick)]
    report = json.loads((out / "bench.json").read_text())
    assert report["scale"]["cases"]["small_cuda"]["skipped"] == "no CUDA device: skipped"
    assert report["scale"]["cases"]["base_cuda"]["skipped"] == "no CUDA device: skipped"
    targets = {t["target"]: t["met"] for t in report["targets"]}
    assert targets["p99 step-interval error < 2 ms, training [small, trainer cpu float32]"]
    assert targets["weights 50 M params publish -> acting p99 < 250 ms, shm"] is True
    assert report["plots"] == ["scale.png", "weight_sync.png"]


def test_default_bench_runs_the_scale_and_sync_parts() -> None:
    assert {"scale", "sync"} <= set(suite.DEFAULT_PARTS)
    assert "stack" not in suite.DEFAULT_PARTS


@pytest.mark.parametrize("buffer_size", [suite.QUICK_MEMORY_BUFFER, suite.DEFAULT_MEMORY_BUFFER])
def test_the_memory_parts_buffer_sizes_are_ones_the_curiosity_trainer_accepts(
    buffer_size: int,
) -> None:
    # A size below the forward model's held-out steps plus a batch made the trainer exit at
    # start, and the quick memory part failed with "the trainer never ran".
    from pamiq_ros.minds.curiosity import CuriosityTraining, build_curiosity_learner

    learner = build_curiosity_learner(
        training=CuriosityTraining(buffer_size=buffer_size, sequence_buffer_size=buffer_size)
    )
    assert learner.buffers
