"""Copies of the project's configs for tests: free ports, faster reports, overrides."""

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

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
    for section in document.values():
        parameters = section["ros__parameters"]
        for key in ("osc_port", "port"):
            if key in parameters:
                parameters[key] = udp_port
        if "video_port" in parameters:
            parameters["video_port"] = tcp_port
        if "source" in parameters:
            parameters["source"] = f"http://127.0.0.1:{tcp_port}/stream.mjpg"
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
