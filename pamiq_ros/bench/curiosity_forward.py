"""Why does the forward model predict worse than copying? One study arm per hypothesis.

The curiosity benchmark's prediction figure (:mod:`pamiq_ros.bench.curiosity_fast`) is the
forward model's error over the copy baseline's ("nothing changes") at k = 1 on a held-out
random walk. This study runs the fast mode's loop (world, mind and learner in one process, the
same fixed training schedule) for one *variant* of the training settings per arm, over paired
seeds, and measures that ratio four ways at several moments:

* ``bench_newest``: the benchmark's own figure, the held-out walk encoded with the learner's
  newest JEPA and temporal encoder;
* ``bench_acting``: the same walk through the agent's copies (the weights last synced), the
  encoders whose features the forward model was trained on most recently;
* ``buffer_held_out``: the trainer's own figure, on the newest ``held_out_steps`` of its
  buffer (stored features, never trained on while newest);
* ``buffer_train``: the same on windows it trains on (fit, not generalisation).

Variants (:data:`VARIANTS`) each change one thing from the defaults: encoders frozen (no
target drift), the JEPA learning rate of PAMIQ (1e-4), the forward model's learning rate,
gradient steps and batch; ``ridge_frozen`` replaces the forward model with a ridge regression
on the same amount of experience (how much of the change is learnable at all). The policy is
uniformly random in every arm, so the data do not depend on what the forward model gets
wrong. Usage::

    python -m pamiq_ros.bench.curiosity_forward [--variants default,frozen_encoders]
        [--seeds 0,1,2] [--steps 1500] [--workers 1] [--out DIR]

It writes ``forward_study.json`` (every measurement, per variant and seed) and
``forward_study.png`` (the ratios over steps, mean and 95 % band over seeds), and prints a
table of the ratio at the end with its 95 % bootstrap interval over seeds.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pamiq_ros.bench._shared import machine_description
from pamiq_ros.bench.curiosity_fast import (
    FastSettings,
    HeldOutTrajectory,
    encode_frames,
    evaluate_held_out,
    random_walk,
    trainer_held_out_ratios,
)
from pamiq_ros.bench.curiosity_stack import parse_seeds, say
from pamiq_ros.bench.statistics import bootstrap_ci
from pamiq_ros.core.actions import ACTION_SIZES, ActionMapper
from pamiq_ros.minds.curiosity import (
    FORWARD_DYNAMICS,
    FORWARD_DYNAMICS_BUFFER,
    JEPA,
    MODEL_NAMES,
    TEMPORAL,
    CuriosityMind,
    CuriosityTraining,
    build_curiosity_learner,
)
from pamiq_ros.models import forward_dynamics, health
from pamiq_ros.sim.stepped import SimSteppedWorld

HELD_OUT_SEED = 10_000
"""Seed of the held-out random walk, as the benchmark's."""

MEASURES = ("bench_newest", "bench_acting", "buffer_held_out", "buffer_train")
"""The four ways the ratio is measured (see the module docstring)."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of the study: training settings changed from the defaults.

    Attributes:
        name: Short name.
        hypothesis: What it tests.
        training: Fields of :class:`~pamiq_ros.minds.curiosity.CuriosityTraining` to change.
        frozen: Models not trained at all (their trainers never run).
        ridge: Instead of the forward model, a ridge regression of the change at k = 1 on the
            observation times the action (each action option its own linear map of the
            layer-normed observation), on the seed's untrained encoders: what a simple
            regularised model reaches on the same amount of experience.
    """

    name: str
    hypothesis: str
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    frozen: tuple[str, ...] = ()
    ridge: bool = False


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("default", "the defaults"),
        Variant(
            "frozen_encoders",
            "(a, b) no target drift: JEPA and temporal encoder frozen at initialisation",
            frozen=(JEPA, TEMPORAL),
        ),
        Variant("jepa_lr_1e-4", "(a) PAMIQ's JEPA learning rate", {"jepa_learning_rate": 1e-4}),
        Variant(
            "fd_lr_3e-4",
            "(c) the forward learning rate before this study",
            {"forward_learning_rate": 3e-4},
        ),
        Variant("fd_lr_1e-3", "(c) faster forward model", {"forward_learning_rate": 1e-3}),
        Variant("fd_steps_2", "(c) fewer forward steps per run", {"forward_steps_per_run": 2}),
        Variant("fd_batch_128", "(c) larger forward batch", {"batch_size": 128}),
        Variant(
            "ridge_frozen",
            "ceiling: ridge on observation x action, encoders frozen (k = 1 only)",
            ridge=True,
        ),
    )
}
"""The study's arms by name."""


def training_ratio(trainer: Any, models: Mapping[str, Any], buffers: Mapping[str, Any]) -> float:
    """The forward model's error over copying at k = 1 on (up to 512) windows it trains on."""
    model = models[FORWARD_DYNAMICS]
    data = buffers[FORWARD_DYNAMICS_BUFFER].get_data()
    size = len(data[forward_dynamics.OBS_KEY])
    starts = forward_dynamics.window_starts(
        data[forward_dynamics.DONE_KEY], model.horizon, size - trainer.held_out_steps
    )
    if not len(starts):
        return float("nan")
    starts = starts[np.linspace(0, len(starts) - 1, min(512, len(starts))).astype(int)]
    steps = np.arange(model.horizon)[None, :]
    state = torch.as_tensor(data[forward_dynamics.STATE_KEY][starts]).float()
    obs = torch.as_tensor(data[forward_dynamics.OBS_KEY][starts]).float()
    previous = torch.as_tensor(forward_dynamics.previous_observations(data, starts)).float()
    actions = torch.as_tensor(data[forward_dynamics.ACTION_KEY][starts[:, None] + steps]).long()
    targets = torch.as_tensor(data[forward_dynamics.OBS_KEY][starts[:, None] + steps + 1]).float()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            predicted = model(state, obs, actions, previous).float()
    finally:
        model.train(was_training)
    return float(health.copy_ratio(predicted, targets, obs)[0])


RIDGE_PENALTY = 10.0
"""The ridge baseline's penalty (on standardised observations; 10 was best of 1, 10, 100)."""


def _ridge_inputs(obs: torch.Tensor, actions: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``(N, D * A + A + 1)``: layer-normed observation times the one-hot actions, and both."""
    normed = torch.nn.functional.layer_norm(obs, obs.shape[-1:]).double().numpy()
    one_hot = np.concatenate(
        [np.eye(size)[actions[:, i]] for i, size in enumerate(ACTION_SIZES)], axis=1
    )
    product = (normed[:, :, None] * one_hot[:, None, :]).reshape(len(normed), -1)
    return np.concatenate([product, one_hot, np.ones((len(normed), 1))], axis=1)


def _ridge_ratio(
    inputs: npt.NDArray[np.float64],
    changes: npt.NDArray[np.float64],
    test_inputs: npt.NDArray[np.float64],
    test_changes: npt.NDArray[np.float64],
) -> float:
    gram = inputs.T @ inputs + RIDGE_PENALTY * np.eye(inputs.shape[1])
    weights = np.linalg.solve(gram, inputs.T @ changes)
    error = ((test_inputs @ weights - test_changes) ** 2).mean()
    return float(error / (test_changes**2).mean())


def ridge_baseline(
    seed: int, steps: int, held_out_steps: int, held_out: HeldOutTrajectory
) -> list[dict[str, Any]]:
    """The ridge baseline of one seed (see :attr:`Variant.ridge`): its start and end figures."""
    settings = FastSettings(steps=steps)
    world = SimSteppedWorld(seed)
    try:
        walk, _, _ = random_walk(world, steps, seed, settings)
    finally:
        world.close()
    obs = torch.from_numpy(encode_frames(settings.preset, None, seed, walk.frames))
    test_obs = torch.from_numpy(encode_frames(settings.preset, None, seed, held_out.frames))
    inputs, test_inputs = (
        _ridge_inputs(obs[:-1], walk.actions),
        _ridge_inputs(test_obs[:-1], held_out.actions),
    )
    changes = (obs[1:] - obs[:-1]).double().numpy()
    test_changes = (test_obs[1:] - test_obs[:-1]).double().numpy()
    cut = len(inputs) - held_out_steps
    newest = _ridge_ratio(inputs, changes, test_inputs, test_changes)
    end = {
        "step": steps,
        "bench_newest": newest,
        "bench_acting": newest,
        "buffer_held_out": _ridge_ratio(inputs[:cut], changes[:cut], inputs[cut:], changes[cut:]),
        "buffer_train": _ridge_ratio(inputs[:cut], changes[:cut], inputs[:cut], changes[:cut]),
    }
    return [{"step": 0, **dict.fromkeys(MEASURES, 1.0)}, end]


def run_variant(
    task: tuple[str, int], steps: int, eval_points: int, held_out: HeldOutTrajectory
) -> dict[str, Any]:
    """One variant of one seed: the fast mode's loop with a uniformly random policy."""
    torch.set_num_threads(1)
    name, seed = task
    variant = VARIANTS[name]
    if variant.ridge:
        scores = ridge_baseline(seed, steps, CuriosityTraining().held_out_steps, held_out)
        say(
            f"{name} seed {seed}: k=1 ratio at end "
            + ", ".join(f"{key} {scores[-1][key]:.3f}" for key in MEASURES)
        )
        return {"variant": name, "seed": seed, "evaluations": scores}
    settings = FastSettings(steps=steps, eval_points=eval_points)
    started = time.perf_counter()
    mind = CuriosityMind(settings.preset, seed, "random")
    training = dataclasses.replace(CuriosityTraining(), **dict(variant.training))
    learner = build_curiosity_learner(settings.preset, seed, training=training)
    fd_trainer = next(
        t for t in learner.trainers if isinstance(t, forward_dynamics.ForwardDynamicsTrainer)
    )
    world = SimSteppedWorld(seed)
    mapper = ActionMapper(settings.linear_speed, settings.angular_speed)
    eval_at = set(settings.checkpoints(settings.eval_points))
    evaluations: list[dict[str, Any]] = []
    step = world.reset(seed)
    version = 0
    try:
        for number in range(settings.steps + 1):
            if number in eval_at:
                acting = {n: mind.models[n].current()[0] for n in MODEL_NAMES}
                newest = evaluate_held_out(learner.models, held_out)["copy_ratio"][0]
                buffered = trainer_held_out_ratios(learner)
                evaluations.append(
                    {
                        "step": number,
                        "bench_newest": newest,
                        "bench_acting": evaluate_held_out(acting, held_out)["copy_ratio"][0],
                        "buffer_held_out": buffered[0] if buffered else float("nan"),
                        "buffer_train": training_ratio(fd_trainer, learner.models, learner.buffers),
                    }
                )
            if number == settings.steps:
                break
            acted = mind.act(number, step.frame)
            for record in acted.records:
                learner.add(record)
            step = world.step(mapper.to_action(acted.choice), settings.dt)
            if (number + 1) % settings.train_every == 0:
                for trainer in learner.trainers:
                    if getattr(trainer, "model_name", None) in variant.frozen:
                        continue
                    if len(learner.buffers[trainer.buffer_name]) >= trainer.min_buffer_size:
                        trainer.run(learner.models, learner.buffers)
            if (number + 1) % settings.sync_every == 0:
                version += 1
                for model_name in MODEL_NAMES:
                    mind.models[model_name].prepare(learner.weights(model_name), version)
                mind.swap_ready_weights()
    finally:
        world.close()
    last = evaluations[-1]
    say(
        f"{name} seed {seed}: k=1 ratio at end "
        + ", ".join(f"{key} {last[key]:.3f}" for key in MEASURES)
        + f", {time.perf_counter() - started:.0f} s"
    )
    return {"variant": name, "seed": seed, "evaluations": evaluations}


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant and measure: the ratio at the end, mean and 95 % bootstrap CI over seeds."""
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(result["variant"] for result in results):
        runs = [result for result in results if result["variant"] == name]
        summary[name] = {
            "hypothesis": VARIANTS[name].hypothesis,
            "seeds": [run["seed"] for run in runs],
            **{
                measure: bootstrap_ci(
                    [run["evaluations"][-1][measure] for run in runs], seed=0
                ).as_dict()
                for measure in MEASURES
            },
        }
    return summary


def format_table(summary: Mapping[str, Any]) -> str:
    """The summary as a printed table."""
    lines = [f"{'variant':<18}" + "".join(f"{measure:>26}" for measure in MEASURES)]
    for name, entry in summary.items():
        cells = [
            f"{entry[m]['estimate']:.3f} [{entry[m]['low']:.3f}, {entry[m]['high']:.3f}]"
            for m in MEASURES
        ]
        lines.append(f"{name:<18}" + "".join(f"{cell:>26}" for cell in cells))
    return "\n".join(lines)


def write_plot(results: Sequence[Mapping[str, Any]], path: Path) -> None:
    """The k = 1 ratio over steps per variant (mean over seeds, band min..max), per measure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(MEASURES), figsize=(5 * len(MEASURES), 4), sharey=True)
    for axis, measure in zip(axes, MEASURES, strict=True):
        for name in dict.fromkeys(result["variant"] for result in results):
            runs = [r for r in results if r["variant"] == name]
            steps = [e["step"] for e in runs[0]["evaluations"]]
            values = np.array([[e[measure] for e in r["evaluations"]] for r in runs], dtype=float)
            axis.plot(steps, np.nanmean(values, axis=0), label=name)
            axis.fill_between(
                steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.15
            )
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_title(f"{measure}: FD / copy error, k=1")
        axis.set_xlabel("environment steps")
    axes[0].set_ylabel("ratio (below 1: predicts)")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.curiosity_forward",
        description="The forward model against copying under variants of the training settings "
        f"(variants: {', '.join(VARIANTS)}).",
    )
    parser.add_argument("--variants", default="default,frozen_encoders")
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-points", type=int, default=6)
    parser.add_argument("--held-out-steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the study; returns the exit status."""
    parser = _parser()
    options = parser.parse_args(args)
    names = [name for name in options.variants.split(",") if name]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        parser.error(f"unknown variants {unknown}; variants are {list(VARIANTS)}")
    out_dir = options.out or Path("runs") / f"forward-study-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    world = SimSteppedWorld(HELD_OUT_SEED)
    try:
        held_out, _, _ = random_walk(world, options.held_out_steps, HELD_OUT_SEED, FastSettings())
    finally:
        world.close()
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    job = partial(
        run_variant, steps=options.steps, eval_points=options.eval_points, held_out=held_out
    )
    tasks = [(name, seed) for name in names for seed in options.seeds]
    started = time.time()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(options.workers, mp_context=context) as pool:
        results = list(pool.map(job, tasks))
    summary = summarise(results)
    report = {
        "benchmark": "curiosity_forward",
        "machine": machine_description(),
        "settings": {
            "variants": {name: dataclasses.asdict(VARIANTS[name]) for name in names},
            "seeds": options.seeds,
            "steps": options.steps,
            "eval_points": options.eval_points,
            "held_out_steps": options.held_out_steps,
            "held_out_seed": HELD_OUT_SEED,
            "training_defaults": dataclasses.asdict(CuriosityTraining()),
            "fast_settings": dataclasses.asdict(FastSettings(steps=options.steps)),
        },
        "results": results,
        "summary": summary,
        "duration_s": round(time.time() - started, 1),
    }
    (out_dir / "forward_study.json").write_text(json.dumps(report, indent=1, default=str))
    write_plot(results, out_dir / "forward_study.png")
    print(format_table(summary))
    print(f"written: {out_dir / 'forward_study.json'} and forward_study.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
