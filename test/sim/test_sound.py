"""Positional sound: loudness by distance and direction, distinct timbres, seamless blocks."""

import numpy as np
import pytest

from pamiq_ros.sim.sound import (
    BEHIND_GAIN,
    Emitter,
    SoundRenderer,
    SoundSnapshot,
    spatial_gains,
    world_emitters,
)
from pamiq_ros.sim.world import Pose, World

RATE = 16000


def dominant_hz(signal: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1.0 / RATE)[int(np.argmax(spectrum))])


def test_loudness_follows_distance_and_direction():
    facing_x = Pose(0.0, 0.0, 0.0)
    left, right = spatial_gains(facing_x, (0.0, 3.0))  # straight to the left
    assert left > 0.35 and right == pytest.approx(0.0, abs=1e-9)
    left, right = spatial_gains(facing_x, (0.0, -3.0))
    assert right > 0.35 and left == pytest.approx(0.0, abs=1e-9)
    ahead = spatial_gains(facing_x, (3.0, 0.0))
    assert ahead[0] == pytest.approx(ahead[1])
    far = spatial_gains(facing_x, (6.0, 0.0))
    assert far[0] == pytest.approx(ahead[0] / 2)  # 1/distance beyond the reference
    behind = spatial_gains(facing_x, (-3.0, 0.0))
    assert behind[0] == pytest.approx(BEHIND_GAIN * ahead[0])
    # Turning the head turns the sound: facing +y, the source at +x is on the right.
    turned = spatial_gains(Pose(0.0, 0.0, np.pi / 2), (3.0, 0.0))
    assert turned[1] > 0.35 and turned[0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("timbre", "hz"), [("hum", 110), ("chime", 880), ("whistle", 1300)])
def test_timbres_are_distinct(timbre, hz):
    snapshot = SoundSnapshot(Pose(), (Emitter(timbre, (1.0, 0.0)),))
    samples = SoundRenderer(RATE).render(0, RATE, snapshot)
    assert dominant_hz(samples[:, 0]) == pytest.approx(hz, rel=0.05)


def test_blocks_join_without_a_seam_and_the_world_is_heard_where_the_avatar_is():
    snapshot = SoundSnapshot(Pose(-2.0, 0.0, 0.0), world_emitters(World()))
    whole = SoundRenderer(RATE).render(0, 3200, snapshot)
    renderer = SoundRenderer(RATE)
    pieces = np.concatenate(
        [renderer.render(0, 1000, snapshot), renderer.render(1000, 2200, snapshot)]
    )
    np.testing.assert_allclose(pieces, whole, atol=1e-6)
    assert whole.dtype == np.float32 and whole.shape == (3200, 2) and np.abs(whole).max() <= 1.0
    near_hum = np.sqrt(np.mean(whole**2))
    far = SoundRenderer(RATE).render(
        0, 3200, SoundSnapshot(Pose(-9.0, -7.0, 0.0), snapshot.emitters)
    )
    assert near_hum > 1.5 * np.sqrt(np.mean(far**2))


def test_a_one_shot_plays_only_from_its_start():
    chirp = Emitter("use", (1.0, 0.0), started_at=0.5)
    samples = SoundRenderer(RATE).render(0, RATE, SoundSnapshot(Pose(), (chirp,)))
    assert np.abs(samples[: RATE // 2 - 1]).max() == 0.0
    assert np.abs(samples[RATE // 2 : RATE // 2 + 3200]).max() > 0.1
    assert np.abs(samples[int(0.95 * RATE) :]).max() == 0.0  # it lasts USE_SOUND_S (0.4 s)
