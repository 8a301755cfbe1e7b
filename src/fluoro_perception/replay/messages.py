"""The messages the segmentation node publishes for a result, and writing them to a bag.

The ROS message classes are built by :mod:`fluoro_perception.nodes.conversions` (so
offline outputs are byte-for-byte the messages the node publishes) and serialized with
``rclpy.serialization``; both are imported when called, not at module import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fluoro_perception.bagio import BagWriter, get_bag_typestore
from fluoro_perception.core.types import FrameResult


def perception_messages(
    result: FrameResult,
    image: np.ndarray,
    encoding: str,
    header: Any,
    config: Any,
) -> list[tuple[str, Any]]:
    """The ``(output key, rclpy message)`` list the segmentation node publishes for a result.

    The pose outputs come from :func:`fluoro_perception.nodes.conversions.pose_messages`,
    the function the node publishes with, followed by masks, overlay and markers when
    enabled. A replay has no stale frames, so poses are never withheld.

    Parameters
    ----------
    result : FrameResult
        Pipeline output of ``image``.
    image : np.ndarray
        The decoded input frame (for the overlay).
    encoding : str
        Its encoding.
    header : std_msgs.msg.Header
        Input header (stamp and frame_id copied into every message).
    config : SegmentationNodeConfig
        Node settings (``pixel_spacing_m`` [m/px], ``min_tip_confidence``, switches).
    """
    from fluoro_perception.core.overlay import render_overlay
    from fluoro_perception.nodes import conversions as conv

    spacing = config.pixel_spacing_m
    messages: list[tuple[str, Any]] = conv.pose_messages(
        result,
        header,
        pixel_spacing_m=spacing,
        min_tip_confidence=config.min_tip_confidence,
        tracking_enabled=config.tracking_enabled,
    )
    messages.append(("guidewire_mask", conv.image_to_msg(result.guidewire_mask, "mono8", header)))
    messages.append(("stent_mask", conv.image_to_msg(result.stent_mask, "mono8", header)))
    messages.append(("labels", conv.image_to_msg(result.labels, "mono8", header)))
    if config.overlay_enabled:
        overlay = render_overlay(image, result, encoding)  # (H, W, 3) uint8 RGB
        messages.append(("overlay", conv.image_to_msg(overlay, "rgb8", header)))
    if config.markers_enabled:
        messages.append(("markers", conv.markers_msg(result, spacing, header)))
    return messages


def write_rclpy_message(
    bag: BagWriter, topic: str, msgtype: str, message: Any, log_time_ns: int
) -> None:
    """Write an rclpy message (or its CDR bytes) to a :class:`BagWriter` bag.

    The CDR of ``rclpy.serialization`` is read back into a ``rosbags`` message of the
    bag typestore and written through :meth:`BagWriter.write_message`, so the output bag
    holds exactly the bytes a ROS 2 recorder would.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        raw = bytes(message)
    else:
        from rclpy.serialization import serialize_message

        raw = serialize_message(message)
    typed = get_bag_typestore().deserialize_cdr(raw, msgtype)
    bag.write_message(topic, msgtype, typed, int(log_time_ns))
