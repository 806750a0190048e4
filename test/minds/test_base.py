"""Device and precision parameters, and the light autoencoder mind."""

import math

import numpy as np
import pytest
import torch

from pamiq_ros.core.precision import resolve_device
from pamiq_ros.minds.autoencoder import AutoencoderMind
from pamiq_ros.models.autoencoder import MODEL_NAME


def test_cpu_resolves_and_bad_devices_or_precisions_are_refused_clearly() -> None:
    assert resolve_device("cpu", "float32") == (torch.device("cpu"), None)
    assert resolve_device("cpu", "bfloat16") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_device("cpu", "float8")
    with pytest.raises(ValueError, match="device must be cpu or cuda"):
        resolve_device("mps", "float32")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu please", "float32")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA"):
            resolve_device("cuda", "float32")


def test_autoencoder_mind_sends_each_frame_at_once_with_its_version() -> None:
    mind = AutoencoderMind(seed=1)
    assert mind.act(1, None).records == ()
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    step = mind.act(2, frame)
    (record,) = step.records
    assert record.step == 2 and record.model_name == MODEL_NAME and record.weight_version == 0
    np.testing.assert_array_equal(record.action, step.choice.indices())
    assert math.isfinite(mind.figures()["reconstruction_error"])
    state = mind.state_dict()
    other = AutoencoderMind(seed=7)
    other.load_state_dict(state)
    assert other.act(3, frame).choice == mind.act(3, frame).choice
    with pytest.raises(ValueError, match="not an autoencoder mind state"):
        other.load_state_dict({})
