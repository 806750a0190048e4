"""Audio sources and capture: files made by ffmpeg, the sim world's stream, errors, reopening."""

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pamiq_ros.io.audio import (
    AudioCapture,
    AudioChunk,
    AudioFormat,
    AudioSourceError,
    AudioSourceKind,
    AudioSourceSpec,
    AudioWindow,
    PyAvAudioSource,
    SoundcardAudioSource,
    SounddeviceAudioSource,
    decode_samples,
    encode_samples,
    open_audio_source,
    parse_audio_source,
)
from pamiq_ros.io.capture import CaptureState, ReopenBackoff

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def ffmpeg_two_tone_wav(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A stereo WAV from ffmpeg (a tool we did not write): 440 Hz left, 660 Hz right, s16."""
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate={rate}:duration={seconds}",
         "-filter_complex", "[0:a][1:a]amerge=inputs=2", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


def dominant_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1.0 / rate)[int(np.argmax(spectrum))])


def test_sources_parse_by_form():
    assert parse_audio_source("pulse:") == AudioSourceSpec(AudioSourceKind.PULSE, "")
    assert parse_audio_source("pulse:out.monitor").location == "out.monitor"
    assert parse_audio_source("alsa:hw:1,0") == AudioSourceSpec(AudioSourceKind.ALSA, "hw:1,0")
    assert parse_audio_source("http://127.0.0.1:8081/audio.wav").kind is AudioSourceKind.URL
    assert parse_audio_source("sounds/a.wav").kind is AudioSourceKind.FILE
    assert not parse_audio_source("a.wav").is_live and parse_audio_source("pulse:").is_live
    for bad in ("", "  ", "alsa:"):
        with pytest.raises(ValueError):
            parse_audio_source(bad)


def test_formats_are_checked_and_samples_round_trip():
    with pytest.raises(ValueError, match="sample_format"):
        AudioFormat(sample_format="MP3")
    with pytest.raises(ValueError, match="channels"):
        AudioFormat(channels=6)
    assert AudioFormat(16000, 2, "S16LE").bytes_per_frame == 4
    samples = np.array([[0.5, -0.25], [1.0, -1.0], [2.0, 0.0]], dtype=np.float32)
    for sample_format, tolerance in (("S16LE", 1e-4), ("F32LE", 0.0)):
        data = encode_samples(samples, sample_format)
        back = decode_samples(data, sample_format, 2)
        np.testing.assert_allclose(back, np.clip(samples, -1, 1), atol=tolerance)
    assert encode_samples(samples[:1], "S16LE") == bytes.fromhex("004000e0")  # 16384, -8192 LE
    with pytest.raises(ValueError, match="whole frames"):
        decode_samples(b"\x00\x01\x02", "S16LE", 2)


@needs_ffmpeg
def test_a_file_from_ffmpeg_is_resampled_with_its_channels_in_order(tmp_path):
    wav = ffmpeg_two_tone_wav(tmp_path / "tones.wav", seconds=1.0, rate=44100)
    source = PyAvAudioSource(parse_audio_source(str(wav)), AudioFormat(16000, 2), loop=False)
    source.open()
    blocks = []
    while (block := source.read()) is not None:
        blocks.append(block)
    source.close()
    samples = np.concatenate(blocks)
    assert source.finished
    assert samples.dtype == np.float32 and samples.shape == (16000, 2)  # 1 s at 16 kHz exactly
    assert dominant_hz(samples[:, 0], 16000) == pytest.approx(440, abs=2)
    assert dominant_hz(samples[:, 1], 16000) == pytest.approx(660, abs=2)
    assert 0.05 < np.abs(samples).max() <= 1.0


def test_missing_sources_are_clear_errors_that_name_them(tmp_path):
    audio_format = AudioFormat()
    missing = PyAvAudioSource(parse_audio_source(str(tmp_path / "nope.wav")), audio_format)
    with pytest.raises(AudioSourceError, match=r"nope\.wav"):
        missing.open()
    not_audio = tmp_path / "text.wav"
    not_audio.write_text("not a sound")
    with pytest.raises(AudioSourceError, match=r"text\.wav"):
        PyAvAudioSource(parse_audio_source(str(not_audio)), audio_format).open()
    # No sound server and no PortAudio on this machine: the device is named, with the reason.
    pulse = open_audio_source(parse_audio_source("pulse:vrchat.monitor"), audio_format, 1600)
    alsa = open_audio_source(parse_audio_source("alsa:hw:7,0"), audio_format, 1600)
    assert isinstance(pulse, SoundcardAudioSource) and isinstance(alsa, SounddeviceAudioSource)
    for source, name in ((pulse, "vrchat.monitor"), (alsa, "hw:7,0")):
        try:
            source.open()
        except AudioSourceError as error:
            assert name in str(error)
        else:  # a machine with that device: reading works
            assert source.read() is not None
            source.close()


class FakeSource:
    """Blocks of a ramp, a loss after ``lose_after`` blocks, and failures to reopen."""

    def __init__(self, block: int, lose_after: int, failed_opens: int) -> None:
        self.spec = AudioSourceSpec(AudioSourceKind.URL, "fake://ramp")
        self.finished = False
        self.block, self.lose_after, self.failed_opens = block, lose_after, failed_opens
        self.opens = self.open_attempts = self.reads = self.closes = 0
        self.next_value = 0

    def open(self) -> None:
        self.open_attempts += 1
        if self.opens >= 1 and self.failed_opens > 0:
            self.failed_opens -= 1
            raise AudioSourceError("fake://ramp is gone")
        self.opens += 1
        self.reads = 0

    def read(self) -> np.ndarray | None:
        if self.opens == 1 and self.reads >= self.lose_after:
            raise AudioSourceError("fake://ramp lost")
        self.reads += 1
        time.sleep(0.002)
        values = np.arange(self.next_value, self.next_value + self.block, dtype=np.float32)
        self.next_value += self.block
        return np.stack([values, -values], axis=1)

    def close(self) -> None:
        self.closes += 1


def test_capture_cuts_contiguous_chunks_and_reopens_a_lost_source_with_backoff():
    source = FakeSource(block=700, lose_after=5, failed_opens=2)
    chunks: list[AudioChunk] = []
    reports: list[str] = []
    got = threading.Event()

    def on_chunk(chunk: AudioChunk) -> None:
        chunks.append(chunk)
        if chunk.opened_count == 2 and chunk.first_frame >= 3 * 1600:
            got.set()

    capture = AudioCapture(
        source, AudioFormat(16000, 2), 1600, on_chunk, ReopenBackoff(0.01, 0.04),
        lambda level, message: reports.append(f"{level}: {message}"),
    )  # fmt: skip
    capture.start()
    assert got.wait(10.0)
    stats = capture.stats()
    assert capture.stop()
    first_run = [chunk for chunk in chunks if chunk.opened_count == 1]
    # 5 blocks of 700 frames: two whole chunks of 1600; the rest is dropped with the loss.
    assert [chunk.first_frame for chunk in first_run] == [0, 1600]
    ramp = np.concatenate([chunk.samples[:, 0] for chunk in first_run])
    np.testing.assert_array_equal(ramp, np.arange(3200, dtype=np.float32))
    np.testing.assert_array_equal(first_run[1].samples[:, 1], -first_run[1].samples[:, 0])
    second_run = [chunk for chunk in chunks if chunk.opened_count == 2]
    assert [chunk.first_frame for chunk in second_run[:3]] == [0, 1600, 3200]
    assert source.open_attempts == 4 and stats.reopens == 1
    assert stats.state is CaptureState.STREAMING and capture.stats().state is CaptureState.STOPPED
    assert any("lost; reopening" in line for line in reports)
    assert sum("is gone; retrying in" in line for line in reports) == 2
    assert source.closes >= 2  # after the loss and on stop


@needs_ffmpeg
def test_a_file_is_paced_at_its_real_rate_with_stamps_a_chunk_apart(tmp_path):
    wav = ffmpeg_two_tone_wav(tmp_path / "tones.wav", seconds=0.5)
    audio_format = AudioFormat(16000, 2)
    source = open_audio_source(parse_audio_source(str(wav)), audio_format, 800, loop=True)
    chunks: list[AudioChunk] = []
    capture = AudioCapture(
        source, audio_format, 800, chunks.append, ReopenBackoff(), lambda *_: None
    )
    started = time.monotonic()
    capture.start()
    time.sleep(1.6)
    capture.stop()
    elapsed = time.monotonic() - started
    # 50 ms chunks over 1.6 s: about 32, never many more (a file is not read as fast as it can).
    assert 24 <= len(chunks) <= elapsed / 0.05 + 1
    stamps = np.array([chunk.captured_at for chunk in chunks])
    np.testing.assert_allclose(np.diff(stamps), 0.05, atol=1e-6)
    assert [chunk.first_frame for chunk in chunks] == [800 * i for i in range(len(chunks))]


def test_the_window_keeps_the_newest_second_refuses_misfits_and_counts_gaps():
    window = AudioWindow(AudioFormat(16000, 2), window_frames=4)
    assert not window.latest().any()  # silence before anything came

    def chunk(values: list[float], first: int) -> None:
        samples = np.array([[v, -v] for v in values], dtype=np.float32)
        window.add(encode_samples(samples, "F32LE"), "F32LE", 16000, 2, first, stamp=10.0)

    chunk([0.1, 0.2, 0.3], first=0)
    np.testing.assert_allclose(window.latest()[:, 0], [0.0, 0.1, 0.2, 0.3])
    chunk([0.4, 0.5], first=3)
    np.testing.assert_allclose(window.latest()[:, 0], [0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(window.latest()[:, 1], [-0.2, -0.3, -0.4, -0.5])
    assert window.gaps == 0 and window.newest_stamp == pytest.approx(10.0 + 2 / 16000)
    chunk([0.6, 0.7, 0.8, 0.9, 1.0], first=9)  # frames 5..8 lost; longer than the window
    np.testing.assert_allclose(window.latest()[:, 0], [0.7, 0.8, 0.9, 1.0])
    assert window.gaps == 1 and window.chunks == 3
    with pytest.raises(ValueError, match="44100 Hz"):
        window.add(b"\x00" * 8, "F32LE", 44100, 2, 14, 0.0)
    with pytest.raises(ValueError, match="whole frames"):
        window.add(b"\x00" * 3, "S16LE", 16000, 2, 14, 0.0)
    np.testing.assert_allclose(window.latest()[:, 0], [0.7, 0.8, 0.9, 1.0])  # nothing lost
