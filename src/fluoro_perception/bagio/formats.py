"""The bag format: typestore, storage plugins, topic and message type names, errors.

See ``docs/bag_format.md`` and the package docstring of :mod:`fluoro_perception.bagio`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import Stores, get_typestore

#: Typestore used to serialize messages (see the package docstring for why Kilted).
BAG_TYPESTORE: Stores = Stores.ROS2_KILTED
#: rosbag2 metadata version written (9 = Jazzy and newer).
BAG_FORMAT_VERSION = 9
#: CLI name -> rosbags storage plugin.
STORAGE_PLUGINS: dict[str, StoragePlugin] = {
    "mcap": StoragePlugin.MCAP,
    "sqlite3": StoragePlugin.SQLITE3,
}
#: Single-file storage suffixes that :class:`BagReader` accepts directly.
STORAGE_SUFFIXES: tuple[str, ...] = (".mcap", ".db3")

IMAGE_TOPIC = "/fluoro/image_raw"
DETECTOR_FRAME_ID = "fluoro_detector"
GT_PREFIX = "/fluoro/ground_truth"
GT_GUIDEWIRE_MASK_TOPIC = f"{GT_PREFIX}/guidewire/mask"
GT_STENT_MASK_TOPIC = f"{GT_PREFIX}/stent/mask"
GT_LABELS_TOPIC = f"{GT_PREFIX}/labels"
GT_TIP_TOPIC = f"{GT_PREFIX}/guidewire/tip"
GT_TIPS_TOPIC = f"{GT_PREFIX}/guidewire/tips"
GT_CENTERLINE_TOPIC = f"{GT_PREFIX}/guidewire/centerline"
GT_MARKERS_TOPIC = f"{GT_PREFIX}/markers"
#: ``metadata.yaml`` ``custom_data`` key holding the pixel spacing of a simulator bag
#: [m/px] as ``repr(float)``; written by :meth:`BagWriter.write_sim_frame`.
PIXEL_SPACING_KEY = "fluoro_sim.pixel_spacing_m"

IMAGE_TYPE = "sensor_msgs/msg/Image"
POSE_STAMPED_TYPE = "geometry_msgs/msg/PoseStamped"
POSE_ARRAY_TYPE = "geometry_msgs/msg/PoseArray"
PATH_TYPE = "nav_msgs/msg/Path"
MARKER_ARRAY_TYPE = "visualization_msgs/msg/MarkerArray"
DIAGNOSTIC_ARRAY_TYPE = "diagnostic_msgs/msg/DiagnosticArray"

#: ground-truth topic -> message type, as written by :meth:`BagWriter.write_sim_frame`.
GT_TOPIC_TYPES: dict[str, str] = {
    GT_GUIDEWIRE_MASK_TOPIC: IMAGE_TYPE,
    GT_STENT_MASK_TOPIC: IMAGE_TYPE,
    GT_LABELS_TOPIC: IMAGE_TYPE,
    GT_TIP_TOPIC: POSE_STAMPED_TYPE,
    GT_TIPS_TOPIC: POSE_ARRAY_TYPE,
    GT_CENTERLINE_TOPIC: PATH_TYPE,
    GT_MARKERS_TOPIC: MARKER_ARRAY_TYPE,
}


class BagError(ValueError):
    """A bag cannot be written or read as asked (one-line message naming the bag)."""


@lru_cache(maxsize=1)
def get_bag_typestore() -> Any:
    """Return the (cached) ``rosbags`` typestore for :data:`BAG_TYPESTORE`."""
    return get_typestore(BAG_TYPESTORE)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
