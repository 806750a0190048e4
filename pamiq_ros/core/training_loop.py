"""The trainer's training loop without ROS: runs, rollback of bad versions, checkpoints.

A thread of its own runs the learner's next trainer run after another. After each run that
updated a model, the new weights are checked (no NaN/Inf: a bad run is rolled back and never
published) and handed to ``publish``. Checkpoints are written on this thread only, between
runs: periodically, and when asked through :meth:`TrainingLoop.checkpoint` (any thread), which
posts a request to the loop's mailbox and waits for it. Pause (:meth:`pause`) and
:meth:`resume` stop and continue the runs; checkpoints are still served while paused.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from pamiq_ros.core.learner import HealthReport, Learner
from pamiq_ros.core.mailbox import Mailbox
from pamiq_ros.core.trainers import TrainResult

IDLE_WAIT_S = 0.05
"""Wait between two looks for work when no trainer had enough new data (or while paused)."""

FAILED_RUN_WAIT_S = 1.0
"""Wait after a run that raised, so a persistent failure does not spin."""


@dataclass
class TrainingPace:
    """The loop's run-time-changeable settings.

    Attributes:
        checkpoint_period: Seconds between periodic checkpoints.
        min_run_interval: Seconds of rest after each run (CPU left to acting); 0: none.
        health_period_runs: Runs between health measurements; 0: never.
    """

    checkpoint_period: float
    min_run_interval: float = 0.0
    health_period_runs: int = 0


class TrainingLoop:
    """Trains a :class:`Learner` continuously in a thread and publishes each good version."""

    def __init__(
        self,
        learner: Learner,
        pace: TrainingPace,
        publish: Callable[[str, int, Mapping[str, torch.Tensor]], bool],
        write_checkpoint: Callable[[str], Path],
        on_run: Callable[[TrainResult, int], None] = lambda result, runs: None,
        on_health: Callable[[HealthReport, int], None] = lambda report, runs: None,
        on_problem: Callable[[str], None] = lambda message: None,
        torch_threads: int = 1,
    ) -> None:
        """Creates the loop; :meth:`start` publishes the current weights and starts training.

        Args:
            learner: What learns.
            pace: Checkpoint period, rest between runs, health period.
            publish: Publishes one model's version; False if it was refused.
            write_checkpoint: Writes a checkpoint with a reason label; returns its folder.
            on_run: Told of each finished run and the run count (for metrics).
            on_health: Told of each health measurement and the run count.
            on_problem: Told of a failed run or a rolled-back version (one line).
            torch_threads: CPU threads of the training thread.
        """
        self.learner = learner
        self.pace = pace
        self._publish = publish
        self._write_checkpoint = write_checkpoint
        self._on_run = on_run
        self._on_health = on_health
        self._on_problem = on_problem
        self._torch_threads = torch_threads
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._checkpoints: Mailbox[Path] = Mailbox()
        self._lock = threading.Lock()
        self.runs = 0
        self.refused_versions = 0
        self.checkpoints_written = 0
        self.last_run_at = 0.0  # monotonic, 0 before any run
        self.published: dict[str, int] = {}
        self._last_good = {name: learner.weights(name) for name in learner.models}
        self._thread = threading.Thread(target=self._run, name="training", daemon=True)

    def start(self) -> None:
        """Publishes the current weights (the agent acts with them from the start), then trains."""
        for name, version in self.learner.versions.items():
            self._publish_version(name, version, self._last_good[name])
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the training thread is alive (started and not stopped)."""
        return self._thread.is_alive()

    @property
    def paused(self) -> bool:
        """Whether runs are paused."""
        return self._paused.is_set()

    def pause(self) -> None:
        """Stops starting runs (the current one finishes)."""
        self._paused.set()

    def resume(self) -> None:
        """Starts runs again."""
        self._paused.clear()

    def checkpoint(self, reason: str, timeout_s: float = 120.0) -> Path:
        """Has the training thread write a checkpoint between two runs; waits for it.

        Written here directly when the thread is not running (before start, after stop).

        Raises:
            OSError: If it failed or did not come in ``timeout_s``.
        """
        if not self._thread.is_alive():
            return self._checkpoint(reason)
        return self._checkpoints.ask(reason, timeout_s)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stops after the current run and joins the thread; waiting requests are served."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    # --- the training thread ------------------------------------------------------------------

    def _checkpoint(self, reason: str) -> Path:
        path = self._write_checkpoint(reason)
        with self._lock:
            self.checkpoints_written += 1
        return path

    def _run(self) -> None:
        torch.set_num_threads(self._torch_threads)
        next_checkpoint = time.monotonic() + self.pace.checkpoint_period
        while not self._stop.is_set():
            self._checkpoints.serve(self._checkpoint)
            if time.monotonic() >= next_checkpoint:
                try:
                    self._checkpoint("periodic")
                except Exception as error:
                    self._on_problem(f"periodic checkpoint failed: {error}")
                next_checkpoint = time.monotonic() + self.pace.checkpoint_period
            if self._paused.is_set():
                self._stop.wait(IDLE_WAIT_S)
                continue
            try:
                result = self.learner.train_next()
            except Exception as error:  # a failed run is reported; training goes on
                self._on_problem(f"trainer run failed: {type(error).__name__}: {error}")
                self._stop.wait(FAILED_RUN_WAIT_S)
                continue
            if result is None:
                self._stop.wait(IDLE_WAIT_S)
                continue
            self._after_run(result)
            if self.pace.min_run_interval > 0:
                self._stop.wait(self.pace.min_run_interval)
        self._checkpoints.serve(self._checkpoint)

    def _after_run(self, result: TrainResult) -> None:
        with self._lock:
            self.runs += 1
            self.last_run_at = time.monotonic()
            runs = self.runs
        self._on_run(result, runs)
        period = self.pace.health_period_runs
        if period and (runs == 1 or runs % period == 0):
            self._on_health(self.learner.health(), runs)
        versions = self.learner.versions
        for model in result.updated_models:
            bad = self.learner.non_finite_parameters(model)
            if bad:
                self.learner.restore_weights(model, self._last_good[model])
                with self._lock:
                    self.refused_versions += 1
                self._on_problem(
                    f"{model} version {versions[model]} holds NaN/Inf in {', '.join(bad[:3])}: "
                    f"rolled back to version {self.published.get(model, 0)}, not published"
                )
                continue
            weights = self.learner.weights(model)
            if self._publish_version(model, versions[model], weights):
                self._last_good[model] = weights

    def _publish_version(
        self, model: str, version: int, weights: Mapping[str, torch.Tensor]
    ) -> bool:
        if not self._publish(model, version, weights):
            with self._lock:
                self.refused_versions += 1
            return False
        with self._lock:
            self.published[model] = version
        return True
