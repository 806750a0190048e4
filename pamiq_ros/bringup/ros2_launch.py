"""Builds a ``launch_ros`` description from a config, for ``ros2 launch`` with a ROS 2 install.

The launch files in ``launch/`` are one line each over :func:`generate_for`, and everything
they decide comes from the same plain objects as ``pamiq-ros launch``: the run folder with a
copy of the config and the nodes' parameter file (:func:`prepare_launch`), each node's name,
namespace, remappings and arguments (:class:`NodeLaunch`), what to do when a node dies
(:func:`death_verdict` over a :class:`RestartSchedule`: restart with a doubling backoff,
resuming from the run folder, or stop) and the grace before a node is killed
(``shutdown_timeout``). ``launch`` and ``launch_ros`` come with a ROS 2 distribution and are
imported only here, when a launch file runs.

One difference stays: a node that exits 0 on its own (its control ``shutdown`` service) ends
here; ``pamiq-ros launch`` restarts it unless the whole stack exits together.
"""

import time
from pathlib import Path
from typing import Any

from pamiq_ros.bringup.description import (
    LaunchPlan,
    NodeLaunch,
    load_bringup,
    prepare_launch,
)
from pamiq_ros.bringup.launcher import (
    RestartSchedule,
    death_verdict,
    describe_exit,
    pin_last_checkpoint,
)
from pamiq_ros.bringup.security import enclave_of, security_environment

PACKAGE = "pamiq_ros"
SIGKILL_AFTER_SIGTERM_S = 1.0
"""``ros2 launch`` sends SIGINT, SIGTERM after the grace, SIGKILL this much later; the nodes
treat SIGTERM as SIGINT, so the grace is ``shutdown_timeout`` as with ``pamiq-ros launch``."""
LAUNCH_ARGUMENTS = {
    "namespace": ("/", "Namespace of every node (e.g. /robot1), as pamiq-ros launch --namespace"),
    "resume": ("", "Restore state from a checkpoint or run folder, or 'latest'; '' for none"),
    "runs_dir": ("runs", "Where this start's run folder is created"),
}


def generate_for(default_config: str) -> Any:
    """A ``LaunchDescription`` running every node of ``config/<default_config>.yaml``.

    Launch arguments: ``config:=FILE`` replaces the installed file; ``namespace:=/robot1``,
    ``resume:=latest`` and ``runs_dir:=DIR`` as ``pamiq-ros launch``'s options.
    """
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    installed = Path(get_package_share_directory(PACKAGE)) / "config" / f"{default_config}.yaml"
    arguments = [
        DeclareLaunchArgument(
            "config", default_value=str(installed), description="Parameter file of the nodes"
        )
    ]
    arguments += [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, (default, description) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_start)])


def _start(context: Any) -> list[Any]:
    from launch.actions import LogInfo, SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration

    def argument(name: str) -> str:
        return str(LaunchConfiguration(name).perform(context))

    bringup = load_bringup(argument("config"))
    plan = prepare_launch(
        bringup, Path(argument("runs_dir")), argument("namespace"), argument("resume")
    )
    settings = bringup.launcher
    environment = dict(bringup.discovery_environment())
    environment["ROS_LOG_DIR"] = str(plan.run_dir / "ros_logs")
    if settings.security:  # SROS2: the keystore for all, an enclave per node (security.py)
        environment.update(
            security_environment(settings.security_keystore, settings.security_strategy)
        )
    actions: list[Any] = [
        SetEnvironmentVariable(name, value) for name, value in environment.items()
    ]
    actions.append(LogInfo(msg=f"run folder {plan.run_dir}, namespace {plan.namespace}"))
    for node in plan.nodes:
        schedule = RestartSchedule.from_settings(settings)
        actions += _supervised(node, plan, schedule, plan.parameters())
    return actions


def _supervised(
    node: NodeLaunch, plan: LaunchPlan, schedule: RestartSchedule, parameters: dict[str, str]
) -> list[Any]:
    """The node's process, and what happens when it exits (see the module's docstring)."""
    from launch.actions import LogInfo, RegisterEventHandler, Shutdown, TimerAction
    from launch.event_handlers import OnProcessExit
    from launch_ros.actions import Node

    settings = plan.bringup.launcher
    enclave = ["--enclave", enclave_of(node.name)] if settings.security else []
    process = Node(
        package=PACKAGE,
        executable=node.node.executable,
        name=node.name,
        namespace=None if node.namespace == "/" else node.namespace,
        ros_arguments=[*node.configuration_arguments(parameters), *enclave],
        output="screen",
        emulate_tty=True,
        sigterm_timeout=str(settings.shutdown_timeout),
        sigkill_timeout=str(SIGKILL_AFTER_SIGTERM_S),
    )
    started_at = time.monotonic()

    def on_exit(event: Any, context: Any) -> list[Any] | None:
        if context.is_shutdown:
            return None
        code = int(event.returncode)
        if code == 0:
            return [LogInfo(msg=f"{node.name} finished (exit code 0)")]
        now = time.monotonic()
        lines: list[str] = []
        if schedule.restarts == 0:  # its first death in this launch
            pin_last_checkpoint(plan.run_dir, node.name, lines.append)
        died = f"{node.name} died ({describe_exit(code)}) after {now - started_at:.1f} s"
        delay, line = death_verdict(settings, schedule, died, now, now - started_at)
        logged = [LogInfo(msg=text) for text in (*lines, line)]
        if delay is None:
            return [*logged, Shutdown(reason=line)]
        restart = _supervised(node, plan, schedule, plan.restart_parameters())
        return [*logged, TimerAction(period=delay, actions=restart)]

    handler = RegisterEventHandler(OnProcessExit(target_action=process, on_exit=on_exit))
    return [process, handler]
