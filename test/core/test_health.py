"""Levels from measured figures: rates under 90 %, grown counters, silent peers, budgets."""

import math

import pytest

from pamiq_ros.core.health import (
    ERROR,
    OK,
    WARN,
    NewCount,
    Problems,
    RecentRate,
    Silence,
    check_budget,
    check_grown,
    check_rate,
    check_weights_silence,
)


def test_a_rate_under_90_percent_of_its_target_warns_and_an_unmeasured_one_does_not():
    for measured, level in ((9.1, OK), (8.9, WARN), (2.1, WARN), (math.nan, OK)):
        problems = Problems()
        check_rate(problems, measured, 10.0, "stepping")
        assert problems.level == level, measured
    problems = Problems()
    check_rate(problems, 2.1, 10.0, "stepping")
    assert problems.summary("fine") == "stepping at 2.1 Hz, under 90 % of 10 Hz"


def test_the_worst_problem_sets_the_level_and_every_reason_is_told():
    problems = Problems()
    assert problems.summary("all well") == "all well"
    problems.add(WARN, "a")
    problems.add(ERROR, "b")
    problems.add(WARN, "c")
    assert problems.level == ERROR
    assert problems.summary("all well") == "a; b; c"


def test_silence_warns_then_errs_and_counts_from_the_start_until_first_heard():
    silence = Silence(started=100.0, warn_after_s=1.5, error_after_s=5.0)
    levels = []
    for now in (101.0, 101.6, 105.1):
        problems = Problems()
        silence.check(problems, now, "the trainer")
        levels.append(problems.level)
    assert levels == [OK, WARN, ERROR]
    silence.heard(105.2)
    problems = Problems()
    silence.check(problems, 106.0, "the trainer")
    assert problems.level == OK and silence.seconds(106.0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="warn_after"):
        silence.set_limits(5.0, 1.0)


def test_new_count_and_recent_rate():
    counter = NewCount()
    assert [counter.since_last(total) for total in (0, 3, 3, 10)] == [0, 3, 0, 7]
    rate = RecentRate(window_s=3.0)
    assert math.isnan(rate.add(0.0, 0))
    assert rate.add(1.0, 10) == pytest.approx(10.0)
    assert rate.add(2.0, 20) == pytest.approx(10.0)
    assert rate.add(5.0, 23) == pytest.approx(1.0)  # from the newest sample 3 s or more old
    rate.reset()
    assert math.isnan(rate.add(6.0, 0))


def test_a_grown_counter_is_a_problem_of_its_level_and_no_growth_is_none():
    problems = Problems()
    check_grown(problems, 0, ERROR, "write error(s)")
    assert (problems.level, problems.reasons) == (OK, [])
    check_grown(problems, 3, ERROR, "write error(s)")
    check_grown(problems, 2, WARN, "OSC message(s) rejected")
    assert problems.level == ERROR
    assert problems.summary("") == (
        "3 write error(s) since the last status; 2 OSC message(s) rejected since the last status"
    )


def test_a_budget_warns_from_90_percent_and_no_budget_never_does():
    for used, level in ((0, OK), (899, OK), (900, WARN), (1000, WARN)):
        problems = Problems()
        check_budget(problems, used, 1000, "the bag")
        assert problems.level == level, used
    problems = Problems()
    check_budget(problems, 10**12, 0, "the bag")
    assert problems.level == OK
    problems = Problems()
    check_budget(problems, 930, 1000, "the bag")
    assert problems.summary("") == "the bag at 93 % of its budget"


def test_weights_silence_warns_only_for_a_live_trainer_that_has_sent_weights_before():
    weights = Silence(0.0, 120.0, math.inf)
    problems = Problems()
    check_weights_silence(problems, weights, 500.0, trainer_alive=True)
    assert problems.level == OK  # never sent: not training yet (or weights off)
    weights.heard(100.0)
    for now, alive, level in ((219.0, True, OK), (221.0, True, WARN), (221.0, False, OK)):
        problems = Problems()
        check_weights_silence(problems, weights, now, trainer_alive=alive)
        assert problems.level == level, (now, alive)
    problems = Problems()
    check_weights_silence(problems, weights, 10_000.0, trainer_alive=True)
    assert problems.level == WARN  # a warning, never an error: the trainer itself is alive
    assert problems.summary("") == "nothing from the trainer's weights for 9900.0 s"
    weights.set_limits(30.0, math.inf)  # weights_warn_after changed at run time
    problems = Problems()
    check_weights_silence(problems, weights, 131.0, trainer_alive=True)
    assert problems.level == WARN
