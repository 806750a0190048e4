"""The one table of the project's node executables.

Read by ``setup.py`` (console scripts, and ``lib/pamiq_ros/`` for ``ros2 run``), by the
``pamiq-ros launch`` supervisor and by the ``launch/`` files, so they cannot drift apart.
Standard library only: ``setup.py`` loads this file before the package is installed.
"""

NODE_EXECUTABLES: dict[str, str] = {
    "sim_world": "pamiq_ros.nodes.sim_world",
    "gym_world": "pamiq_ros.nodes.gym_world",
    "camera_sensor": "pamiq_ros.nodes.camera_sensor",
    "osc_actuator": "pamiq_ros.nodes.osc_actuator",
    "agent": "pamiq_ros.nodes.agent",
    "safety": "pamiq_ros.nodes.safety",
    "trainer": "pamiq_ros.nodes.trainer",
    "recorder": "pamiq_ros.nodes.recorder",
    "audio_sensor": "pamiq_ros.nodes.audio_sensor",
    "mouse_actuator": "pamiq_ros.nodes.mouse_actuator",
}
"""Executable name -> module whose ``main(args)`` runs the node."""

CLI_EXECUTABLE = "pamiq-ros"
CLI_MODULE = "pamiq_ros.cli"
