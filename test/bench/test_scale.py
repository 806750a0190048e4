"""The scale part: cases per preset and device, CUDA cases skipped with a reason, failures kept."""

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from pamiq_ros.bench.baselines import BaselineOptions, build_learner
from pamiq_ros.bench.scale import (
    NO_CUDA,
    SCALE_CASES,
    ScaleOptions,
    case_config,
    measure_scale,
)

SIM_CONFIG = Path(__file__).resolve().parents[2] / "config" / "sim.yaml"


def _options(tmp_path: Path) -> ScaleOptions:
    config = yaml.safe_load(SIM_CONFIG.read_text())
    return ScaleOptions(config, seconds=3.0, warmup_s=1.0, seed=4, out_dir=tmp_path, env={})


def test_cuda_cases_say_skipped_without_a_device(tmp_path: Path) -> None:
    seen: list[str] = []
    lines: list[str] = []

    def measure(name: str, options: ScaleOptions, say: Any) -> dict[str, Any]:
        seen.append(name)
        assert options.seconds == 3.0 and options.seed == 4
        return {"ours_training": {"name": name}, "baseline_threads": {}}

    scale = measure_scale(_options(tmp_path), lines.append, lambda: False, measure)
    assert seen == ["small_cpu"]
    cases = scale["cases"]
    assert list(cases) == list(SCALE_CASES)
    assert cases["small_cpu"]["arms"]["ours_training"] == {"name": "small_cpu"}
    assert cases["small_cpu"]["preset"] == "small" and cases["small_cpu"]["device"] == "cpu"
    for name in ("small_cuda", "base_cuda"):
        assert cases[name]["skipped"] == NO_CUDA == "no CUDA device: skipped"
        assert cases[name]["trainer"] == "cuda bfloat16"
        assert "arms" not in cases[name]
    assert any(NO_CUDA in line for line in lines)
    assert scale["seconds"] == 3.0 and scale["warmup_s"] == 1.0


def test_with_cuda_every_case_runs_and_a_failure_is_kept(tmp_path: Path) -> None:
    def measure(name: str, options: ScaleOptions, say: Any) -> dict[str, Any]:
        if name == "base_cuda":
            raise RuntimeError("out of memory")
        return {"ours_training": {}}

    cases = measure_scale(_options(tmp_path), lambda _: None, lambda: True, measure)["cases"]
    assert "arms" in cases["small_cpu"] and "arms" in cases["small_cuda"]
    assert cases["base_cuda"]["failed"] == "RuntimeError: out of memory"


def test_case_config_moves_only_the_trainer() -> None:
    config = yaml.safe_load(SIM_CONFIG.read_text())
    cuda = case_config(config, SCALE_CASES["base_cuda"])
    trainer = cuda["trainer"]["ros__parameters"]
    assert (trainer["device"], trainer["precision"]) == ("cuda", "bfloat16")
    assert cuda["agent"] == config["agent"]
    assert config["trainer"]["ros__parameters"]["device"] == "cpu"  # the original is untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_baseline_learner_is_built_on_the_cases_device() -> None:
    # Before, the baseline's learner was always put on the CPU whatever the case asked.
    with pytest.raises(ValueError, match="no usable CUDA"):
        build_learner(BaselineOptions(device="cuda", precision="bfloat16"))
