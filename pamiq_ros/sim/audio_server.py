"""Serves the simulated world's sound as a live WAV stream over HTTP, as an internet radio does.

The audio sensor opens ``http://127.0.0.1:8081/audio.wav`` through PyAV (FFmpeg) exactly as it
opens any other stream. Each client gets a WAV header with an open-ended length (``0xFFFFFFFF``,
how FFmpeg writes a WAV it cannot seek back into), then 16-bit little-endian interleaved stereo
frames, rendered from the world's newest :class:`~pamiq_ros.sim.sound.SoundSnapshot` and paced by
the server's sample clock: frame ``n`` is sent when ``n / sample_rate`` seconds have passed since
the stream's start (after ``PREBUFFER_S`` sent at once, so the client's probe starts at once).
Bounds on what clients can cost are the video server's (loopback only by default, a cap on
streams, a timeout on a stalled reader).
"""

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

import numpy as np

from pamiq_ros.sim.sound import SoundRenderer, SoundSnapshot
from pamiq_ros.sim.video_server import (
    CLIENT_TIMEOUT_S,
    MAX_CONNECTIONS,
    SEND_BUFFER_BYTES,
    _BoundedServer,
)

_logger = logging.getLogger(__name__)

BLOCK_S = 0.02
"""Audio sent per write once the prebuffer is out (s)."""
PREBUFFER_S = 0.1
"""Audio sent at once when a client connects (s)."""
MAX_STREAMS = 4
"""Audio streams served at once; an audio sensor needs one."""
CHANNELS = 2


def wav_stream_header(sample_rate: int, channels: int = CHANNELS) -> bytes:
    """A 44-byte RIFF/WAVE header (16-bit PCM) whose lengths say "unknown, read to the end"."""
    block_align = channels * 2
    byte_rate = sample_rate * block_align
    unknown = struct.pack("<I", 0xFFFFFFFF)
    pcm_format = struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, byte_rate, block_align, 16)
    return b"RIFF" + unknown + b"WAVEfmt " + pcm_format + b"data" + unknown


class AudioStreamServer:
    """An HTTP server streaming the world's sound to each client from the moment it connects.

    Args:
        snapshot: Returns what is heard now (called once per block, from the client threads).
        sample_rate: Frames per second of the stream (VRChat's output is 44.1 kHz).
        host: Address to bind; loopback by default.
        port: TCP port; 0 picks a free one (see :attr:`port`).
        path: URL path of the stream.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        snapshot: Callable[[], SoundSnapshot],
        sample_rate: int = 44100,
        host: str = "127.0.0.1",
        port: int = 8081,
        path: str = "/audio.wav",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.path = path
        self._snapshot = snapshot
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._clients = 0
        self._frames_sent = 0
        self._refused = 0
        self._server = _BoundedServer((host, port), self._handler_class(), MAX_CONNECTIONS)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="audio-stream", daemon=True
        )

    @property
    def port(self) -> int:
        """The TCP port the server is bound to."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL an audio sensor opens."""
        host = self._server.server_address[0]
        return f"http://{host!s}:{self.port}{self.path}"

    @property
    def clients(self) -> int:
        """Streams being served now."""
        with self._lock:
            return self._clients

    @property
    def frames_sent(self) -> int:
        """Frames sent to all clients together."""
        with self._lock:
            return self._frames_sent

    def start(self) -> None:
        """Starts serving in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stops serving and disconnects every client."""
        self._closed.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _admit(self, change: int) -> bool:
        with self._lock:
            if change > 0 and self._clients >= MAX_STREAMS:
                self._refused += 1
                return False
            self._clients += change
            return True

    def _stream_to(self, write: Callable[[bytes], None]) -> None:
        """Writes the header and then frames at the sample clock's pace until the client goes."""
        renderer = SoundRenderer(self.sample_rate)
        write(wav_stream_header(self.sample_rate))
        started = self._clock()
        sent = 0
        prebuffer = round(PREBUFFER_S * self.sample_rate)
        block = round(BLOCK_S * self.sample_rate)
        while not self._closed.is_set():
            due = prebuffer + int((self._clock() - started) * self.sample_rate)
            if due - sent < block:
                self._closed.wait((block - (due - sent)) / self.sample_rate)
                continue
            frames = due - sent
            samples = renderer.render(sent, frames, self._snapshot(), origin=started)
            write(np.round(samples * 32767.0).astype("<i2").tobytes())
            sent += frames
            with self._lock:
                self._frames_sent += frames

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class AudioHandler(BaseHTTPRequestHandler):
            timeout = CLIENT_TIMEOUT_S

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != server.path:
                    self.send_error(HTTPStatus.NOT_FOUND, f"the stream is at {server.path}")
                    return
                if not server._admit(+1):
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "too many audio clients")
                    return
                try:
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()

                    def write(data: bytes) -> None:
                        self.wfile.write(data)
                        self.wfile.flush()

                    with contextlib.suppress(OSError):  # gone, reset or stalled (timeout)
                        server._stream_to(write)
                finally:
                    server._admit(-1)

            def log_message(self, format: str, *args: object) -> None:
                _logger.debug("audio client %s: " + format, self.client_address[0], *args)

        return AudioHandler
