"""Experience with acknowledgements over ROS: the agent's sender and the trainer's receiver.

The agent's :class:`ExperienceSender` numbers each ``Experience`` message (``agent_id``: the
agent node's fully qualified name; ``sequence``), publishes it, and keeps it in an
:class:`~pamiq_ros.core.experience_outbox.ExperienceOutbox` until the trainer acknowledges it
on ``experience/ack`` (``ExperienceAck``); unacknowledged records are sent again while the
trainer is matched. The trainer's :class:`ExperienceReceiver` drops repeats and acknowledges,
per agent, ``ACK_PERIOD_S`` after records arrive. Both use the host node's executor: nothing
here is on the acting path.
"""

import threading
import time
from typing import Any

from pamiq_ros_interfaces.msg import Experience, ExperienceAck
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from pamiq_ros.core.experience_outbox import (
    DEFAULT_BUDGET_BYTES,
    DEFAULT_RESEND_AFTER_S,
    ExperienceOutbox,
    ExperienceReceipts,
    first_sequence,
)

ACK_TOPIC = "experience/ack"
ACK_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    durability=DurabilityPolicy.VOLATILE,
)
ACK_PERIOD_S = 0.2
"""How often the trainer acknowledges what arrived (one message per agent)."""

RESEND_PERIOD_S = 0.25
"""How often the agent looks for records to send again."""


class ExperienceSender:
    """Publishes the agent's records and sends again those the trainer did not acknowledge."""

    def __init__(
        self,
        node: Node,
        publisher: Any,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        resend_after_s: float = DEFAULT_RESEND_AFTER_S,
    ) -> None:
        """Subscribes to acknowledgements and starts the resend timer on ``node``."""
        self.agent_id = node.get_fully_qualified_name()
        self._publisher = publisher
        self._lock = threading.Lock()
        self._outbox: ExperienceOutbox[Any] = ExperienceOutbox(budget_bytes, resend_after_s)
        self._next_sequence = first_sequence()
        node.create_subscription(ExperienceAck, ACK_TOPIC, self._on_ack, ACK_QOS)
        node.create_timer(RESEND_PERIOD_S, self._resend)

    def send(self, message: Any) -> None:
        """Numbers, publishes and keeps one record (any thread)."""
        with self._lock:
            sequence = self._next_sequence
            self._next_sequence += 1
            message.agent_id = self.agent_id
            message.sequence = sequence
            self._outbox.add(sequence, message, len(message.observation.data), time.monotonic())
        self._publisher.publish(message)

    def _on_ack(self, message: Any) -> None:
        if message.agent_id != self.agent_id:
            return  # another agent's (a fleet shares the topic)
        with self._lock:
            self._outbox.acknowledge(list(message.sequences))

    def _resend(self) -> None:
        if self._publisher.get_subscription_count() == 0:
            return  # nobody to send to: the records wait (and age) in the outbox
        with self._lock:
            due = self._outbox.due(time.monotonic())
        for _, message in due:
            self._publisher.publish(message)

    def status(self) -> dict[str, object]:
        """Counts for the agent's status."""
        with self._lock:
            counts = self._outbox.counts()
        return {
            "agent_id": self.agent_id,
            "experience_outbox_sent": counts.sent,
            "experience_resent": counts.resent,
            "experience_acknowledged": counts.acknowledged,
            "experience_outbox_dropped": counts.dropped,
            "experience_unacknowledged": counts.pending,
        }


class ExperienceReceiver:
    """The trainer's side: which records are new, and acknowledgements per agent."""

    def __init__(self, node: Node) -> None:
        """Creates the acknowledgement publisher and its timer on ``node``."""
        self._lock = threading.Lock()
        self._receipts = ExperienceReceipts()
        self._publisher = node.create_publisher(ExperienceAck, ACK_TOPIC, ACK_QOS)
        node.create_timer(ACK_PERIOD_S, self._acknowledge)

    def is_new(self, message: Experience) -> bool:
        """Notes the record's arrival (acknowledged soon); False for a repeat.

        Records without a sequence (an agent without an outbox, a tool) are always new.
        """
        if not message.agent_id:
            return True
        with self._lock:
            return self._receipts.receive(
                str(message.agent_id), int(message.sequence), int(message.weight_version)
            )

    def _acknowledge(self) -> None:
        with self._lock:
            taken = self._receipts.take_acknowledgements()
        for agent_id, sequences in taken.items():
            self._publisher.publish(ExperienceAck(agent_id=agent_id, sequences=sequences))

    def per_agent(self) -> dict[str, dict[str, int]]:
        """Per agent: records received, repeats dropped, the weight version it acts with."""
        with self._lock:
            return self._receipts.figures()
