"""The light mind: a random policy, and a frame autoencoder learned from what it sees.

It keeps the stack's learning loop (experience, training, weight sync) running with a model
small enough for any machine, and is what the infrastructure tests use. Its figure is the
acting copy's reconstruction error of the newest frame.
"""

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from typing_extensions import override

from pamiq_ros.core.experience import ExperienceRecord
from pamiq_ros.core.policy import Observation, RandomPolicy
from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.minds.base import ActingMind, ActingStep
from pamiq_ros.models.autoencoder import MODEL_NAME, build_acting_model, reconstruction_error


class AutoencoderMind(ActingMind):
    """Acts at random and runs the acting autoencoder on each frame."""

    def __init__(self, seed: int = 0) -> None:
        """Creates the mind; ``seed`` seeds the policy and the model's initial weights."""
        super().__init__({MODEL_NAME: SwappableModel(MODEL_NAME, build_acting_model)}, MODEL_NAME)
        self._policy = RandomPolicy(seed)
        self._reconstruction_error = math.nan

    @override
    def act(self, step: int, observation: Observation | None) -> ActingStep:
        choice = self._policy.act(observation)
        if observation is None:
            return ActingStep(choice)
        model, version = self.models[MODEL_NAME].current()
        with torch.inference_mode():
            self._reconstruction_error = reconstruction_error(model, observation)
        record = ExperienceRecord(
            step=step,
            observation=observation,
            action=np.asarray(choice.indices(), dtype=np.int64),
            model_name=MODEL_NAME,
            weight_version=version,
        )
        return ActingStep(choice, (record,))

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"policy": self._policy.state_dict()}

    @override
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self._policy.load_state_dict(state["policy"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"not an autoencoder mind state: {error}") from error

    @override
    def figures(self) -> dict[str, float]:
        return {"reconstruction_error": self._reconstruction_error}
