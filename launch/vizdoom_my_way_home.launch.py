"""`ros2 launch pamiq_ros vizdoom_my_way_home.launch.py [config:=FILE]`: My Way Home."""

from pamiq_ros.bringup.ros2_launch import generate_for


def generate_launch_description():
    return generate_for("vizdoom_my_way_home")
