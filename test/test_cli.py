"""The memory verbs of ``pamiq-ros``: launch --record, pretrain's refusals."""

from pathlib import Path

import pytest

from pamiq_ros.bringup.description import load_bringup
from pamiq_ros.cli import _recorder_of, main

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def test_launch_record_adds_a_recorder_tagged_with_the_agents_mind():
    bringup = load_bringup(CONFIG_DIR / "sim.yaml")
    recorder = _recorder_of(bringup)
    assert recorder.name == "recorder" and recorder.module == "pamiq_ros.nodes.recorder"
    assert recorder.parameters == {"mind": "curiosity", "preset": "tiny"}


def test_pretrain_refuses_a_damaged_bag_naming_the_file(tmp_path: Path, capsys):
    from test.io.test_bags import write_images

    bag = tmp_path / "bag"
    write_images(bag, 3)
    file = next(bag.glob("*.mcap"))
    file.write_bytes(file.read_bytes()[:50])
    with pytest.raises(SystemExit) as stopped:
        main(["pretrain", str(bag), "--output", str(tmp_path / "run")])
    assert stopped.value.code == 2
    assert f"{file}: truncated" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
