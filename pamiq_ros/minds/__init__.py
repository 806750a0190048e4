"""Minds: what the agent runs each step and what the trainer learns, as plain Python objects."""
