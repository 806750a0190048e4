"""The simulated world: physics, first-person renderer, VRChat OSC input and a video stream."""
