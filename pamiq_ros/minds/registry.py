"""The minds by name: one place that says what each name builds on the agent's side.

Agent and trainer run the same mind (:data:`pamiq_ros.minds.MIND_NAMES`); the trainer's learner
for each name is built by ``pamiq_ros.nodes.trainer.build_learner`` from its settings.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pamiq_ros.minds import MIND_NAMES, check_action_space
from pamiq_ros.minds.autoencoder import AutoencoderMind
from pamiq_ros.minds.base import ActingMind
from pamiq_ros.minds.curiosity import CuriosityMind, Hearing
from pamiq_ros.models.curiosity import DEFAULT_CURIOSITY_REWARD


@dataclass(frozen=True)
class MindOptions:
    """What any mind may be built with (each takes the options it needs)."""

    seed: int = 0
    preset: str = "tiny"
    policy: str = "ppo"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype | None = None
    modalities: str = "image"
    hearing: Hearing | None = None
    action_space: str = "motion"
    reward: str = DEFAULT_CURIOSITY_REWARD


@dataclass(frozen=True)
class MindKind:
    """One mind: how to build its acting side, and a few words on it for logs."""

    build: Callable[[MindOptions], ActingMind]
    describe: Callable[[MindOptions], str]


ACTING_MINDS: dict[str, MindKind] = {
    "curiosity": MindKind(
        lambda o: CuriosityMind(
            o.preset,
            o.seed,
            o.policy,
            o.device,
            o.dtype,
            o.modalities,
            o.hearing,
            o.action_space,
            o.reward,
        ),
        lambda o: (
            f"curiosity mind: preset {o.preset}, {o.modalities}, {o.action_space} actions, "
            f"{o.policy} policy, reward {o.reward}, {o.device}"
        ),
    ),
    "autoencoder": MindKind(
        lambda o: AutoencoderMind(_motion_only(o).seed),
        lambda o: "autoencoder mind: random policy",
    ),
}
assert tuple(ACTING_MINDS) == MIND_NAMES, "every mind name has its builder"


def _motion_only(options: MindOptions) -> MindOptions:
    check_action_space("autoencoder", options.action_space)
    return options


def build_acting_mind(name: str, options: MindOptions) -> ActingMind:
    """The acting side of the named mind.

    Raises:
        ValueError: If no mind has that name.
    """
    if name not in ACTING_MINDS:
        raise ValueError(f"mind must be one of {list(ACTING_MINDS)}, got {name!r}")
    return ACTING_MINDS[name].build(options)
