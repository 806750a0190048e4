"""A mailbox through which any thread asks the thread that owns some state for a piece of it.

The acting and training loops own their models: only their own thread may read a consistent
state between two steps or runs. A save (a timer, a control service) posts a request here and
waits; the owning thread serves every waiting request at its next safe point. No ROS here.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxTimeoutError(OSError):
    """The owning thread did not serve a request in time (it is busy or stopped)."""


@dataclass
class _Request(Generic[T]):
    reason: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: T | None = None
    error: Exception | None = None


class Mailbox(Generic[T]):
    """Requests from any thread, served by one owning thread between two units of its work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Request[T]] = []

    def ask(self, reason: str, timeout_s: float) -> T:
        """Posts a request and waits for the owning thread's answer.

        Args:
            reason: Passed to the serving function (e.g. ``"periodic"``, ``"requested"``).
            timeout_s: Longest wait.

        Raises:
            MailboxTimeoutError: If no answer came in ``timeout_s`` (the request is withdrawn).
            Exception: Whatever the serving function raised for this request.
        """
        request: _Request[T] = _Request(reason)
        with self._lock:
            self._waiting.append(request)
        if not request.done.wait(timeout_s):
            with self._lock:
                if request in self._waiting:
                    self._waiting.remove(request)
            if not request.done.is_set():
                raise MailboxTimeoutError(f"no answer to {reason!r} within {timeout_s:g} s")
        if request.error is not None:
            raise request.error
        return request.answer  # type: ignore[return-value]

    @property
    def pending(self) -> bool:
        """Whether a request waits (cheap; the owning thread checks it each step)."""
        return bool(self._waiting)

    def serve(self, produce: Callable[[str], T]) -> int:
        """On the owning thread: answers every waiting request; returns how many.

        A request whose ``produce`` raises gets the error; the others are still served.
        """
        with self._lock:
            requests, self._waiting = self._waiting, []
        for request in requests:
            try:
                request.answer = produce(request.reason)
            except Exception as error:
                request.error = error
            request.done.set()
        return len(requests)
