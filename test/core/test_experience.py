import dataclasses
import re

import numpy as np
import pytest

from pamiq_ros.core.experience import (
    ExperienceError,
    ExperienceRecord,
    MessageSizes,
    check_message_sizes,
    check_record,
)

SHAPE = (12, 16, 3)
SIZES = (3, 3, 3, 2, 2)


def make_record(**changes) -> ExperienceRecord:
    record = ExperienceRecord(
        step=5,
        observation=np.zeros(SHAPE, dtype=np.uint8),
        action=np.array([1, 2, 0, 1, 0], dtype=np.int64),
        model_name="autoencoder",
        weight_version=3,
        tensors={"hidden": np.ones((2, 4), dtype=np.float32)},
    )
    return dataclasses.replace(record, **changes)


def test_valid_record_passes():
    check_record(make_record(), SHAPE, SIZES)
    check_record(make_record(tensors={}, step=0, weight_version=0), SHAPE, SIZES)
    check_record(make_record(action=np.array([2, 2, 2, 1, 1], dtype=np.int32)), SHAPE, SIZES)


def test_any_size_wildcard():
    check_record(make_record(observation=np.zeros((7, 9, 3), np.uint8)), (-1, -1, 3), SIZES)
    with pytest.raises(ExperienceError, match="expected"):
        check_record(make_record(observation=np.zeros((7, 9, 4), np.uint8)), (-1, -1, 3), SIZES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"step": -1}, "step must be a non-negative integer"),
        ({"step": 1.5}, "step must be a non-negative integer"),
        ({"weight_version": -2}, "step 5: weight_version"),
        ({"model_name": 7}, "model_name must be a string"),
        ({"observation": np.zeros((12, 16), np.uint8)}, r"\(12, 16\), expected \(12, 16, 3\)"),
        ({"observation": np.zeros(SHAPE, np.float32)}, "observation must be uint8, got float32"),
        ({"observation": [[0]]}, "observation must be a numpy array, got list"),
        ({"action": np.array([1, 1, 1, 1])}, r"action has shape \(4,\), expected \(5,\)"),
        ({"action": np.array([0, 0, 3, 0, 0])}, "index 3 of dimension 2 is out of range 0..2"),
        ({"action": np.array([0, 0, 0, -1, 0])}, "index -1 of dimension 3"),
        ({"action": np.zeros(5, np.float32)}, "action must hold integers"),
        ({"tensors": {"h": np.array([1.0, np.nan], np.float32)}}, "'h' has 1 non-finite"),
        ({"tensors": {"h": np.array([np.inf], np.float32)}}, "non-finite"),
        ({"tensors": {"h": np.zeros(2, np.float64)}}, "'h' must be a float32 array, got float64"),
        ({"tensors": {"": np.zeros(2, np.float32)}}, "non-empty strings"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(changes, message):
    with pytest.raises(ExperienceError, match=message):
        check_record(make_record(**changes), SHAPE, SIZES)


def test_error_is_a_value_error_naming_the_step():
    with pytest.raises(ValueError, match=r"^step 5: "):
        check_record(make_record(weight_version=-1), SHAPE, SIZES)


def sizes(**changes) -> MessageSizes:
    declared = {
        "encoding": "rgb8", "height": 12, "width": 16, "step": 48, "data_bytes": 576,
        "action_length": len(SIZES), "tensor_sizes": [(3, [2, 2], 4)], "model_name_length": 5,
        **changes,
    }  # fmt: skip
    return MessageSizes(**declared)


def test_declared_sizes_that_fit_pass():
    check_message_sizes(sizes(), SHAPE, SIZES)
    check_message_sizes(sizes(step=52, data_bytes=624), SHAPE, SIZES)  # padded rows


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"width": 1440, "height": 1440}, "observation is 1440x1440, expected 16x12"),
        ({"encoding": "yuv422"}, "observation encoding is 'yuv422', records carry rgb8"),
        ({"step": 47, "data_bytes": 564}, "declares step 47"),
        ({"data_bytes": 6_000_000}, "holds 6000000 bytes"),
        ({"action_length": 9}, "action has 9 indices"),
        ({"model_name_length": 65}, "model name is over 64"),
        ({"tensor_sizes": [(1, [1], 1)] * 33}, "33 tensors, at most 32"),
        ({"tensor_sizes": [(0, [1], 1)]}, "tensor 0: name of 0 characters"),
        ({"tensor_sizes": [(1, [1_550_000], 1_550_000)]}, "at most 4 dimensions and 65536"),
        ({"tensor_sizes": [(1, [1] * 5, 1)]}, "at most 4 dimensions"),
        ({"tensor_sizes": [(1, [3, 4], 11)]}, "11 values for shape (3, 4)"),
    ],
)
def test_declared_sizes_that_do_not_fit_are_refused_before_any_copy(changes, message):
    with pytest.raises(ExperienceError, match=re.escape(message)):
        check_message_sizes(sizes(**changes), SHAPE, SIZES)


def test_a_figure_the_trainer_reads_as_a_number_must_hold_one_value():
    """The record that killed the trainer (issue 10): a reward of three values."""
    record = make_record(tensors={"raw_reward": np.zeros(3, np.float32)})
    check_record(record, SHAPE, SIZES)  # any shape is a valid tensor...
    with pytest.raises(ExperienceError, match="tensor 'raw_reward' must hold one value"):
        check_record(record, SHAPE, SIZES, scalars=("raw_reward", "value"))
    check_record(make_record(tensors={"value": np.zeros((), np.float32)}), SHAPE, SIZES,
                 scalars=("value",))  # fmt: skip
