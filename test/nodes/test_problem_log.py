"""Rate-limited problem logging: one line per kind of problem and period, with the count."""

from pamiq_ros.nodes._problem_log import ProblemLog


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, text: str) -> None:
        self.lines.append(text)


def test_a_flood_of_one_kind_logs_once_and_other_kinds_still_log() -> None:
    logger = RecordingLogger()
    problems = ProblemLog(logger, period_s=60.0)  # type: ignore[arg-type]
    for width in range(1, 1001):
        problems.error(f"frame refused: image {width}x24 does not match the expected 160x120")
    problems.error("frame refused: encoding 'bgr9' is not supported")
    problems.error("frame refused: encoding 'xyz' is not supported")
    problems.error("step failed: ValueError: boom")
    assert logger.lines == [
        "frame refused: image 1x24 does not match the expected 160x120",
        "frame refused: encoding 'bgr9' is not supported",
        "step failed: ValueError: boom",
    ]


def test_after_the_period_the_next_line_says_how_many_were_held_back() -> None:
    logger = RecordingLogger()
    problems = ProblemLog(logger, period_s=0.0)  # type: ignore[arg-type]
    problems.error("bad 1")
    problems.error("bad 2")
    assert logger.lines == ["bad 1", "bad 2"]
    held = ProblemLog(logger, period_s=3600.0)  # type: ignore[arg-type]
    held.error("late 1")
    held.error("late 2")
    held._last_logged = {key: at - 7200.0 for key, at in held._last_logged.items()}  # 2 h ago
    held.error("late 3")
    assert logger.lines[-2:] == ["late 1", "late 3 (1 more like it since the last log)"]
