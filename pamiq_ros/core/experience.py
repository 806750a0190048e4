"""Experience records: what one agent step sends to the trainer, and the checks made on arrival.

A record holds the observation the agent acted on, the action it chose (one option index per
action dimension), what its models produced that the trainer needs (named float32 tensors) and
the weight version of the model it acted with, so policy lag is measurable. Records come from
another process, so :func:`check_record` refuses anything malformed with a message that says
what is wrong and where, instead of letting it reach a buffer. No ROS import here.
"""

import math
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


MAX_TENSORS = 32
"""Most named tensors one record may carry (the curiosity mind sends 9)."""

MAX_TENSOR_VALUES = 1 << 16
"""Most float32 values in one tensor (256 KiB); the largest preset's biggest tensor holds 2048."""

OBSERVATION_ENCODING = "rgb8"
"""What a record's observation is (the agent converts what its camera sends)."""

MAX_NAME_LENGTH = 64
"""Longest tensor or model name accepted."""


@dataclass(frozen=True)
class MessageSizes:
    """The sizes an ``Experience`` message declares, read before anything is copied.

    Attributes:
        encoding: The observation's encoding.
        height: The observation's rows.
        width: The observation's columns.
        step: The observation's bytes per row.
        data_bytes: Length of the observation's data.
        action_length: Number of action indices.
        tensor_sizes: Per tensor: (name length, declared shape, number of values sent).
        model_name_length: Length of the model name.
    """

    encoding: str
    height: int
    width: int
    step: int
    data_bytes: int
    action_length: int
    tensor_sizes: Sequence[tuple[int, Sequence[int], int]]
    model_name_length: int


def check_message_sizes(
    sizes: MessageSizes, image_shape: tuple[int, int, int], action_sizes: Sequence[int]
) -> None:
    """The cheap check made before a message is unpacked: nothing larger than expected is copied.

    Args:
        sizes: What the message declares.
        image_shape: Expected ``(height, width, channels)`` of the observation.
        action_sizes: Number of options of each action dimension.

    Raises:
        ExperienceError: Naming the first size that does not fit: the observation's encoding
            (rgb8 only), sides or data length, the action's length, the number of tensors, a
            tensor's declared shape, value count or name length, or the model name's length.
    """
    height, width, channels = image_shape
    if sizes.encoding != OBSERVATION_ENCODING:
        raise ExperienceError(
            f"observation encoding is {sizes.encoding[:32]!r}, records carry {OBSERVATION_ENCODING}"
        )
    if (sizes.height, sizes.width) != (height, width):
        raise ExperienceError(
            f"observation is {sizes.width}x{sizes.height}, expected {width}x{height}"
        )
    row_bytes = width * channels
    if not row_bytes <= sizes.step <= 4 * row_bytes or sizes.data_bytes != sizes.step * height:
        raise ExperienceError(
            f"observation declares step {sizes.step} and holds {sizes.data_bytes} bytes, "
            f"expected a step of {row_bytes}..{4 * row_bytes} and step x {height} bytes"
        )
    if sizes.action_length != len(action_sizes):
        raise ExperienceError(
            f"action has {sizes.action_length} indices, expected {len(action_sizes)}"
        )
    if sizes.model_name_length > MAX_NAME_LENGTH:
        raise ExperienceError(f"model name is over {MAX_NAME_LENGTH} characters")
    if len(sizes.tensor_sizes) > MAX_TENSORS:
        raise ExperienceError(
            f"record carries {len(sizes.tensor_sizes)} tensors, at most {MAX_TENSORS} are accepted"
        )
    for index, (name_length, shape, values) in enumerate(sizes.tensor_sizes):
        if not 0 < name_length <= MAX_NAME_LENGTH:
            raise ExperienceError(
                f"tensor {index}: name of {name_length} characters (1..{MAX_NAME_LENGTH} accepted)"
            )
        if len(shape) > 4 or values > MAX_TENSOR_VALUES:
            raise ExperienceError(
                f"tensor {index}: {values} values of shape {tuple(shape)}; at most 4 dimensions "
                f"and {MAX_TENSOR_VALUES} values are accepted"
            )
        if math.prod(shape) != values:
            raise ExperienceError(f"tensor {index}: {values} values for shape {tuple(shape)}")


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_record(
    record: ExperienceRecord,
    image_shape: tuple[int, int, int],
    action_sizes: Sequence[int],
    scalars: Sequence[str] = (),
) -> None:
    """Refuses a record that does not fit the expected observation and action space.

    Args:
        record: The record to check.
        image_shape: Expected ``(height, width, channels)`` of the observation; a side given
            as ``-1`` accepts any size.
        action_sizes: Number of options of each action dimension, in order.
        scalars: Tensors that must hold exactly one value where present (figures the trainer
            reads as numbers, such as the reward).

    Raises:
        ExperienceError: Naming the step and the first problem found: a negative or non-integer
            step or weight version, an observation of the wrong type, dtype or shape, an action
            of the wrong length or dtype or with an index out of range, a tensor that is not a
            finite float32 array, a tensor named in ``scalars`` with more than one value.
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
    for name in scalars:
        if name in record.tensors and record.tensors[name].size != 1:
            raise ExperienceError(
                f"{where}: tensor {name!r} must hold one value, has shape "
                f"{record.tensors[name].shape}"
            )


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
