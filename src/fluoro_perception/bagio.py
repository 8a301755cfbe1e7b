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
"""

from __future__ import annotations

import math
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Nodetype
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from fluoro_perception.core.decode import ImageDecodeError, decode_image, encode_image
from fluoro_perception.core.types import GUIDEWIRE, STENT
from fluoro_perception.sim.types import SimFrame

#: Typestore used to serialize messages (see module docstring for why Kilted).
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

_NS_PER_S = 1_000_000_000
# Marker colours (RGBA in [0, 1]) per wire instance id, cycled; stents in one colour.
_WIRE_COLORS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 0.2, 0.2, 1.0),
    (0.2, 0.6, 1.0, 1.0),
    (1.0, 0.8, 0.1, 1.0),
    (0.7, 0.3, 1.0, 1.0),
)
_STENT_COLOR = (0.1, 1.0, 0.4, 1.0)


class BagError(ValueError):
    """A bag cannot be written or read as asked (one-line message naming the bag)."""


@lru_cache(maxsize=1)
def get_bag_typestore() -> Any:
    """Return the (cached) ``rosbags`` typestore for :data:`BAG_TYPESTORE`."""
    return get_typestore(BAG_TYPESTORE)


# ----------------------------------------------------------------------------- geometry


def yaw_to_quaternion(yaw_rad: float) -> tuple[float, float, float, float]:
    """Rotation by ``yaw_rad`` [rad] about +z as a unit quaternion ``(x, y, z, w)``."""
    half = 0.5 * float(yaw_rad)
    return (0.0, 0.0, math.sin(half), math.cos(half))


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Rotation angle about +z [rad] in ``(-pi, pi]`` of a quaternion ``(x, y, z, w)``.

    Exact for pure z rotations (what this module writes); for a general rotation it is
    the yaw of its ZYX Euler decomposition.
    """
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _check_spacing(pixel_spacing_m: float) -> float:
    if not isinstance(pixel_spacing_m, int | float | np.floating) or not (
        math.isfinite(float(pixel_spacing_m)) and float(pixel_spacing_m) > 0.0
    ):
        raise ValueError(
            f"pixel_spacing_m={pixel_spacing_m!r}; expected a finite float > 0 [m/px] "
            "(set it in the frame or the dataset header)"
        )
    return float(pixel_spacing_m)


def points_px_to_m(points_px: np.ndarray, pixel_spacing_m: float) -> np.ndarray:
    """Convert image points [px] to detector-plane points [m].

    Parameters
    ----------
    points_px : np.ndarray
        ``(N, 2)`` or ``(2,)`` points ``(x, y)`` [px].
    pixel_spacing_m : float
        Size of one pixel on the detector [m/px].

    Returns
    -------
    np.ndarray
        ``(N, 3)`` (or ``(3,)``) float64 ``(x, y, 0)`` [m], image frame (x right, y down,
        z into the detector).
    """
    spacing = _check_spacing(pixel_spacing_m)
    points = np.asarray(points_px, dtype=np.float64)
    single = points.ndim == 1
    points = np.atleast_2d(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points_px has shape {np.shape(points_px)}; expected (N, 2) or (2,) [px]")
    out = np.zeros((points.shape[0], 3), dtype=np.float64)  # (N, 3)
    out[:, :2] = points * spacing
    return out[0] if single else out


def _as_points_m(points_m: np.ndarray, name: str) -> np.ndarray:
    """Accept ``(N, 2)`` or ``(N, 3)`` metres and return ``(N, 3)`` float64."""
    points = np.asarray(points_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"{name} has shape {points.shape}; expected (N, 2) or (N, 3) [m]")
    if points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((points.shape[0], 1))], axis=1)  # (N, 3)
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or inf; expected finite coordinates [m]")
    return points


def path_yaws_toward_tip(points: np.ndarray) -> np.ndarray:
    """Direction at each point of a tip-first polyline, pointing towards the tip [rad].

    Point ``i > 0`` gets ``atan2`` of ``points[i-1] - points[i]``; the tip (point 0) gets
    the direction of its first segment ``points[0] - points[1]``. This is the project's
    tip-direction convention (from the wire body towards the tip). A single point gets 0.
    """
    points = np.asarray(points, dtype=np.float64)
    yaws = np.zeros(points.shape[0], dtype=np.float64)
    if points.shape[0] < 2:
        return yaws
    delta = points[:-1, :2] - points[1:, :2]  # (N-1, 2): towards the previous (tip-side) point
    segment_yaws = np.arctan2(delta[:, 1], delta[:, 0])
    yaws[1:] = segment_yaws
    yaws[0] = segment_yaws[0]
    return yaws


# ----------------------------------------------------------------------------- messages


def _default_field(typestore: Any, spec: tuple) -> Any:
    """Default value of one field spec from ``typestore.fielddefs``.

    rosbags has no "empty message" constructor, and Marker alone has 19 fields, so the
    defaults are derived from the type definitions here.
    """
    node, detail = spec
    if node == Nodetype.NAME:
        return default_message(detail, typestore)
    if node == Nodetype.BASE:
        base = detail[0]
        if base == "string":
            return ""
        if base == "bool":
            return False
        if base in ("float32", "float64"):
            return 0.0
        return 0
    if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        inner, length = detail
        size = length if node == Nodetype.ARRAY else 0
        if inner[0] == Nodetype.BASE and inner[1][0] not in ("string", "bool"):
            # ROS 'byte' and 'char' are unsigned octets; numpy's 'byte' is int8
            dtype = {"byte": "uint8", "char": "uint8"}.get(inner[1][0], inner[1][0])
            return np.zeros(size, dtype=np.dtype(dtype))
        return [_default_field(typestore, inner) for _ in range(size)]
    raise TypeError(f"field spec {spec!r} has an unknown node type; cannot build a default")


def default_message(msgtype: str, typestore: Any | None = None, **fields: Any) -> Any:
    """Build a ``rosbags`` message of ``msgtype`` with ROS defaults, overriding ``fields``."""
    typestore = typestore or get_bag_typestore()
    if msgtype not in typestore.fielddefs:
        raise ValueError(f"message type {msgtype!r} is not in the typestore; check the spelling")
    _, field_specs = typestore.fielddefs[msgtype]
    values = {name: _default_field(typestore, spec) for name, spec in field_specs}
    unknown = set(fields) - set(values)
    if unknown:
        raise ValueError(f"{msgtype} has no fields {sorted(unknown)}; fields are {list(values)}")
    values.update(fields)
    return typestore.types[msgtype](**values)


def _check_stamp(stamp_ns: int) -> int:
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer) or stamp_ns < 0:
        raise ValueError(f"stamp_ns={stamp_ns!r}; expected an int >= 0 [ns since epoch]")
    return int(stamp_ns)


def _header(stamp_ns: int, frame_id: str) -> Any:
    typestore = get_bag_typestore()
    stamp_ns = _check_stamp(stamp_ns)
    time_type = typestore.types["builtin_interfaces/msg/Time"]
    stamp = time_type(sec=stamp_ns // _NS_PER_S, nanosec=stamp_ns % _NS_PER_S)
    return typestore.types["std_msgs/msg/Header"](stamp=stamp, frame_id=str(frame_id))


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def _pose(position_m: np.ndarray, yaw_rad: float) -> Any:
    typestore = get_bag_typestore()
    qx, qy, qz, qw = yaw_to_quaternion(yaw_rad)
    return typestore.types["geometry_msgs/msg/Pose"](
        position=typestore.types["geometry_msgs/msg/Point"](
            x=float(position_m[0]), y=float(position_m[1]), z=float(position_m[2])
        ),
        orientation=typestore.types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
    )


def _point(position_m: np.ndarray) -> Any:
    return get_bag_typestore().types["geometry_msgs/msg/Point"](
        x=float(position_m[0]), y=float(position_m[1]), z=float(position_m[2])
    )


@dataclass(frozen=True)
class MarkerSpec:
    """One visualization marker: a polyline (``line_strip``) or an ``arrow``.

    Attributes
    ----------
    namespace : str
        Marker namespace (``guidewire``, ``tip``, ``stent``).
    marker_id : int
        Id unique within the namespace.
    kind : str
        ``"line_strip"`` (all points) or ``"arrow"`` (points[0] = tail, points[1] = head).
    points_m : np.ndarray
        ``(N, 3)`` or ``(N, 2)`` points [m].
    color_rgba : tuple of float
        Colour in ``[0, 1]``.
    width_m : float
        Line width / arrow shaft diameter [m].
    """

    namespace: str
    marker_id: int
    kind: str
    points_m: np.ndarray
    color_rgba: tuple[float, float, float, float]
    width_m: float


@dataclass(frozen=True)
class DiagnosticStatusSpec:
    """One ``diagnostic_msgs/msg/DiagnosticStatus``.

    Attributes
    ----------
    name : str
        Component name (``fluoro_perception: segmentation``).
    level : int
        0 OK, 1 WARN, 2 ERROR, 3 STALE.
    message : str
        One-line summary.
    values : dict of str -> str
        Key/value details (e.g. ``{"frames_dropped": "3"}``).
    hardware_id : str
        Device identifier (may be empty).
    """

    name: str
    level: int
    message: str
    values: dict[str, str]
    hardware_id: str = ""


# ----------------------------------------------------------------------------- writer


class BagWriter:
    """Write a rosbag2 (MCAP or SQLite3) with typed helpers; use as a context manager.

    Parameters
    ----------
    path : str or Path
        Bag directory to create (rosbag2 layout: ``metadata.yaml`` + one storage file).
    storage : str
        ``"mcap"`` (default) or ``"sqlite3"``.
    overwrite : bool
        When False an existing path is an error; when True an existing bag directory
        (or empty directory) is removed first. A non-bag, non-empty directory is never
        removed.
    custom_data : dict of str -> str or None
        Stored in ``metadata.yaml`` ``custom_data`` (e.g. the generator's seed).
    compress : bool
        zstd compression: of MCAP chunks for ``mcap``, of each message for ``sqlite3``.
        Ground-truth masks shrink to a few percent; images about 2x.

    Every message is logged with receive time = its header stamp [ns] so that readers
    (and ``ros2 bag play``) replay at the recorded rate.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        storage: str = "mcap",
        overwrite: bool = False,
        custom_data: dict[str, str] | None = None,
        compress: bool = False,
    ):
        if storage not in STORAGE_PLUGINS:
            raise ValueError(f"storage={storage!r}; expected one of {sorted(STORAGE_PLUGINS)}")
        self.path = Path(path)
        self.storage = storage
        if self.path.exists():
            _clear_output(self.path, overwrite=overwrite, what="bag")
        self._writer = Writer(
            self.path, version=BAG_FORMAT_VERSION, storage_plugin=STORAGE_PLUGINS[storage]
        )
        if compress:
            # MCAP: zstd chunks (plain MCAP, read by every MCAP tool); SQLite3 has no
            # storage-side compression, so rosbag2's per-message zstd is used there
            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        for key, value in (custom_data or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"custom_data {key!r}: {value!r}; expected str keys and values")
            self._writer.set_custom_data(key, value)
        self._pixel_spacing_m: float | None = None
        self._connections: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._open = False

    # context management -------------------------------------------------------------
    def open(self) -> BagWriter:
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot create bag {self.path}: {exc}") from exc
        self._open = True
        return self

    def close(self) -> None:
        if self._open:
            self._open = False
            self._writer.close()

    def abort(self) -> None:
        """Stop writing after an error; the partial bag has no metadata.yaml."""
        if self._open:
            self._open = False
            self._writer.abort()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    @property
    def message_counts(self) -> dict[str, int]:
        """Messages written so far, per topic."""
        return dict(self._counts)

    # generic ------------------------------------------------------------------------
    def write_message(self, topic: str, msgtype: str, message: Any, stamp_ns: int) -> None:
        """Serialize ``message`` (a rosbags message of ``msgtype``) and log it at ``stamp_ns``."""
        if not self._open:
            raise BagError(f"bag {self.path} is not open; use `with BagWriter(...) as bag:`")
        if not isinstance(topic, str) or not topic.startswith("/"):
            raise ValueError(f"topic={topic!r}; expected an absolute ROS topic name like '/a/b'")
        typestore = get_bag_typestore()
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore)
            self._connections[topic] = connection
            self._counts[topic] = 0
        elif connection.msgtype != msgtype:
            raise ValueError(
                f"topic {topic} already carries {connection.msgtype}; cannot also write {msgtype}"
            )
        data = typestore.serialize_cdr(message, msgtype)
        self._writer.write(connection, _check_stamp(stamp_ns), data)
        self._counts[topic] += 1

    # typed helpers ------------------------------------------------------------------
    def write_image(
        self,
        topic: str,
        image: np.ndarray,
        stamp_ns: int,
        frame_id: str = DETECTOR_FRAME_ID,
        encoding: str = "mono8",
    ) -> None:
        """Write a ``sensor_msgs/msg/Image`` (uint8 for mono8, uint16 for mono16) [px]."""
        encoded = encode_image(image, encoding)
        message = get_bag_typestore().types[IMAGE_TYPE](
            header=_header(stamp_ns, frame_id),
            height=encoded.height,
            width=encoded.width,
            encoding=encoded.encoding,
            is_bigendian=int(encoded.is_bigendian),
            step=encoded.step,
            data=encoded.data,
        )
        self.write_message(topic, IMAGE_TYPE, message, stamp_ns)

    def write_pose(
        self,
        topic: str,
        position_m: np.ndarray,
        yaw_rad: float,
        stamp_ns: int,
        frame_id: str = DETECTOR_FRAME_ID,
    ) -> None:
        """Write a ``geometry_msgs/msg/PoseStamped``: position [m], rotation ``yaw_rad`` about z."""
        position = _as_points_m(np.reshape(position_m, (1, -1)), "position_m")[0]
        message = get_bag_typestore().types[POSE_STAMPED_TYPE](
            header=_header(stamp_ns, frame_id), pose=_pose(position, yaw_rad)
        )
        self.write_message(topic, POSE_STAMPED_TYPE, message, stamp_ns)

    def write_pose_array(
        self,
        topic: str,
        positions_m: np.ndarray,
        yaws_rad: Sequence[float],
        stamp_ns: int,
        frame_id: str = DETECTOR_FRAME_ID,
    ) -> None:
        """Write a ``geometry_msgs/msg/PoseArray`` of ``(N, 2|3)`` positions [m] and N yaws [rad]."""
        positions = (
            _as_points_m(positions_m, "positions_m") if np.size(positions_m) else np.zeros((0, 3))
        )
        yaws = np.asarray(yaws_rad, dtype=np.float64).reshape(-1)
        if yaws.shape[0] != positions.shape[0]:
            raise ValueError(
                f"{positions.shape[0]} positions but {yaws.shape[0]} yaws; expected one yaw per pose"
            )
        message = get_bag_typestore().types[POSE_ARRAY_TYPE](
            header=_header(stamp_ns, frame_id),
            poses=[_pose(p, yaw) for p, yaw in zip(positions, yaws, strict=True)],
        )
        self.write_message(topic, POSE_ARRAY_TYPE, message, stamp_ns)

    def write_path(
        self,
        topic: str,
        points_m: np.ndarray,
        stamp_ns: int,
        frame_id: str = DETECTOR_FRAME_ID,
    ) -> None:
        """Write a ``nav_msgs/msg/Path`` through ``(N, 2|3)`` points [m], in the given order.

        Each pose's orientation is :func:`path_yaws_toward_tip` (pointing to point 0);
        every pose carries the path's header.
        """
        points = _as_points_m(points_m, "points_m") if np.size(points_m) else np.zeros((0, 3))
        typestore = get_bag_typestore()
        header = _header(stamp_ns, frame_id)
        poses = [
            typestore.types[POSE_STAMPED_TYPE](header=header, pose=_pose(p, yaw))
            for p, yaw in zip(points, path_yaws_toward_tip(points), strict=True)
        ]
        message = typestore.types[PATH_TYPE](header=header, poses=poses)
        self.write_message(topic, PATH_TYPE, message, stamp_ns)

    def write_marker_array(
        self,
        topic: str,
        markers: Sequence[MarkerSpec],
        stamp_ns: int,
        frame_id: str = DETECTOR_FRAME_ID,
    ) -> None:
        """Write a ``visualization_msgs/msg/MarkerArray``; a DELETEALL marker comes first so
        that markers of the previous frame vanish in RViz."""
        typestore = get_bag_typestore()
        header = _header(stamp_ns, frame_id)
        marker_type = "visualization_msgs/msg/Marker"
        kinds = {"line_strip": 4, "arrow": 0}  # visualization_msgs/Marker constants
        out = [default_message(marker_type, header=header, action=3)]  # DELETEALL
        for spec in markers:
            if spec.kind not in kinds:
                raise ValueError(f"marker kind {spec.kind!r}; expected one of {sorted(kinds)}")
            points = _as_points_m(spec.points_m, "MarkerSpec.points_m")
            scale = typestore.types["geometry_msgs/msg/Vector3"](
                x=float(spec.width_m),
                y=float(2 * spec.width_m) if spec.kind == "arrow" else 0.0,
                z=float(2 * spec.width_m) if spec.kind == "arrow" else 0.0,
            )
            out.append(
                default_message(
                    marker_type,
                    header=header,
                    ns=spec.namespace,
                    id=int(spec.marker_id),
                    type=kinds[spec.kind],
                    action=0,
                    pose=_pose(np.zeros(3), 0.0),
                    scale=scale,
                    color=typestore.types["std_msgs/msg/ColorRGBA"](
                        *(float(c) for c in spec.color_rgba)
                    ),
                    points=[_point(p) for p in points],
                )
            )
        self.write_message(
            topic, MARKER_ARRAY_TYPE, typestore.types[MARKER_ARRAY_TYPE](markers=out), stamp_ns
        )

    def write_diagnostics(
        self,
        topic: str,
        statuses: Sequence[DiagnosticStatusSpec],
        stamp_ns: int,
        frame_id: str = "",
    ) -> None:
        """Write a ``diagnostic_msgs/msg/DiagnosticArray`` (e.g. on ``/diagnostics``)."""
        typestore = get_bag_typestore()
        status_type = typestore.types["diagnostic_msgs/msg/DiagnosticStatus"]
        key_value = typestore.types["diagnostic_msgs/msg/KeyValue"]
        status_messages = []
        for spec in statuses:
            if spec.level not in (0, 1, 2, 3):
                raise ValueError(
                    f"diagnostic level {spec.level!r} of {spec.name!r}; expected 0 OK, 1 WARN, "
                    "2 ERROR or 3 STALE"
                )
            status_messages.append(
                status_type(
                    level=int(spec.level),
                    name=str(spec.name),
                    message=str(spec.message),
                    hardware_id=str(spec.hardware_id),
                    values=[key_value(key=str(k), value=str(v)) for k, v in spec.values.items()],
                )
            )
        message = typestore.types[DIAGNOSTIC_ARRAY_TYPE](
            header=_header(stamp_ns, frame_id), status=status_messages
        )
        self.write_message(topic, DIAGNOSTIC_ARRAY_TYPE, message, stamp_ns)

    def write_sim_frame(
        self,
        frame: SimFrame,
        stamp_ns: int,
        *,
        encoding: str | None = None,
        frame_id: str = DETECTOR_FRAME_ID,
        image_topic: str = IMAGE_TOPIC,
        markers: bool = True,
    ) -> None:
        """Write one simulated frame: the image on ``image_topic`` and all GT topics.

        Parameters
        ----------
        frame : SimFrame
            Simulated frame with ground truth.
        stamp_ns : int
            Header stamp and log time [ns].
        encoding : str or None
            ``mono8`` / ``mono16``; None picks mono8 for uint8 images, else mono16.
        frame_id : str
            Frame of every message (the detector).
        image_topic : str
            Topic of the raw image.
        markers : bool
            Also write a MarkerArray with all wires, tip arrows and stent outlines.

        Notes
        -----
        GT topics (see :data:`GT_TOPIC_TYPES`): class masks as mono8 (0/255 for the
        guidewire and stent masks, class indices for ``labels``); the primary tip (wire
        with the lowest instance id) as PoseStamped; all tips as PoseArray (wire order);
        the primary centerline as Path, tip first. Tip and centerline messages are
        written even when empty (a frame without wires has an empty Path/PoseArray and
        no tip PoseStamped), so readers can tell "no wire" from "not recorded".

        The frame's pixel spacing is stored in ``custom_data`` under
        :data:`PIXEL_SPACING_KEY` (one spacing per bag: every frame of a bag must carry
        the same one, else ``ValueError``), so replay need not infer it from markers.
        """
        if not isinstance(frame, SimFrame):
            raise TypeError(f"frame is {type(frame).__name__}; expected a SimFrame")
        if encoding is None:
            encoding = "mono8" if frame.image.dtype == np.uint8 else "mono16"
        spacing = _check_spacing(frame.pixel_spacing_m)
        if self._pixel_spacing_m is None:
            self._pixel_spacing_m = spacing
            # rosbags writes custom_data into metadata.yaml at close, so setting it now
            # (after open) is kept
            self._writer.set_custom_data(PIXEL_SPACING_KEY, repr(spacing))
        elif not math.isclose(spacing, self._pixel_spacing_m, rel_tol=1e-9):
            raise ValueError(
                f"frame {frame.sequence_id}:{frame.frame_index} pixel_spacing_m={spacing!r}; "
                f"expected {self._pixel_spacing_m!r} like the earlier frames of this bag "
                "(write sequences with different spacings to separate bags)"
            )
        self.write_image(image_topic, frame.image, stamp_ns, frame_id, encoding)
        labels = np.asarray(frame.labels, dtype=np.uint8)
        wire_mask = np.where(labels == GUIDEWIRE, 255, 0).astype(np.uint8)
        stent_mask = np.where(labels == STENT, 255, 0).astype(np.uint8)
        self.write_image(GT_GUIDEWIRE_MASK_TOPIC, wire_mask, stamp_ns, frame_id, "mono8")
        self.write_image(GT_STENT_MASK_TOPIC, stent_mask, stamp_ns, frame_id, "mono8")
        self.write_image(GT_LABELS_TOPIC, labels, stamp_ns, frame_id, "mono8")

        wires = sorted(frame.wires, key=lambda wire: wire.instance_id)
        tips_m = np.array([points_px_to_m(w.tip_px, spacing) for w in wires]).reshape(-1, 3)
        tip_yaws = [float(w.tip_direction_rad) for w in wires]
        if wires:
            self.write_pose(GT_TIP_TOPIC, tips_m[0], tip_yaws[0], stamp_ns, frame_id)
        self.write_pose_array(GT_TIPS_TOPIC, tips_m, tip_yaws, stamp_ns, frame_id)
        centerline_m = (
            points_px_to_m(np.reshape(wires[0].centerline_px, (-1, 2)), spacing)
            if wires and np.size(wires[0].centerline_px)
            else np.zeros((0, 3))
        )
        self.write_path(GT_CENTERLINE_TOPIC, centerline_m, stamp_ns, frame_id)
        if markers:
            self.write_marker_array(
                GT_MARKERS_TOPIC, _frame_markers(frame, spacing), stamp_ns, frame_id
            )


def _frame_markers(frame: SimFrame, spacing: float) -> list[MarkerSpec]:
    """Markers for all wires (centerline + tip arrow) and stent outlines of a frame."""
    markers: list[MarkerSpec] = []
    for wire in frame.wires:
        color = _WIRE_COLORS[(wire.instance_id - 1) % len(_WIRE_COLORS)]
        centerline = np.reshape(wire.centerline_px, (-1, 2))
        width_m = max(float(wire.width_px), 1.0) * spacing
        if centerline.shape[0] >= 2:
            markers.append(
                MarkerSpec(
                    "guidewire",
                    wire.instance_id,
                    "line_strip",
                    points_px_to_m(centerline, spacing),
                    color,
                    width_m,
                )
            )
        tip = np.asarray(wire.tip_px, dtype=np.float64)
        arrow_length_px = 20.0
        head = tip + arrow_length_px * np.array(
            [math.cos(wire.tip_direction_rad), math.sin(wire.tip_direction_rad)]
        )
        markers.append(
            MarkerSpec(
                "tip",
                wire.instance_id,
                "arrow",
                points_px_to_m(np.stack([tip, head]), spacing),
                color,
                width_m,
            )
        )
    for stent in frame.stents:
        outline = np.reshape(stent.outline_px, (-1, 2))
        if outline.shape[0] >= 2:
            closed = np.concatenate([outline, outline[:1]], axis=0)  # close the polygon
            markers.append(
                MarkerSpec(
                    "stent",
                    stent.instance_id,
                    "line_strip",
                    points_px_to_m(closed, spacing),
                    _STENT_COLOR,
                    spacing,
                )
            )
    return markers


def _clear_output(path: Path, *, overwrite: bool, what: str) -> None:
    """Make ``path`` free for a new output, refusing to destroy anything unexpected."""
    import shutil

    if path.is_file():
        raise BagError(f"{what} output {path} is a file; expected a directory path to create")
    contents = list(path.iterdir())
    if not contents:
        path.rmdir()
        return
    if not overwrite:
        raise BagError(
            f"{what} output {path} exists and is not empty; pass --overwrite or choose a new path"
        )
    is_bag = (path / "metadata.yaml").exists() or all(
        p.is_file() and (p.suffix in STORAGE_SUFFIXES or p.name == "metadata.yaml")
        for p in contents
    )
    if not is_bag:
        raise BagError(
            f"{what} output {path} holds files that are not a rosbag2; refusing to delete it, choose a new path"
        )
    shutil.rmtree(path)


# ----------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class BagImage:
    """One decoded image message.

    Attributes
    ----------
    topic : str
        Topic it came from.
    stamp_ns : int
        Header stamp [ns].
    log_time_ns : int
        Time the recorder logged it [ns].
    frame_id : str
        Header frame.
    encoding : str
        Message encoding.
    image : np.ndarray
        ``(H, W)`` uint8 / uint16 or ``(H, W, 3)`` uint8, see
        :func:`fluoro_perception.core.decode.decode_image`.
    """

    topic: str
    stamp_ns: int
    log_time_ns: int
    frame_id: str
    encoding: str
    image: np.ndarray


@dataclass(frozen=True)
class BagGroundTruth:
    """Ground truth read back from the ``/fluoro/ground_truth/...`` topics of one stamp.

    Fields are None when their topic is absent from the bag (or no message carried this
    stamp). Positions in metres, image frame; directions about z [rad].

    Attributes
    ----------
    guidewire_mask, stent_mask : np.ndarray or None
        ``(H, W)`` uint8 0/255.
    labels : np.ndarray or None
        ``(H, W)`` uint8 class indices (``GT_CLASS_NAMES``).
    tip_position_m : np.ndarray or None
        ``(3,)`` primary tip [m].
    tip_direction_rad : float or None
        Primary tip direction [rad].
    tips_m : np.ndarray or None
        ``(N, 3)`` all tips [m].
    tip_directions_rad : np.ndarray or None
        ``(N,)`` all tip directions [rad].
    centerline_m : np.ndarray or None
        ``(N, 3)`` primary centerline, tip first [m].
    """

    guidewire_mask: np.ndarray | None = None
    stent_mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    tip_position_m: np.ndarray | None = None
    tip_direction_rad: float | None = None
    tips_m: np.ndarray | None = None
    tip_directions_rad: np.ndarray | None = None
    centerline_m: np.ndarray | None = None


@dataclass(frozen=True)
class BagFrame:
    """An image and the ground truth sharing its header stamp (None if the bag has none)."""

    image: BagImage
    ground_truth: BagGroundTruth | None = None


def _pose_position_yaw(pose: Any) -> tuple[np.ndarray, float]:
    position = np.array([pose.position.x, pose.position.y, pose.position.z], dtype=np.float64)
    q = pose.orientation
    return position, quaternion_to_yaw(q.x, q.y, q.z, q.w)


def _resolve_bag_path(path: Path) -> tuple[Path, bool]:
    """Return the path rosbags should open and whether metadata.yaml was bypassed."""
    if not path.exists():
        raise BagError(
            f"bag {path} does not exist; expected a rosbag2 directory or a .mcap/.db3 file"
        )
    if path.is_file():
        if path.suffix not in STORAGE_SUFFIXES:
            raise BagError(
                f"bag file {path} has suffix {path.suffix!r}; expected a rosbag2 directory or a "
                f"{'/'.join(STORAGE_SUFFIXES)} file"
            )
        return path, False
    if (path / "metadata.yaml").exists():
        return path, False
    storage_files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
    if len(storage_files) == 1:
        # metadata.yaml lost (e.g. a recorder killed before closing): MCAP and SQLite3
        # storage files describe their own topics, so the file alone is readable.
        return storage_files[0], True
    raise BagError(
        f"bag directory {path} has no metadata.yaml and {len(storage_files)} storage files; "
        "expected a rosbag2 directory (run `ros2 bag reindex` or pass the .mcap/.db3 file)"
    )


_MCAP_MAGIC = b"\x89MCAP0\r\n"
_MCAP_DATA_END_OPCODE = 0x0F
_MCAP_FOOTER_OPCODE = 0x02


def recover_truncated_mcap(source: Path, target: Path) -> int:
    """Copy the complete records of a cut-off MCAP file into a readable one.

    A recording killed before it closed (power loss, ``kill -9``) ends in the middle of a
    record and lacks the summary and footer, so readers refuse it. This keeps every
    complete top-level record (header, schemas, channels, whole chunks) and appends a
    DataEnd record and a footer without a summary, which readers then scan sequentially;
    what ``mcap recover`` does, written here because the ``mcap`` CLI/package is not a
    dependency and rosbags cannot read a file without its footer.

    Record framing (MCAP spec): opcode ``uint8``, length ``uint64`` little-endian, body.

    Parameters
    ----------
    source : Path
        The damaged ``.mcap`` file.
    target : Path
        Where the recovered ``.mcap`` is written.

    Returns
    -------
    int
        Bytes at the end of ``source`` that were dropped (the incomplete record).

    Raises
    ------
    BagError
        ``source`` does not start with the MCAP magic (not an MCAP file).
    """
    data = source.read_bytes()
    if not data.startswith(_MCAP_MAGIC):
        raise BagError(f"{source} does not start with the MCAP magic; it is not an MCAP file")
    end = len(_MCAP_MAGIC)
    while end + 9 <= len(data):
        opcode = data[end]
        (length,) = struct.unpack_from("<Q", data, end + 1)
        if opcode in (_MCAP_DATA_END_OPCODE, _MCAP_FOOTER_OPCODE) or end + 9 + length > len(data):
            break
        end += 9 + length
    data_end = struct.pack("<BQI", _MCAP_DATA_END_OPCODE, 4, 0)  # crc 0: not checked
    footer = struct.pack("<BQQQI", _MCAP_FOOTER_OPCODE, 20, 0, 0, 0)  # no summary section
    target.write_bytes(data[:end] + data_end + footer + _MCAP_MAGIC)
    return len(data) - end


class BagReader:
    """Read images and ground truth from a rosbag2 (directory, ``.mcap`` or ``.db3`` file).

    Parameters
    ----------
    path : str or Path
        rosbag2 directory (with ``metadata.yaml``), a directory whose metadata is lost but
        which holds one storage file, or a single ``.mcap`` / ``.db3`` file.

    Notes
    -----
    Problems with single messages (undecodable CDR, bad image buffers, a header stamp
    that cannot be paired) are counted in :attr:`skipped` (reason -> count) and the
    message is dropped; problems with the bag itself (missing or unreadable storage,
    corrupt chunk, missing topic, wrong message type) raise :class:`BagError` with one
    line naming the bag.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.storage_path, self.recovered_without_metadata = _resolve_bag_path(self.path)
        self.skipped: dict[str, int] = {}
        self._reader: AnyReader | None = None
        self._recovery_dir: tempfile.TemporaryDirectory | None = None
        #: True when the bag was a cut-off MCAP recording read through
        #: :func:`recover_truncated_mcap` (its incomplete last record is lost).
        self.recovered_truncated = False

    # context management -------------------------------------------------------------
    def _mcap_file(self) -> Path | None:
        if self.storage_path.is_file():
            return self.storage_path if self.storage_path.suffix == ".mcap" else None
        files = sorted(self.storage_path.glob("*.mcap"))
        return files[0] if len(files) == 1 else None

    def _open_recovered(self, cause: Exception) -> AnyReader | None:
        """A reader of the complete records of a cut-off MCAP, or None when not that case."""
        mcap_file = self._mcap_file()
        if mcap_file is None or "end magic" not in str(cause) and "footer" not in str(cause):
            return None
        self._recovery_dir = tempfile.TemporaryDirectory(prefix="fluoro_bag_recovered_")
        recovered = Path(self._recovery_dir.name) / mcap_file.name
        dropped_bytes = recover_truncated_mcap(mcap_file, recovered)
        reader = AnyReader([recovered], default_typestore=get_bag_typestore())
        reader.open()
        self.recovered_truncated = True
        self.skipped[f"truncated recording: last {dropped_bytes} bytes unreadable"] = 1
        # metadata.yaml (when the recorder wrote it) says how many messages there were
        try:
            document = yaml.safe_load((self.storage_path / "metadata.yaml").read_text("utf-8"))
            expected = int(document["rosbag2_bagfile_information"]["message_count"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            expected = None
        recovered_count = sum(int(conn.msgcount) for conn in reader.connections)
        if expected is not None and expected > recovered_count:
            self.skipped["messages lost in truncated recording"] = expected - recovered_count
        return reader

    def open(self) -> BagReader:
        try:
            reader = AnyReader([self.storage_path], default_typestore=get_bag_typestore())
            reader.open()
        except (AnyReaderError, OSError) as exc:
            try:
                recovered = self._open_recovered(exc)
            except Exception:  # recovery is best effort: report the original problem
                recovered = None
            if recovered is not None:
                self._reader = recovered
                return self
            raise BagError(
                f"cannot open bag {self.path}: {_one_line(exc)} (if the recording was cut off, "
                "repair it with `mcap recover` / `ros2 bag reindex` or record again)"
            ) from exc
        except Exception as exc:  # rosbags surfaces damaged storage as many error types
            raise BagError(
                f"cannot open bag {self.path}: damaged storage ({type(exc).__name__}: "
                f"{_one_line(exc)})"
            ) from exc
        self._reader = reader
        return self

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        if self._recovery_dir is not None:
            self._recovery_dir.cleanup()
            self._recovery_dir = None

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return False

    def _require_open(self) -> AnyReader:
        if self._reader is None:
            raise BagError(f"bag {self.path} is not open; use `with BagReader(path) as bag:`")
        return self._reader

    # metadata -----------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type of every topic in the bag."""
        reader = self._require_open()
        return {conn.topic: conn.msgtype for conn in reader.connections}

    def message_count(self, topic: str) -> int:
        """Number of messages on ``topic`` according to the bag's index (0 if absent)."""
        reader = self._require_open()
        return sum(conn.msgcount for conn in reader.connections if conn.topic == topic)

    @property
    def custom_data(self) -> dict[str, str]:
        """``metadata.yaml`` ``custom_data`` (str -> str); empty when the bag has none or
        is read without its metadata (a bare ``.mcap`` / ``.db3`` file).

        Read from ``metadata.yaml`` with PyYAML: rosbags 0.11's reader does not expose
        ``custom_data``. An unreadable metadata file counts as a skip and gives ``{}``.
        """
        self._require_open()
        metadata_path = self.storage_path / "metadata.yaml"
        if not self.storage_path.is_dir() or not metadata_path.is_file():
            return {}
        try:
            document = yaml.safe_load(metadata_path.read_text(encoding="utf-8"))
            custom = document["rosbag2_bagfile_information"].get("custom_data") or {}
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
            self._skip("metadata.yaml custom_data unreadable")
            return {}
        if not isinstance(custom, dict):
            self._skip("metadata.yaml custom_data unreadable")
            return {}
        return {str(key): str(value) for key, value in custom.items()}

    @property
    def pixel_spacing_m(self) -> float | None:
        """Pixel spacing [m/px] stored by :meth:`BagWriter.write_sim_frame` under
        :data:`PIXEL_SPACING_KEY`; None when absent or not a finite positive number."""
        text = self.custom_data.get(PIXEL_SPACING_KEY)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            self._skip("custom_data pixel spacing not a number")
            return None
        if not (math.isfinite(value) and value > 0.0):
            self._skip("custom_data pixel spacing not positive")
            return None
        return value

    @property
    def start_time_ns(self) -> int:
        return int(self._require_open().start_time)

    @property
    def end_time_ns(self) -> int:
        return int(self._require_open().end_time)

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _connections(self, topic: str, expected_type: str | None) -> list[Any]:
        reader = self._require_open()
        connections = [conn for conn in reader.connections if conn.topic == topic]
        if not connections:
            listing = ", ".join(f"{name} ({kind})" for name, kind in sorted(self.topics.items()))
            raise BagError(f"bag {self.path} has no topic {topic}; topics are: {listing or 'none'}")
        if expected_type is not None:
            wrong = {conn.msgtype for conn in connections} - {expected_type}
            if wrong:
                raise BagError(
                    f"topic {topic} in bag {self.path} carries {sorted(wrong)}; expected "
                    f"{expected_type} (pick another topic)"
                )
        return connections

    # iteration ----------------------------------------------------------------------
    def _raw_messages(self, connections: list[Any]) -> Iterator[tuple[Any, int, bytes]]:
        """Yield raw messages, turning storage damage into one BagError."""
        reader = self._require_open()
        read = 0
        iterator = reader.messages(connections=connections)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                # rosbags skips records whose framing is damaged without an error; the
                # index still counts them, so the difference is reported as a skip
                expected = sum(int(conn.msgcount) for conn in connections)
                if read < expected:
                    self.skipped["lost in damaged storage"] = (
                        self.skipped.get("lost in damaged storage", 0) + expected - read
                    )
                return
            except Exception as exc:  # damaged chunk / truncated file, any storage backend
                raise BagError(
                    f"bag {self.path} is damaged after {read} messages "
                    f"({type(exc).__name__}: {_one_line(exc)}); the rest cannot be read"
                ) from exc
            read += 1
            yield item

    def _deserialize(self, raw: bytes, msgtype: str) -> Any | None:
        try:
            return self._require_open().deserialize(raw, msgtype)
        except Exception:  # rosbags raises several types for malformed CDR
            self._skip(f"undecodable {msgtype}")
            return None

    def iter_messages(
        self, topic: str, expected_type: str | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(log_time_ns, message)`` of ``topic`` in log-time order."""
        connections = self._connections(topic, expected_type)
        for conn, log_time_ns, raw in self._raw_messages(connections):
            message = self._deserialize(raw, conn.msgtype)
            if message is not None:
                yield int(log_time_ns), message

    def _to_bag_image(self, topic: str, log_time_ns: int, message: Any) -> BagImage | None:
        try:
            image = decode_image(
                message.encoding,
                message.height,
                message.width,
                message.step,
                message.is_bigendian,
                message.data,
            )
        except ImageDecodeError:
            self._skip(f"undecodable image on {topic}")
            return None
        return BagImage(
            topic=topic,
            stamp_ns=stamp_to_ns(message.header.stamp),
            log_time_ns=int(log_time_ns),
            frame_id=str(message.header.frame_id),
            encoding=str(message.encoding),
            image=image,
        )

    def iter_images(self, topic: str = IMAGE_TOPIC) -> Iterator[BagImage]:
        """Yield the decoded ``sensor_msgs/msg/Image`` messages of ``topic`` in log-time order."""
        for log_time_ns, message in self.iter_messages(topic, IMAGE_TYPE):
            bag_image = self._to_bag_image(topic, log_time_ns, message)
            if bag_image is not None:
                yield bag_image

    def iter_frames(
        self, image_topic: str = IMAGE_TOPIC, *, max_pending: int = 16
    ) -> Iterator[BagFrame]:
        """Yield images of ``image_topic`` with the ground truth of the same header stamp.

        Parameters
        ----------
        image_topic : str
            Image topic.
        max_pending : int
            Frames held while waiting for their GT messages; when more are waiting the
            oldest is yielded with whatever GT arrived (bags written by
            :class:`BagWriter` complete each frame at once).

        Notes
        -----
        Pairing is by header stamp, never by arrival order. GT topics that are absent
        from the bag leave the fields None; GT messages whose image never comes are
        counted in :attr:`skipped` under ``"ground truth without image"``.
        """
        if max_pending < 1:
            raise ValueError(f"max_pending={max_pending}; expected >= 1")
        image_connections = self._connections(image_topic, IMAGE_TYPE)
        present = self.topics
        # markers duplicate the other GT topics for RViz; they are not parsed back
        gt_topics = [
            t
            for t, kind in GT_TOPIC_TYPES.items()
            if t != GT_MARKERS_TOPIC and present.get(t) == kind
        ]
        connections = list(image_connections)
        for topic in gt_topics:
            connections.extend(self._connections(topic, GT_TOPIC_TYPES[topic]))

        # stamp -> {"image": BagImage, topic: message}; "resolved" holds the GT topics that
        # arrived or can no longer arrive for that stamp (the topic moved on to a later
        # stamp: e.g. no primary-tip message on a frame without wires)
        pending: dict[int, dict[str, Any]] = {}

        def finish(stamp: int) -> BagFrame | None:
            entry = pending.pop(stamp)
            bag_image = entry.pop("image", None)
            entry.pop("resolved")
            if bag_image is None:
                self._skip("ground truth without image")
                return None
            truth = self._ground_truth(entry) if gt_topics else None
            return BagFrame(image=bag_image, ground_truth=truth)

        def complete(entry: dict[str, Any]) -> bool:
            return "image" in entry and len(entry["resolved"]) == len(gt_topics)

        for conn, log_time_ns, raw in self._raw_messages(connections):
            message = self._deserialize(raw, conn.msgtype)
            if message is None:
                continue
            if conn.topic == image_topic:
                value = self._to_bag_image(conn.topic, log_time_ns, message)
                if value is None:
                    continue
                key = "image"
            else:
                value, key = message, conn.topic
            stamp = stamp_to_ns(message.header.stamp)
            entry = pending.setdefault(stamp, {"resolved": set()})
            entry[key] = value
            if key != "image":
                for other_stamp, other in pending.items():
                    if other_stamp <= stamp:
                        other["resolved"].add(key)
            ready = [s for s, e in pending.items() if complete(e)]
            for ready_stamp in ready:
                frame = finish(ready_stamp)
                if frame is not None:
                    yield frame
            while len(pending) > max_pending:
                frame = finish(next(iter(pending)))
                if frame is not None:
                    yield frame
        for stamp in sorted(pending):
            frame = finish(stamp)
            if frame is not None:
                yield frame

    def _ground_truth(self, entry: dict[str, Any]) -> BagGroundTruth:
        def image_of(topic: str) -> np.ndarray | None:
            message = entry.get(topic)
            if message is None:
                return None
            bag_image = self._to_bag_image(topic, 0, message)
            return None if bag_image is None else bag_image.image

        tip_position_m = tip_direction_rad = None
        if GT_TIP_TOPIC in entry:
            tip_position_m, tip_direction_rad = _pose_position_yaw(entry[GT_TIP_TOPIC].pose)
        tips_m = tip_directions = None
        if GT_TIPS_TOPIC in entry:
            parsed = [_pose_position_yaw(p) for p in entry[GT_TIPS_TOPIC].poses]
            tips_m = np.array([p for p, _ in parsed], dtype=np.float64).reshape(-1, 3)
            tip_directions = np.array([yaw for _, yaw in parsed], dtype=np.float64)
        centerline_m = None
        if GT_CENTERLINE_TOPIC in entry:
            centerline_m = np.array(
                [_pose_position_yaw(p.pose)[0] for p in entry[GT_CENTERLINE_TOPIC].poses],
                dtype=np.float64,
            ).reshape(-1, 3)
        return BagGroundTruth(
            guidewire_mask=image_of(GT_GUIDEWIRE_MASK_TOPIC),
            stent_mask=image_of(GT_STENT_MASK_TOPIC),
            labels=image_of(GT_LABELS_TOPIC),
            tip_position_m=tip_position_m,
            tip_direction_rad=tip_direction_rad,
            tips_m=tips_m,
            tip_directions_rad=tip_directions,
            centerline_m=centerline_m,
        )


def open_bag(path: str | Path) -> BagReader:
    """Open a bag for reading (also usable as ``with open_bag(path) as bag:``)."""
    return BagReader(path).open()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = [
    "BAG_FORMAT_VERSION",
    "BAG_TYPESTORE",
    "DETECTOR_FRAME_ID",
    "GT_CENTERLINE_TOPIC",
    "GT_GUIDEWIRE_MASK_TOPIC",
    "GT_LABELS_TOPIC",
    "GT_MARKERS_TOPIC",
    "GT_STENT_MASK_TOPIC",
    "GT_TIPS_TOPIC",
    "GT_TIP_TOPIC",
    "GT_TOPIC_TYPES",
    "IMAGE_TOPIC",
    "PIXEL_SPACING_KEY",
    "IMAGE_TYPE",
    "MARKER_ARRAY_TYPE",
    "PATH_TYPE",
    "POSE_ARRAY_TYPE",
    "POSE_STAMPED_TYPE",
    "DIAGNOSTIC_ARRAY_TYPE",
    "DiagnosticStatusSpec",
    "GT_PREFIX",
    "STORAGE_SUFFIXES",
    "stamp_to_ns",
    "STORAGE_PLUGINS",
    "BagError",
    "BagFrame",
    "BagGroundTruth",
    "BagImage",
    "BagReader",
    "BagWriter",
    "MarkerSpec",
    "default_message",
    "get_bag_typestore",
    "open_bag",
    "path_yaws_toward_tip",
    "points_px_to_m",
    "quaternion_to_yaw",
    "yaw_to_quaternion",
]
