"""End-to-end delivery of experience over bad links: the agent's outbox, the trainer's receipts.

DDS's reliable QoS repairs losses only between matched endpoints that stay matched: records
published before the trainer's subscription matched, or while the link was down long enough
for the writer's history to roll over, were lost (80-143 per run before this). So each agent
numbers its records (``sequence``, under its ``agent_id``) and keeps every record the trainer
has not acknowledged in a bounded :class:`ExperienceOutbox`, sending it again after
``resend_after_s``; the trainer's :class:`ExperienceReceipts` drops repeats and acknowledges
what arrived, per agent. When the outbox is over its byte budget, the oldest unacknowledged
records are dropped and counted. No ROS import here: the nodes wire these to topics.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Message = TypeVar("Message")

DEFAULT_BUDGET_BYTES = 64 << 20
"""Bytes of unacknowledged records an agent keeps (about 1100 records of 160x120 frames)."""

DEFAULT_RESEND_AFTER_S = 2.0
"""A record unacknowledged this long is sent again (DDS repairs ordinary losses sooner)."""

RESEND_BATCH = 25
"""Most records sent again per :meth:`ExperienceOutbox.due` call, so a backlog does not flood
a link that just came back (the nodes call it 4 times a second: 100 records/s)."""

RECEIPT_WINDOW = 1 << 16
"""Sequences below an agent's newest the trainer remembers (older ones count as repeats)."""


def first_sequence() -> int:
    """Where a new agent process starts numbering: microseconds since the epoch.

    A restarted agent keeps its identity and numbers on above everything it sent before, so
    the trainer does not take its new records for repeats.
    """
    return time.time_ns() // 1000


@dataclass
class OutboxCounts:
    """What an outbox did so far.

    Attributes:
        sent: Records handed to it (first sends).
        resent: Sends again of unacknowledged records.
        acknowledged: Records the trainer acknowledged.
        dropped: Unacknowledged records dropped to stay within the budget.
        pending: Records waiting for their acknowledgement now.
        pending_bytes: Their size.
    """

    sent: int = 0
    resent: int = 0
    acknowledged: int = 0
    dropped: int = 0
    pending: int = 0
    pending_bytes: int = 0


class ExperienceOutbox(Generic[Message]):
    """Unacknowledged records of one agent, oldest first, within a byte budget. Not thread-safe."""

    def __init__(
        self,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        resend_after_s: float = DEFAULT_RESEND_AFTER_S,
        resend_batch: int = RESEND_BATCH,
    ) -> None:
        """Creates an empty outbox.

        Args:
            budget_bytes: Most bytes of records kept for resending.
            resend_after_s: Seconds after a send before a record is due again.
            resend_batch: Most records :meth:`due` returns at once.
        """
        if budget_bytes <= 0 or resend_after_s <= 0 or resend_batch <= 0:
            raise ValueError("budget_bytes, resend_after_s and resend_batch must be positive")
        self.budget_bytes = budget_bytes
        self.resend_after_s = resend_after_s
        self.resend_batch = resend_batch
        self._pending: OrderedDict[int, tuple[Message, int, float]] = OrderedDict()
        self._counts = OutboxCounts()

    def add(self, sequence: int, message: Message, size_bytes: int, now: float) -> int:
        """Keeps a record just sent until it is acknowledged; returns how many were dropped."""
        self._pending[sequence] = (message, size_bytes, now)
        self._counts.sent += 1
        self._counts.pending_bytes += size_bytes
        dropped = 0
        while self._counts.pending_bytes > self.budget_bytes and len(self._pending) > 1:
            _, (_, size, _) = self._pending.popitem(last=False)
            self._counts.pending_bytes -= size
            dropped += 1
        self._counts.dropped += dropped
        return dropped

    def acknowledge(self, sequences: "list[int] | tuple[int, ...]") -> int:
        """Forgets the acknowledged records; returns how many were pending."""
        done = 0
        for sequence in sequences:
            entry = self._pending.pop(sequence, None)
            if entry is not None:
                self._counts.pending_bytes -= entry[1]
                done += 1
        self._counts.acknowledged += done
        return done

    def due(self, now: float) -> list[tuple[int, Message]]:
        """Up to ``resend_batch`` records to send again now, oldest first (marked as resent)."""
        chosen: list[tuple[int, Message]] = []
        for sequence, (message, _, sent_at) in self._pending.items():
            if len(chosen) == self.resend_batch:
                break
            if now - sent_at >= self.resend_after_s:
                chosen.append((sequence, message))
        for sequence, message in chosen:
            size = self._pending[sequence][1]
            self._pending[sequence] = (message, size, now)
            self._pending.move_to_end(sequence)
        self._counts.resent += len(chosen)
        return chosen

    def counts(self) -> OutboxCounts:
        """A copy of the counts, with the pending figures of now."""
        return OutboxCounts(
            sent=self._counts.sent,
            resent=self._counts.resent,
            acknowledged=self._counts.acknowledged,
            dropped=self._counts.dropped,
            pending=len(self._pending),
            pending_bytes=self._counts.pending_bytes,
        )


@dataclass
class AgentReceipts:
    """What the trainer received from one agent.

    Attributes:
        received: New records (repeats not counted).
        repeats: Records that arrived again (a resend whose first copy did arrive).
        newest: The highest sequence that arrived.
        weight_version: The weight version the agent's newest record acted with.
        seen: Sequences that arrived, down to ``newest`` less the window.
        unacknowledged: Arrived since the last acknowledgement was sent.
    """

    received: int = 0
    repeats: int = 0
    newest: int = -1
    weight_version: int = 0
    seen: set[int] = field(default_factory=set)
    unacknowledged: list[int] = field(default_factory=list)


class ExperienceReceipts:
    """The trainer's side: repeats dropped, acknowledgements gathered per agent; not thread-safe.

    Records arrive in any order (resends of records sent before the trainer matched come after
    newer ones), so each sequence is remembered, within ``window`` below the newest; an older one
    is taken for a repeat (the agent's outbox gives up long before).
    """

    def __init__(self, window: int = RECEIPT_WINDOW) -> None:
        """Creates empty receipts; ``window``: sequences remembered below an agent's newest."""
        self.window = window
        self._agents: dict[str, AgentReceipts] = {}

    def receive(self, agent_id: str, sequence: int, weight_version: int = 0) -> bool:
        """Notes an arrival (to be acknowledged); returns whether the record is new.

        ``weight_version``: what the record acted with (the newest record's is kept).
        """
        agent = self._agents.setdefault(agent_id, AgentReceipts())
        agent.unacknowledged.append(sequence)
        if sequence in agent.seen or (agent.newest >= 0 and sequence <= agent.newest - self.window):
            agent.repeats += 1
            return False
        agent.received += 1
        agent.seen.add(sequence)
        if sequence > agent.newest:
            agent.weight_version = weight_version
        agent.newest = max(agent.newest, sequence)
        if len(agent.seen) > 2 * self.window:  # forget what fell out of the window
            floor = agent.newest - self.window
            agent.seen = {seen for seen in agent.seen if seen > floor}
        return True

    def take_acknowledgements(self) -> dict[str, list[int]]:
        """Per agent, the sequences arrived since the last call (then forgotten)."""
        taken: dict[str, list[int]] = {}
        for agent_id, agent in self._agents.items():
            if agent.unacknowledged:
                taken[agent_id] = agent.unacknowledged
                agent.unacknowledged = []
        return taken

    def figures(self) -> dict[str, dict[str, int]]:
        """Per agent: records received, repeats, and the weight version it last acted with."""
        return {
            agent_id: {
                "received": agent.received,
                "repeats": agent.repeats,
                "weight_version": agent.weight_version,
            }
            for agent_id, agent in self._agents.items()
        }
