"""Curiosity benchmark: does the curiosity agent explore, predict and perceive beyond chance.

Two modes run the same arms (:data:`~pamiq_ros.bench.curiosity_fast.ARMS`): curiosity PPO,
uniform random, random with the PPO arm's action frequencies, PPO with zero reward.

* ``--mode fast`` (default): world, mind and learner stepped in one process
  (:mod:`pamiq_ros.bench.curiosity_fast`), seeds spread over ``--workers`` processes. Every arm
  gets the same environment steps and the same gradient steps (a fixed schedule). It writes
  ``curiosity_bench.json`` (every raw number) and the PNG plots of
  :data:`~pamiq_ros.bench.curiosity_report.PLOT_FILES` into one folder, and prints a table
  with each target MET or MISSED (:mod:`pamiq_ros.bench.curiosity_report`).
* ``--mode stack``: the full ROS stack (``pamiq-ros launch``) per arm and seed, as
  confirmation (:mod:`pamiq_ros.bench.curiosity_stack`); its options follow ``--mode stack``.

The world is ``--world``: ``sim`` (the project's simulated room) or any name in
``pamiq_ros.sim.gym_env.GYM_WORLDS`` (Gymnasium worlds, imported only when asked for).
Every arm trains as the trainer node does with its default parameters; ``--trainer-param``
changes any of them that shape the training (the same names, types and ranges as the node's).

The linear probe: frames with known pose and region (sim: rendered at random poses; a world
that cannot be placed: a separate seeded random walk), features from the raw pixels, from
``--untrained-encoders`` encoders at initialisation (other seeds) and from each arm's trained
encoder, and a ridge regression scored on held-out samples over ``--probe-splits`` random
splits. Usage::

    python -m pamiq_ros.bench.curiosity [--world sim] [--seeds 0,1,2,3,4] [--steps 3000]
        [--workers 2] [--reward error] [--trainer-param NAME=VALUE ...] [--quick] [--out DIR]
    python -m pamiq_ros.bench.curiosity --mode stack [stack options, see --mode stack --help]
"""

import argparse
import concurrent.futures
import datetime
import importlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from pamiq_ros.bench._shared import machine_description
from pamiq_ros.bench.curiosity_fast import (
    ARMS,
    FastSettings,
    HeldOutTrajectory,
    encode_frames,
    random_walk,
    run_arm,
)
from pamiq_ros.bench.curiosity_report import format_table, summarise, write_plots
from pamiq_ros.bench.curiosity_stack import arm_config as arm_config
from pamiq_ros.bench.curiosity_stack import free_port as free_port
from pamiq_ros.bench.curiosity_stack import parse_seeds, say
from pamiq_ros.bench.probe import pixel_features, render_probe_dataset, repeated_probe
from pamiq_ros.core.settings import SettingValue, build_settings
from pamiq_ros.minds.curiosity import CuriosityTraining
from pamiq_ros.models.curiosity import CURIOSITY_REWARDS
from pamiq_ros.sim.stepped import SimSteppedWorld, SteppedWorld, floor_region_index
from pamiq_ros.sim.world import default_layout

GYM_MODULE = "pamiq_ros.sim.gym_env"
"""Where the Gymnasium worlds live (``GYM_WORLDS``); imported only when one is asked for."""
HELD_OUT_SEED = 10_000
"""Seed of the held-out random walk (no arm's seed; the same for every arm)."""
PROBE_WALK_SEED = 20_000
"""Seed of the random walk that collects probe frames in worlds that cannot be placed."""
UNTRAINED_SEED = 1_000
"""Initial-weight seeds of the untrained encoders: ``UNTRAINED_SEED + i``."""


# --- worlds -----------------------------------------------------------------------------------


def make_world(name: str, seed: int) -> SteppedWorld:
    """The world ``name`` for ``seed``: ``sim`` or a name in ``GYM_WORLDS``.

    A Gymnasium world is built by the module's ``make_world(name, seed=...)`` if it has one;
    otherwise its spec is called (``spec(seed=...)``), or, if the spec is not callable, the
    module's :class:`SteppedWorld` class is given the spec and the seed.

    Raises:
        ValueError: If no such world exists (the message lists those that do).
    """
    if name == "sim":
        return SimSteppedWorld(seed)
    try:
        module = importlib.import_module(GYM_MODULE)
    except ImportError as error:
        raise ValueError(
            f"world {name!r} is not 'sim', and the Gymnasium worlds cannot be imported "
            f"({GYM_MODULE}: {error})"
        ) from error
    worlds = getattr(module, "GYM_WORLDS", {})
    if name not in worlds:
        raise ValueError(f"no world {name!r}; worlds are {['sim', *sorted(worlds)]}")
    factory = getattr(module, "make_world", None)
    if callable(factory):
        world = factory(name, seed=seed)
    elif callable(worlds[name]):
        world = worlds[name](seed=seed)
    else:
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, SteppedWorld)
            and value is not SteppedWorld
        ]
        if len(classes) != 1:
            raise ValueError(f"{GYM_MODULE} has no single SteppedWorld class to build {name!r}")
        world_class: Any = classes[0]
        world = world_class(worlds[name], seed=seed)
    if not isinstance(world, SteppedWorld):
        raise ValueError(f"world {name!r} is a {type(world).__name__}, not a SteppedWorld")
    return world


# --- probe data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSet:
    """Frames with their ground truth, the same for every encoder.

    Attributes:
        frames: ``(N, H, W, 3)`` uint8.
        pose: ``(N, T)`` pose targets named by ``pose_names``.
        pose_names: What each pose column is.
        regions: ``(N,)`` region labels, or None where the world reports none.
        source: How the frames were collected.
    """

    frames: npt.NDArray[np.uint8]
    pose: npt.NDArray[np.float64]
    pose_names: tuple[str, ...]
    regions: npt.NDArray[np.int64] | None
    source: str


def probe_set(world: str, count: int, seed: int) -> ProbeSet:
    """``count`` probe frames of ``world`` (see the module docstring).

    Raises:
        ValueError: If the world reports no positions (nothing to probe).
    """
    if world == "sim":
        frames, poses = render_probe_dataset(count, seed=seed)
        layout = default_layout(0)
        floor = [floor_region_index(layout, x, y) for x, y in zip(poses.x, poses.y, strict=True)]
        return ProbeSet(
            frames,
            poses.targets(),
            ("x", "y", "cos_yaw", "sin_yaw"),
            np.array(floor, dtype=np.int64),
            "rendered at random poses",
        )
    stride = 3  # spaced out, so neighbouring probe frames are not near copies
    walker = make_world(world, PROBE_WALK_SEED + seed)
    try:
        trajectory, positions, infos = random_walk(
            walker, count * stride, PROBE_WALK_SEED + seed, FastSettings()
        )
    finally:
        walker.close()
    keep = [i for i in range(0, len(positions), stride) if positions[i] is not None][:count]
    if len(keep) < 20:
        raise ValueError(f"world {world!r} reported too few positions for a probe")
    columns = [[positions[i][0] for i in keep], [positions[i][1] for i in keep]]  # type: ignore[index]
    names = ["x", "y"]
    if all("yaw" in infos[i] for i in keep):
        yaw = np.array([infos[i]["yaw"] for i in keep])
        columns += [list(np.cos(yaw)), list(np.sin(yaw))]
        names += ["cos_yaw", "sin_yaw"]
    regions: npt.NDArray[np.int64] | None = None
    if all("region" in infos[i] for i in keep):
        labels = np.array([int(infos[i]["region"]) for i in keep], dtype=np.int64)
        regions = labels if len(np.unique(labels)) > 1 else None
    return ProbeSet(
        trajectory.frames[keep],
        np.array(columns, dtype=np.float64).T,
        tuple(names),
        regions,
        "seeded random walk",
    )


# --- running the arms -------------------------------------------------------------------------


def _progress(steps: int, started: float, arm: str, seed: int, done: int, cells: int) -> None:
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    remaining = (steps - done) / rate if rate > 0 else float("nan")
    say(
        f"seed {seed} {arm}: step {done}/{steps}, {cells} cells, {rate:.0f} steps/s, "
        f"this arm's ETA {remaining / 60:.1f} min"
    )


def run_one(
    task: tuple[int, str, list[list[float]] | None],
    world: str,
    settings: FastSettings,
    held_out: HeldOutTrajectory,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """One arm of one seed: ``task`` is (seed, arm, matched frequencies or None)."""
    import torch

    torch.set_num_threads(torch_threads)
    seed, arm, matched = task
    started = time.perf_counter()
    result = run_arm(
        arm,
        seed,
        partial(make_world, world),
        settings,
        held_out,
        matched_frequencies=matched,
        progress=partial(_progress, settings.steps, started),
        progress_every=max(1, settings.steps // 4),
    )
    say(
        f"seed {seed} {arm}: {result['cells_visited']} cells, FD/copy k=1 "
        f"{result['held_out'][0]['copy_ratio'][0]:.3f} -> "
        f"{result['held_out'][-1]['copy_ratio'][0]:.3f}, {result['seconds']['total']:.0f} s"
    )
    return result


def run_arms(
    pool: concurrent.futures.Executor,
    seeds: Sequence[int],
    job: Callable[[tuple[int, str, Any]], dict[str, Any]],
) -> dict[int, dict[str, Any]]:
    """Every arm of every seed on ``pool``; each ``matched`` after its seed's ``curiosity``.

    Arms are separate tasks (so every worker stays busy whatever the number of seeds), the
    ``curiosity`` arms first; a seed's ``matched`` task is queued when its ``curiosity`` task
    has finished, with that run's action frequencies.
    """
    started = time.perf_counter()
    results: dict[int, dict[str, Any]] = {seed: {} for seed in seeds}
    total = len(seeds) * len(ARMS)
    first = [(seed, arm, None) for arm in ARMS if arm != "matched" for seed in seeds]
    pending = {pool.submit(job, task): task[:2] for task in first}
    while pending:
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            seed, arm = pending.pop(future)
            results[seed][arm] = future.result()
            if arm == "curiosity":
                task = (seed, "matched", results[seed]["curiosity"]["action_frequencies"])
                pending[pool.submit(job, task)] = (seed, "matched")
            finished = sum(len(arms) for arms in results.values())
            elapsed = time.perf_counter() - started
            say(
                f"arms done {finished}/{total}, {elapsed / 60:.1f} min so far, "
                f"about {elapsed / finished * (total - finished) / 60:.1f} min left"
            )
    return results


_PROBE_SETS: dict[tuple[str, int, int], ProbeSet] = {}
"""The probe sets a worker has built, so each is built once per process."""


def cached_probe_set(world: str, count: int, seed: int) -> ProbeSet:
    """:func:`probe_set`, built once per process (it is deterministic)."""
    key = (world, count, seed)
    if key not in _PROBE_SETS:
        _PROBE_SETS[key] = probe_set(world, count, seed)
    return _PROBE_SETS[key]


def probe_one(
    encoder: tuple[int, Mapping[str, Any] | None] | None,
    world: str,
    count: int,
    preset: str,
    split_seeds: Sequence[int],
) -> dict[str, Any]:
    """The probes of one feature set: raw pixels (``encoder`` None), or an encoder's features.

    Args:
        encoder: ``(seed, weights)``: the JEPA encoder of ``preset`` with ``weights``, or its
            initial weights of ``seed`` if ``weights`` is None; None for the raw pixels.
        world: The world whose probe set (:func:`probe_set` of seed 0) is used.
        count: Frames in the probe set.
        preset: The encoder's size preset.
        split_seeds: The random splits.
    """
    import torch

    torch.set_num_threads(1)
    probe = cached_probe_set(world, count, 0)
    if encoder is None:
        features = pixel_features(probe.frames)
    else:
        seed, weights = encoder
        features = encode_frames(preset, weights, seed, probe.frames)
    return repeated_probe(features, probe.pose, probe.pose_names, probe.regions, split_seeds)


def probe_all(
    pool: concurrent.futures.Executor,
    job: Callable[[tuple[int, Mapping[str, Any] | None] | None], dict[str, Any]],
    trained: Mapping[str, Mapping[int, Mapping[str, Any]]],
    untrained_count: int,
) -> dict[str, Any]:
    """The probes of the pixels, the untrained encoders and each arm's trained encoders."""
    untrained_seeds = [UNTRAINED_SEED + index for index in range(untrained_count)]
    pixels = pool.submit(job, None)
    untrained = {seed: pool.submit(job, (seed, None)) for seed in untrained_seeds}
    trained_futures = {
        arm: {seed: pool.submit(job, (seed, weights)) for seed, weights in by_seed.items()}
        for arm, by_seed in trained.items()
    }
    every = [
        pixels,
        *untrained.values(),
        *(f for by in trained_futures.values() for f in by.values()),
    ]
    started = time.perf_counter()
    for done, _ in enumerate(concurrent.futures.as_completed(every), start=1):
        elapsed = time.perf_counter() - started
        say(
            f"probes done {done}/{len(every)}, {elapsed / 60:.1f} min so far, "
            f"about {elapsed / done * (len(every) - done) / 60:.1f} min left"
        )
    return {
        "pixels": pixels.result(),
        "untrained": {f"init{seed}": future.result() for seed, future in untrained.items()},
        "trained": {
            arm: {str(seed): future.result() for seed, future in by_seed.items()}
            for arm, by_seed in trained_futures.items()
        },
    }


# --- command line -----------------------------------------------------------------------------


QUICK = {
    "steps": 80, "train_every": 8, "sync_every": 16, "eval_points": 2, "cell_points": 4,
    "held_out_steps": 12, "probe_samples": 60, "probe_splits": 3, "untrained_encoders": 2,
    "seeds": [0, 1], "workers": 1,
}  # fmt: skip
"""What ``--quick`` sets (seconds, for tests): every figure, no meaning."""


def parameter_values(assignments: Sequence[str]) -> dict[str, SettingValue]:
    """``NAME=VALUE`` assignments as values, each VALUE read as a YAML scalar (as in a config).

    Raises:
        ValueError: If an assignment has no ``=`` or no name, or a VALUE is not a scalar.
    """
    values: dict[str, SettingValue] = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"--trainer-param takes NAME=VALUE, got {assignment!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"--trainer-param {assignment!r}: {error}") from error
        if isinstance(value, bool | int | float | str):
            values[name.strip()] = value
        else:
            raise ValueError(
                f"--trainer-param {assignment!r}: VALUE must be one number, word or bool"
            )
    return values


def training_from_parameters(assignments: Sequence[str]) -> CuriosityTraining:
    """How the trainer node would train with these parameters over its defaults.

    Only the parameters in :data:`~pamiq_ros.nodes.trainer.CURIOSITY_TRAINING_PARAMETERS` are
    taken (the rest, such as the device or checkpoint period, do not change the training); each
    is checked against its declared type and range, as the node checks its own.

    Raises:
        ValueError: Naming what was wrong: the form, an unknown name, a type or a range.
    """
    values = parameter_values(assignments)
    if not values:
        return CuriosityTraining()
    from pamiq_ros.nodes.trainer import (  # here: the node's module loads ROS
        CURIOSITY_TRAINING_PARAMETERS,
        TrainerSettings,
        curiosity_training,
    )

    unknown = sorted(set(values) - set(CURIOSITY_TRAINING_PARAMETERS))
    if unknown:
        raise ValueError(
            f"--trainer-param {', '.join(unknown)}: not a trainer parameter that changes the "
            f"training; these do: {', '.join(CURIOSITY_TRAINING_PARAMETERS)}"
        )
    try:
        return curiosity_training(build_settings(TrainerSettings, values))
    except ValueError as error:  # name what was given: a check may name the field otherwise
        given = " ".join(f"{name}={value!r}" for name, value in values.items())
        raise ValueError(f"--trainer-param {given}: {error}") from error


def _parser() -> argparse.ArgumentParser:
    defaults = FastSettings()
    parser = argparse.ArgumentParser(
        prog="python -m pamiq_ros.bench.curiosity",
        description="Curiosity PPO against uniform random, action-matched random and zero-reward "
        "PPO: cells visited, forward model against copying, linear probes, JEPA health. "
        "--mode stack runs the full ROS stack instead (see --mode stack --help).",
    )
    parser.add_argument("--mode", choices=("fast", "stack"), default="fast")
    parser.add_argument("--world", default="sim", help="sim, or a name in GYM_WORLDS")
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=defaults.steps, help="env steps per arm")
    parser.add_argument(
        "--train-every", type=int, default=defaults.train_every, help="env steps per round (M)"
    )
    parser.add_argument(
        "--gradient-steps", type=int, default=defaults.gradient_steps,
        help="runs of each trainer per round (K)",
    )  # fmt: skip
    parser.add_argument(
        "--sync-every", type=int, default=defaults.sync_every,
        help="env steps between weight copies into the mind",
    )  # fmt: skip
    parser.add_argument("--preset", default=defaults.preset)
    parser.add_argument(
        "--reward", choices=CURIOSITY_REWARDS, default=defaults.reward,
        help="what the curiosity reward measures (the agent's curiosity_reward parameter)",
    )  # fmt: skip
    parser.add_argument(
        "--trainer-param", action="append", default=[], metavar="NAME=VALUE",
        help="a trainer node parameter that changes how the models train (pamiq-ros params; "
        "e.g. ppo_advantage=one_step), for every arm; repeatable; VALUE as in a YAML config",
    )  # fmt: skip
    parser.add_argument("--eval-points", type=int, default=defaults.eval_points)
    parser.add_argument("--cell-points", type=int, default=defaults.cell_points)
    parser.add_argument("--held-out-steps", type=int, default=200)
    parser.add_argument("--probe-samples", type=int, default=600)
    parser.add_argument("--probe-splits", type=int, default=20)
    parser.add_argument("--untrained-encoders", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="processes running seeds")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for tests (seconds)")
    parser.add_argument(
        "--out", type=Path, default=None, help="default runs/bench-curiosity-<time>/"
    )
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the exit status."""
    argv = list(sys.argv[1:] if args is None else args)
    if "--mode" in argv and argv[argv.index("--mode") + 1 : argv.index("--mode") + 2] == ["stack"]:
        from pamiq_ros.bench import curiosity_stack

        index = argv.index("--mode")
        return curiosity_stack.main(argv[:index] + argv[index + 2 :])
    if "--mode=stack" in argv:
        from pamiq_ros.bench import curiosity_stack

        return curiosity_stack.main([arg for arg in argv if arg != "--mode=stack"])
    parser = _parser()
    options = parser.parse_args(argv)
    if options.quick:
        for key, value in QUICK.items():
            setattr(options, key, value)
    try:
        settings = FastSettings(
            preset=options.preset,
            steps=options.steps,
            train_every=options.train_every,
            gradient_steps=options.gradient_steps,
            sync_every=options.sync_every,
            eval_points=options.eval_points,
            cell_points=options.cell_points,
            reward=options.reward,
            training=training_from_parameters(options.trainer_param),
        )
        if options.probe_splits < 1 or options.untrained_encoders < 1 or options.workers < 1:
            raise ValueError("--probe-splits, --untrained-encoders and --workers must be >= 1")
        if options.probe_samples < 20:
            raise ValueError("--probe-samples must be at least 20")
        make_world(options.world, 0).close()
    except ValueError as error:
        parser.error(str(error))
    out_dir = options.out or Path("runs") / f"bench-curiosity-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    say(
        f"curiosity benchmark (fast) on {options.world}: arms {', '.join(ARMS)}, seeds "
        f"{options.seeds}, {settings.steps} steps per arm, {settings.gradient_steps} run(s) of "
        f"each trainer every {settings.train_every} steps, reward {settings.reward}, trainer "
        f"parameters "
        f"{parameter_values(options.trainer_param) or 'the defaults'}, {options.workers} "
        f"worker(s), out {out_dir}"
    )
    world = make_world(options.world, HELD_OUT_SEED)
    try:
        held_out, _, _ = random_walk(world, options.held_out_steps, HELD_OUT_SEED, settings)
    finally:
        world.close()
    arm_job = partial(run_one, world=options.world, settings=settings, held_out=held_out)
    probe_job = partial(
        probe_one,
        world=options.world,
        count=options.probe_samples,
        preset=settings.preset,
        split_seeds=list(range(options.probe_splits)),
    )
    # One thread per worker: on a loaded CPU, BLAS threads that spin-wait make the ridge
    # probes tens of times slower. Workers are spawned, so they read this before numpy loads.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(options.workers, mp_context=context) as pool:
            by_seed = run_arms(pool, options.seeds, arm_job)
            trained = {
                arm: {seed: by_seed[seed][arm].pop("encoder_weights") for seed in sorted(by_seed)}
                for arm in ARMS
            }
            say(f"probing: {options.probe_samples} frames, {options.probe_splits} splits")
            probes = probe_all(pool, probe_job, trained, options.untrained_encoders)
    except KeyboardInterrupt:
        print("curiosity benchmark interrupted", file=sys.stderr, flush=True)
        return 130
    probe = cached_probe_set(options.world, options.probe_samples, 0)
    report: dict[str, Any] = {
        "benchmark": "curiosity",
        "mode": "fast",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "duration_s": None,
        "machine": machine_description(),
        "settings": {
            **asdict(settings),
            "world": options.world,
            "seeds": options.seeds,
            "arms": list(ARMS),
            "workers": options.workers,
            "held_out_steps": options.held_out_steps,
            "held_out_seed": HELD_OUT_SEED,
            "probe_samples": options.probe_samples,
            "probe_splits": options.probe_splits,
            "probe_source": probe.source,
            "probe_targets": list(probe.pose_names),
            "probe_regions": probe.regions is not None,
            "untrained_encoders": options.untrained_encoders,
            "trainer_parameters": parameter_values(options.trainer_param),
            "quick": options.quick,
        },
        "seeds": {
            str(seed): {"arms": {arm: by_seed[seed][arm] for arm in ARMS}}
            for seed in sorted(by_seed)
        },
        "probe": probes,
    }
    report["summary"] = summarise(report)
    report["plots"] = write_plots(report, out_dir)
    report["duration_s"] = round(time.time() - started, 1)
    path = out_dir / "curiosity_bench.json"
    path.write_text(json.dumps(report, indent=1))
    print()
    print(format_table(report))
    print(f"\nwritten: {path} and {len(report['plots'])} plots in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
