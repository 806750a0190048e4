"""The mouse_actuator node process where uinput is missing: it stops with an error saying why."""

import os

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(os.path.exists("/dev/uinput"), reason="this machine has /dev/uinput")
def test_without_uinput_the_node_stops_with_a_clear_error(spawn_node):
    node = spawn_node("mouse_actuator")
    output = node.wait_for_output("modprobe uinput", timeout=20.0)
    assert "cannot create the virtual mouse (uinput_path): /dev/uinput does not exist" in output
    assert node.popen.wait(timeout=15.0) == 2  # the invalid-parameters exit, on its own
    node.stop()
    assert "Traceback" not in node.output()
