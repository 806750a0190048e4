import json
from pathlib import Path

import pytest

from pamiq_ros.bench.renderer import main, measure_size


def test_a_size_reports_wall_and_cpu_rates_with_the_load_beside_them() -> None:
    figures = measure_size(40, 30, frames=3, repeats=2)
    assert (figures["width"], figures["height"], figures["repeats"]) == (40, 30, 2)
    for kind in ("wall_fps", "cpu_fps"):
        spread = figures[kind]
        assert 0 < spread["min"] <= spread["median"] <= spread["max"]
    assert figures["load_1m"] >= 0


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        measure_size(40, 30, frames=0, repeats=1)


def test_the_command_writes_every_size_and_the_target(tmp_path: Path) -> None:
    out = tmp_path / "renderer.json"
    assert main(["--frames", "1", "--repeats", "1", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [(s["width"], s["height"]) for s in figures["sizes"]] == [
        (160, 120), (320, 240), (640, 480)
    ]  # fmt: skip
    assert figures["target"]["met"] in (True, False)
    assert "load_1m" in figures["machine"]
