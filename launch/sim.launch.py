"""`ros2 launch pamiq_ros sim.launch.py`: the nodes of config/sim.yaml.

Arguments: config:=FILE namespace:=NS resume:=PATH|latest runs_dir:=DIR (see ros2_launch.py).
"""

from pamiq_ros.bringup.ros2_launch import generate_for


def generate_launch_description():
    return generate_for("sim")
