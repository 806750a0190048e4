"""Buffers per agent: a fleet's records kept apart, each agent with its own buffers.

Several agents feed one trainer (issue 13). A shared buffer takes their records in arrival
order and hands each agent's out together (see :mod:`pamiq_ros.core.buffers`), but the agents
share its capacity, and a window drawn across the seam between two agents still mixes them. A
:class:`PerAgentBuffer` keeps one buffer per agent id instead (each made by the same factory,
so each holds up to ``max_size`` samples: memory grows with the number of agents, at most
:data:`MAX_AGENTS`).

Drawing: each :meth:`PerAgentBuffer.get_data` call (one trainer run) hands out one agent's data,
oldest first, chosen with probability proportional to the samples it holds among the agents
holding at least ``min_draw_size`` (the trainer's need). So every stored sample is as likely to
be trained on as in a shared buffer, a newly joined agent is not over-weighted, and no window
ever crosses from one agent to another. Over runs, batches cover all agents. A trainer is ready
when one agent alone has enough samples (:meth:`DataBuffer.drawable_size`).

Save and load: ``meta.json`` names the agents; ``agents/<index>/`` holds each agent's buffer in
the plain buffer format (agent ids are ROS names, not file names). No ROS import here.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from pamiq_ros.core.buffers import (
    META_FILE,
    STATE_FORMAT,
    BufferState,
    BufferStateError,
    DataBuffer,
    read_meta,
)

BUFFER_SHARING = ("shared", "per_agent")
"""The trainer's ``buffer_sharing`` choices: one buffer for all agents, or one per agent."""

MAX_AGENTS = 16
"""Most agents a :class:`PerAgentBuffer` keeps apart; records of further agents are refused."""

UNNAMED_AGENT = ""
"""The id of records without one (an agent without an outbox, a tool)."""


@dataclass(frozen=True, eq=False)
class PerAgentState(BufferState):
    """A :class:`PerAgentBuffer`'s state: each agent's buffer state, and the draw generator's."""

    per_agent: dict[str, BufferState] = field(default_factory=dict)


class PerAgentBuffer(DataBuffer):
    """One buffer per agent id behind the :class:`DataBuffer` interface trainers use.

    ``len`` is the total held; :meth:`agent_sizes` gives each agent's; ``added_total`` sums the
    agents' (so a trainer's new-sample count works as with one buffer).
    """

    def __init__(
        self,
        make: Callable[[], DataBuffer],
        min_draw_size: int = 1,
        max_agents: int = MAX_AGENTS,
        seed: int = 0,
    ) -> None:
        """Creates the buffer with no agent yet.

        Args:
            make: Makes one agent's (empty) buffer.
            min_draw_size: Samples an agent needs to be drawn from (a trainer's minimum).
            max_agents: Most agents kept apart.
            seed: Seed of the generator that chooses the agent to draw from (saved).

        Raises:
            ValueError: If a number is below 1.
        """
        template = make()
        super().__init__(template.keys, template.max_size)
        if min_draw_size < 1 or max_agents < 1:
            raise ValueError(
                f"min_draw_size and max_agents must be at least 1, got {min_draw_size}, "
                f"{max_agents}"
            )
        self._make = make
        self.kind = type(template).__name__
        self.min_draw_size = min_draw_size
        self.max_agents = max_agents
        self._by_agent: dict[str, DataBuffer] = {}
        self._rng = np.random.default_rng(seed)

    @property
    @override
    def added_total(self) -> int:
        return sum(buffer.added_total for buffer in self._buffers().values())

    @override
    def __len__(self) -> int:
        return sum(len(buffer) for buffer in self._buffers().values())

    @override
    def drawable_size(self) -> int:
        return max((len(buffer) for buffer in self._buffers().values()), default=0)

    def agent_sizes(self) -> dict[str, int]:
        """Samples held per agent id."""
        return {agent: len(buffer) for agent, buffer in self._buffers().items()}

    @override
    def check_sample(self, sample: Mapping[str, Any]) -> dict[str, np.ndarray]:
        # Every agent's samples must fit the first agent's shapes: the models are shared.
        buffers = list(self._buffers().values())
        reference = buffers[0] if buffers else self._make()
        return reference.check_sample(sample)

    @override
    def add(self, sample: Mapping[str, Any]) -> None:
        self.add_for(UNNAMED_AGENT, sample)

    @override
    def check_agent(self, agent_id: str) -> None:
        with self._lock:
            self._check_room(agent_id)

    @override
    def add_for(self, agent_id: str, sample: Mapping[str, Any]) -> None:
        """Adds one sample to ``agent_id``'s buffer (made on its first sample).

        Raises:
            KeyError: If keys are missing or unknown.
            ValueError: If the sample does not fit (see :meth:`check_sample`), or ``agent_id``
                would be one agent more than ``max_agents``.
        """
        checked = self.check_sample(sample)
        with self._lock:
            buffer = self._by_agent.get(agent_id)
            if buffer is None:
                self._check_room(agent_id)
                buffer = self._by_agent[agent_id] = self._make()
        buffer.add(checked)

    @override
    def get_data(self) -> dict[str, np.ndarray]:
        """One agent's samples, oldest first: drawn in proportion to the samples each holds.

        Only agents holding ``min_draw_size`` samples are drawn; if none does, the largest.
        """
        with self._lock:
            sizes = {agent: len(buffer) for agent, buffer in self._by_agent.items()}
            eligible = [agent for agent, size in sizes.items() if size >= self.min_draw_size]
            if not eligible:
                if not sizes or not max(sizes.values()):
                    return self._make().get_data()
                chosen = max(sizes, key=sizes.__getitem__)
            else:
                weights = np.array([sizes[agent] for agent in eligible], dtype=np.float64)
                chosen = eligible[int(self._rng.choice(len(eligible), p=weights / weights.sum()))]
            buffer = self._by_agent[chosen]
        return buffer.get_data()

    @override
    def snapshot(self) -> PerAgentState:
        with self._lock:
            agents = dict(self._by_agent)
            rng = self._rng.bit_generator.state
        states = {agent: buffer.snapshot() for agent, buffer in agents.items()}
        return _state(states, rng)

    @override
    def restore_state(self, state: BufferState) -> None:
        if not isinstance(state, PerAgentState):
            raise BufferStateError(
                f"the state is of one shared {self.kind}, this buffer keeps one per agent"
            )
        self._check_extra(state.extra)
        agents = {}
        for agent, agent_state in state.per_agent.items():
            agents[agent] = self._make()
            agents[agent].restore_state(agent_state)
        with self._lock:
            self._by_agent = agents
            self._rng.bit_generator.state = state.extra["rng"]

    @override
    def save_state(self, directory: Path) -> None:
        agents = self._buffers()
        with self._lock:
            rng = self._rng.bit_generator.state
        directory.mkdir(parents=True, exist_ok=True)
        for index, buffer in enumerate(agents.values()):
            buffer.save_state(directory / "agents" / str(index))
        meta = {
            "format": STATE_FORMAT,
            "type": type(self).__name__,
            "kind": self.kind,
            "keys": list(self.keys),
            "max_size": self.max_size,
            "agents": list(agents),
            "extra": {"rng": rng},
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))

    @override
    def read_state(self, directory: Path) -> PerAgentState:
        meta = read_meta(directory / META_FILE)
        if meta.get("type") != type(self).__name__:
            raise BufferStateError(
                f"{directory}: saved as one shared {meta.get('type')} "
                "(buffer_sharing: shared), this buffer keeps one per agent (per_agent)"
            )
        for name, mine in (
            ("format", STATE_FORMAT),
            ("kind", self.kind),
            ("keys", list(self.keys)),
            ("max_size", self.max_size),
        ):
            if meta.get(name) != mine:
                raise BufferStateError(
                    f"{directory}: saved with {name} {meta.get(name)!r}, this buffer has {mine!r}"
                )
        agents, extra = meta.get("agents"), meta.get("extra")
        if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
            raise BufferStateError(f"{directory / META_FILE} is damaged: agents {agents!r}")
        if len(set(agents)) != len(agents) or len(agents) > self.max_agents:
            raise BufferStateError(
                f"{directory}: {len(agents)} agents saved (repeats or more than {self.max_agents})"
            )
        if not isinstance(extra, dict):
            raise BufferStateError(f"{directory / META_FILE} is damaged: extra is not a mapping")
        self._check_extra(extra)
        states = {}
        reference = None
        for index, agent in enumerate(agents):
            state = self._make().read_state(directory / "agents" / str(index))
            if reference is not None and state.specs != reference:
                raise BufferStateError(
                    f"{directory}: agent {agent!r} holds samples of other shapes"
                )
            reference = reference or state.specs
            states[agent] = state
        return _state(states, extra["rng"])

    @override
    def load_state(self, directory: Path) -> None:
        self.restore_state(self.read_state(directory))

    @override
    def _slot_to_replace(self) -> int | None:
        raise NotImplementedError("a PerAgentBuffer stores nothing itself")

    @override
    def _check_room(self, agent_id: str) -> None:
        if agent_id not in self._by_agent and len(self._by_agent) >= self.max_agents:
            raise ValueError(
                f"agent {agent_id!r} would be agent {len(self._by_agent) + 1}; per-agent "
                f"buffers keep at most {self.max_agents} ({sorted(self._by_agent)})"
            )

    def _buffers(self) -> dict[str, DataBuffer]:
        with self._lock:
            return dict(self._by_agent)

    @staticmethod
    def _check_extra(extra: Mapping[str, Any]) -> None:
        try:
            np.random.default_rng().bit_generator.state = extra["rng"]
        except (KeyError, TypeError, ValueError) as error:
            raise BufferStateError(f"no usable random generator state: {error}") from error


def _state(agents: dict[str, BufferState], rng: Any) -> PerAgentState:
    return PerAgentState(
        specs=None,
        slots={},
        stamps=np.zeros(0, dtype=np.int64),
        added_total=sum(state.added_total for state in agents.values()),
        extra={"rng": rng},
        per_agent=agents,
    )


def arrange_buffers(
    makers: Mapping[str, Callable[[], DataBuffer]],
    sharing: str,
    min_draw_sizes: Mapping[str, int],
    seed: int = 0,
) -> dict[str, DataBuffer]:
    """The learner's buffers: one of each (``shared``) or one of each per agent (``per_agent``).

    Args:
        makers: Makes each (empty) buffer, by name.
        sharing: One of :data:`BUFFER_SHARING`.
        min_draw_sizes: Per buffer name, the samples its trainer needs (per_agent only).
        seed: Seed of the per-agent draws (each buffer gets its own stream).

    Raises:
        ValueError: If ``sharing`` is not one of :data:`BUFFER_SHARING`.
    """
    if sharing not in BUFFER_SHARING:
        raise ValueError(f"buffer_sharing must be one of {BUFFER_SHARING}, got {sharing!r}")
    if sharing == "shared":
        return {name: make() for name, make in makers.items()}
    return {
        name: PerAgentBuffer(make, min_draw_sizes.get(name, 1), seed=seed + index)
        for index, (name, make) in enumerate(makers.items())
    }
