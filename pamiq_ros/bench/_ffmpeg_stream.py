"""An MJPEG-over-HTTP stream served by ffmpeg, of frames that carry their send time in pixels.

Like an IP camera the project did not write: this process renders nothing, it writes a grey
frame with the wall-clock time in its top strip (``pamiq_ros.io.frame_stamp``) to ffmpeg's
stdin at ``fps``, and ffmpeg encodes it as JPEG and serves it to one client
(``-f mpjpeg -listen 1``) on loopback. A reader that decodes a frame can read its send time
back, so the age of a frame is measured against this clock. Used by the frame-age benchmark
and the capture tests.
"""

import os
import shutil
import signal
import subprocess
import threading
import time

import numpy as np

from pamiq_ros.io.frame_stamp import write_stamp


def ffmpeg_available() -> bool:
    """Whether an ``ffmpeg`` executable is on the PATH."""
    return shutil.which("ffmpeg") is not None


class StampedMjpegStream:
    """ffmpeg serving ``width`` x ``height`` stamped frames at ``fps`` on ``127.0.0.1:port``."""

    def __init__(
        self, port: int, fps: float = 20.0, width: int = 640, height: int = 480, quality: int = 5
    ) -> None:
        self.url = f"http://127.0.0.1:{port}/feed.mjpg"
        self.fps = fps
        command = [
            "ffmpeg", "-loglevel", "error", "-fflags", "nobuffer", "-probesize", "32",
            "-analyzeduration", "0", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-f", "mpjpeg",
            # One encoder thread: frame threading holds a frame back (50 ms at 20 fps).
            "-fps_mode", "passthrough", "-threads", "1", "-flush_packets", "1",
            "-q:v", str(quality), "-listen", "1", self.url,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.frames_sent = 0
        self._frame = np.full((height, width, 3), 128, dtype=np.uint8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="ffmpeg-feed", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        stdin = self.process.stdin
        assert stdin is not None
        while not self._stop.is_set():
            write_stamp(self._frame, time.time())
            try:
                stdin.write(self._frame.tobytes())
                stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return  # ffmpeg ended (its one client left, or it was killed)
            self.frames_sent += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def kill(self) -> None:
        """Stops feeding and kills ffmpeg (by its process group)."""
        self._stop.set()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._thread.join(timeout=5)
