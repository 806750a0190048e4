"""``pamiq-ros pretrain``: train the trainer's models from recorded experience, flat out.

The bags' ``Experience`` messages go through the same checks and the same learner as the
trainer node's (:func:`pamiq_ros.nodes.trainer.build_learner`), as fast as the CPU allows,
training whenever a trainer's conditions hold, as the node's loop would; ``epochs`` feeds the
records again. The result is a checkpoint in ``<output>/trainer/checkpoints/``, written by the
trainer's own checkpoint store, so ``pamiq-ros launch sim --resume <output>`` continues from it.

Bags that say they were recorded by another mind or preset (their ``custom_data``) are refused
before anything is trained, naming the bag; an output folder that already holds checkpoints is
refused, so nothing saved is overwritten.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pamiq_ros_interfaces.msg import Experience
from rclpy.serialization import deserialize_message

from pamiq_ros.core.actions import action_sizes
from pamiq_ros.core.checkpoint import CheckpointStore
from pamiq_ros.core.experience import ExperienceError, check_record
from pamiq_ros.io.bags import BagError, BagReader
from pamiq_ros.io.experience_codec import message_to_record
from pamiq_ros.nodes.trainer import STORE_SUBDIR, TrainerSettings, build_learner

EXPERIENCE_TYPE = "pamiq_ros_interfaces/msg/Experience"


@dataclass
class PretrainResult:
    """What a pretraining did."""

    checkpoint: Path
    records: int = 0
    refused: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    last_metrics: dict[str, float] = field(default_factory=dict)


def experience_topics(reader: BagReader) -> list[str]:
    """The bags' topics of type ``Experience``.

    Raises:
        BagError: If no bag holds one.
    """
    topics = [topic for topic, msgtype in reader.topics.items() if msgtype == EXPERIENCE_TYPE]
    if not topics:
        names = ", ".join(str(info.path) for info in reader.infos)
        raise BagError(f"{names}: no {EXPERIENCE_TYPE} topic recorded; nothing to pretrain on")
    return topics


def pretrain(
    paths: Sequence[Path | str],
    settings: TrainerSettings,
    output: Path,
    epochs: int = 1,
    say: Callable[[str], object] = print,
) -> PretrainResult:
    """Trains a fresh learner on the bags' experience and checkpoints it under ``output``.

    Raises:
        BagError: If a bag is unusable, from another mind or preset, holds no experience, or
            none of its records fit the trainer.
        FileExistsError: If ``output`` already holds trainer checkpoints.
        ValueError: If ``epochs`` is below 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    store_path = output / STORE_SUBDIR
    if store_path.exists() and any(store_path.iterdir()):
        raise FileExistsError(f"{store_path}: holds checkpoints already; not overwriting")
    reader = BagReader(paths)
    reader.check_origin(settings.mind, settings.preset if settings.mind == "curiosity" else "")
    topics = experience_topics(reader)
    torch.set_num_threads(settings.torch_threads)  # as the trainer node trains
    learner = build_learner(settings)
    image_shape = (settings.image_height, settings.image_width, 3)
    result = PretrainResult(checkpoint=store_path)
    started = time.monotonic()
    first_problem = ""
    for epoch in range(epochs):
        for message in reader.messages(topics):
            try:
                record = message_to_record(deserialize_message(message.data, Experience))
                check_record(record, image_shape, action_sizes(settings.action_space))
                learner.add(record)
            except (ExperienceError, ValueError, KeyError) as error:
                result.refused += 1
                first_problem = (
                    first_problem or f"{message.topic} at {message.timestamp_ns}: {error}"
                )
                continue
            result.records += 1
            while (run := learner.train_next()) is not None:
                result.runs[run.trainer] = result.runs.get(run.trainer, 0) + 1
                result.last_metrics.update(run.metrics)
        say(
            f"epoch {epoch + 1}/{epochs}: {result.records} records, {result.refused} refused, "
            f"runs {result.runs}, {time.monotonic() - started:.0f} s"
        )
    if not result.records:
        names = ", ".join(str(info.path) for info in reader.infos)
        raise BagError(f"{names}: no record fits this trainer (first refusal: {first_problem})")
    if first_problem:
        say(f"refused {result.refused} records; the first: {first_problem}")
    store_path.mkdir(parents=True, exist_ok=True)
    result.checkpoint = CheckpointStore(store_path, keep_last=settings.keep_checkpoints).save(
        learner.save_state, label="pretrain"
    )
    result.versions = dict(learner.versions)
    result.seconds = time.monotonic() - started
    return result
