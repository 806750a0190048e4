"""``Experience`` messages <-> :class:`ExperienceRecord`, with checks on what arrives."""

import numpy as np
from pamiq_ros_interfaces.msg import Experience, NamedTensor

from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.io.image_codec import (
    ImageFields,
    ImageFormatError,
    decode_image,
    encode_image,
    to_rgb,
)


def record_to_message(record: ExperienceRecord) -> Experience:
    """Packs a record into a message (header stamp left to the caller)."""
    message = Experience(step=record.step, model_name=record.model_name)
    message.weight_version = record.weight_version
    encode_image(record.observation, "rgb8").fill(message.observation)
    message.action = [int(index) for index in record.action]
    message.tensors = [
        NamedTensor(
            name=name,
            shape=[int(side) for side in array.shape],
            data=np.ascontiguousarray(array, dtype=np.float32).ravel(),
        )
        for name, array in record.tensors.items()
    ]
    return message


def message_to_record(message: Experience) -> ExperienceRecord:
    """Unpacks a message into a record.

    Raises:
        ExperienceError: If the observation or a tensor is malformed (the message says which).
    """
    image = message.observation
    try:
        pixels = decode_image(ImageFields.of_message(image))
    except ImageFormatError as error:
        raise ExperienceError(f"step {message.step}: observation: {error}") from error
    tensors = {}
    for tensor in message.tensors:
        shape = tuple(int(side) for side in tensor.shape)
        data = np.asarray(tensor.data, dtype=np.float32)
        if int(np.prod(shape, dtype=np.int64)) != data.size:
            raise ExperienceError(
                f"step {message.step}: tensor {tensor.name!r} has {data.size} values "
                f"for shape {shape}"
            )
        tensors[tensor.name] = data.reshape(shape)
    return ExperienceRecord(
        step=int(message.step),
        observation=to_rgb(pixels, image.encoding),
        action=np.asarray(message.action, dtype=np.int64),
        model_name=str(message.model_name),
        weight_version=int(message.weight_version),
        tensors=tensors,
    )
