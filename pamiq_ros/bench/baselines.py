"""The two baselines ``make bench`` sets beside our stack: acting and training in one process.

Both use the same world, models and training as the sim stack, without ROS: the simulated world
(:class:`pamiq_ros.sim.world.World`, rendered at the camera's 160x120), the curiosity mind
(:class:`pamiq_ros.minds.curiosity.CuriosityMind`) and the trainer node's learner built from the
config's trainer parameters (:func:`pamiq_ros.nodes.trainer.build_learner`), the same preset and
seed, ``torch.set_num_threads(1)`` as our nodes use, and the agent's fixed-rate schedule
(:class:`pamiq_ros.core.step_loop.StepLoop`: absolute deadlines, missed deadlines counted, no
catch-up burst). Each step renders the avatar's view, acts on it, feeds the finished experience
records to the learner, and advances the world by one period with the chosen motion, as
sim_world does with the OSC input the actuator sends.

* ``loop`` (a): a classic loop. Each step acts, then runs ``learner.train_next()`` inline when a
  trainer is trainable; a training run longer than the step's slack delays the next steps.
* ``threads`` (b): an in-process framework. The step loop acts in its thread; a training thread
  runs ``train_next()`` continuously and after each run hands the acting side the new weights:
  it copies them into the spare model (:meth:`SwappableModel.prepare`) and the acting thread
  swaps the model references between two steps. Both threads share the interpreter (GIL) and
  the machine's cores.

Figures are taken over ``seconds`` after ``warmup_s`` (the learner needs samples first), from
the step start times (:func:`pamiq_ros.bench.step_timing.timing_figures`), with the loop's own
count of missed deadlines.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from pamiq_ros.bench.step_timing import in_window, intervals_of, timing_figures
from pamiq_ros.core.actions import ActionMapper
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.step_loop import StepLoop
from pamiq_ros.minds.curiosity import CuriosityMind
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import MotionCommand, World

BASELINES = ("loop", "threads")
"""Baseline names: (a) one loop acting and training in turn, (b) an acting and a training thread."""

TORCH_THREADS = 1
"""CPU threads torch uses in the baselines, as in our agent and trainer nodes."""

IDLE_WAIT_S = 0.05
"""The training thread's wait when nothing is trainable (the trainer node's)."""


@dataclass(frozen=True)
class BaselineOptions:
    """What both baselines share.

    Attributes:
        seconds: The measured period (s).
        warmup_s: Time before the period (s).
        rate_hz: Steps per second.
        seed: Seed of the models, the world and the action draws.
        preset: Model size preset.
        trainer_parameters: The trainer's parameters (the config's ``trainer`` section); any
            :class:`~pamiq_ros.nodes.trainer.TrainerSettings` field, others are ignored.
        agent_parameters: The agent's parameters (speeds, frame size).
        world_parameters: The sim world's parameters (walk and turn speed).
        device: The learner's device (the acting side stays on the CPU).
        precision: The learner's compute precision, float32 or bfloat16.
    """

    seconds: float = 60.0
    warmup_s: float = 20.0
    rate_hz: float = 10.0
    seed: int = 0
    preset: str = "tiny"
    trainer_parameters: Mapping[str, Any] = field(default_factory=dict)
    agent_parameters: Mapping[str, Any] = field(default_factory=dict)
    world_parameters: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    precision: str = "float32"

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and self.warmup_s >= 0 and self.rate_hz > 0):
            raise ValueError(
                f"seconds and rate_hz must be positive and warmup_s not negative, got "
                f"{self.seconds}, {self.rate_hz}, {self.warmup_s}"
            )


def build_learner(options: BaselineOptions) -> Learner:
    """The trainer node's learner for these options (same preset and seed)."""
    from pamiq_ros.nodes.trainer import TrainerSettings
    from pamiq_ros.nodes.trainer import build_learner as build_node_learner

    known = {item.name for item in fields(TrainerSettings)}
    parameters = {key: value for key, value in options.trainer_parameters.items() if key in known}
    parameters.update(
        mind="curiosity", preset=options.preset, seed=options.seed, device=options.device,
        precision=options.precision,
    )  # fmt: skip
    return build_node_learner(TrainerSettings(**parameters))


class _Actor:
    """One step of acting: render the view, act, feed the learner, move the avatar."""

    def __init__(self, options: BaselineOptions, learner: Learner) -> None:
        world = options.world_parameters
        agent = options.agent_parameters
        self.world = World(
            options.seed,
            float(world.get("walk_speed", 2.0)),
            float(world.get("turn_speed", 1.5)),
        )
        self.renderer = Renderer(
            self.world.layout,
            int(agent.get("image_width", 160)),
            int(agent.get("image_height", 120)),
        )
        self.mapper = ActionMapper(
            float(agent.get("linear_speed", 2.0)), float(agent.get("angular_speed", 1.5))
        )
        self.mind = CuriosityMind(options.preset, options.seed)
        self.learner = learner
        self.period_s = 1.0 / options.rate_hz
        self.steps = 0
        self.records_refused = 0

    def act(self) -> None:
        self.steps += 1
        frame = self.renderer.render(self.world)
        result = self.mind.act(self.steps, frame)
        for record in result.records:
            try:
                self.learner.add(record)
            except ValueError:
                self.records_refused += 1
        action = self.mapper.to_action(result.choice)
        motion = action.motion
        self.world.step(
            self.period_s,
            MotionCommand(
                forward=motion.forward_mps,
                left=motion.left_mps,
                yaw_rate=motion.ccw_radps,
                jump=action.buttons.jump,
            ),
        )


class _Recorder:
    """Wraps a step callback and records when each step started and how long it took."""

    def __init__(self, step: Callable[[], None]) -> None:
        self._step = step
        self.starts: list[float] = []
        self.compute_s: list[float] = []
        self.errors: list[str] = []

    def __call__(self) -> None:
        started = time.monotonic()
        self.starts.append(started)
        try:
            self._step()
        except Exception as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            raise
        finally:
            self.compute_s.append(time.monotonic() - started)


def run_baseline(
    kind: str, options: BaselineOptions, say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Runs baseline ``kind`` ("loop" or "threads") for warm-up plus period; returns its figures.

    Raises:
        ValueError: If ``kind`` is not one of :data:`BASELINES`.
        RuntimeError: If a step raised (the first error is named).
    """
    if kind not in BASELINES:
        raise ValueError(f"baseline must be one of {list(BASELINES)}, got {kind!r}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        return _run(kind, options, say)
    finally:
        torch.set_num_threads(previous_threads)


def _run(kind: str, options: BaselineOptions, say: Callable[[str], None]) -> dict[str, Any]:
    learner = build_learner(options)
    actor = _Actor(options, learner)
    runs = [0]
    swaps = [0]
    run_times_s: list[float] = []
    stop = threading.Event()

    def train_once() -> None:
        started = time.monotonic()
        result = learner.train_next()
        if result is not None:
            runs[0] += 1
            run_times_s.append(time.monotonic() - started)

    def loop_step() -> None:
        actor.act()
        train_once()

    def acting_step() -> None:
        swaps[0] += len(actor.mind.swap_ready_weights())
        actor.act()

    def training_thread() -> None:
        torch.set_num_threads(TORCH_THREADS)
        while not stop.is_set():
            started = time.monotonic()
            result = learner.train_next()
            if result is None:
                stop.wait(IDLE_WAIT_S)
                continue
            run_times_s.append(time.monotonic() - started)
            runs[0] += 1
            versions = learner.versions
            for name in result.updated_models:
                # The in-process hand-over: copy into the spare, swapped in between two steps.
                actor.mind.models[name].prepare(learner.weights(name), versions[name])

    recorder = _Recorder(loop_step if kind == "loop" else acting_step)
    loop = StepLoop(options.rate_hz, recorder, name=f"baseline-{kind}")
    trainer = threading.Thread(target=training_thread, name="baseline-training", daemon=True)
    say(f"baseline {kind}: warming up {options.warmup_s:g} s, then measuring {options.seconds:g} s")
    started = time.monotonic()
    loop.start()
    if kind == "threads":
        trainer.start()
    try:
        time.sleep(options.warmup_s)
        begin = time.monotonic()
        missed_before, runs_before = loop.statistics().missed_deadlines, runs[0]
        time.sleep(options.seconds)
        end = time.monotonic()
        missed = loop.statistics().missed_deadlines - missed_before
        runs_in_period = runs[0] - runs_before
    finally:
        loop.stop(timeout=30.0)
        stop.set()
        if trainer.is_alive():
            trainer.join(timeout=30.0)
    if recorder.errors:
        raise RuntimeError(f"baseline {kind}: a step failed: {recorder.errors[0]}")
    starts = in_window(recorder.starts, begin, end)
    figures = timing_figures(starts, 1.0 / options.rate_hz, missed_deadlines=missed)
    in_period = [
        compute for start, compute in zip(recorder.starts, recorder.compute_s, strict=False)
        if begin <= start <= end
    ]  # fmt: skip
    result = {
        "baseline": kind,
        "description": {
            "loop": "one loop: act, then train inline when trainable",
            "threads": "acting thread + training thread, weights handed over by model swap",
        }[kind],
        **figures.as_dict(),
        "training_runs": runs_in_period,
        "training_runs_total": runs[0],
        "training_run_mean_ms": round(1000 * sum(run_times_s) / len(run_times_s), 3)
        if run_times_s
        else None,
        "training_run_max_ms": round(1000 * max(run_times_s), 3) if run_times_s else None,
        "step_compute_mean_ms": round(1000 * sum(in_period) / len(in_period), 3)
        if in_period
        else None,
        "step_compute_max_ms": round(1000 * max(in_period), 3) if in_period else None,
        "weight_swaps": swaps[0],
        "records_refused": actor.records_refused,
        "torch_threads": TORCH_THREADS,
        "elapsed_s": round(time.monotonic() - started, 1),
        "intervals_ms": [round(v * 1000.0, 3) for v in intervals_of(starts)],
    }
    say(
        f"baseline {kind}: p99 {figures.interval_error_p99_ms:.2f} ms, missed "
        f"{figures.missed_deadlines}, longest stall {figures.longest_stall_ms:.1f} ms, "
        f"{runs_in_period} training runs"
    )
    return result
