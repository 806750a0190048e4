"""The level of a capture (camera, audio) from its state, as both sensors report it."""

import pytest

from pamiq_ros.core.health import ERROR, OK, WARN, Problems
from pamiq_ros.io.capture import CaptureState
from pamiq_ros.nodes._diagnostics import check_capture


@pytest.mark.parametrize(
    ("state", "level", "streaming", "summary"),
    [
        (CaptureState.STREAMING, OK, True, "fine"),
        (CaptureState.CONNECTING, ERROR, False, "no such device"),
        (
            CaptureState.REOPENING,
            WARN,
            False,
            "audio source lost; reopening (attempt 3): no such device",
        ),
        (CaptureState.FINISHED, WARN, False, "audio source finished (loop is false)"),
        (CaptureState.STOPPED, WARN, False, "capture stopped"),
    ],
)
def test_a_capture_that_is_not_streaming_is_a_problem_and_stops_the_rate_checks(
    state, level, streaming, summary
):
    problems = Problems()
    streams = check_capture(problems, state, "no such device", 2, 5, ("audio source", "chunks"))
    assert streams is streaming
    assert (problems.level, problems.summary("fine")) == (level, summary)


def test_a_capture_opening_without_an_error_yet_says_what_it_opens():
    problems = Problems()
    check_capture(problems, CaptureState.CONNECTING, "", 0, 0, ("video source", "frames"))
    assert (problems.level, problems.summary("")) == (ERROR, "opening the video source")


def test_a_streaming_capture_that_brought_nothing_new_warns_and_skips_the_rate_check():
    problems = Problems()
    assert not check_capture(problems, CaptureState.STREAMING, "", 0, 0, ("audio source", "chunks"))
    assert (problems.level, problems.summary("")) == (WARN, "no new chunks since the last status")
