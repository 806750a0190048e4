"""``make bench``'s scale part (issue 16, goal 6): the step-timing comparison at bigger presets.

The same comparison as the suite's ``ours`` and ``baselines`` parts, with the trainer training:
our stack (:func:`pamiq_ros.bench.step_timing.measure_stack_timing`) beside the in-process
threads baseline (:func:`pamiq_ros.bench.baselines.run_baseline`), at presets where training is
heavier. Cases (:data:`SCALE_CASES`):

* ``small_cpu``: the ``small`` preset, everything on the CPU;
* ``small_cuda`` and ``base_cuda``: the trainer (and the baseline's learner) on CUDA in
  bfloat16, the agent on the CPU as in the config. Without a CUDA device these cases are not
  run and say so (:data:`NO_CUDA`) in the report rather than fail.

Each measured case records the load average beside its figures.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pamiq_ros.bench._shared import load_now

SCALE_CASES: dict[str, dict[str, str]] = {
    "small_cpu": {"preset": "small", "device": "cpu", "precision": "float32"},
    "small_cuda": {"preset": "small", "device": "cuda", "precision": "bfloat16"},
    "base_cuda": {"preset": "base", "device": "cuda", "precision": "bfloat16"},
}
"""The scale cases: preset, the trainer's device and compute precision."""

NO_CUDA = "no CUDA device: skipped"
"""What a CUDA case says in the report on a machine without one."""

DEFAULT_SCALE_SECONDS, DEFAULT_SCALE_WARMUP = 60.0, 20.0
"""Measured period and warm-up of each arm of a case (the default ``make bench``): about 3.5 min
per case, the stack's start and stop included."""

QUICK_SCALE_SECONDS, QUICK_SCALE_WARMUP = 10.0, 8.0
"""``--quick``: smoke runs."""


@dataclass(frozen=True)
class ScaleOptions:
    """What every scale case shares.

    Attributes:
        config: The sim config document (``config/sim.yaml``).
        seconds: The measured period of each arm (s).
        warmup_s: Warm-up before it (s).
        seed: Seed of models, world and actions.
        out_dir: Where the stack runs' configs, logs and run folders go.
        env: The stacks' environment (DDS domain, loopback only).
    """

    config: Mapping[str, Any]
    seconds: float
    warmup_s: float
    seed: int
    out_dir: Path
    env: Mapping[str, str]


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def case_config(config: Mapping[str, Any], case: Mapping[str, str]) -> dict[str, Any]:
    """``config`` with the trainer on the case's device and precision (other sections shared)."""
    trainer = dict(config["trainer"]["ros__parameters"])
    trainer.update(device=case["device"], precision=case["precision"])
    return {**config, "trainer": {**config["trainer"], "ros__parameters": trainer}}


def _parameters(config: Mapping[str, Any], node: str) -> dict[str, Any]:
    return dict(config[node]["ros__parameters"])


def measure_case(
    name: str, options: ScaleOptions, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Runs one case: our stack with the trainer training, then the threads baseline.

    Returns ``{"ours_training": ..., "baseline_threads": ...}`` in the suite's arm format.
    """
    from pamiq_ros.bench.baselines import BaselineOptions, run_baseline
    from pamiq_ros.bench.step_timing import StackListener, StackTimingOptions, measure_stack_timing

    case = SCALE_CASES[name]
    config = case_config(options.config, case)
    stack_options = StackTimingOptions(
        base_config=config, seconds=options.seconds, warmup_s=options.warmup_s,
        seed=options.seed, preset=case["preset"], out_dir=options.out_dir / name,
        env=dict(options.env),
    )  # fmt: skip
    listener = StackListener()
    try:
        ours = measure_stack_timing(f"{name}_ours_training", False, stack_options, listener, say)
    finally:
        listener.close()
    agent = _parameters(config, "agent")
    baseline_options = BaselineOptions(
        seconds=options.seconds, warmup_s=options.warmup_s,
        rate_hz=float(agent.get("rate_hz", 10.0)), seed=options.seed, preset=case["preset"],
        trainer_parameters=_parameters(config, "trainer"), agent_parameters=agent,
        world_parameters=_parameters(config, "sim_world"), device=case["device"],
        precision=case["precision"],
    )  # fmt: skip
    threads = {**run_baseline("threads", baseline_options, say), **load_now()}
    return {"ours_training": ours, "baseline_threads": threads}


def measure_scale(
    options: ScaleOptions,
    say: Callable[[str], None],
    has_cuda: Callable[[], bool] | None = None,
    measure: Callable[[str, ScaleOptions, Callable[[str], None]], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every case of :data:`SCALE_CASES`; CUDA cases say :data:`NO_CUDA` without a device.

    A case that fails is reported (``{"failed": ...}``) rather than losing the others.
    ``has_cuda`` defaults to :func:`cuda_available`, ``measure`` to :func:`measure_case`.
    """
    cases: dict[str, Any] = {}
    cuda = (has_cuda or cuda_available)()
    measure = measure or measure_case
    for name, case in SCALE_CASES.items():
        described = {**case, "trainer": f"{case['device']} {case['precision']}"}
        if case["device"] == "cuda" and not cuda:
            say(f"scale {name}: {NO_CUDA}")
            cases[name] = {**described, "skipped": NO_CUDA}
            continue
        say(
            f"scale {name}: preset {case['preset']}, trainer on {described['trainer']}; "
            f"{options.seconds:g} s per arm after {options.warmup_s:g} s warm-up"
        )
        try:
            arms = dict(measure(name, options, say))
        except Exception as error:  # one case's failure must not lose the others' figures
            say(f"scale {name}: failed: {error}")
            cases[name] = {**described, "failed": f"{type(error).__name__}: {error}"}
            continue
        cases[name] = {**described, "arms": arms}
    return {
        "seconds": options.seconds,
        "warmup_s": options.warmup_s,
        "seed": options.seed,
        "cases": cases,
    }
