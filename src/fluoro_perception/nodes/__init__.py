"""ROS 2 nodes of fluoro_perception (thin: convert messages, call the core, publish).

* :mod:`.segmentation_node` - lifecycle node: frames in, perception out.
* :mod:`.sim_node` - simulated frames and ground truth.
* :mod:`.params` - the typed node configs mirrored as ROS parameters.
* :mod:`.conversions` - numpy / core results <-> rclpy messages.
* :mod:`.graph` - ``config/graph.yaml``: the node graph as data.

Importing this package does not import rclpy; the node modules do.
"""
