"""Stack figures: the pure figure helpers, and the latency path over real processes."""

import math
import threading
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from pamiq_ros_interfaces.msg import VRChatInput
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from pamiq_ros.bench.stack_figures import (
    StackFigureOptions,
    counter_rate,
    freshness_of_size,
    launched_pids,
    percentile,
    rss_summary,
)
from test.support.diagnostics import latest
from test.support.processes import wait_until
from test.support.ros_probe import RosProbe


def test_rss_summary_starts_after_warmup_and_fits_the_growth_per_minute() -> None:
    samples = [(float(t), 100.0 + 0.5 * t / 60) for t in range(0, 601, 10)]  # 0.5 MB a minute
    samples[0] = (0.0, 40.0)  # start-up, before warm-up: left out
    summary = rss_summary(samples, warmup_s=30)
    assert summary["start_mb"] == pytest.approx(100.2, abs=0.05)
    assert summary["end_mb"] == pytest.approx(105.0)
    assert summary["slope_mb_per_min"] == pytest.approx(0.5)
    assert summary["growth_mb"] == pytest.approx(4.8, abs=0.05)
    low, high = summary["slope_ci95_mb_per_min"]  # type: ignore[misc]
    assert low == pytest.approx(0.5) and high == pytest.approx(0.5)  # an exact line
    noisy = [(t, mb + (3.0 if i % 2 else -3.0)) for i, (t, mb) in enumerate(samples)]
    low, high = rss_summary(noisy, warmup_s=30)["slope_ci95_mb_per_min"]  # type: ignore[misc]
    assert low < 0.5 < high and high - low > 0.1
    filling = [(float(t), min(100.0 + t / 6, 150.0)) for t in range(0, 601, 10)]  # full at 300 s
    summary = rss_summary(filling, warmup_s=30)
    assert summary["slope_mb_per_min"] > 3.0  # type: ignore[operator]
    assert summary["slope_second_half_mb_per_min"] == pytest.approx(0.0, abs=1e-9)
    assert rss_summary([(1.0, 5.0)], warmup_s=30)["start_mb"] is None
    assert rss_summary([(40.0, 5.0)], warmup_s=30)["slope_mb_per_min"] is None


def test_launched_pids_keep_the_newest_process_of_each_node() -> None:
    log = (
        "[launch] started sim_world (pid 11)\n[agent] [INFO] stepping\n"
        "[launch] started agent (pid 12)\n[launch] agent died; restarted agent (pid 13)\n"
    )
    assert launched_pids(log) == {"sim_world": 11, "agent": 13}


def test_counter_rate_uses_reports_after_warmup_only() -> None:
    points = [(1.0, 0.0), (10.0, 100.0), (12.0, 140.0), (20.0, 300.0)]
    assert counter_rate(points, warmup_s=5) == pytest.approx(20.0)
    assert counter_rate(points[:2], warmup_s=5) is None


def test_percentile_and_freshness_combine_ready_time_and_swap_wait() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert math.isnan(percentile([], 0.99))
    case = {"parameters": 10_000_000, "megabytes": 40.0, "transport": "shm", "repeats": 5,
            "ready_p50_ms": 30.0, "ready_max_ms": 45.0}  # fmt: skip
    fresh = freshness_of_size(case, rate_hz=10.0)
    assert (fresh["acting_p50_ms"], fresh["acting_max_ms"]) == (80.0, 145.0)


def test_options_refuse_a_warmup_longer_than_a_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="warmup_seconds"):
        StackFigureOptions(out_dir=tmp_path, stack_seconds=20, warmup_seconds=30)
    with pytest.raises(ValueError, match="throughput_fps must be positive"):
        StackFigureOptions(out_dir=tmp_path, throughput_fps=0)


@pytest.mark.e2e
def test_stamped_frames_are_answered_over_osc_and_timed_by_the_world(
    spawn_node, probe: RosProbe, free_udp_port, free_tcp_port
) -> None:
    """World (stamp_frames) -> camera (stamp_from_frame) -> a stand-in agent -> actuator
    (tag_answers) -> world: the world times answers to its own frames, none unmatched."""
    osc_port, video_port = free_udp_port(), free_tcp_port()
    world = spawn_node(
        "sim_world",
        {"osc_port": osc_port, "video_port": video_port, "stamp_frames": True,
         "report_period": 1.0},
    )  # fmt: skip
    world.wait_for_output("video stream at")
    spawn_node(
        "camera_sensor",
        {"source": f"http://127.0.0.1:{video_port}/stream.mjpg", "stamp_from_frame": True,
         "report_period": 1.0},
    )  # fmt: skip
    spawn_node("osc_actuator", {"port": osc_port, "tag_answers": True})
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 50)
    images = probe.subscribe(Image, "camera/image_raw", qos_profile_sensor_data)
    answers = probe.publisher(VRChatInput, "vrchat_input")
    answered = threading.Lock()
    done = [0]

    def act() -> None:  # answers every new frame, stamped like the agent does
        with answered:
            received = images.messages
            for image in received[done[0] :]:
                answers.publish(VRChatInput(header=image.header, jump=False, run=False))
            done[0] = len(received)

    probe.call_periodically(0.05, act)

    def timed() -> int:
        figures = latest(diagnostics, "sim_world")
        return int(figures.get("answers_timed", "0"))

    assert wait_until(lambda: timed() >= 20, timeout=25), world.output()[-2000:]
    figures = latest(diagnostics, "sim_world")
    assert figures["answers_unmatched"] == "0"
    assert 0.0 < float(figures["answer_latency_p50_ms"]) < 10_000.0
    assert float(latest(diagnostics, "camera_sensor")["stamps_read"]) > 0


def test_age_windows_keep_reports_that_do_not_overlap_after_warmup():
    from pamiq_ros.bench.stack_figures import age_windows

    def report(frames: float, p50: float, p99: float) -> dict[str, float | str]:
        return {
            "frames_received": frames,
            "frame_age_at_receipt_p50_ms": p50,
            "frame_age_at_receipt_p99_ms": p99,
        }

    reports: list[tuple[float, dict[str, float | str]]] = [
        (5.0, report(100.0, 9.0, 90.0)),  # warm-up: dropped
        (31.0, report(600.0, 20.0, 40.0)),
        (33.0, report(640.0, 25.0, 45.0)),  # overlaps the window before it: dropped
        (41.0, report(800.0, 22.0, 60.0)),
        (43.0, {"frames_received": 900.0, "frame_age_at_receipt_p50_ms": "none"}),
    ]
    windows = age_windows(reports, warmup_s=30.0)
    assert windows == [
        {"seconds": 31.0, "p50_ms": 20.0, "p99_ms": 40.0},
        {"seconds": 41.0, "p50_ms": 22.0, "p99_ms": 60.0},
    ]
