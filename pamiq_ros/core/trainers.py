"""Trainers: units of learning that run when their data allows, taken in turn.

A :class:`Trainer` updates some models from one buffer. It is *trainable* when the buffer holds
at least ``min_buffer_size`` samples and at least ``min_new_samples`` samples were added since
its last run, so a trainer never trains again and again on the same data while experience is
not flowing. A :class:`TrainerRunner` runs the trainers round-robin: each call runs the next
trainable trainer after the one that ran last, so one always-ready trainer cannot starve the
others. Trainers save their optimizer state and counters with :meth:`Trainer.state_dict`, in a
form that ``torch.save`` writes and ``torch.load(..., weights_only=True)`` reads.
No ROS import here.
"""

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch
from torch import nn
from typing_extensions import override

from pamiq_ros.core.buffers import DataBuffer


@dataclass(frozen=True)
class TrainResult:
    """What one trainer run did.

    Attributes:
        trainer: The trainer's name.
        metrics: Figures of the run, e.g. ``{"autoencoder/loss": 0.01}``.
        updated_models: Names of the models whose weights changed.
        duration_s: Wall-clock time of the run in seconds.
    """

    trainer: str
    metrics: dict[str, float]
    updated_models: tuple[str, ...]
    duration_s: float


class Trainer(ABC):
    """Updates models from the samples of one buffer; subclasses implement :meth:`train`.

    Attributes:
        name: The trainer's name (unique among the trainers of a learner).
        buffer_name: The buffer its conditions look at.
        min_buffer_size: Samples the buffer must hold before the first run.
        min_new_samples: Samples that must have been added since the last run.
    """

    def __init__(
        self, name: str, buffer_name: str, min_buffer_size: int, min_new_samples: int
    ) -> None:
        """Creates the trainer.

        Raises:
            ValueError: If a name is empty, ``min_buffer_size`` is below 1 or
                ``min_new_samples`` is negative.
        """
        if not name or not buffer_name:
            raise ValueError(f"names must not be empty: {name!r}, {buffer_name!r}")
        if min_buffer_size < 1:
            raise ValueError(f"min_buffer_size must be at least 1, got {min_buffer_size}")
        if min_new_samples < 0:
            raise ValueError(f"min_new_samples must not be negative, got {min_new_samples}")
        self.name = name
        self.buffer_name = buffer_name
        self.min_buffer_size = min_buffer_size
        self.min_new_samples = min_new_samples
        self._runs = 0
        self._added_total_at_last_run = 0
        self._is_set_up = False

    @property
    def runs(self) -> int:
        """Completed runs (restored from a checkpoint on load)."""
        return self._runs

    def new_samples(self, buffers: Mapping[str, DataBuffer]) -> int:
        """Samples added to the trainer's buffer since its last run."""
        added_total = self._buffer(buffers).added_total
        if added_total < self._added_total_at_last_run:
            # The buffer was replaced by an older one; count from its own start.
            return added_total
        return added_total - self._added_total_at_last_run

    def is_trainable(self, buffers: Mapping[str, DataBuffer]) -> bool:
        """Whether the buffer is large enough and enough samples arrived since the last run.

        Raises:
            KeyError: If the trainer's buffer is not among ``buffers``.
        """
        buffer = self._buffer(buffers)
        return buffer.drawable_size() >= self.min_buffer_size and self.new_samples(buffers) >= (
            self.min_new_samples
        )

    def setup(self, models: Mapping[str, nn.Module]) -> None:
        """Prepares what the trainer keeps between runs (e.g. optimizers) for ``models``.

        A learner calls it once when it is created, before any state is loaded; :meth:`run`
        calls it if nobody did. Subclasses extend :meth:`on_setup`.
        """
        self.on_setup(models)
        self._is_set_up = True

    def on_setup(self, models: Mapping[str, nn.Module]) -> None:  # noqa: B027 (optional hook)
        """Hook of :meth:`setup`; the default does nothing."""

    def run(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> TrainResult:
        """Runs :meth:`train` once and records the run (count, samples seen, duration).

        Samples added while the run goes on count as new for the next run. If ``train`` raises,
        the counters stay as they were.
        """
        if not self._is_set_up:
            self.setup(models)
        added_total = self._buffer(buffers).added_total
        started = time.perf_counter()
        metrics, updated = self.train(models, buffers)
        duration = time.perf_counter() - started
        self._runs += 1
        self._added_total_at_last_run = added_total
        return TrainResult(self.name, dict(metrics), tuple(updated), duration)

    @abstractmethod
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        """Trains once.

        Returns:
            The run's metrics and the names of the models it updated.
        """

    def health(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> dict[str, float]:
        """Figures that say whether the learning is sound; the default has none.

        E.g. collapse, drift, or prediction against a baseline, measured without training.
        Called on the training side between runs, every few runs, never on the acting path.
        It must not change the models, and should leave random draws of training unchanged.
        """
        return {}

    def on_weights_restored(self, model_name: str) -> None:  # noqa: B027 (optional hook)
        """Called after a model's weights were rolled back (e.g. after NaN appeared).

        Trainers of that model should drop optimizer state that may hold the bad values.
        The default does nothing.
        """

    def state_dict(self) -> dict[str, Any]:
        """Counters and the subclass's state (:meth:`extra_state_dict`), for torch.save."""
        return {
            "name": self.name,
            "runs": self._runs,
            "added_total_at_last_run": self._added_total_at_last_run,
            "extra": self.extra_state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Puts back what :meth:`state_dict` returned.

        Raises:
            ValueError: If the state belongs to another trainer or is incomplete or damaged.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"trainer {self.name!r}: state must be a mapping, got {type(state)}")
        missing = {"name", "runs", "added_total_at_last_run", "extra"} - set(state)
        if missing:
            raise ValueError(f"trainer {self.name!r}: state lacks {sorted(missing)}")
        if state["name"] != self.name:
            raise ValueError(f"state of trainer {state['name']!r} given to trainer {self.name!r}")
        runs, added = state["runs"], state["added_total_at_last_run"]
        if not (isinstance(runs, int) and isinstance(added, int) and runs >= 0 and added >= 0):
            raise ValueError(f"trainer {self.name!r}: counters {runs!r}, {added!r} are not usable")
        self.load_extra_state_dict(state["extra"])
        self._runs = runs
        self._added_total_at_last_run = added

    def extra_state_dict(self) -> dict[str, Any]:
        """State of the subclass (optimizers, random generators); the default is empty."""
        return {}

    def load_extra_state_dict(self, state: Any) -> None:  # noqa: B027 (optional hook)
        """Puts back what :meth:`extra_state_dict` returned; raises ValueError if unusable."""

    def _buffer(self, buffers: Mapping[str, DataBuffer]) -> DataBuffer:
        try:
            return buffers[self.buffer_name]
        except KeyError:
            raise KeyError(
                f"trainer {self.name!r} needs buffer {self.buffer_name!r}, "
                f"there are only {sorted(buffers)}"
            ) from None


ModelT = TypeVar("ModelT", bound=nn.Module)


class TorchTrainer(Trainer, Generic[ModelT]):
    """A trainer of one torch model with one optimizer and a seeded random generator.

    It finds its model by name (checking the type), saves and restores the optimizer and the
    generator with the trainer's state, and starts the optimizer afresh when the model's
    weights are rolled back (its moments saw the gradients that broke them). Subclasses give
    :meth:`make_optimizer` and :meth:`train`, and use :meth:`_ready` and ``_generator``.

    Args:
        name: The trainer's name.
        buffer_name: The buffer it learns from.
        min_buffer_size: Samples the buffer must hold before a run.
        min_new_samples: Samples added since the last run before another run.
        model_name: The model it trains.
        model_type: The class that model must be.
        seed: Seed of the generator that draws batches.
    """

    def __init__(
        self,
        name: str,
        buffer_name: str,
        min_buffer_size: int,
        min_new_samples: int,
        *,
        model_name: str,
        model_type: type[ModelT],
        seed: int = 0,
    ) -> None:
        super().__init__(name, buffer_name, min_buffer_size, min_new_samples)
        self.model_name = model_name
        self._model_type = model_type
        self._generator = torch.Generator().manual_seed(seed)
        self._model: ModelT | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._learning_rate: float | None = None  # set at run time; None: the optimizer's own

    def set_learning_rate(self, learning_rate: float) -> None:
        """Changes the optimizer's learning rate from the next gradient step on.

        The rate is kept when the optimizer is made afresh (after a rollback).
        """
        if not learning_rate > 0:
            raise ValueError(f"learning rate must be positive, got {learning_rate}")
        self._learning_rate = learning_rate
        self._apply_learning_rate()

    def _apply_learning_rate(self) -> None:
        if self._learning_rate is not None and self._optimizer is not None:
            for group in self._optimizer.param_groups:
                group["lr"] = self._learning_rate

    @abstractmethod
    def make_optimizer(self, model: ModelT) -> torch.optim.Optimizer:
        """A new optimizer over the model's trained parameters."""

    def check_model(self, model: ModelT) -> None:
        """Refuses (ValueError) a model this trainer's settings do not fit."""

    @override
    def on_setup(self, models: Mapping[str, nn.Module]) -> None:
        model = models.get(self.model_name)
        if not isinstance(model, self._model_type):
            raise KeyError(
                f"trainer {self.name!r} needs a {self._model_type.__name__} named "
                f"{self.model_name!r}, got {type(model).__name__}"
            )
        self.check_model(model)
        self._model = model
        self._optimizer = self.make_optimizer(model)
        self._apply_learning_rate()

    @override
    def on_weights_restored(self, model_name: str) -> None:
        if model_name == self.model_name and self._model is not None:
            self._optimizer = self.make_optimizer(self._model)
            self._apply_learning_rate()

    @override
    def extra_state_dict(self) -> dict[str, Any]:
        _, optimizer = self._ready()
        return {"optimizer": optimizer.state_dict(), "generator": self._generator.get_state()}

    @override
    def load_extra_state_dict(self, state: Any) -> None:
        _, optimizer = self._ready()
        if not isinstance(state, Mapping) or {"optimizer", "generator"} - set(state):
            raise ValueError(f"trainer {self.name!r}: state needs 'optimizer' and 'generator'")
        generator = state["generator"]
        if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
            raise ValueError(f"trainer {self.name!r}: the generator state is not a byte tensor")
        try:
            torch.Generator().set_state(generator)  # check before changing anything
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"trainer {self.name!r}: unusable state: {error}") from error
        self._generator.set_state(generator)

    def _ready(self) -> tuple[ModelT, torch.optim.Optimizer]:
        if self._model is None or self._optimizer is None:
            raise RuntimeError(f"trainer {self.name!r} is not set up: call setup(models) first")
        return self._model, self._optimizer


class TrainerRunner:
    """Runs trainers round-robin, skipping those that are not trainable."""

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        """Creates the runner.

        Raises:
            ValueError: If there are no trainers or two share a name.
        """
        if not trainers:
            raise ValueError("a TrainerRunner needs at least one trainer")
        names = [trainer.name for trainer in trainers]
        if len(set(names)) != len(names):
            raise ValueError(f"trainer names must be unique, got {names}")
        self.trainers: tuple[Trainer, ...] = tuple(trainers)
        self._last_index = -1

    def run_next(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> TrainResult | None:
        """Runs the next trainable trainer after the last one run; None if none is trainable."""
        count = len(self.trainers)
        for offset in range(1, count + 1):
            index = (self._last_index + offset) % count
            trainer = self.trainers[index]
            if trainer.is_trainable(buffers):
                result = trainer.run(models, buffers)
                self._last_index = index
                return result
        return None

    def state_dict(self) -> dict[str, Any]:
        """Which trainer ran last (JSON-compatible)."""
        last = self.trainers[self._last_index].name if self._last_index >= 0 else None
        return {"last_trainer": last}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Puts back what :meth:`state_dict` returned.

        Raises:
            ValueError: If it names a trainer this runner does not have.
        """
        last = state.get("last_trainer")
        if last is None:
            self._last_index = -1
            return
        names = [trainer.name for trainer in self.trainers]
        if last not in names:
            raise ValueError(f"last trainer {last!r} is not among {names}")
        self._last_index = names.index(last)
