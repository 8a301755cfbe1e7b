"""Writing a rosbag2 (MCAP or SQLite3) with typed helpers: :class:`BagWriter`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Writer, WriterError

from fluoro_perception.bagio.coordinates import (
    _as_points_m,
    _check_spacing,
    path_yaws_toward_tip,
    points_px_to_m,
)
from fluoro_perception.bagio.formats import (
    BAG_FORMAT_VERSION,
    DETECTOR_FRAME_ID,
    DIAGNOSTIC_ARRAY_TYPE,
    GT_CENTERLINE_TOPIC,
    GT_GUIDEWIRE_MASK_TOPIC,
    GT_LABELS_TOPIC,
    GT_MARKERS_TOPIC,
    GT_STENT_MASK_TOPIC,
    GT_TIP_TOPIC,
    GT_TIPS_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    MARKER_ARRAY_TYPE,
    PATH_TYPE,
    PIXEL_SPACING_KEY,
    POSE_ARRAY_TYPE,
    POSE_STAMPED_TYPE,
    STORAGE_PLUGINS,
    BagError,
    get_bag_typestore,
)
from fluoro_perception.bagio.markers import frame_markers
from fluoro_perception.bagio.messages import (
    DiagnosticStatusSpec,
    MarkerSpec,
    _check_stamp,
    _header,
    _point,
    _pose,
    default_message,
)
from fluoro_perception.bagio.storage import _clear_output
from fluoro_perception.core.decode import encode_image
from fluoro_perception.core.types import GUIDEWIRE, STENT
from fluoro_perception.sim.types import SimFrame


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
                GT_MARKERS_TOPIC, frame_markers(frame, spacing), stamp_ns, frame_id
            )
