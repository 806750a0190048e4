"""Experience records: what one agent step sends to the trainer, and the checks made on arrival.

A record holds the observation the agent acted on, the action it chose (one option index per
action dimension), what its models produced that the trainer needs (named float32 tensors) and
the weight version of the model it acted with, so policy lag is measurable. Records come from
another process, so :func:`check_record` refuses anything malformed with a message that says
what is wrong and where, instead of letting it reach a buffer. No ROS import here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare
class ExperienceRecord:
    """One agent step as the trainer receives it.

    Attributes:
        step: The agent's step counter (0 for the first step).
        observation: The ``(height, width, 3)`` uint8 RGB frame the step acted on.
        action: One option index per action dimension, shape ``(num_dims,)``.
        model_name: The model the step acted with.
        weight_version: The version of that model's weights (0 = initial weights).
        tensors: Named float32 arrays the models produced (e.g. a hidden state), for training.
    """

    step: int
    observation: npt.NDArray[np.uint8]
    action: npt.NDArray[np.int64]
    model_name: str
    weight_version: int
    tensors: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)


class ExperienceError(ValueError):
    """A record the trainer cannot use; the message says what is wrong with it."""


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_record(
    record: ExperienceRecord, image_shape: tuple[int, int, int], action_sizes: Sequence[int]
) -> None:
    """Refuses a record that does not fit the expected observation and action space.

    Args:
        record: The record to check.
        image_shape: Expected ``(height, width, channels)`` of the observation; a side given
            as ``-1`` accepts any size.
        action_sizes: Number of options of each action dimension, in order.

    Raises:
        ExperienceError: Naming the step and the first problem found: a negative or non-integer
            step or weight version, an observation of the wrong type, dtype or shape, an action
            of the wrong length or dtype or with an index out of range, a tensor that is not a
            finite float32 array.
    """
    if not _is_integer(record.step) or record.step < 0:
        raise ExperienceError(f"step must be a non-negative integer, got {record.step!r}")
    where = f"step {record.step}"
    if not _is_integer(record.weight_version) or record.weight_version < 0:
        raise ExperienceError(
            f"{where}: weight_version must be a non-negative integer, got {record.weight_version!r}"
        )
    if not isinstance(record.model_name, str):
        raise ExperienceError(f"{where}: model_name must be a string, got {record.model_name!r}")
    _check_observation(record.observation, image_shape, where)
    _check_action(record.action, action_sizes, where)
    _check_tensors(record.tensors, where)


def _check_observation(observation: object, image_shape: tuple[int, int, int], where: str) -> None:
    if not isinstance(observation, np.ndarray):
        raise ExperienceError(
            f"{where}: observation must be a numpy array, got {type(observation).__name__}"
        )
    if observation.dtype != np.uint8:
        raise ExperienceError(f"{where}: observation must be uint8, got {observation.dtype}")
    matches = observation.ndim == len(image_shape) and all(
        expected in (-1, actual)
        for expected, actual in zip(image_shape, observation.shape, strict=True)
    )
    if not matches:
        wanted = tuple("any" if side == -1 else side for side in image_shape)
        raise ExperienceError(
            f"{where}: observation has shape {observation.shape}, expected {wanted}"
        )


def _check_action(action: object, action_sizes: Sequence[int], where: str) -> None:
    if not isinstance(action, np.ndarray):
        raise ExperienceError(f"{where}: action must be a numpy array, got {type(action).__name__}")
    if not np.issubdtype(action.dtype, np.integer):
        raise ExperienceError(f"{where}: action must hold integers, got dtype {action.dtype}")
    if action.shape != (len(action_sizes),):
        raise ExperienceError(
            f"{where}: action has shape {action.shape}, expected ({len(action_sizes)},) "
            "(one index per action dimension)"
        )
    for dimension, (index, size) in enumerate(zip(action.tolist(), action_sizes, strict=True)):
        if not 0 <= index < size:
            raise ExperienceError(
                f"{where}: action index {index} of dimension {dimension} is out of range "
                f"0..{size - 1}"
            )


def _check_tensors(tensors: object, where: str) -> None:
    if not isinstance(tensors, Mapping):
        raise ExperienceError(f"{where}: tensors must be a mapping, got {type(tensors).__name__}")
    for name, array in tensors.items():
        if not isinstance(name, str) or not name:
            raise ExperienceError(f"{where}: tensor names must be non-empty strings, got {name!r}")
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise ExperienceError(f"{where}: tensor {name!r} must be a float32 array, got {kind}")
        if not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise ExperienceError(
                f"{where}: tensor {name!r} has {bad} non-finite value(s) (NaN or Inf)"
            )
