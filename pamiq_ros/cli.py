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
    Bringup,
    BringupError,
    LauncherSettings,
    NodeDescription,
    create_run_dir,
    load_bringup,
    loopback_dds_environment,
    normalize_namespace,
    prepare_launch,
)
from pamiq_ros.bringup.executables import NODE_EXECUTABLES
from pamiq_ros.bringup.launcher import Launcher
from pamiq_ros.bringup.security import NODE_GRAPH, policy_xml
from pamiq_ros.core.settings import SettingsError, build_settings, describe
from pamiq_ros.nodes._shutdown import STOP, leave_process

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
        if arguments.record:
            bringup = dataclasses.replace(bringup, nodes=(*bringup.nodes, _recorder_of(bringup)))
        plan = prepare_launch(
            bringup, Path(arguments.runs_dir), arguments.namespace, arguments.resume or ""
        )
    except (BringupError, OSError) as error:
        print(f"pamiq-ros launch: {error}", file=sys.stderr)
        return 2
    duration = arguments.duration if arguments.duration and arguments.duration > 0 else None
    # The process ends with the launch, as a node's ends with its close(): its Ctrl-C handling
    # stays installed to the end, and the interpreter's teardown (which puts Python's default
    # SIGINT handler back, so a terminal's late second Ctrl-C killed a launch that had stopped
    # cleanly) is skipped.
    launcher = Launcher(plan, process_stop=STOP)
    launcher.say(
        f"run folder {plan.run_dir}"
        + (f", resuming from {arguments.resume}" if arguments.resume else "")
    )
    leave_process(launcher.run(duration))


def _recorder_of(bringup: Bringup) -> NodeDescription:
    """A recorder beside a deployment: the bag in the run folder, tagged with the agent's mind."""
    agent = next((node.parameters for node in bringup.nodes if node.name == "agent"), {})
    parameters = {"mind": str(agent.get("mind", "")), "preset": str(agent.get("preset", ""))}
    existing = next((node for node in bringup.nodes if node.name == "recorder"), None)
    if existing is not None:
        raise BringupError(f"{bringup.config_path}: has a recorder already; drop --record")
    return NodeDescription("recorder", "recorder", NODE_EXECUTABLES["recorder"], parameters)


def _keep_dds_on_loopback() -> None:
    """Keeps this process's DDS on 127.0.0.1, unless the caller chose another range or RMW."""
    discovery = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rmw = os.environ.get("RMW_IMPLEMENTATION", "")
    if (
        discovery == "LOCALHOST"
        and not os.environ.get("ROS_STATIC_PEERS")
        and (not rmw or rmw.startswith("rmw_fastrtps"))
    ):
        os.environ.update(loopback_dds_environment())


def _record(arguments: argparse.Namespace) -> int:
    from pamiq_ros.nodes._runtime import run_node
    from pamiq_ros.nodes.recorder import RecorderNode

    texts = {
        "output": arguments.output,
        "topics": arguments.topics,
        "mind": arguments.mind,
        "preset": arguments.preset,
    }
    values = {
        "compress_images": "true" if arguments.compress_images else "false",
        "max_file_mb": repr(float(arguments.max_file_mb)),
        "max_file_seconds": repr(float(arguments.max_file_seconds)),
        "disk_budget_mb": repr(float(arguments.disk_budget_mb)),
        # Quoted so that YAML keeps them strings; empty ones keep their defaults.
        **{name: "'" + text.replace("'", "''") + "'" for name, text in texts.items() if text},
    }
    ros_arguments = ["--ros-args"]
    for name, value in values.items():
        ros_arguments += ["-p", f"{name}:={value}"]
    _keep_dds_on_loopback()
    run_node(RecorderNode, ros_arguments)  # ends the process (exit 0 once closed)


def _replay(arguments: argparse.Namespace) -> int:
    from pamiq_ros.bringup.replay import replay
    from pamiq_ros.io.bags import BagError

    _keep_dds_on_loopback()
    topics = [name for name in arguments.topics.split(",") if name] if arguments.topics else None
    try:
        result = replay(
            arguments.bags,
            arguments.rate,
            topics,
            decode_images=not arguments.keep_compressed,
            wait_for_subscribers=arguments.wait_for_subscribers,
            mind=arguments.mind,
            preset=arguments.preset,
        )
    except (BagError, ValueError) as error:
        print(f"pamiq-ros replay: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    counts = ", ".join(f"{topic}={count}" for topic, count in result.published.items())
    print(f"published {counts or 'nothing'} in {result.seconds:.1f} s")
    return 0


def _pretrain(arguments: argparse.Namespace) -> int:
    from pamiq_ros.bringup.pretrain import pretrain
    from pamiq_ros.io.bags import BagError
    from pamiq_ros.nodes.trainer import TrainerSettings

    try:
        bringup = load_bringup(resolve_config(arguments.config))
        section = next((node for node in bringup.nodes if node.name == "trainer"), None)
        if section is None:
            raise BringupError(f"{bringup.config_path}: has no trainer section")
        values = {
            key: value
            for key, value in section.parameters.items()
            if key not in ("run_dir", "resume_from")
        }
        values.update(
            {key: getattr(arguments, key) for key in ("mind", "preset") if getattr(arguments, key)}
        )
        settings = build_settings(TrainerSettings, values)
        output = (
            Path(arguments.output)
            if arguments.output
            else create_run_dir(Path(arguments.runs_dir), Path("pretrain.yaml"))
        )
        result = pretrain(arguments.bags, settings, output, arguments.epochs)
    except (BringupError, SettingsError, BagError, FileExistsError, ValueError) as error:
        print(f"pamiq-ros pretrain: {error}", file=sys.stderr)
        return 2
    print(
        f"checkpoint {result.checkpoint}: {result.records} records, runs {result.runs}, "
        f"versions {result.versions}, {result.seconds:.0f} s; resume a live run with "
        f"pamiq-ros launch {arguments.config} --resume {output}"
    )
    return 0


def _control(arguments: argparse.Namespace) -> int:
    expected = [name for name in arguments.nodes.split(",") if name] if arguments.nodes else []
    try:
        namespace = normalize_namespace(arguments.namespace)
    except BringupError as error:
        print(f"pamiq-ros {arguments.command}: {error}", file=sys.stderr)
        return 2
    replies = send_command(
        arguments.command, arguments.discovery_timeout, arguments.timeout, expected, namespace
    )
    if not replies:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        where = f"ROS_DOMAIN_ID={domain}" + (
            f", namespace {namespace}," if namespace != "/" else ""
        )
        print(
            f"pamiq-ros {arguments.command}: no pamiq_ros node answered in {where} "
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
        "--namespace",
        default="/",
        metavar="NS",
        help="run every node in this namespace (e.g. /robot1): topics, services and the "
        "config's node keys follow it; /tf and /tf_static move into it too (default /)",
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
    launch.add_argument(
        "--record",
        action="store_true",
        help="also run the recorder node: default topics into <run folder>/bags/ (MCAP)",
    )
    launch.set_defaults(handler=_launch)
    _add_memory_commands(commands)

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
        control.add_argument(
            "--namespace",
            default="/",
            metavar="NS",
            help="reach only the nodes in this namespace (e.g. /robot1, as given to pamiq-ros "
            "launch --namespace); default /: every node of the ROS domain",
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


def _add_memory_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from pamiq_ros.nodes.recorder import DEFAULT_TOPICS, RecorderSettings

    defaults = RecorderSettings()
    record = commands.add_parser(
        "record",
        help="record topics of the running stack into a ROS 2 bag (MCAP) until Ctrl-C",
        description="Record topics of the running stack (same ROS_DOMAIN_ID) into a rosbag2 "
        "folder of MCAP files that ros2 bag info and MCAP tools read.",
    )
    record.add_argument("--output", default="", help="bag folder to create (never overwritten)")
    record.add_argument("--topics", default=DEFAULT_TOPICS, help="comma-separated topics")
    record.add_argument(
        "--compress-images", action="store_true", help="store images as JPEG CompressedImage"
    )
    record.add_argument("--max-file-mb", type=float, default=defaults.max_file_mb)
    record.add_argument(
        "--max-file-seconds", type=float, default=0.0, help="also split by time (0: off)"
    )
    record.add_argument(
        "--disk-budget-mb", type=float, default=0.0, help="oldest files removed beyond it (0: off)"
    )
    record.add_argument("--mind", default="", help="the mind recorded (checked by pretrain)")
    record.add_argument("--preset", default="", help="the preset recorded (checked by pretrain)")
    record.set_defaults(handler=_record)

    replay = commands.add_parser(
        "replay",
        help="publish recorded topics again with their timing, as if live",
        description="Publish the bags' topics with their recorded timing (scaled by --rate); "
        "JPEG-recorded images are published as sensor_msgs/Image on their original topic.",
    )
    replay.add_argument("bags", nargs="+", help="bag folders (with metadata.yaml)")
    replay.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    replay.add_argument("--topics", default="", help="comma-separated topics (default: all)")
    replay.add_argument(
        "--keep-compressed", action="store_true", help="publish JPEG images as recorded"
    )
    replay.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for every topic to have a subscriber before starting",
    )
    replay.add_argument("--mind", default="", help="refuse bags recorded by another mind")
    replay.add_argument("--preset", default="", help="refuse bags recorded with another preset")
    replay.set_defaults(handler=_replay)

    pretrain = commands.add_parser(
        "pretrain",
        help="train the trainer's models from bags as fast as possible, writing a checkpoint",
        description="Train the trainer's models on the bags' experience records, flat out, and "
        "write a checkpoint that pamiq-ros launch CONFIG --resume OUTPUT continues from.",
    )
    pretrain.add_argument("bags", nargs="+", help="bag folders with an experience topic")
    pretrain.add_argument("--config", default="sim", help="config whose trainer settings to use")
    pretrain.add_argument("--mind", default="", help="override the config's trainer mind")
    pretrain.add_argument("--preset", default="", help="override the config's trainer preset")
    pretrain.add_argument("--epochs", type=int, default=1, help="passes over the records")
    pretrain.add_argument("--output", default="", help="run folder to write (default: new)")
    pretrain.add_argument("--runs-dir", default="runs", help="where a new run folder goes")
    pretrain.set_defaults(handler=_pretrain)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``pamiq-ros``."""
    arguments = build_parser().parse_args(argv)
    sys.exit(arguments.handler(arguments))


if __name__ == "__main__":
    main()
