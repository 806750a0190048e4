"""One description of the nodes, read by `pamiq-ros launch` and by the launch files."""
