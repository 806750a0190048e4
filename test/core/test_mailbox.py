"""The mailbox: requests from other threads served by the owning one, errors and timeouts."""

import threading

import pytest

from pamiq_ros.core.mailbox import Mailbox, MailboxTimeoutError


def test_a_request_is_answered_by_the_serving_thread():
    mailbox: Mailbox[str] = Mailbox()
    served_on: list[str] = []
    stop = threading.Event()

    def answer(reason: str) -> str:
        served_on.append(threading.current_thread().name)
        return reason.upper()

    def owner() -> None:
        while not stop.is_set():
            mailbox.serve(answer)
            stop.wait(0.01)

    thread = threading.Thread(target=owner, name="owner")
    thread.start()
    try:
        assert mailbox.ask("periodic", 2.0) == "PERIODIC"
    finally:
        stop.set()
        thread.join()
    assert served_on == ["owner"]


def test_an_unserved_request_times_out_and_is_withdrawn():
    mailbox: Mailbox[int] = Mailbox()
    with pytest.raises(MailboxTimeoutError):
        mailbox.ask("save", 0.05)
    assert not mailbox.pending
    assert mailbox.serve(lambda reason: 1) == 0


def test_the_error_of_serving_reaches_the_asker():
    mailbox: Mailbox[int] = Mailbox()

    def fail(reason: str) -> int:
        raise OSError(f"disk full during {reason}")

    threading.Timer(0.05, mailbox.serve, (fail,)).start()
    with pytest.raises(OSError, match="disk full during save"):
        mailbox.ask("save", 2.0)
