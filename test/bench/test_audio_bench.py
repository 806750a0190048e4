"""The audio benchmark's analysis: latency, drift and losses from known chunk arrivals."""

import pytest

from pamiq_ros.bench.audio import analyse_stream


def test_a_source_running_fast_shows_as_drift_and_gaps_as_lost_chunks():
    rate, chunk = 16000, 800
    rows = []
    for index in range(400):  # 20 s of 50 ms chunks
        if index in (200, 201):
            continue  # two chunks lost
        sample_time = index * chunk / rate
        arrival = 1000.0 + sample_time * (1 - 500e-6)  # 500 ppm fast: arrives ever earlier
        stamp = arrival - chunk / rate - 0.002  # newest frame captured 2 ms before receipt
        rows.append((arrival, stamp, index * chunk, chunk, rate))
    figures = analyse_stream(rows + rows[:10], seconds=20.0)  # duplicates are counted once
    assert figures["chunks_lost"] == 2
    assert figures["latency_p50_ms"] == pytest.approx(2.0, abs=0.01)
    assert figures["receipt_vs_sample_clock"]["drift_ppm"] == pytest.approx(-500, abs=1)
    assert figures["receipt_vs_sample_clock"]["drift_ms"] == pytest.approx(-9.5, abs=0.1)
