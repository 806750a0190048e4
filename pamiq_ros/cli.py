"""The ``pamiq-ros`` command: bring a deployment up, and show what each node can be told."""

import argparse
import dataclasses
import importlib
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from pamiq_ros.bringup.control_client import send_command
from pamiq_ros.bringup.description import (
    BringupError,
    LauncherSettings,
    create_run_dir,
    load_bringup,
    run_parameters,
)
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.bringup.launcher import Launcher
from pamiq_ros.bringup.security import NODE_GRAPH, policy_xml
from pamiq_ros.core.settings import describe

PACKAGE_ROOT = Path(__file__).resolve().parent


def config_directories() -> list[Path]:
    """Where config names are looked up: the source tree, then the installed share folder."""
    return [
        PACKAGE_ROOT.parent / "config",
        Path(sysconfig.get_path("data")) / "share" / "pamiq_ros" / "config",
    ]


def resolve_config(name_or_path: str) -> Path:
    """A config path as given, or a name such as ``sim`` looked up in :func:`config_directories`.

    Raises:
        BringupError: If neither exists.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    file_name = name_or_path if name_or_path.endswith(".yaml") else f"{name_or_path}.yaml"
    for directory in config_directories():
        if (directory / file_name).exists():
            return directory / file_name
    searched = ", ".join(str(directory) for directory in config_directories())
    raise BringupError(f"no config {name_or_path!r}: not a file, and not in {searched}")


def settings_type_of(executable: str) -> type:
    """The settings dataclass that declares a node's parameters (defined in its module)."""
    module = importlib.import_module(NODE_EXECUTABLES[executable])
    candidates = [
        value
        for name, value in vars(module).items()
        if name.endswith("Settings")
        and dataclasses.is_dataclass(value)
        and isinstance(value, type)
        and value.__module__ == module.__name__
    ]
    if len(candidates) != 1:
        raise LookupError(f"{module.__name__} must define exactly one *Settings dataclass")
    return candidates[0]


def _print_parameters(title: str, settings_type: type) -> None:
    print(title)
    for name, default, description in describe(settings_type):
        print(f"  {name} (default {default!r})\n      {description}")


def _launch(arguments: argparse.Namespace) -> int:
    try:
        bringup = load_bringup(resolve_config(arguments.config))
        run_dir = create_run_dir(Path(arguments.runs_dir), bringup.config_path)
    except (BringupError, OSError) as error:
        print(f"pamiq-ros launch: {error}", file=sys.stderr)
        return 2
    duration = arguments.duration if arguments.duration and arguments.duration > 0 else None
    launcher = Launcher(bringup, parameters=run_parameters(run_dir, arguments.resume or ""))
    launcher.say(
        f"run folder {run_dir}"
        + (f", resuming from {arguments.resume}" if arguments.resume else "")
    )
    return launcher.run(duration)


def _control(arguments: argparse.Namespace) -> int:
    expected = [name for name in arguments.nodes.split(",") if name] if arguments.nodes else []
    replies = send_command(
        arguments.command, arguments.discovery_timeout, arguments.timeout, expected
    )
    if not replies:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        print(
            f"pamiq-ros {arguments.command}: no pamiq_ros node answered in ROS_DOMAIN_ID={domain} "
            f"within {arguments.discovery_timeout:g} s (is the stack running?)",
            file=sys.stderr,
        )
        return 1
    for reply in replies:
        print(f"{reply.node}: {'ok' if reply.success else 'FAILED'}: {reply.message}")
    return 0 if all(reply.success for reply in replies) else 1


def _params(arguments: argparse.Namespace) -> int:
    names = [arguments.node] if arguments.node else list(NODE_EXECUTABLES)
    for name in names:
        _print_parameters(f"{name}:", settings_type_of(name))
    if not arguments.node:
        _print_parameters(
            "pamiq_launcher (config section, read by pamiq-ros launch):", LauncherSettings
        )
    return 0


def _policy(arguments: argparse.Namespace) -> int:
    nodes = [name for name in arguments.nodes.split(",") if name] or None
    unknown = sorted(set(nodes or ()) - set(NODE_GRAPH))
    if unknown:
        print(f"pamiq-ros policy: unknown node(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    text = policy_xml(nodes, arguments.namespace)
    if arguments.output:
        Path(arguments.output).write_text(text)
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="pamiq-ros",
        description="PAMIQ on ROS 2: bring up the nodes of a deployment and inspect them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    launch = commands.add_parser(
        "launch",
        help="start every node named in a config, each its own process; Ctrl-C stops all",
        description=(
            "Start every node named in CONFIG (a ROS 2 parameter file) as its own process, with "
            "that file's parameters, and relay their output prefixed with the node name. Ctrl-C, "
            "SIGTERM or --duration stops them all; exit status 0 when all stopped cleanly. DDS "
            "discovery stays on this machine unless the config's pamiq_launcher section says "
            "otherwise."
        ),
    )
    launch.add_argument(
        "config",
        help="a config file, or a name in config/: sim, vrchat, robot, minigrid, "
        "vizdoom_my_way_home",
    )
    launch.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="PATH|latest",
        help="restore the nodes' state from a checkpoint or run folder, or the newest one "
        "under --runs-dir (the default when no value is given)",
    )
    launch.add_argument(
        "--runs-dir",
        default="runs",
        metavar="DIR",
        help="where each start gets its run folder (checkpoints, metrics); default: runs",
    )
    launch.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop after this many seconds (0: run until Ctrl-C)",
    )
    launch.set_defaults(handler=_launch)

    control_help = {
        "pause": "pause acting and training on every node of the running stack (inputs released)",
        "resume": "resume acting and training where pause stopped",
        "save": "write a checkpoint of every node with state now",
        "status": "print every node's key figures",
        "shutdown": "stop every node of the running stack cleanly",
    }
    for command, text in control_help.items():
        control = commands.add_parser(command, help=text, description=text + ".")
        control.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="how long to wait for the answers (default 30)",
        )
        control.add_argument(
            "--discovery-timeout",
            type=float,
            default=5.0,
            metavar="SECONDS",
            help="how long to look for the nodes (default 5)",
        )
        control.add_argument(
            "--nodes",
            default="",
            metavar="NAME[,NAME...]",
            help="wait for exactly these nodes (up to the discovery timeout); one not found "
            "counts as a failure",
        )
        control.set_defaults(handler=_control)

    params = commands.add_parser(
        "params", help="list each node's parameters with defaults and descriptions"
    )
    params.add_argument(
        "node", nargs="?", choices=sorted(NODE_EXECUTABLES), help="one node (default: all)"
    )
    params.set_defaults(handler=_params)

    policy = commands.add_parser(
        "policy",
        help="print the SROS2 permissions policy of the stack (for a ROS distribution)",
        description=(
            "Print the SROS2 access-control policy (format 0.2.0) generated from the nodes' "
            "graph: one enclave /pamiq_ros/<node> per node, who may publish cmd_vel, announce "
            "weights and call the control services. Use it with `ros2 security "
            "create_permission` and the pamiq_launcher settings security and security_keystore."
        ),
    )
    policy.add_argument("--nodes", default="", metavar="NAME[,NAME...]", help="default: all")
    policy.add_argument("--namespace", default="/", help="the stack's namespace (default /)")
    policy.add_argument("--output", default="", metavar="FILE", help="write here, not stdout")
    policy.set_defaults(handler=_policy)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``pamiq-ros``."""
    arguments = build_parser().parse_args(argv)
    sys.exit(arguments.handler(arguments))


if __name__ == "__main__":
    main()
