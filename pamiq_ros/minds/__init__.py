"""Minds: what the agent runs each step and what the trainer learns, as plain Python objects."""

MIND_NAMES = ("curiosity", "autoencoder")
"""The minds agent and trainer can run (the same on both sides): the curiosity agent, or the
light random-policy autoencoder the stack's own tests use."""
