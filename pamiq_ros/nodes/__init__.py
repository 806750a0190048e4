"""One file per node: ROS wiring (topics, services, parameters) around plain Python objects."""
