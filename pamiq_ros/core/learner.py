"""The learner: models, buffers and trainers together, as the trainer node drives them.

Experience records come in through :meth:`Learner.add` (from a message callback thread); a
``route`` function turns each record into one sample per buffer. :meth:`Learner.train_next`
(from the training thread) runs the next trainable trainer and increments the version of every
model it updated: versions start at 0 (the initial weights) and only increase, also across a
save and load. :meth:`Learner.weights` hands out detached copies to publish, and
:meth:`Learner.restore_weights` rolls a model back to weights known to be good (after NaN).

Save and load cover everything needed to continue: model weights (safetensors), trainer state
with optimizers (``torch.save``, read with ``weights_only=True``), buffers (npz without pickle)
and versions and counters (JSON). :meth:`Learner.load_state` checks all files first and applies
them only if all are usable; should applying still fail, the previous state is put back, so a
refused checkpoint leaves the learner as it was. No ROS import here.

Folder layout written by :meth:`Learner.save_state`::

    learner.json                 format, names, buffer sharing, versions, runner state
    models/<model>.safetensors
    trainers/<trainer>.pt
    buffers/<buffer>/data.npz, meta.json
    buffers/<buffer>/meta.json, agents/<index>/data.npz, meta.json    (per-agent buffers)
"""

import copy
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pamiq_ros.core.agent_buffers import UNNAMED_AGENT, PerAgentBuffer
from pamiq_ros.core.buffers import BufferState, BufferStateError, DataBuffer
from pamiq_ros.core.checkpoint import CheckpointError
from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.core.trainers import Trainer, TrainerRunner, TrainResult

LEARNER_FORMAT = 1
LEARNER_FILE = "learner.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

Route = Callable[[ExperienceRecord], Mapping[str, Mapping[str, np.ndarray]]]
"""Turns a record into ``{buffer_name: sample}``."""


class Learner:
    """Models, buffers and trainers, with routing, versions, rollback and save/load.

    Thread safety: :meth:`add`, :attr:`versions` and :meth:`buffer_sizes` never wait for a
    training run. Training, weight access, rollback, save and load are serialised by one lock,
    so :meth:`weights` called during a run waits for the run's end and never sees weights
    halfway through an update.
    """

    def __init__(
        self,
        models: Mapping[str, nn.Module],
        buffers: Mapping[str, DataBuffer],
        trainers: Sequence[Trainer],
        route: Route,
    ) -> None:
        """Creates the learner and sets its trainers up for the models.

        Args:
            models: The models by name.
            buffers: The buffers by name.
            trainers: The trainers, run round-robin in this order.
            route: Turns a record into ``{buffer_name: sample}``.

        Raises:
            ValueError: If a name is not usable as a file name, trainer names repeat, or a
                trainer needs a buffer that is not there.
        """
        for kind, names in (
            ("model", list(models)),
            ("buffer", list(buffers)),
            ("trainer", [trainer.name for trainer in trainers]),
        ):
            for name in names:
                if not _SAFE_NAME.match(name):
                    raise ValueError(
                        f"{kind} name {name!r} must be letters, digits, '_', '.' or '-' "
                        "(it names a checkpoint file)"
                    )
        for trainer in trainers:
            if trainer.buffer_name not in buffers:
                raise ValueError(
                    f"trainer {trainer.name!r} needs buffer {trainer.buffer_name!r}, "
                    f"the learner has {sorted(buffers)}"
                )
        self._models = MappingProxyType(dict(models))
        self._buffers = MappingProxyType(dict(buffers))
        self._trainers = tuple(trainers)
        self._runner = TrainerRunner(self._trainers)
        self._route = route
        self._versions = dict.fromkeys(self._models, 0)
        self._lock = threading.RLock()
        self._versions_lock = threading.Lock()  # versions are read without waiting for a run
        for trainer in self._trainers:
            trainer.setup(self._models)

    @property
    def models(self) -> Mapping[str, nn.Module]:
        """The models by name (read-only mapping)."""
        return self._models

    @property
    def buffers(self) -> Mapping[str, DataBuffer]:
        """The buffers by name (read-only mapping)."""
        return self._buffers

    @property
    def trainers(self) -> tuple[Trainer, ...]:
        """The trainers in round-robin order."""
        return self._trainers

    @property
    def versions(self) -> dict[str, int]:
        """A copy of each model's weight version (0 = initial weights)."""
        with self._versions_lock:
            return dict(self._versions)

    @property
    def buffer_sharing(self) -> str:
        """``per_agent`` if the buffers keep each agent's samples apart, else ``shared``."""
        if any(isinstance(buffer, PerAgentBuffer) for buffer in self._buffers.values()):
            return "per_agent"
        return "shared"

    def add(self, record: ExperienceRecord, agent_id: str = UNNAMED_AGENT) -> None:
        """Routes a record into the buffers; all samples are checked before any is stored.

        ``agent_id`` chooses the agent's own buffers where they are kept per agent
        (:class:`PerAgentBuffer`); a shared buffer keeps each agent's samples together when it
        hands them out (see :mod:`pamiq_ros.core.buffers`).

        Raises:
            ExperienceError: If the route fails or a sample does not fit its buffer (shape,
                keys, dtype); no buffer is changed then.
        """
        try:
            samples = self._route(record)
        except Exception as error:  # the route is the user's code: report, do not crash
            raise ExperienceError(f"step {record.step}: route failed: {error}") from error
        checked = {}
        for buffer_name, sample in samples.items():
            buffer = self._buffers.get(buffer_name)
            if buffer is None:
                raise ExperienceError(
                    f"step {record.step}: route names buffer {buffer_name!r}, "
                    f"there are only {sorted(self._buffers)}"
                )
            try:
                buffer.check_agent(agent_id)
                checked[buffer_name] = buffer.check_sample(sample)
            except (KeyError, ValueError, TypeError) as error:
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
                raise ExperienceError(
                    f"step {record.step}: buffer {buffer_name!r}: {message}"
                ) from error
        for buffer_name, sample in checked.items():
            try:
                self._buffers[buffer_name].add_for(agent_id, sample)
            except (KeyError, ValueError) as error:  # another thread's first sample set shapes
                raise ExperienceError(
                    f"step {record.step}: buffer {buffer_name!r}: {error}"
                ) from error

    def train_next(self) -> TrainResult | None:
        """Runs the next trainable trainer; increments the versions of the models it updated.

        Returns:
            The run's result, or None if no trainer is trainable now.
        """
        with self._lock:
            result = self._runner.run_next(self._models, self._buffers)
            if result is not None:
                with self._versions_lock:
                    for name in result.updated_models:
                        self._versions[name] += 1
            return result

    def health(self) -> "HealthReport":
        """Every trainer's health figures (:meth:`Trainer.health`), taken between runs.

        A trainer whose measurement fails is left out and named with the error, so one broken
        measurement never stops the others or the training.
        """
        report = HealthReport()
        with self._lock:
            for trainer in self._trainers:
                try:
                    report.figures.update(trainer.health(self._models, self._buffers))
                except Exception as error:  # a figure is never worth stopping the learning for
                    report.errors[trainer.name] = f"{type(error).__name__}: {error}"
        return report

    def weights(self, model_name: str) -> dict[str, torch.Tensor]:
        """Detached CPU copies of a model's state dict, safe to encode while training goes on.

        Raises:
            KeyError: If there is no such model.
        """
        with self._lock:
            return {
                key: value.detach().to("cpu", copy=True)
                for key, value in self._model(model_name).state_dict().items()
            }

    def non_finite_parameters(self, model_name: str) -> list[str]:
        """Names of the model's state tensors that hold NaN or Inf (empty when all are finite)."""
        with self._lock:
            return [
                key
                for key, value in self._model(model_name).state_dict().items()
                if value.is_floating_point() and not bool(torch.isfinite(value).all())
            ]

    def restore_weights(self, model_name: str, weights: Mapping[str, torch.Tensor]) -> None:
        """Rolls a model back to ``weights`` (e.g. the last good ones) and tells its trainers.

        The version is not changed: it still only increases, and the next update gets the next
        number. Trainers drop optimizer state that may hold the bad values
        (:meth:`Trainer.on_weights_restored`).

        Raises:
            KeyError: If there is no such model.
            RuntimeError: If ``weights`` do not fit the model (names or shapes).
        """
        with self._lock:
            self._model(model_name).load_state_dict(dict(weights), strict=True)
            for trainer in self._trainers:
                trainer.on_weights_restored(model_name)

    def buffer_sizes(self) -> dict[str, int]:
        """Samples held per buffer."""
        return {name: len(buffer) for name, buffer in self._buffers.items()}

    def agent_buffer_sizes(self) -> dict[str, dict[str, int]]:
        """Per agent id, samples held per buffer (empty when the buffers are shared)."""
        sizes: dict[str, dict[str, int]] = {}
        for name, buffer in self._buffers.items():
            if isinstance(buffer, PerAgentBuffer):
                for agent, size in buffer.agent_sizes().items():
                    sizes.setdefault(agent, {})[name] = size
        return sizes

    def save_state(self, directory: Path) -> None:
        """Writes models, trainers, buffers, versions and counters into ``directory``."""
        with self._lock:
            (directory / "models").mkdir(parents=True, exist_ok=True)
            (directory / "trainers").mkdir(parents=True, exist_ok=True)
            for name, model in self._models.items():
                tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
                save_file(tensors, str(directory / "models" / f"{name}.safetensors"))
            for trainer in self._trainers:
                torch.save(trainer.state_dict(), directory / "trainers" / f"{trainer.name}.pt")
            for name, buffer in self._buffers.items():
                buffer.save_state(directory / "buffers" / name)
            meta = {
                "format": LEARNER_FORMAT,
                "models": list(self._models),
                "buffers": list(self._buffers),
                "buffer_sharing": self.buffer_sharing,
                "trainers": [trainer.name for trainer in self._trainers],
                "versions": self.versions,
                "runner": self._runner.state_dict(),
            }
            (directory / LEARNER_FILE).write_text(json.dumps(meta, indent=1))

    def load_state(self, directory: Path) -> None:
        """Replaces the whole state with the one saved in ``directory``.

        Raises:
            CheckpointError: With the reason (a missing or damaged file, other model, buffer or
                trainer names, weights of other shapes or with NaN/Inf, buffers that do not
                fit); the learner is then unchanged.
        """
        with self._lock:
            loaded = self._read_state(directory)
            backup = self._capture()
            try:
                self._apply(loaded)
            except _ApplyError as error:
                self._apply(backup)
                raise CheckpointError(f"{directory}: {error}") from error.__cause__

    def _model(self, name: str) -> nn.Module:
        try:
            return self._models[name]
        except KeyError:
            raise KeyError(f"no model {name!r}; the learner has {sorted(self._models)}") from None

    def _read_state(self, directory: Path) -> "_LearnerState":
        meta_path = directory / LEARNER_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{meta_path} is missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{meta_path} is damaged: {error}") from error
        if not isinstance(meta, dict) or meta.get("format") != LEARNER_FORMAT:
            raise CheckpointError(f"{meta_path}: unknown format (expected {LEARNER_FORMAT})")
        for kind, mine in (
            ("models", list(self._models)),
            ("buffers", list(self._buffers)),
            ("trainers", [trainer.name for trainer in self._trainers]),
        ):
            if meta.get(kind) != mine:
                raise CheckpointError(
                    f"{directory} was saved with {kind} {meta.get(kind)}, this learner has {mine}"
                )
        saved_sharing = meta.get("buffer_sharing", "shared")  # older checkpoints: shared
        if saved_sharing != self.buffer_sharing:
            raise CheckpointError(
                f"{directory} was saved with buffer_sharing {saved_sharing!r}, this trainer uses "
                f"{self.buffer_sharing!r}: set buffer_sharing to {saved_sharing!r} to resume it "
                "(samples are not converted: shared ones carry no agent, and merging agents' "
                "would interleave their sequences)"
            )
        versions = meta.get("versions")
        if (
            not isinstance(versions, dict)
            or sorted(versions) != sorted(self._models)
            or not all(isinstance(v, int) and v >= 0 for v in versions.values())
        ):
            raise CheckpointError(f"{meta_path} is damaged: versions {versions!r}")
        runner = meta.get("runner")
        if not isinstance(runner, dict):
            raise CheckpointError(f"{meta_path} is damaged: runner {runner!r}")

        models = {name: self._read_model(directory, name) for name in self._models}
        trainers = {}
        for trainer in self._trainers:
            path = directory / "trainers" / f"{trainer.name}.pt"
            try:
                trainers[trainer.name] = torch.load(path, map_location="cpu", weights_only=True)
            except FileNotFoundError:
                raise CheckpointError(f"{path} is missing") from None
            except Exception as error:  # damaged or not ours: torch raises many kinds
                raise CheckpointError(f"{path} is damaged: {error}") from error
        buffers = {}
        for name, buffer in self._buffers.items():
            try:
                buffers[name] = buffer.read_state(directory / "buffers" / name)
            except BufferStateError as error:
                raise CheckpointError(f"buffer {name!r}: {error}") from error
        return _LearnerState(models, trainers, buffers, dict(versions), runner)

    def _read_model(self, directory: Path, name: str) -> dict[str, torch.Tensor]:
        path = directory / "models" / f"{name}.safetensors"
        try:
            tensors = load_file(str(path), device="cpu")
        except FileNotFoundError:
            raise CheckpointError(f"{path} is missing") from None
        except Exception as error:  # safetensors raises its own error types on damage
            raise CheckpointError(f"{path} is damaged: {error}") from error
        expected = self._models[name].state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{path} does not fit model {name!r}: missing {missing}, unexpected {unexpected}"
            )
        for key, value in tensors.items():
            if value.shape != expected[key].shape or value.dtype != expected[key].dtype:
                raise CheckpointError(
                    f"{path}: {key} is {tuple(value.shape)} {value.dtype}, model {name!r} has "
                    f"{tuple(expected[key].shape)} {expected[key].dtype}"
                )
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"{path}: {key} holds NaN or Inf")
        return tensors

    def _capture(self) -> "_LearnerState":
        return _LearnerState(
            models={
                name: {k: v.detach().clone() for k, v in model.state_dict().items()}
                for name, model in self._models.items()
            },
            trainers={t.name: copy.deepcopy(t.state_dict()) for t in self._trainers},
            buffers={name: buffer.snapshot() for name, buffer in self._buffers.items()},
            versions=self.versions,
            runner=self._runner.state_dict(),
        )

    def _apply(self, state: "_LearnerState") -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("runner", lambda: self._runner.load_state_dict(state.runner))
        ]
        for name, model in self._models.items():
            steps.append((f"model {name!r}", partial(model.load_state_dict, state.models[name])))
        for trainer in self._trainers:
            load = partial(trainer.load_state_dict, state.trainers[trainer.name])
            steps.append((f"trainer {trainer.name!r}", load))
        for name, buffer in self._buffers.items():
            steps.append((f"buffer {name!r}", partial(buffer.restore_state, state.buffers[name])))
        for part, step in steps:
            try:
                step()
            except Exception as error:  # any part may refuse: name it, the caller rolls back
                raise _ApplyError(f"{part}: {error}") from error
        with self._versions_lock:
            self._versions = dict(state.versions)


@dataclass
class HealthReport:
    """The trainers' health figures, and the measurements that failed.

    Attributes:
        figures: ``{"<trainer>/<figure>": value}``.
        errors: ``{trainer name: what went wrong}`` for trainers whose measurement failed.
    """

    figures: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class _ApplyError(Exception):
    """A part of the learner refused a state while it was being applied."""


@dataclass(frozen=True)
class _LearnerState:
    """Everything a learner holds, read from disk or captured for a rollback."""

    models: dict[str, dict[str, torch.Tensor]]
    trainers: dict[str, Any]
    buffers: dict[str, BufferState]
    versions: dict[str, int]
    runner: dict[str, Any]
