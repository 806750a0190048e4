"""End-to-end: the audio_sensor node process reading an ffmpeg file and the sim world's stream."""

import shutil
import time

import numpy as np
import pytest
from pamiq_ros_interfaces.msg import AudioChunk
from rclpy.qos import qos_profile_sensor_data

from pamiq_ros.io.audio import decode_samples
from pamiq_ros.sim.audio_server import AudioStreamServer
from pamiq_ros.sim.sound import SoundSnapshot, world_emitters
from pamiq_ros.sim.world import World
from test.io.test_audio import dominant_hz, ffmpeg_two_tone_wav

pytestmark = pytest.mark.e2e

DRIFT_SECONDS = 9.0


def stamp_s(message: AudioChunk) -> float:
    return message.header.stamp.sec + message.header.stamp.nanosec * 1e-9


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_a_file_from_ffmpeg_arrives_resampled_in_format_and_in_order(spawn_node, probe, tmp_path):
    wav = ffmpeg_two_tone_wav(tmp_path / "tones.wav", seconds=2.0, rate=44100)
    chunks = probe.subscribe(AudioChunk, "audio/chunk", qos_profile_sensor_data)
    spawn_node("audio_sensor", {"source": str(wav), "chunk_ms": 100.0, "sample_format": "F32LE"})
    messages = chunks.wait_for(12, timeout=20.0)
    for message in messages:
        assert (message.sample_rate, message.channels, message.sample_format) == (16000, 2, "F32LE")
        assert message.frames == 1600 and len(message.data) == 1600 * 2 * 4
        assert message.header.frame_id == "audio"
    firsts = [message.first_frame for message in messages]
    assert firsts == list(range(firsts[0], firsts[0] + 1600 * len(firsts), 1600))
    samples = np.concatenate([decode_samples(bytes(m.data), "F32LE", 2) for m in messages])
    assert dominant_hz(samples[:, 0], 16000) == pytest.approx(440, abs=3)  # left stays left
    assert dominant_hz(samples[:, 1], 16000) == pytest.approx(660, abs=3)
    stamps = np.array([stamp_s(message) for message in messages])
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=2e-3)  # played at its real rate


def test_the_sim_worlds_stream_arrives_at_its_rate_without_drift(spawn_node, probe):
    world = World()
    server = AudioStreamServer(lambda: SoundSnapshot(world.pose, world_emitters(world)), port=0)
    server.start()
    try:
        chunks = probe.subscribe(AudioChunk, "audio/chunk", qos_profile_sensor_data)
        spawn_node("audio_sensor", {"source": server.url, "chunk_ms": 50.0})
        chunks.wait_for(1, timeout=20.0)
        time.sleep(DRIFT_SECONDS)
        timed = chunks.timed
    finally:
        server.close()
    # Leave out the opening second (the stream's prebuffer and the probe's backlog come in a burst).
    settled = [(at, m) for at, m in timed if at - timed[0][0] > 1.0]
    assert len(settled) >= 0.8 * (DRIFT_SECONDS - 1.0) / 0.05
    for _, message in settled:
        assert (message.sample_rate, message.channels, message.sample_format) == (16000, 2, "S16LE")
        assert len(message.data) == message.frames * 4 == 800 * 4
    frames = np.array([m.first_frame for _, m in settled], dtype=np.float64)
    assert np.all(np.diff(frames) == 800), "no chunk lost or repeated on loopback"
    sample_clock = (frames - frames[0]) / 16000.0
    arrivals = np.array([at for at, _ in settled]) - settled[0][0]
    stamps = np.array([stamp_s(m) for _, m in settled]) - stamp_s(settled[0][1])
    # The sample clock against the receiver's clock and against the stamps: a linear fit's end
    # point, so single late chunks do not count, only a steady gain or loss.
    for clock in (arrivals, stamps):
        slope, _intercept = np.polyfit(sample_clock, clock, 1)
        drift_s = (slope - 1.0) * sample_clock[-1]
        assert abs(drift_s) < 0.02, f"drift {drift_s * 1e3:.1f} ms over {sample_clock[-1]:.1f} s"
    samples = np.concatenate([decode_samples(bytes(m.data), "S16LE", 2) for _, m in settled])
    assert samples.std() > 0.01, "the world is not silent"
