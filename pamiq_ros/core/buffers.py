"""Data buffers: the trainer's memory of recent experience, with save and load.

A buffer holds up to ``max_size`` samples; a sample maps each of the buffer's keys to a numpy
array. The first sample fixes each key's shape and dtype; later samples must match (a value
whose dtype casts safely, e.g. uint8 into a float32 key, is converted). Storage is allocated
once, so adding a sample copies it into place and never grows memory.

Two policies decide what is kept when the buffer is full:

- :class:`SequentialBuffer` keeps the newest ``max_size`` samples (first in, first out).
- :class:`RandomReplacementBuffer` keeps a spread over a longer past: each new sample replaces
  a uniformly random stored one with probability ``p``, or is dropped. A given stored sample is
  then replaced by each new sample with probability ``p / max_size``, so it survives
  ``max_size / p`` new samples on average (a geometric distribution). Setting
  ``expected_survival_length`` L chooses ``p = max_size / L`` (so L must be at least
  ``max_size``; L = ``max_size`` means ``p = 1``, always replace).

Samples may name the agent they came from (:meth:`DataBuffer.add_for`; a fleet feeds one
trainer): ``get_data`` then gives each agent's samples together, oldest first within each
agent, agents in the order they first came, so one agent's sequence stays contiguous in one
buffer shared by all (only windows across the seam between two agents mix them). With one
agent nothing changes.

Buffers are thread-safe: ``add`` may run in a message callback thread while ``get_data`` runs
in the training thread. ``save_state`` writes ``data.npz`` (no pickle) and ``meta.json`` into
a folder; ``load_state`` refuses state that does not fit the buffer and leaves it unchanged.
No ROS import here.
"""

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

STATE_FORMAT = 1
"""Version of the files ``save_state`` writes; ``load_state`` refuses others."""

MAX_AGENT_IDS = 1024
"""Most agent ids one buffer tells apart; samples of further agents are refused."""

DATA_FILE = "data.npz"
META_FILE = "meta.json"


class BufferStateError(ValueError):
    """Saved buffer state that cannot be loaded: incompatible with the buffer, or damaged."""


@dataclass(frozen=True)
class SampleSpec:
    """Shape and dtype of one key's values (of one sample, without the sample axis)."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]


@dataclass(frozen=True, eq=False)
class BufferState:
    """Everything a buffer holds, as read from disk or taken from a live buffer.

    Attributes:
        specs: Shape and dtype per key; None while no sample was ever stored.
        slots: Per key, the stored samples in slot order, shape ``(size, *spec.shape)``.
        stamps: Per slot, the serial number (``added_total`` at the time) of its sample;
            sorting by it gives the oldest-first order.
        added_total: Samples ever offered to ``add``.
        extra: Policy state (e.g. a random generator's), JSON-compatible.
        agents: Per slot, the index of its sample's agent in ``agent_ids``; None: all one
            agent's (state saved before agents were told apart).
        agent_ids: The agents' ids, in the order they first came.
    """

    specs: dict[str, SampleSpec] | None
    slots: dict[str, np.ndarray]
    stamps: np.ndarray
    added_total: int
    extra: dict[str, Any]
    agents: np.ndarray | None = None
    agent_ids: tuple[str, ...] = ("",)

    @property
    def size(self) -> int:
        """Number of stored samples."""
        return len(self.stamps)


class DataBuffer(ABC):
    """A bounded, thread-safe store of samples; subclasses choose which sample a new one replaces.

    Attributes:
        keys: The keys every sample has.
        max_size: The most samples kept.
    """

    def __init__(self, keys: Sequence[str], max_size: int) -> None:
        """Creates an empty buffer.

        Args:
            keys: The keys every sample must have (non-empty, unique strings).
            max_size: The most samples kept (at least 1).

        Raises:
            ValueError: If the keys or the size are not usable.
        """
        if isinstance(keys, str):
            raise ValueError(f"keys must be a sequence of names, got the string {keys!r}")
        keys = tuple(keys)
        if not keys or any(not isinstance(key, str) or not key for key in keys):
            raise ValueError(f"keys must be non-empty strings, got {keys!r}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys must be unique, got {keys!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self.keys: tuple[str, ...] = keys
        self.max_size: int = max_size
        self._lock = threading.Lock()
        self._specs: dict[str, SampleSpec] | None = None
        self._storage: dict[str, np.ndarray] = {}
        self._stamps = np.zeros(max_size, dtype=np.int64)
        self._agents = np.zeros(max_size, dtype=np.int32)
        self._agent_ids: dict[str, int] = {"": 0}  # id -> index, in the order they came
        self._size = 0
        self._added_total = 0

    @property
    def added_total(self) -> int:
        """Samples ever given to :meth:`add`, including any the buffer dropped."""
        with self._lock:
            return self._added_total

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def drawable_size(self) -> int:
        """The most samples one :meth:`get_data` call gives (a trainer's readiness is this)."""
        return len(self)

    def check_sample(self, sample: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Checks a sample against the keys and the first sample's shapes; stores nothing.

        Returns:
            The sample's values as arrays of the stored dtypes.

        Raises:
            KeyError: If keys are missing or unknown.
            ValueError: If a value's shape differs from the first sample's, or its dtype does
                not convert safely.
        """
        with self._lock:
            return self._convert(sample, self._specs)

    def add(self, sample: Mapping[str, Any]) -> None:
        """Adds one sample (copied); when full, the policy decides what it replaces.

        Raises:
            KeyError: If keys are missing or unknown.
            ValueError: If a value's shape or dtype does not fit (see :meth:`check_sample`).
        """
        self.add_for("", sample)

    def check_agent(self, agent_id: str) -> None:
        """Raises ValueError if ``agent_id`` is new and the buffer tells no more agents apart."""
        with self._lock:
            self._check_room(agent_id)

    def add_for(self, agent_id: str, sample: Mapping[str, Any]) -> None:
        """Adds one sample of agent ``agent_id``; see :meth:`add`.

        Raises:
            ValueError: Also if ``agent_id`` is refused by :meth:`check_agent`.
        """
        with self._lock:
            self._check_room(agent_id)
            values = self._convert(sample, self._specs)
            if self._specs is None:
                self._allocate({key: SampleSpec(v.shape, v.dtype) for key, v in values.items()})
            stamp = self._added_total
            self._added_total += 1
            if self._size < self.max_size:
                slot: int | None = self._size
                self._size += 1
            else:
                slot = self._slot_to_replace()
            if slot is None:
                return
            for key, value in values.items():
                self._storage[key][slot] = value
            self._stamps[slot] = stamp
            self._agents[slot] = self._agent_ids.setdefault(agent_id, len(self._agent_ids))

    def get_data(self) -> dict[str, np.ndarray]:
        """Copies of all stored samples, stacked per key, oldest first.

        Before any sample was stored, each key maps to an empty float array of shape ``(0,)``.
        """
        with self._lock:
            if self._specs is None:
                return {key: np.empty((0,), dtype=np.float32) for key in self.keys}
            order = np.lexsort((self._stamps[: self._size], self._agents[: self._size]))
            return {key: self._storage[key][order] for key in self.keys}

    def snapshot(self) -> BufferState:
        """Copies the whole state (for saving, or to put back with :meth:`restore_state`)."""
        with self._lock:
            return BufferState(
                specs=None if self._specs is None else dict(self._specs),
                slots={
                    key: self._storage[key][: self._size].copy()
                    if self._specs is not None
                    else np.empty((0,), dtype=np.float32)
                    for key in self.keys
                },
                stamps=self._stamps[: self._size].copy(),
                added_total=self._added_total,
                extra=self._extra_state(),
                agents=self._agents[: self._size].copy(),
                agent_ids=tuple(self._agent_ids),
            )

    def restore_state(self, state: BufferState) -> None:
        """Replaces the whole state with ``state`` (from :meth:`snapshot` or :meth:`read_state`).

        Raises:
            BufferStateError: If the state does not fit this buffer.
        """
        self._check_state(state)
        with self._lock:
            if state.specs is None:
                self._specs = None
                self._storage = {}
            else:
                self._allocate(state.specs)
                for key in self.keys:
                    self._storage[key][: state.size] = state.slots[key]
            self._stamps[:] = 0
            self._stamps[: state.size] = state.stamps
            self._agents[:] = 0
            if state.agents is not None:
                self._agents[: state.size] = state.agents
            self._agent_ids = {agent: index for index, agent in enumerate(state.agent_ids)}
            self._size = state.size
            self._added_total = state.added_total
            self._restore_extra_state(state.extra)

    def save_state(self, directory: Path) -> None:
        """Writes the state into ``directory`` (created if needed): ``data.npz`` and ``meta.json``.

        The arrays are written without pickle; the random state of the policy goes to the JSON.
        """
        state = self.snapshot()
        directory.mkdir(parents=True, exist_ok=True)
        specs = None
        if state.specs is not None:
            specs = {
                key: {"shape": list(spec.shape), "dtype": spec.dtype.str}
                for key, spec in state.specs.items()
            }
        meta = {
            "format": STATE_FORMAT,
            "type": type(self).__name__,
            "keys": list(self.keys),
            "max_size": self.max_size,
            "size": state.size,
            "added_total": state.added_total,
            "specs": specs,
            "extra": state.extra,
            "agent_ids": list(state.agent_ids),
        }
        arrays = {f"key_{index}": state.slots[key] for index, key in enumerate(self.keys)}
        agents = state.agents if state.agents is not None else np.zeros(state.size, np.int32)
        with open(directory / DATA_FILE, "wb") as file:
            np.savez(file, stamps=state.stamps, agents=agents, **arrays)  # type: ignore[arg-type]
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))

    def read_state(self, directory: Path) -> BufferState:
        """Reads and checks state written by :meth:`save_state`, without changing the buffer.

        Raises:
            BufferStateError: If a file is missing or damaged, or the state was saved by another
                kind of buffer, with other keys or max_size, or with other sample shapes than
                this buffer already holds.
        """
        meta = read_meta(directory / META_FILE)
        if meta.get("format") != STATE_FORMAT:
            raise BufferStateError(
                f"{directory / META_FILE}: format {meta.get('format')!r}, expected {STATE_FORMAT}"
            )
        if meta.get("type") != type(self).__name__:
            raise BufferStateError(
                f"{directory}: saved by a {meta.get('type')}, "
                f"this buffer is a {type(self).__name__}"
            )
        if meta.get("keys") != list(self.keys):
            raise BufferStateError(
                f"{directory}: saved with keys {meta.get('keys')}, "
                f"this buffer has {list(self.keys)}"
            )
        if meta.get("max_size") != self.max_size:
            raise BufferStateError(
                f"{directory}: saved with max_size {meta.get('max_size')}, "
                f"this buffer has {self.max_size}"
            )
        try:
            size = int(meta["size"])
            added_total = int(meta["added_total"])
            extra = meta["extra"]
            specs = _parse_specs(meta["specs"], self.keys)
            agent_ids = tuple(str(agent) for agent in meta.get("agent_ids", [""]))
        except (KeyError, TypeError, ValueError) as error:
            raise BufferStateError(f"{directory / META_FILE} is damaged: {error}") from error
        if not isinstance(extra, dict):
            raise BufferStateError(f"{directory / META_FILE} is damaged: extra is not a mapping")
        slots, stamps, agents = _read_arrays(directory / DATA_FILE, self.keys, specs, size)
        state = BufferState(specs, slots, stamps, added_total, extra, agents, agent_ids)
        self._check_state(state)
        return state

    def load_state(self, directory: Path) -> None:
        """Replaces the state with the one saved in ``directory``; unchanged if it is refused.

        Raises:
            BufferStateError: See :meth:`read_state`.
        """
        self.restore_state(self.read_state(directory))

    def _check_room(self, agent_id: str) -> None:
        if agent_id not in self._agent_ids and len(self._agent_ids) >= MAX_AGENT_IDS:
            raise ValueError(
                f"agent {agent_id!r} would be agent {len(self._agent_ids) + 1}; a buffer tells "
                f"at most {MAX_AGENT_IDS} apart"
            )

    @abstractmethod
    def _slot_to_replace(self) -> int | None:
        """The slot a new sample goes to when the buffer is full, or None to drop it.

        Called with the lock held.
        """

    def _extra_state(self) -> dict[str, Any]:
        """Policy state to save (JSON-compatible); called with the lock held."""
        return {}

    def _restore_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Puts back what :meth:`_extra_state` returned; called with the lock held.

        Must not fail after :meth:`_check_extra_state` accepted ``extra``.
        """

    def _check_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Raises BufferStateError if ``extra`` cannot be restored."""

    def _check_state(self, state: BufferState) -> None:
        if not 0 <= state.size <= self.max_size:
            raise BufferStateError(f"state holds {state.size} samples, max_size is {self.max_size}")
        if state.added_total < state.size:
            raise BufferStateError(
                f"state holds {state.size} samples but only {state.added_total} were ever added"
            )
        if len(np.unique(state.stamps)) != state.size or (
            state.size and (state.stamps.min() < 0 or state.stamps.max() >= state.added_total)
        ):
            raise BufferStateError("state has invalid sample serial numbers")
        if (
            not state.agent_ids
            or len(set(state.agent_ids)) != len(state.agent_ids)
            or (
                state.agents is not None
                and (
                    state.agents.shape != (state.size,)
                    or (state.size and state.agents.min() < 0)
                    or (state.size and state.agents.max() >= len(state.agent_ids))
                )
            )
        ):
            raise BufferStateError("state has invalid agent indices")
        with self._lock:
            current = self._specs
        if state.specs is None:
            if state.size:
                raise BufferStateError("state holds samples but no shapes")
        else:
            if current is not None and current != state.specs:
                raise BufferStateError(
                    f"state has samples {_describe(state.specs)}, "
                    f"this buffer already holds {_describe(current)}"
                )
            for key, spec in state.specs.items():
                if state.slots[key].shape != (state.size, *spec.shape):
                    raise BufferStateError(f"state of key {key!r} has the wrong shape")
        self._check_extra_state(state.extra)

    def _convert(
        self, sample: Mapping[str, Any], specs: Mapping[str, SampleSpec] | None
    ) -> dict[str, np.ndarray]:
        if not isinstance(sample, Mapping):
            raise TypeError(f"a sample must be a mapping of {list(self.keys)}, got {sample!r}")
        missing = [key for key in self.keys if key not in sample]
        unknown = [key for key in sample if key not in self.keys]
        if missing or unknown:
            raise KeyError(
                f"sample keys {sorted(sample)} do not match the buffer's {list(self.keys)} "
                f"(missing {missing}, unknown {unknown})"
            )
        values = {}
        for key in self.keys:
            value = np.asarray(sample[key])
            if value.dtype.kind not in "biufc":
                raise ValueError(f"sample {key!r} must be numeric, got dtype {value.dtype}")
            if specs is not None:
                spec = specs[key]
                if value.shape != spec.shape:
                    raise ValueError(
                        f"sample {key!r} has shape {value.shape}, the buffer holds {spec.shape}"
                    )
                if value.dtype != spec.dtype:
                    if not np.can_cast(value.dtype, spec.dtype, casting="safe"):
                        raise ValueError(
                            f"sample {key!r} has dtype {value.dtype}, the buffer holds "
                            f"{spec.dtype} (no safe conversion)"
                        )
                    value = value.astype(spec.dtype)
            values[key] = value
        return values

    def _allocate(self, specs: Mapping[str, SampleSpec]) -> None:
        # np.empty reserves address space only; pages are touched as samples arrive.
        self._specs = dict(specs)
        self._storage = {
            key: np.empty((self.max_size, *spec.shape), dtype=spec.dtype)
            for key, spec in specs.items()
        }


class SequentialBuffer(DataBuffer):
    """Keeps the newest ``max_size`` samples: when full, a new sample replaces the oldest."""

    @override
    def _slot_to_replace(self) -> int | None:
        # Slots are filled in order and replaced in the same order, so the oldest is the one
        # with the smallest serial number; argmin keeps this true after a load too.
        return int(np.argmin(self._stamps))


class RandomReplacementBuffer(DataBuffer):
    """When full, each new sample replaces a uniformly random stored one with probability ``p``.

    A stored sample survives ``max_size / p`` new samples on average (see the module docstring).

    Attributes:
        replace_probability: ``p``.
    """

    def __init__(
        self,
        keys: Sequence[str],
        max_size: int,
        replace_probability: float | None = None,
        expected_survival_length: int | None = None,
        seed: int = 0,
    ) -> None:
        """Creates an empty buffer.

        Args:
            keys: The keys every sample must have.
            max_size: The most samples kept.
            replace_probability: ``p`` in ``(0, 1]``; default 1.0 (always replace) unless
                ``expected_survival_length`` is given.
            expected_survival_length: Mean number of new samples a stored one survives;
                sets ``p = max_size / expected_survival_length``; at least ``max_size``.
            seed: Seed of the generator that draws replacements (its state is saved).

        Raises:
            ValueError: If both ``replace_probability`` and ``expected_survival_length`` are
                given, or either is out of range.
        """
        super().__init__(keys, max_size)
        if replace_probability is not None and expected_survival_length is not None:
            raise ValueError("give replace_probability or expected_survival_length, not both")
        if expected_survival_length is not None:
            if expected_survival_length < max_size:
                raise ValueError(
                    f"expected_survival_length ({expected_survival_length}) must be at least "
                    f"max_size ({max_size}): a sample survives max_size new samples on average "
                    "even when every new sample replaces one"
                )
            replace_probability = max_size / expected_survival_length
        if replace_probability is None:
            replace_probability = 1.0
        if not 0.0 < replace_probability <= 1.0:
            raise ValueError(f"replace_probability must be in (0, 1], got {replace_probability}")
        self.replace_probability: float = float(replace_probability)
        self._rng = np.random.default_rng(seed)

    @property
    def expected_survival_length(self) -> float:
        """Mean number of new samples a stored sample survives once the buffer is full."""
        return self.max_size / self.replace_probability

    @override
    def _slot_to_replace(self) -> int | None:
        if self._rng.random() >= self.replace_probability:
            return None
        return int(self._rng.integers(self.max_size))

    @override
    def _extra_state(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state}

    @override
    def _check_extra_state(self, extra: dict[str, Any]) -> None:
        try:
            np.random.default_rng().bit_generator.state = extra["rng"]
        except (KeyError, TypeError, ValueError) as error:
            raise BufferStateError(f"no usable random generator state: {error}") from error

    @override
    def _restore_extra_state(self, extra: dict[str, Any]) -> None:
        self._rng.bit_generator.state = extra["rng"]


def _describe(specs: Mapping[str, SampleSpec]) -> str:
    return ", ".join(f"{key} {spec.shape} {spec.dtype}" for key, spec in specs.items())


def read_meta(path: Path) -> dict[str, Any]:
    """Reads a buffer's ``meta.json``; raises BufferStateError if missing or damaged."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise BufferStateError(f"{path} is missing") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BufferStateError(f"{path} is damaged: {error}") from error
    if not isinstance(meta, dict):
        raise BufferStateError(f"{path} is damaged: not a JSON object")
    return meta


def _parse_specs(raw: Any, keys: Sequence[str]) -> dict[str, SampleSpec] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or sorted(raw) != sorted(keys):
        raise ValueError(f"specs do not name the keys {list(keys)}")
    specs = {}
    for key in keys:
        shape = tuple(int(side) for side in raw[key]["shape"])
        dtype = np.dtype(raw[key]["dtype"])
        if dtype.kind not in "biufc" or any(side < 0 for side in shape):
            raise ValueError(f"spec of {key!r} is not usable: {shape} {dtype}")
        specs[key] = SampleSpec(shape, dtype)
    return specs


def _read_arrays(
    path: Path, keys: Sequence[str], specs: Mapping[str, SampleSpec] | None, size: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            stamps = np.asarray(data["stamps"])
            agents = np.asarray(data["agents"]) if "agents" in data else None
            slots = {key: np.asarray(data[f"key_{index}"]) for index, key in enumerate(keys)}
    except FileNotFoundError as error:
        raise BufferStateError(f"{path} is missing") from error
    except Exception as error:  # a damaged zip raises many kinds of errors
        raise BufferStateError(f"{path} is damaged: {error}") from error
    if stamps.shape != (size,) or not np.issubdtype(stamps.dtype, np.integer):
        raise BufferStateError(f"{path} is damaged: {stamps.shape} stamps for {size} samples")
    if specs is not None:
        for key, spec in specs.items():
            if slots[key].shape != (size, *spec.shape) or slots[key].dtype != spec.dtype:
                raise BufferStateError(
                    f"{path} is damaged: {key!r} is {slots[key].shape} {slots[key].dtype}, "
                    f"expected {(size, *spec.shape)} {spec.dtype}"
                )
    if agents is not None and not np.issubdtype(agents.dtype, np.integer):
        raise BufferStateError(f"{path} is damaged: agent indices of dtype {agents.dtype}")
    return slots, stamps.astype(np.int64), None if agents is None else agents.astype(np.int32)
