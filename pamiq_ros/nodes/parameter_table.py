"""The README's parameter tables, generated from the nodes' settings declarations.

``python -m pamiq_ros.nodes.parameter_table`` prints them; a test checks that the README holds
exactly this text between its markers, so the table cannot drift from the code.
"""

from pamiq_ros.core.settings import markdown_table

BEGIN_MARKER = "<!-- parameter-table:begin (python -m pamiq_ros.nodes.parameter_table) -->"
END_MARKER = "<!-- parameter-table:end -->"


def node_settings() -> dict[str, type]:
    """Each node's settings dataclass, by node name (the nodes' modules are imported)."""
    from pamiq_ros.nodes.agent import AgentSettings
    from pamiq_ros.nodes.audio_sensor import AudioSensorSettings
    from pamiq_ros.nodes.camera_sensor import CameraSensorSettings
    from pamiq_ros.nodes.gym_world import GymWorldSettings
    from pamiq_ros.nodes.mouse_actuator import MouseActuatorSettings
    from pamiq_ros.nodes.osc_actuator import OscActuatorSettings
    from pamiq_ros.nodes.recorder import RecorderSettings
    from pamiq_ros.nodes.safety import SafetySettings
    from pamiq_ros.nodes.sim_world import SimWorldSettings
    from pamiq_ros.nodes.trainer import TrainerSettings

    return {
        "agent": AgentSettings, "trainer": TrainerSettings, "camera_sensor": CameraSensorSettings,
        "osc_actuator": OscActuatorSettings, "safety": SafetySettings,
        "sim_world": SimWorldSettings, "gym_world": GymWorldSettings,
        "recorder": RecorderSettings, "audio_sensor": AudioSensorSettings,
        "mouse_actuator": MouseActuatorSettings,
    }  # fmt: skip


def parameter_tables() -> str:
    """Every node's parameter table under a heading, between the README's markers."""
    parts = [BEGIN_MARKER]
    for node, settings_type in node_settings().items():
        parts += ["", f"### {node}", "", markdown_table(settings_type)]
    parts += ["", END_MARKER]
    return "\n".join(parts)


if __name__ == "__main__":
    print(parameter_tables())
