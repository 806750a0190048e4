"""Builds a ``launch_ros`` description from a config, for ``ros2 launch`` with a ROS 2 install.

The launch files in ``launch/`` are one line each over :func:`generate_for`, so they and
``pamiq-ros launch`` read the same description. ``launch`` and ``launch_ros`` come with a ROS 2
distribution and are imported only here, when a launch file runs.
"""

from pathlib import Path
from typing import Any

from pamiq_ros.bringup.description import load_bringup
from pamiq_ros.bringup.security import enclave_of, security_environment

PACKAGE = "pamiq_ros"


def generate_for(default_config: str) -> Any:
    """A ``LaunchDescription`` running every node of ``config/<default_config>.yaml``.

    The ``config`` launch argument (``ros2 launch pamiq_ros sim.launch.py config:=my.yaml``)
    replaces the installed file.
    """
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    from launch import LaunchDescription

    installed = Path(get_package_share_directory(PACKAGE)) / "config" / f"{default_config}.yaml"
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config", default_value=str(installed), description="Parameter file of the nodes"
            ),
            OpaqueFunction(function=_nodes_from_config, args=[LaunchConfiguration("config")]),
        ]
    )


def _nodes_from_config(context: Any, config: Any) -> list[Any]:
    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import Node

    config_path = config.perform(context)
    bringup = load_bringup(config_path)
    settings = bringup.launcher
    environment = dict(bringup.discovery_environment())
    if settings.security:  # SROS2: the keystore for all, an enclave per node (security.py)
        environment.update(
            security_environment(settings.security_keystore, settings.security_strategy)
        )
    actions: list[Any] = [
        SetEnvironmentVariable(name, value) for name, value in environment.items()
    ]
    actions += [
        Node(
            package=PACKAGE,
            executable=node.executable,
            name=node.name,
            parameters=[str(bringup.config_path)],
            ros_arguments=["--enclave", enclave_of(node.name)] if settings.security else [],
            output="screen",
            emulate_tty=True,
        )
        for node in bringup.nodes
    ]
    return actions
