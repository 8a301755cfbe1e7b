"""Topic names and message types of the perception outputs, shared without importing a node.

:mod:`fluoro_perception.replay` and :mod:`fluoro_perception.nodes.bag_recorder_node` both
need the segmentation node's output topics. They read them here, in a module that
imports no project module (nor rclpy), so neither imports the other, nor the
segmentation node (which imports the node process helpers, which import the recorder).

:data:`OUTPUT_TOPIC_TYPES` is the one table of the node's outputs:
:data:`fluoro_perception.nodes.segmentation_node.OUTPUT_TOPICS` is built from it, with the
rclpy message classes in place of the type names.
"""

from __future__ import annotations

#: Namespace the perception topics live in (``config/graph.yaml`` ``namespace``).
DEFAULT_NAMESPACE = "/fluoro"
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"

#: Output key -> (topic relative to the namespace, message type) of the segmentation node.
OUTPUT_TOPIC_TYPES: dict[str, tuple[str, str]] = {
    "guidewire_mask": ("perception/guidewire/mask", "sensor_msgs/msg/Image"),
    "stent_mask": ("perception/stent/mask", "sensor_msgs/msg/Image"),
    "labels": ("perception/labels", "sensor_msgs/msg/Image"),
    "centerline": ("perception/guidewire/centerline", "nav_msgs/msg/Path"),
    "tip": ("perception/guidewire/tip", "geometry_msgs/msg/PoseStamped"),
    "tips": ("perception/guidewire/tips", "geometry_msgs/msg/PoseArray"),
    "tip_tracked": ("perception/guidewire/tip_tracked", "nav_msgs/msg/Odometry"),
    "stent_pose": ("perception/stent/pose", "geometry_msgs/msg/PoseStamped"),
    "stent_outline": ("perception/stent/outline", "geometry_msgs/msg/PolygonStamped"),
    "overlay": ("perception/overlay", "sensor_msgs/msg/Image"),
    "markers": ("perception/markers", "visualization_msgs/msg/MarkerArray"),
}


def ros_type_name(msg_class: type) -> str:
    """``sensor_msgs.msg.Image`` class -> ``"sensor_msgs/msg/Image"``."""
    return f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"


def perception_topics(namespace: str = DEFAULT_NAMESPACE) -> dict[str, tuple[str, str]]:
    """Output key -> ``(absolute topic, message type)`` of the segmentation node."""
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return {
        key: (f"{prefix}/{relative}", msgtype)
        for key, (relative, msgtype) in OUTPUT_TOPIC_TYPES.items()
    }


def recorded_topic_types(namespace: str = DEFAULT_NAMESPACE) -> dict[str, str]:
    """Topic -> type of everything the recorder keeps: perception outputs + ``/diagnostics``."""
    topics = {topic: kind for topic, kind in perception_topics(namespace).values()}
    topics[DIAGNOSTICS_TOPIC] = DIAGNOSTICS_TYPE
    return topics
