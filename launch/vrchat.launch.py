"""`ros2 launch pamiq_ros vrchat.launch.py [config:=FILE]`: the nodes of config/vrchat.yaml."""

from pamiq_ros.bringup.ros2_launch import generate_for


def generate_launch_description():
    return generate_for("vrchat")
