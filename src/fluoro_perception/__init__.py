"""fluoro_perception: guidewire and stent perception from X-ray fluoroscopy.

The package is split into a ROS-independent core (``fluoro_perception.core``,
``fluoro_perception.sim``, ``fluoro_perception.metrics``), thin rclpy nodes
(``fluoro_perception.nodes``) and user command lines (``fluoro_perception.cli``).
Nothing here imports the offline training package ``fluoro_training``.
"""

__version__ = "0.1.0"
