"""How a node process stops: Ctrl-C and SIGTERM caught from its first import, then a quick exit.

Standard library only, and light: ``pamiq_ros.nodes`` imports it before any node module pulls
in torch or rclpy, so a signal during those seconds of start-up is caught too.

Why each part:

- A terminal's Ctrl-C reaches every process of the foreground group, and ``ros2 launch``
  then sends its own SIGINT: each node gets two. The handlers here only note a request; they
  stay installed until the process ends, so a second signal can never raise
  ``KeyboardInterrupt`` in the middle of ``close()`` (which once lost the agent's shutdown
  checkpoint). SIGKILL remains the way to end a node that does not stop.
- Before these handlers, a SIGINT during start-up landed in Python's default handler while
  torch was being imported: a ``KeyboardInterrupt`` traceback, exit -2, no checkpoint.
- After ``close()``, CPython's own teardown (``finalize_modules``: full garbage collections
  over every object torch, rclpy and the models created; gdb showed ``gc_collect_main`` under
  ``Py_FinalizeEx``) kept the agent and the trainer alive 2.1 to 3.9 s on this 2-core machine
  and 15 to 20 s on the loaded one of the issue, beyond a launcher's grace. With
  :func:`leave_process`, which does what matters of that teardown and skips the rest, the same
  test (``test/nodes/test_runtime.py``) measured 0.3 to 0.8 s from the end of ``close()``.
"""

import atexit
import contextlib
import ctypes
import gc
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import PurePath
from typing import NoReturn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NODES_PACKAGE = "pamiq_ros.nodes."
ROS_PACKAGE = "pamiq_ros"
"""``ros2 run`` finds the nodes' executables in ``lib/<package>/``."""
BUFFERED_FILE_TYPES = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
"""Python file objects that may hold written data not yet passed to the system."""
THREAD_JOIN_S = 5.0
"""How long :func:`leave_process` waits, in all, for threads that are not daemons."""


class StopRequest:
    """Ctrl-C and SIGTERM as a request to stop, noted by a handler that does nothing else.

    The handler never raises, prints or logs (it may run between any two bytecodes of the main
    thread, also inside a write to the same stream), and takes no lock: a second signal can land
    inside the first one's handler, and a handler that set a ``threading.Event`` then waited
    forever for the lock the interrupted one held (a camera node left running after its
    launcher was killed, found by the suite). It only sets a flag and appends to a list, which
    the interpreter does atomically; :attr:`signals` keeps what came.
    """

    def __init__(self) -> None:
        self._requested = False
        self._caught = False
        self.signals: list[str] = []
        """Names of the stop signals received, in order (``SIGINT``, ``SIGTERM``)."""

    def catch(self) -> None:
        """Installs the handlers (once; only the main thread can)."""
        if self._caught or threading.current_thread() is not threading.main_thread():
            return
        for number in STOP_SIGNALS:
            signal.signal(number, self.note)
        self._caught = True

    def requested(self) -> bool:
        """Whether a stop signal came."""
        return self._requested

    def describe(self) -> str:
        """``SIGINT``, ``SIGINT x2`` or ``SIGINT, SIGTERM``: what asked this process to stop."""
        if not self.signals:
            return "no signal"
        if len(set(self.signals)) == 1 and len(self.signals) > 1:
            return f"{self.signals[0]} x{len(self.signals)}"
        return ", ".join(self.signals)

    def note(self, number: int, _frame: object) -> None:
        """The signal handler: notes ``number``.

        :meth:`catch` installs it for good; a caller that puts its previous handlers back
        afterwards (a library launcher) installs it itself.
        """
        self.signals.append(signal.Signals(number).name)
        self._requested = True


STOP = StopRequest()
"""This process's stop request (one per process: signal handlers are)."""


def is_node_process(argv: Sequence[str]) -> bool:
    """Whether a command line (``sys.orig_argv``) runs one of the project's nodes.

    ``python -m pamiq_ros.nodes.<node>`` (``pamiq-ros launch``, the tests), or a node's
    executable in ``lib/pamiq_ros/`` (``ros2 run`` and ``ros2 launch``). Other ways in (the
    ``bin/<node>`` console scripts, ``pamiq-ros record``) catch the signals in ``run_node``.
    """
    for index, argument in enumerate(argv[1:], start=1):
        if argument == "-m":
            module = argv[index + 1] if index + 1 < len(argv) else ""
            private = module.rpartition(".")[2].startswith("_")
            return module.startswith(NODES_PACKAGE) and not private
        if argument == "-c":
            return False
        if not argument.startswith("-"):
            return PurePath(argument).parent.name == ROS_PACKAGE
    return False


def catch_stop_signals_in_node_processes() -> None:
    """Catches stop signals now when this process runs a node (see :func:`is_node_process`).

    Other processes that import the nodes (tests, ``pamiq-ros`` tools) keep their handlers.
    """
    if is_node_process(getattr(sys, "orig_argv", sys.argv)):
        STOP.catch()


def leave_process(code: int, thread_timeout: float = THREAD_JOIN_S) -> NoReturn:
    """Ends this process with ``code`` after a clean close, without the interpreter's teardown.

    What a normal exit does that matters is done first: other threads that are not daemons
    are joined (up to ``thread_timeout`` in all, not forever), ``atexit`` handlers run, and
    every open Python file, ``sys.stdout``/``sys.stderr`` and the C library's stdio buffers
    are flushed. Then ``os._exit``: the garbage collections and module clearing of
    ``Py_FinalizeEx`` (seconds after torch, more on a loaded machine) are skipped, since nothing of
    the node's state depends on them once ``close()`` ran.
    """
    deadline = time.monotonic() + thread_timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    _flush_open_files()
    os._exit(code)


def _flush_open_files() -> None:
    """Flushes every open Python file object, then the C library's stdio buffers."""
    for candidate in gc.get_objects():
        # The type alone: isinstance would also ask proxies for their __class__ (side effects).
        if issubclass(type(candidate), BUFFERED_FILE_TYPES):
            with contextlib.suppress(Exception):
                if not candidate.closed:
                    candidate.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):  # not a C library with fflush
        ctypes.CDLL(None).fflush(None)
