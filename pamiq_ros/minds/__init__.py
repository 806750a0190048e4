"""Minds: what the agent runs each step and what the trainer learns, as plain Python objects."""

MIND_NAMES = ("curiosity", "autoencoder")
"""The minds agent and trainer can run (the same on both sides): the curiosity agent, or the
light random-policy autoencoder the stack's own tests use."""


def check_action_space(mind: str, action_space: str) -> None:
    """Refuses an action space the mind cannot act in: only curiosity has the 9-head one.

    Raises:
        ValueError: If ``mind`` acts in the motion space only and ``action_space`` is another.
    """
    if mind != "curiosity" and action_space != "motion":
        raise ValueError(
            f"the {mind} mind acts in the motion action space only, not {action_space!r}"
        )
