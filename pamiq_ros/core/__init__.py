"""ROS-free building blocks: step timing, action space, policies, buffers and trainers."""
