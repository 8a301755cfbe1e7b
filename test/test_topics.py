"""The shared topic table (``fluoro_perception.topics``) is the segmentation node's."""

from __future__ import annotations

import subprocess
import sys

from fluoro_perception.topics import (
    OUTPUT_TOPIC_TYPES,
    perception_topics,
    recorded_topic_types,
    ros_type_name,
)


def test_output_topic_types_are_the_segmentation_nodes_output_topics() -> None:
    from fluoro_perception.nodes.segmentation_node import DIAGNOSTICS_TOPIC, OUTPUT_TOPICS

    from_node = {
        key: (relative, ros_type_name(cls)) for key, (relative, cls) in OUTPUT_TOPICS.items()
    }
    assert list(from_node.items()) == list(OUTPUT_TOPIC_TYPES.items())
    assert DIAGNOSTICS_TOPIC in recorded_topic_types()


def test_topics_are_absolute_in_the_namespace() -> None:
    assert perception_topics()["labels"] == ("/fluoro/perception/labels", "sensor_msgs/msg/Image")
    assert perception_topics("/")["tip"][0] == "/perception/guidewire/tip"
    assert recorded_topic_types("ns/")["/diagnostics"] == "diagnostic_msgs/msg/DiagnosticArray"


def test_importing_topics_imports_no_ros_and_no_node() -> None:
    code = (
        "import sys, fluoro_perception.topics, fluoro_perception.replay, fluoro_perception.bagio; "
        "print(sorted(m for m in sys.modules if m == 'rclpy' or m.startswith('fluoro_perception.nodes')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
