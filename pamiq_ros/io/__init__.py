"""Conversions between the world's formats and the project's: images, OSC, capture sources."""
