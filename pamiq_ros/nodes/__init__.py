"""One file per node: ROS wiring (topics, services, parameters) around plain Python objects."""

from pamiq_ros.nodes._shutdown import catch_stop_signals_in_node_processes

# Before a node module imports torch and rclpy (seconds): a Ctrl-C then is a clean stop too.
catch_stop_signals_in_node_processes()
