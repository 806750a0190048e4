from pamiq_ros.core.experience_outbox import (
    ExperienceOutbox,
    ExperienceReceipts,
    first_sequence,
)


def test_unacknowledged_records_come_due_after_the_wait_oldest_first():
    outbox: ExperienceOutbox[str] = ExperienceOutbox(budget_bytes=1000, resend_after_s=1.0)
    for sequence in range(3):
        outbox.add(sequence, f"r{sequence}", 10, now=float(sequence))
    assert outbox.due(now=1.5) == [(0, "r0")]
    outbox.acknowledge([1])
    assert outbox.due(now=2.4) == []  # 0 was resent at 1.5, 2 sent at 2.0
    assert outbox.due(now=3.0) == [(2, "r2"), (0, "r0")]  # a resent record goes to the back
    assert outbox.due(now=3.0) == []
    counts = outbox.counts()
    assert (counts.sent, counts.resent, counts.acknowledged, counts.pending) == (3, 3, 1, 2)


def test_the_budget_drops_the_oldest_and_counts_them():
    outbox: ExperienceOutbox[int] = ExperienceOutbox(budget_bytes=25, resend_after_s=1.0)
    dropped = [outbox.add(sequence, sequence, 10, now=0.0) for sequence in range(4)]
    assert dropped == [0, 0, 1, 1]
    assert [sequence for sequence, _ in outbox.due(now=5.0)] == [2, 3]
    assert outbox.counts().dropped == 2 and outbox.counts().pending_bytes == 20


def test_resends_are_batched_so_a_backlog_does_not_flood_the_link():
    outbox: ExperienceOutbox[int] = ExperienceOutbox(1 << 20, 1.0, resend_batch=4)
    for sequence in range(10):
        outbox.add(sequence, sequence, 1, now=0.0)
    assert [s for s, _ in outbox.due(now=2.0)] == [0, 1, 2, 3]
    assert [s for s, _ in outbox.due(now=2.0)] == [4, 5, 6, 7]


def test_receipts_drop_repeats_and_acknowledge_everything_per_agent():
    receipts = ExperienceReceipts()
    assert receipts.receive("/a", 100) and receipts.receive("/a", 102)
    assert receipts.receive("/b", 7)
    assert not receipts.receive("/a", 100)  # a resend whose first copy arrived
    assert receipts.receive("/a", 101)
    assert not receipts.receive("/a", 102)
    assert receipts.take_acknowledgements() == {"/a": [100, 102, 100, 101, 102], "/b": [7]}
    assert receipts.take_acknowledgements() == {}
    assert receipts.figures()["/a"] == {"received": 3, "repeats": 2, "weight_version": 0}
    assert receipts.figures()["/b"]["received"] == 1


def test_records_resent_after_newer_ones_arrived_are_still_new():
    receipts = ExperienceReceipts(window=3)
    assert receipts.receive("/a", 60)  # sent live once the trainer matched
    assert receipts.receive("/a", 58) and receipts.receive("/a", 59)  # sent before: resent
    assert not receipts.receive("/a", 58)
    for sequence in range(61, 70):
        assert receipts.receive("/a", sequence)
    assert not receipts.receive("/a", 60)  # out of the window: taken for a repeat


def test_a_restarted_agent_numbers_above_what_it_sent_before():
    before = first_sequence()
    assert first_sequence() >= before and before > 1_600_000_000 * 10**6


def test_each_agent_reports_the_weights_its_newest_record_acted_with():
    receipts = ExperienceReceipts()
    receipts.receive("/a", 5, weight_version=7)
    receipts.receive("/a", 4, weight_version=6)  # an older record, resent late
    receipts.receive("/b", 1, weight_version=2)
    assert receipts.figures()["/a"]["weight_version"] == 7
    assert receipts.figures()["/b"]["weight_version"] == 2
