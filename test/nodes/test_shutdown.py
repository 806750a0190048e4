"""How a node process stops: which processes catch signals early, and a quick, complete exit."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pamiq_ros.nodes._shutdown import STOP, StopRequest, is_node_process

PYTHON = "/venv/bin/python"


@pytest.mark.parametrize(
    ("argv", "is_node"),
    [
        ([PYTHON, "-m", "pamiq_ros.nodes.agent", "--ros-args"], True),
        ([PYTHON, "-u", "-m", "pamiq_ros.nodes.trainer"], True),
        ([PYTHON, "/ws/install/pamiq_ros/lib/pamiq_ros/agent", "--ros-args"], True),
        ([PYTHON, "-m", "pamiq_ros.nodes._runtime"], False),
        ([PYTHON, "-m", "pamiq_ros.cli", "launch", "sim"], False),
        ([PYTHON, "-m", "pytest", "test/nodes"], False),
        ([PYTHON, "-c", "import pamiq_ros.nodes.agent"], False),
        ([PYTHON, "/venv/bin/pamiq-ros", "record"], False),
        ([PYTHON], False),
    ],
)
def test_node_processes_are_told_from_other_users_of_the_nodes(argv: list[str], is_node: bool):
    assert is_node_process(argv) is is_node


def test_importing_the_nodes_outside_a_node_process_leaves_the_handlers_alone():
    import pamiq_ros.nodes  # noqa: F401  (imported by the suite already; the point is the state)

    for number in (signal.SIGINT, signal.SIGTERM):
        assert signal.getsignal(number) != STOP.note


def test_stop_signals_are_noted_never_raised():
    request = StopRequest()
    assert not request.requested() and request.describe() == "no signal"
    request.note(signal.SIGINT, None)
    request.note(signal.SIGINT, None)
    assert request.requested() and request.describe() == "SIGINT x2"
    request.note(signal.SIGTERM, None)
    assert request.describe() == "SIGINT, SIGINT, SIGTERM"


BURST_TARGET = """
import sys, time
from pamiq_ros.nodes._shutdown import StopRequest

stop = StopRequest()
stop.catch()
print("ready", flush=True)
while not stop.requested():
    time.sleep(0.001)
deadline = time.monotonic() + 2.0  # signals keep coming while it "closes"
while time.monotonic() < deadline:
    sum(range(100))
print(len(stop.signals), flush=True)
"""


def test_a_burst_of_stop_signals_cannot_hang_the_handler(tmp_path: Path):
    """Signals land inside each other's handlers; a handler that takes a lock can then wait
    forever for the one it interrupted (a node once hung so, after its launcher was killed)."""
    script = tmp_path / "burst.py"
    script.write_text(textwrap.dedent(BURST_TARGET))
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        sent = 0
        while child.poll() is None and sent < 20000:
            try:
                child.send_signal(signal.SIGTERM if sent % 2 else signal.SIGINT)
            except ProcessLookupError:
                break
            sent += 1
        output, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, (child.returncode, output)
    assert int(output.strip()) >= 1


LEAVING = """
import atexit, sys, threading, time
from pathlib import Path
from pamiq_ros.nodes._shutdown import leave_process

folder = Path(sys.argv[1])
unclosed = (folder / "unclosed.txt").open("w")  # buffered, never closed: flushed on the way out
unclosed.write("every line written\\n" * 100)
atexit.register(lambda: (folder / "atexit.txt").write_text("ran"))

def finish_late():
    time.sleep(0.5)
    (folder / "thread.txt").write_text("joined")

threading.Thread(target=finish_late).start()  # not a daemon: waited for, as at a normal exit
leave_process(3)
raise SystemExit("leave_process returned")
"""


def test_leaving_keeps_the_exit_code_and_what_a_normal_exit_would_finish(tmp_path: Path):
    script = tmp_path / "leaving.py"
    script.write_text(textwrap.dedent(LEAVING))
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert (tmp_path / "unclosed.txt").read_text() == "every line written\n" * 100
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "thread.txt").read_text() == "joined"
