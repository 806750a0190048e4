"""Serves the newest frame as an MJPEG-over-HTTP stream, the way an IP camera does.

``cv2.VideoCapture("http://127.0.0.1:8080/stream.mjpg")`` opens it through FFmpeg, just as it
opens an OBS virtual camera's network output or a real IP camera, so the camera node reads
the simulated world with the same code it uses for real video.

Whoever can reach the port is a client (loopback only by default), so the server bounds what
clients can cost: at most ``max_connections`` connections at once (more are closed at once),
at most ``max_clients`` streams (more get 503), and ``client_timeout`` seconds for a client to
send its request or take the next frame (a stalled reader is dropped, not waited on forever).
"""

import contextlib
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

_BOUNDARY = "pamiqframe"
_logger = logging.getLogger(__name__)

MAX_CLIENTS = 8
"""Streams served at once; a camera node needs one."""
MAX_CONNECTIONS = 32
"""Connections open at once (streams, requests being read); more are closed on accept."""
MALFORMED = frozenset(
    {
        HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.REQUEST_URI_TOO_LONG,
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
    }
)  # fmt: skip
"""Answers to requests that are not HTTP the server understands (counted as bad requests)."""
CLIENT_TIMEOUT_S = 5.0
"""Longest wait for a client to send its request, or to take a frame."""
SEND_BUFFER_BYTES = 64 << 10
"""Kernel send buffer per client: small, so a client that stops reading is noticed (its writes
block, then time out) within seconds rather than after megabytes of loopback buffering."""


class _BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server that closes connections beyond a limit instead of threading them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused_connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MjpegStreamServer:
    """An HTTP server that streams the latest frame to every client at a fixed rate.

    Frames are JPEG-encoded once on :meth:`publish` (off the clients' threads), and each
    client is sent the newest encoded frame at ``fps``; a slow client skips frames rather
    than holding others back.

    Args:
        host: Address to bind; loopback by default so nothing is exposed.
        port: TCP port; 0 picks a free one (see :attr:`port`).
        path: URL path of the stream.
        fps: Rate at which each client is sent frames.
        jpeg_quality: JPEG quality, 1 to 100.
        max_clients: Streams served at once.
        max_connections: Connections open at once.
        client_timeout: Seconds a client may take to send its request or take a frame.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/stream.mjpg",
        fps: float = 20.0,
        jpeg_quality: int = 90,
        max_clients: int = MAX_CLIENTS,
        max_connections: int = MAX_CONNECTIONS,
        client_timeout: float = CLIENT_TIMEOUT_S,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 1 <= max_clients <= max_connections or client_timeout <= 0:
            raise ValueError(
                f"need 1 <= max_clients ({max_clients}) <= max_connections ({max_connections}) "
                f"and a positive client_timeout ({client_timeout})"
            )
        self.max_clients = max_clients
        self._client_timeout = client_timeout
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.path = path
        self._period = 1.0 / fps
        self._quality = jpeg_quality
        self._condition = threading.Condition()
        self._jpeg: bytes | None = None
        self._sequence = 0
        self._closed = False
        self._counts_lock = threading.Lock()
        self._clients = 0
        self._frames_sent = 0
        self._refused_clients = 0
        self._bad_requests = 0
        self._server = _BoundedServer((host, port), self._handler_class(), max_connections)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mjpeg", daemon=True
        )

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The TCP port the server is bound to."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL ``cv2.VideoCapture`` opens."""
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def clients(self) -> int:
        """Stream clients connected now."""
        with self._counts_lock:
            return self._clients

    @property
    def frames_sent(self) -> int:
        """Frames sent to all clients together since the start."""
        with self._counts_lock:
            return self._frames_sent

    @property
    def refused(self) -> dict[str, int]:
        """Clients turned away so far: over the stream or connection limit, bad requests."""
        with self._counts_lock:
            return {
                "busy": self._refused_clients,
                "connections": self._server.refused_connections,
                "bad_requests": self._bad_requests,
            }

    def _count(self, clients: int = 0, frames: int = 0) -> None:
        with self._counts_lock:
            self._clients += clients
            self._frames_sent += frames

    def _admit(self) -> bool:
        """Takes a stream slot if one is free."""
        with self._counts_lock:
            if self._clients >= self.max_clients:
                self._refused_clients += 1
                return False
            self._clients += 1
            return True

    def _bad_request(self) -> None:
        with self._counts_lock:
            self._bad_requests += 1

    def start(self) -> None:
        """Starts serving in a background thread."""
        self._thread.start()

    def publish(self, rgb: npt.NDArray[np.uint8]) -> None:
        """Makes ``rgb`` (an ``(H, W, 3)`` RGB uint8 frame) the frame clients receive next."""
        ok, encoded = cv2.imencode(
            ".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self._quality]
        )
        if not ok:
            raise ValueError(f"JPEG encoding failed for a frame of shape {rgb.shape}")
        with self._condition:
            self._jpeg = encoded.tobytes()
            self._sequence += 1
            self._condition.notify_all()

    def close(self) -> None:
        """Stops serving and disconnects every client."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _next_frame(self, after_sequence: int, timeout: float) -> tuple[int, bytes | None]:
        with self._condition:
            self._condition.wait_for(
                lambda: self._closed or self._sequence != after_sequence, timeout=timeout
            )
            if self._closed:
                return after_sequence, None
            return self._sequence, self._jpeg

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class StreamHandler(BaseHTTPRequestHandler):
            timeout = server._client_timeout  # the socket's: request reading and every write

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != server.path:
                    server._bad_request()
                    self.send_error(HTTPStatus.NOT_FOUND, f"the stream is at {server.path}")
                    return
                if not server._admit():
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "too many stream clients")
                    return
                try:
                    self._stream()
                finally:
                    server._count(clients=-1)

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                if code in MALFORMED:
                    server._bad_request()
                with contextlib.suppress(OSError):  # the client may be gone already
                    super().send_error(code, message, explain)

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                sequence = 0
                next_send = time.monotonic()
                while True:
                    sequence, jpeg = server._next_frame(sequence, timeout=1.0)
                    if jpeg is None:
                        if server._closed:
                            return
                        continue
                    part = (
                        f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n"
                    ).encode()
                    try:
                        self.wfile.write(part + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:  # gone, reset, or too slow to take the frame (timeout)
                        return
                    server._count(frames=1)
                    next_send += server._period
                    delay = next_send - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        next_send = time.monotonic()

            def log_message(self, format: str, *args: object) -> None:
                _logger.debug("video client %s: " + format, self.client_address[0], *args)

        return StreamHandler
