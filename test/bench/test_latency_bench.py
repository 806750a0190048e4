import pytest

from pamiq_ros.bench.latency import codec_times, pipeline_figures, start_stop_summary

WORLD = {"answer_latency_p50_ms": "60.0", "answer_latency_p99_ms": "95.0"}
CAMERA = {"frame_age_p50_ms": "2.0", "frame_age_p99_ms": "6.0"}
AGENT = {
    "frame_age_at_receipt_p50_ms": "12.0", "frame_age_at_receipt_p99_ms": "30.0",
    "frame_age_at_step_p50_ms": "50.0", "frame_age_at_step_p99_ms": "90.0",
    "step_compute_mean_ms": "6.0",
}  # fmt: skip
CODEC = {"render_ms": 1.0, "encode_ms": 1.5, "decode_ms": 1.0}


def test_stages_are_differences_of_the_cumulative_p50s() -> None:
    figures = pipeline_figures(WORLD, CAMERA, AGENT, CODEC)
    cumulative = figures["cumulative_from_frame_sent"]
    assert cumulative["answer"] == {"p50_ms": 60.0, "p99_ms": 95.0}
    assert cumulative["agent_receipt"]["p99_ms"] == 30.0
    stages = figures["stages_p50_ms"]
    assert stages["http_dds_and_fit"] == pytest.approx(12.0 - 1.5 - 1.0 - 2.0)
    assert stages["wait_for_step"] == pytest.approx(38.0)
    assert stages["actuator_and_udp"] == pytest.approx(60.0 - 50.0 - 6.0)
    assert stages["render"] == 1.0


def test_missing_or_text_figures_give_none_not_a_wrong_number() -> None:
    figures = pipeline_figures({}, CAMERA, {**AGENT, "frame_age_at_step_p50_ms": "none"}, CODEC)
    assert figures["cumulative_from_frame_sent"]["answer"]["p50_ms"] is None
    assert figures["stages_p50_ms"]["wait_for_step"] is None
    assert figures["stages_p50_ms"]["actuator_and_udp"] is None


def test_start_and_stop_are_judged_on_the_worst_run_and_a_killed_run_fails() -> None:
    runs = [
        {"start_to_first_action_s": 4.0, "exit_after_ctrl_c_s": 2.0},
        {"start_to_first_action_s": 6.5, "exit_after_ctrl_c_s": 1.0},
    ]
    start, stop = start_stop_summary(runs)["targets"]
    assert (start["value"], start["met"]) == (6.5, False)
    assert (stop["value"], stop["met"]) == (2.0, True)
    killed = start_stop_summary([*runs, {"start_to_first_action_s": 3.0,
                                         "exit_after_ctrl_c_s": None}])  # fmt: skip
    assert killed["targets"][1]["met"] is False
    assert start_stop_summary([])["targets"][0]["met"] is None


def test_codec_times_are_positive_per_call_figures() -> None:
    times = codec_times(64, 48, 90, repeats=3)
    assert set(times) == {"render_ms", "encode_ms", "decode_ms"}
    assert all(value >= 0.0 for value in times.values())
