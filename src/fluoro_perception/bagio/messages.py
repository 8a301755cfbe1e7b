"""Building ``rosbags`` messages: defaults, headers, poses, and the marker / diagnostic specs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype

from fluoro_perception.bagio.coordinates import quaternion_to_yaw, yaw_to_quaternion
from fluoro_perception.bagio.formats import get_bag_typestore

_NS_PER_S = 1_000_000_000


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


def _pose_position_yaw(pose: Any) -> tuple[np.ndarray, float]:
    position = np.array([pose.position.x, pose.position.y, pose.position.z], dtype=np.float64)
    q = pose.orientation
    return position, quaternion_to_yaw(q.x, q.y, q.z, q.w)
