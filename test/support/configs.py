"""Copies of the project's configs for tests: free ports, faster reports, overrides."""

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pamiq_ros.bringup.description import on_ports

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def config_for_test(
    name: str,
    tmp_path: Path,
    udp_port: int,
    tcp_port: int,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A copy of config/<name>.yaml on free ports, with per-node parameter overrides."""
    document = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    document = on_ports(document, udp_port, tcp_port)
    for node, parameters in (overrides or {}).items():
        document.setdefault(node, {"ros__parameters": {}})["ros__parameters"].update(parameters)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def launch_command(config: Path, *extra: str) -> list[str]:
    """``pamiq-ros launch`` of ``config``, with run folders beside it (never the repo's runs/)."""
    runs_dir = config.parent / "runs"
    return [
        sys.executable, "-m", "pamiq_ros.cli", "launch", str(config),
        "--runs-dir", str(runs_dir), *extra,
    ]  # fmt: skip
