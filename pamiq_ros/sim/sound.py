"""Positional stereo sound for the simulated world: what the avatar hears where it stands.

No ROS here. Sources with distinct timbres sit at places (a hum at the centre, a chime in the
blue room, a buzz in the violet room) and ride on the moving pillars (a whistle, an engine, a
tick, a warble); a "use" (a mouse click on the thing in front) plays a short rising chirp where
that thing is. Each source is heard through :func:`spatial_gains`: louder when near (inverse
distance beyond ``REFERENCE_DISTANCE_M``), panned by direction with equal power (a source on
the left is louder in the left channel), and a little quieter behind than in front.

Every source's waveform is a function of the absolute sample index, so blocks rendered one
after another join without clicks; gains move linearly across a block from the previous
block's values for the same reason.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pamiq_ros.sim.world import Point, Pose, World

Samples = npt.NDArray[np.float32]
Waveform = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]
"""Mono signal in [-1, 1] at the given times (s)."""

REFERENCE_DISTANCE_M = 1.5
"""Within this distance a source is at full loudness; beyond it, loudness falls as 1/distance."""
BEHIND_GAIN = 0.6
"""Loudness of a source straight behind, relative to one straight ahead (the head's shadow)."""
USE_SOUND_S = 0.4
"""Length of the chirp a use plays."""

_NOISE = np.random.default_rng(12345).uniform(-1.0, 1.0, 1 << 16)


def _noise(t: npt.NDArray[np.float64], rate: float = 16000.0) -> npt.NDArray[np.float64]:
    """Deterministic white noise: the same time gives the same value in every block."""
    return _NOISE[(np.floor(t * rate).astype(np.int64)) % len(_NOISE)]


def _hum(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    tremolo = 0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t)
    return tremolo * (0.7 * np.sin(2 * np.pi * 110 * t) + 0.3 * np.sin(2 * np.pi * 220 * t))


def _chime(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    since_strike = np.mod(t, 1.5)
    return np.exp(-4.0 * since_strike) * np.sin(2 * np.pi * 880 * t)


def _buzz(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    saw = 2.0 * np.mod(150.0 * t, 1.0) - 1.0
    return 0.6 * saw * (np.mod(t, 0.8) < 0.5)


def _whistle(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    vibrato_phase = 1300 * t + (40.0 / (2 * np.pi * 5.0)) * np.sin(2 * np.pi * 5.0 * t)
    return 0.8 * np.sin(2 * np.pi * vibrato_phase)


def _engine(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    throb = 0.5 + 0.5 * np.sin(2 * np.pi * 9.0 * t)
    return 0.7 * throb * _noise(t)


def _tick(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    since_tick = np.mod(t, 0.25)
    return np.where(since_tick < 0.01, _noise(t), 0.0)


def _warble(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    square = np.sign(np.sin(2 * np.pi * 330 * t))
    return 0.4 * square * (np.mod(t, 0.4) < 0.2)


def _use_chirp(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A rising chirp (600 to 1800 Hz) for ``USE_SOUND_S`` from t = 0; silent outside it."""
    inside = (t >= 0.0) & (t < USE_SOUND_S)
    sweep = 1200.0 / USE_SOUND_S
    phase = 600.0 * t + 0.5 * sweep * t * t
    return np.where(inside, np.sin(2 * np.pi * phase), 0.0)


TIMBRES: dict[str, Waveform] = {
    "hum": _hum,
    "chime": _chime,
    "buzz": _buzz,
    "whistle": _whistle,
    "engine": _engine,
    "tick": _tick,
    "warble": _warble,
    "use": _use_chirp,
}
"""Every timbre by name; "use" is the one-shot of a use, the rest play continuously."""

PLACED_SOURCES: tuple[tuple[str, Point], ...] = (
    ("hum", (0.0, 0.0)),  # the yellow diagonal centre
    ("chime", (6.5, 5.0)),  # the blue checker room
    ("buzz", (7.5, -5.5)),  # the violet room
)
"""Sources at fixed places of the default layout."""
PILLAR_TIMBRES: tuple[str, ...] = ("whistle", "engine", "warble", "tick")
"""The timbre riding on each moving pillar, in the layout's order (cycled if there are more)."""


@dataclass(frozen=True)
class Emitter:
    """A sound source at a position.

    ``started_at`` marks a one-shot sound: when it started, on the renderer's origin clock
    (monotonic time for a live stream); None for a continuous one.
    """

    timbre: str
    position: Point
    loudness: float = 1.0
    started_at: float | None = None


@dataclass(frozen=True)
class SoundSnapshot:
    """What is heard now: the listener's pose and every emitter."""

    listener: Pose
    emitters: tuple[Emitter, ...] = field(default_factory=tuple)


def world_emitters(world: World) -> tuple[Emitter, ...]:
    """The default world's continuous sources: the placed ones and one on each pillar."""
    placed = tuple(Emitter(timbre, position) for timbre, position in PLACED_SOURCES)
    riding = tuple(
        Emitter(PILLAR_TIMBRES[index % len(PILLAR_TIMBRES)], position)
        for index, position in enumerate(world.pillar_positions())
    )
    return placed + riding


def spatial_gains(listener: Pose, position: Point) -> tuple[float, float]:
    """Left and right gains of a source at ``position`` heard by ``listener``.

    Loudness is 1 within ``REFERENCE_DISTANCE_M`` and falls as 1/distance beyond; the
    direction pans it with equal power (a source on the left, at +90 degrees, is all left);
    straight behind it is ``BEHIND_GAIN`` as loud as straight ahead.
    """
    dx, dy = position[0] - listener.x, position[1] - listener.y
    distance = math.hypot(dx, dy)
    gain = REFERENCE_DISTANCE_M / max(distance, REFERENCE_DISTANCE_M)
    if distance < 1e-6:
        return gain * math.sqrt(0.5), gain * math.sqrt(0.5)
    azimuth = math.atan2(dy, dx) - listener.yaw  # counter-clockwise: positive is to the left
    gain *= BEHIND_GAIN + (1.0 - BEHIND_GAIN) * 0.5 * (1.0 + math.cos(azimuth))
    pan = math.sin(azimuth)
    return gain * math.sqrt(0.5 * (1.0 + pan)), gain * math.sqrt(0.5 * (1.0 - pan))


class SoundRenderer:
    """Renders consecutive stereo blocks of a changing :class:`SoundSnapshot`.

    Args:
        sample_rate: Frames per second.
        master_gain: Scale of the mix, so that several near sources stay inside [-1, 1].
    """

    def __init__(self, sample_rate: int, master_gain: float = 0.25) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.master_gain = master_gain
        self._previous: dict[tuple[str, int], tuple[float, float]] = {}

    def render(
        self, first_frame: int, frames: int, snapshot: SoundSnapshot, origin: float = 0.0
    ) -> Samples:
        """Frames ``first_frame`` .. ``first_frame + frames - 1`` (float32, shape (frames, 2)).

        ``origin`` is the time (on the clock of the emitters' ``started_at``) of frame 0.
        """
        times = (first_frame + np.arange(frames, dtype=np.float64)) / self.sample_rate
        ramp = (np.arange(frames, dtype=np.float64) + 1.0) / max(frames, 1)
        mix = np.zeros((frames, 2), dtype=np.float64)
        gains_now: dict[tuple[str, int], tuple[float, float]] = {}
        counts: dict[str, int] = {}
        for emitter in snapshot.emitters:
            waveform = TIMBRES[emitter.timbre]
            local = times if emitter.started_at is None else times - (emitter.started_at - origin)
            signal = waveform(local) * emitter.loudness
            left, right = spatial_gains(snapshot.listener, emitter.position)
            # Keyed by timbre and its occurrence, so a moving source keeps its previous gains.
            occurrence = counts.get(emitter.timbre, 0)
            counts[emitter.timbre] = occurrence + 1
            key = (emitter.timbre, occurrence)
            start_left, start_right = self._previous.get(key, (left, right))
            gains_now[key] = (left, right)
            mix[:, 0] += signal * (start_left + (left - start_left) * ramp)
            mix[:, 1] += signal * (start_right + (right - start_right) * ramp)
        self._previous = gains_now
        return np.clip(mix * self.master_gain, -1.0, 1.0).astype(np.float32)


def render_clip(snapshots: Sequence[SoundSnapshot], block_frames: int, sample_rate: int) -> Samples:
    """Renders one block per snapshot, one after another (offline sound, e.g. for training)."""
    renderer = SoundRenderer(sample_rate)
    blocks = [
        renderer.render(index * block_frames, block_frames, snapshot)
        for index, snapshot in enumerate(snapshots)
    ]
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)
