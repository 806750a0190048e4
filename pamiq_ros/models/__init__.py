"""Torch modules the agent acts with and the trainers that teach them (no ROS imports)."""
