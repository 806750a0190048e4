"""pamiq-ros pretrain: experience from bags into a checkpoint a live trainer resumes from."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rclpy.serialization import serialize_message

from pamiq_ros.bringup.pretrain import pretrain
from pamiq_ros.core.actions import ACTION_SIZES
from pamiq_ros.core.checkpoint import restore
from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.io.bags import CUSTOM_MIND, BagError, BagWriter
from pamiq_ros.io.experience_codec import record_to_message
from pamiq_ros.nodes.trainer import STORE_SUBDIR, TrainerSettings, build_learner

EXPERIENCE = "pamiq_ros_interfaces/msg/Experience"


def settings(**changes: Any) -> TrainerSettings:
    values: dict[str, Any] = {
        "mind": "autoencoder",
        "image_width": 32,
        "image_height": 24,
        "batch_size": 8,
        "min_buffer_size": 8,
        "min_new_samples": 4,
        "buffer_size": 64,
    }
    values.update(changes)
    return TrainerSettings(**values)


def experience_bag(path: Path, count: int, mind: str = "autoencoder", side=(24, 32)) -> Path:
    writer = BagWriter(path, custom_data={CUSTOM_MIND: mind})
    writer.add_topic("experience", EXPERIENCE)
    rng = np.random.default_rng(0)
    for step in range(count):
        record = ExperienceRecord(
            step=step,
            observation=rng.integers(0, 255, (*side, 3), dtype=np.uint8),
            action=np.zeros(len(ACTION_SIZES), dtype=np.int64),
            model_name="autoencoder",
            weight_version=0,
        )
        writer.write(
            "experience", step * 10**8, bytes(serialize_message(record_to_message(record)))
        )
    writer.close()
    return path


def test_pretraining_writes_a_checkpoint_that_a_trainer_resumes_from(tmp_path: Path):
    bag = experience_bag(tmp_path / "bag", 40)
    output = tmp_path / "run"
    result = pretrain([bag], settings(), output, epochs=2, say=lambda line: None)
    assert result.records == 80 and result.refused == 0
    assert result.runs.get("autoencoder", 0) >= 5
    assert result.versions["autoencoder"] >= 5
    assert result.checkpoint.parent == output / STORE_SUBDIR

    live = build_learner(settings())  # what the trainer node builds, fresh
    used = restore(str(output), tmp_path, STORE_SUBDIR, live.load_state, pytest.fail)
    assert used == result.checkpoint
    assert live.versions == result.versions
    trained = torch.load(result.checkpoint / "trainers" / "autoencoder.pt", weights_only=False)
    assert trained  # the optimizer's state travelled too
    fresh = build_learner(settings())
    weights, initial = live.weights("autoencoder"), fresh.weights("autoencoder")
    assert any(not torch.equal(weights[name], initial[name]) for name in weights)


def test_a_bag_of_another_mind_is_refused_before_training(tmp_path: Path):
    bag = experience_bag(tmp_path / "bag", 4, mind="curiosity")
    with pytest.raises(BagError, match=rf"{bag}: recorded by mind 'curiosity', not 'autoencoder'"):
        pretrain([bag], settings(), tmp_path / "run", say=lambda line: None)
    assert not (tmp_path / "run").exists()


def test_records_that_do_not_fit_are_refused_clearly(tmp_path: Path):
    bag = experience_bag(tmp_path / "bag", 4, side=(48, 64))  # another image size
    with pytest.raises(BagError, match="no record fits this trainer"):
        pretrain([bag], settings(), tmp_path / "run", say=lambda line: None)


def test_existing_checkpoints_are_never_overwritten(tmp_path: Path):
    bag = experience_bag(tmp_path / "bag", 20)
    output = tmp_path / "run"
    first = pretrain([bag], settings(), output, say=lambda line: None)
    before = sorted(path.name for path in (output / STORE_SUBDIR).iterdir())
    with pytest.raises(FileExistsError, match="not overwriting"):
        pretrain([bag], settings(), output, say=lambda line: None)
    assert sorted(path.name for path in (output / STORE_SUBDIR).iterdir()) == before
    assert first.checkpoint.is_dir()


def test_a_bag_without_experience_is_refused(tmp_path: Path):
    writer = BagWriter(tmp_path / "bag")
    writer.add_topic("note", "std_msgs/msg/String")
    writer.close()
    with pytest.raises(BagError, match="no pamiq_ros_interfaces/msg/Experience topic"):
        pretrain([tmp_path / "bag"], settings(), tmp_path / "run", say=lambda line: None)
