"""`ros2 launch pamiq_ros minigrid.launch.py [config:=FILE]`: the nodes of config/minigrid.yaml."""

from pamiq_ros.bringup.ros2_launch import generate_for


def generate_launch_description():
    return generate_for("minigrid")
