"""Answers timed against the frames they answer: first answer only, strangers not timed."""

import math

import pytest

from pamiq_ros.io.frame_stamp import UNIT_NS
from pamiq_ros.sim.answer_latency import AnswerLatency


def test_the_first_answer_to_each_sent_frame_is_timed() -> None:
    latency = AnswerLatency()
    assert math.isnan(latency.figures()["answer_latency_p50_ms"])
    for index in range(100):
        latency.frame_sent(1000 + index, 10.0 + index)
        latency.answer([(1000 + index) * UNIT_NS], 10.0 + index + (index + 1) / 1000)
    latency.answer([1050 * UNIT_NS], 99.0)  # the agent acted on frame 1050 again
    latency.answer([7 * UNIT_NS], 99.0)  # a stamp this world never sent
    figures = latency.figures()
    assert figures["answers"] == 102
    assert figures["answers_timed"] == 100
    assert figures["answers_repeated"] == 1
    assert figures["answers_unmatched"] == 1
    assert figures["answer_latency_p50_ms"] == pytest.approx(50.5)
    assert figures["answer_latency_p99_ms"] == pytest.approx(99.01)
    assert figures["answer_latency_max_ms"] == pytest.approx(100.0)
    assert figures["answer_latency_mean_ms"] == pytest.approx(50.5)


def test_an_answer_that_is_not_one_integer_is_refused_and_counted() -> None:
    latency = AnswerLatency()
    for args in ([], [1.5], [1, 2], ["x"], [True]):
        with pytest.raises(ValueError, match="one int64"):
            latency.answer(args, 1.0)
    assert latency.figures()["answers_malformed"] == 5
    assert latency.figures()["answers"] == 0
