"""rosbag2 reading and writing without ROS, built on the pure-Python ``rosbags`` library.

Used by ``fluoro-sim bag`` (writing simulated sequences with ground truth) and by the
``fluoro-perception replay`` / ``infer`` commands (reading recorded or simulated bags).
No rclpy import: the messages are ``rosbags`` dataclasses with the field layout of the
ROS 2 messages, serialized as CDR exactly as a ROS 2 recorder writes them.

Conventions (see ``docs/bag_format.md``):

* Images: ``sensor_msgs/msg/Image`` ``mono8`` or ``mono16`` on :data:`IMAGE_TOPIC`,
  ``frame_id`` :data:`DETECTOR_FRAME_ID`. The receive (log) time of every message equals
  its header stamp [ns].
* Ground-truth positions are METRES in the image frame: x right, y down, z into the
  detector (z = 0 on the detector plane); ``x_m = x_px * pixel_spacing_m``. Directions
  are rotations about z by ``atan2(dy, dx)`` [rad] (the project's angle convention).

Typestore: :data:`BAG_TYPESTORE` is ROS 2 Kilted, the distribution of the rclpy wheels
this project runs on. The message definitions used here (Image, PoseStamped, PoseArray,
Path, MarkerArray, DiagnosticArray) have the same RIHS01 type hashes in the Humble, Iron,
Jazzy, Kilted and Lyrical stores (checked in ``test/sim/test_bag.py``), so ``ros2 bag``
of Jazzy and newer (which read rosbag2 metadata version 9) accept the bags.

Modules (every public name is re-exported here; import from ``fluoro_perception.bagio``):

* :mod:`~fluoro_perception.bagio.formats`: typestore, storage plugins, topic and message
  type names, :class:`BagError`;
* :mod:`~fluoro_perception.bagio.coordinates`: pixels <-> metres, yaw <-> quaternion;
* :mod:`~fluoro_perception.bagio.messages`: building ``rosbags`` messages (headers,
  poses, defaults) and the marker / diagnostic specs;
* :mod:`~fluoro_perception.bagio.markers`: the RViz markers of a simulated frame;
* :mod:`~fluoro_perception.bagio.storage`: bag paths on disk, clearing an output path,
  recovering a cut-off MCAP;
* :mod:`~fluoro_perception.bagio.frames`: the records the reader yields;
* :mod:`~fluoro_perception.bagio.writer`: :class:`BagWriter`;
* :mod:`~fluoro_perception.bagio.reader`: :class:`BagReader`, :func:`open_bag`.

Imports: core (image codec, class ids) and :mod:`fluoro_perception.sim.types` only;
never the ROS nodes.
"""

from fluoro_perception.bagio.coordinates import (
    path_yaws_toward_tip,
    points_px_to_m,
    quaternion_to_yaw,
    yaw_to_quaternion,
)
from fluoro_perception.bagio.formats import (
    BAG_FORMAT_VERSION,
    BAG_TYPESTORE,
    DETECTOR_FRAME_ID,
    DIAGNOSTIC_ARRAY_TYPE,
    GT_CENTERLINE_TOPIC,
    GT_GUIDEWIRE_MASK_TOPIC,
    GT_LABELS_TOPIC,
    GT_MARKERS_TOPIC,
    GT_PREFIX,
    GT_STENT_MASK_TOPIC,
    GT_TIP_TOPIC,
    GT_TIPS_TOPIC,
    GT_TOPIC_TYPES,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    MARKER_ARRAY_TYPE,
    PATH_TYPE,
    PIXEL_SPACING_KEY,
    POSE_ARRAY_TYPE,
    POSE_STAMPED_TYPE,
    STORAGE_PLUGINS,
    STORAGE_SUFFIXES,
    BagError,
    get_bag_typestore,
)
from fluoro_perception.bagio.frames import BagFrame, BagGroundTruth, BagImage
from fluoro_perception.bagio.messages import (
    DiagnosticStatusSpec,
    MarkerSpec,
    default_message,
    stamp_to_ns,
)
from fluoro_perception.bagio.reader import BagReader, open_bag
from fluoro_perception.bagio.storage import recover_truncated_mcap
from fluoro_perception.bagio.writer import BagWriter

__all__ = [
    "BAG_FORMAT_VERSION",
    "BAG_TYPESTORE",
    "BagError",
    "BagFrame",
    "BagGroundTruth",
    "BagImage",
    "BagReader",
    "BagWriter",
    "DETECTOR_FRAME_ID",
    "DIAGNOSTIC_ARRAY_TYPE",
    "DiagnosticStatusSpec",
    "GT_CENTERLINE_TOPIC",
    "GT_GUIDEWIRE_MASK_TOPIC",
    "GT_LABELS_TOPIC",
    "GT_MARKERS_TOPIC",
    "GT_PREFIX",
    "GT_STENT_MASK_TOPIC",
    "GT_TIPS_TOPIC",
    "GT_TIP_TOPIC",
    "GT_TOPIC_TYPES",
    "IMAGE_TOPIC",
    "IMAGE_TYPE",
    "MARKER_ARRAY_TYPE",
    "MarkerSpec",
    "PATH_TYPE",
    "PIXEL_SPACING_KEY",
    "POSE_ARRAY_TYPE",
    "POSE_STAMPED_TYPE",
    "STORAGE_PLUGINS",
    "STORAGE_SUFFIXES",
    "default_message",
    "get_bag_typestore",
    "open_bag",
    "path_yaws_toward_tip",
    "points_px_to_m",
    "quaternion_to_yaw",
    "recover_truncated_mcap",
    "stamp_to_ns",
    "yaw_to_quaternion",
]
