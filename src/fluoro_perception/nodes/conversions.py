"""numpy / core results <-> rclpy messages.

Every builder takes the ``std_msgs/Header`` of the input image and copies it into the
message, so that every output carries the input's stamp and frame_id (pairing by stamp,
never by "latest").

Positions are published in METRES in the image frame (the ``frame_id`` of the input
image): x to the right, y down, z into the detector, origin at the centre of pixel
(0, 0), so ``x_m = x_px * pixel_spacing_m``. Directions are rotations about +z by the
image-plane angle ``atan2(dy, dx)`` [rad] (:mod:`fluoro_perception.core.types`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import (
    Point,
    Point32,
    Polygon,
    PolygonStamped,
    Pose,
    PoseArray,
    PoseStamped,
    Quaternion,
    Vector3,
)
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from fluoro_perception.core.decode import decode_image_msg, encode_image
from fluoro_perception.core.types import FrameResult, StentDetection, TipTrack, WireDetection

#: child_frame_id of the tracked-tip odometry.
TIP_CHILD_FRAME = "guidewire_tip"
#: Variance given to pose/twist components the 2-D image measurement does not observe
#: (z, roll, pitch, and yaw where no estimate exists) [m^2] / [rad^2].
UNOBSERVED_VARIANCE = 1.0e6

_NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> ``builtin_interfaces/Time``."""
    if stamp_ns < 0:
        raise ValueError(f"stamp_ns={stamp_ns} is negative; ROS time stamps start at 0")
    seconds, nanoseconds = divmod(int(stamp_ns), _NS_PER_S)
    return Time(sec=seconds, nanosec=nanoseconds)


def make_header(stamp_ns: int, frame_id: str) -> Header:
    """A header with the given stamp [ns] and frame."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def copy_header(header: Header) -> Header:
    """An independent copy of a header (messages must not share mutable headers)."""
    return Header(
        stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id
    )


def yaw_quaternion(angle_rad: float) -> Quaternion:
    """Rotation about +z by ``angle_rad`` [rad] (image frame: z into the detector)."""
    half = 0.5 * float(angle_rad)
    return Quaternion(x=0.0, y=0.0, z=math.sin(half), w=math.cos(half))


def pixel_to_point(position_px: np.ndarray, pixel_spacing_m: float) -> Point:
    """An ``(x, y)`` position [px] -> ``geometry_msgs/Point`` [m] in the image plane (z = 0)."""
    return Point(
        x=float(position_px[0]) * pixel_spacing_m, y=float(position_px[1]) * pixel_spacing_m, z=0.0
    )


def image_to_msg(image: np.ndarray, encoding: str, header: Header) -> Image:
    """A numpy image -> ``sensor_msgs/Image`` (layouts as :func:`core.decode.encode_image`)."""
    encoded = encode_image(image, encoding)
    return Image(
        header=copy_header(header),
        height=encoded.height,
        width=encoded.width,
        encoding=encoded.encoding,
        is_bigendian=int(encoded.is_bigendian),
        step=encoded.step,
        # bytes is the fast path into the message's array('B') (a numpy array is
        # copied element by element, ~40x slower at 512x512)
        data=encoded.data.tobytes(),
    )


def msg_to_image(msg: Image) -> np.ndarray:
    """``sensor_msgs/Image`` -> numpy via :func:`core.decode.decode_image_msg`."""
    return decode_image_msg(msg)


def pose_from_px(position_px: np.ndarray, angle_rad: float, pixel_spacing_m: float) -> Pose:
    """A pose at ``position_px`` [px] facing ``angle_rad`` [rad], in metres."""
    return Pose(
        position=pixel_to_point(position_px, pixel_spacing_m), orientation=yaw_quaternion(angle_rad)
    )


def tip_pose_msg(wire: WireDetection, pixel_spacing_m: float, header: Header) -> PoseStamped:
    """The tip of one wire; orientation = tip direction (body -> tip) about z."""
    return PoseStamped(
        header=copy_header(header),
        pose=pose_from_px(wire.tip_px, wire.tip_direction_rad, pixel_spacing_m),
    )


def tips_pose_array_msg(
    wires: Sequence[WireDetection], pixel_spacing_m: float, header: Header
) -> PoseArray:
    """The tips of all wires (``wires`` order: primary first)."""
    return PoseArray(
        header=copy_header(header),
        poses=[pose_from_px(w.tip_px, w.tip_direction_rad, pixel_spacing_m) for w in wires],
    )


def centerline_path_msg(
    centerline_px: np.ndarray | None, pixel_spacing_m: float, header: Header
) -> Path:
    """An ordered centerline ``(N, 2)`` [px] (tip first) -> ``nav_msgs/Path`` [m].

    Each pose faces along the wire towards the tip (the direction from point ``i + 1``
    to point ``i``); the tip pose takes its neighbour's direction. ``None`` or an empty
    centerline gives an empty path (no wire at this stamp).
    """
    path = Path(header=copy_header(header))
    if centerline_px is None or len(centerline_px) == 0:
        return path
    points = np.asarray(centerline_px, dtype=np.float64).reshape(-1, 2)
    if len(points) == 1:
        angles = np.zeros(1)
    else:
        towards_tip = points[:-1] - points[1:]  # (N-1, 2): from i+1 to i
        angles = np.arctan2(towards_tip[:, 1], towards_tip[:, 0])
        angles = np.concatenate([angles, angles[-1:]])  # (N,): last point reuses its neighbour
    positions_m = (points * float(pixel_spacing_m)).tolist()
    quaternion_z = np.sin(0.5 * angles).tolist()
    quaternion_w = np.cos(0.5 * angles).tolist()
    # one header object for all poses of the path (messages are built fresh per frame and
    # never mutated); setting fields on default messages is ~2x faster than keyword
    # constructors, which matters for centerlines of several hundred points
    pose_header = path.header
    poses = []
    for (x_m, y_m), z, w in zip(positions_m, quaternion_z, quaternion_w, strict=True):
        pose = PoseStamped()
        pose.header = pose_header
        position = pose.pose.position
        position.x, position.y = x_m, y_m
        orientation = pose.pose.orientation
        orientation.z, orientation.w = z, w
        poses.append(pose)
    path.poses = poses
    return path


def points_msg(points_px: np.ndarray, pixel_spacing_m: float) -> list[Point]:
    """``(N, 2)`` positions [px] -> ``geometry_msgs/Point`` list [m] (z = 0)."""
    points = []
    for x_m, y_m in (np.asarray(points_px, np.float64).reshape(-1, 2) * pixel_spacing_m).tolist():
        point = Point()
        point.x, point.y = x_m, y_m
        points.append(point)
    return points


def _rotation(angle_rad: float) -> np.ndarray:
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[cos, -sin], [sin, cos]])


def track_odometry_msg(
    track: TipTrack,
    pixel_spacing_m: float,
    header: Header,
    child_frame_id: str = TIP_CHILD_FRAME,
) -> Odometry:
    """The filtered tip state -> ``nav_msgs/Odometry`` [m], [m/s] with covariance.

    The pose is in ``header.frame_id`` (the image frame) and faces the smoothed tip
    direction. As ``nav_msgs/Odometry`` specifies, the twist is expressed in the child
    frame (``guidewire_tip``: x along the tip direction, y to its right in the image),
    so its velocity and covariance are the image-frame ones rotated by ``-direction``.
    Components a 2-D image cannot observe (z, roll, pitch, yaw rate, and the yaw itself,
    which the filter does not estimate a variance for) get :data:`UNOBSERVED_VARIANCE`.
    """
    spacing = float(pixel_spacing_m)
    covariance = np.asarray(track.covariance, dtype=np.float64).reshape(4, 4)
    position_cov_m2 = covariance[:2, :2] * spacing**2
    velocity_cov_m2 = covariance[2:, 2:] * spacing**2
    rotation = _rotation(track.direction_rad)
    velocity_child = rotation.T @ (np.asarray(track.velocity_px_s, dtype=np.float64) * spacing)
    velocity_cov_child = rotation.T @ velocity_cov_m2 @ rotation

    pose_covariance = np.diag([0.0, 0.0] + [UNOBSERVED_VARIANCE] * 4)  # (6, 6) x y z R P Y
    pose_covariance[:2, :2] = position_cov_m2
    twist_covariance = np.diag([0.0, 0.0] + [UNOBSERVED_VARIANCE] * 4)
    twist_covariance[:2, :2] = velocity_cov_child

    odometry = Odometry(header=copy_header(header), child_frame_id=child_frame_id)
    odometry.pose.pose = pose_from_px(track.position_px, track.direction_rad, spacing)
    odometry.pose.covariance = pose_covariance.reshape(-1).tolist()
    odometry.twist.twist.linear = Vector3(
        x=float(velocity_child[0]), y=float(velocity_child[1]), z=0.0
    )
    odometry.twist.covariance = twist_covariance.reshape(-1).tolist()
    return odometry


def stent_pose_msg(stent: StentDetection, pixel_spacing_m: float, header: Header) -> PoseStamped:
    """A stent's centroid [m], oriented along its principal axis (rotation about z)."""
    return PoseStamped(
        header=copy_header(header),
        pose=pose_from_px(stent.centroid_px, stent.axis_rad, pixel_spacing_m),
    )


def stent_outline_msg(
    stent: StentDetection | None, pixel_spacing_m: float, header: Header
) -> PolygonStamped:
    """A stent outline polygon [m] (``None`` -> empty polygon)."""
    polygon = Polygon()
    if stent is not None:
        points = np.asarray(stent.outline_px, dtype=np.float64).reshape(-1, 2) * pixel_spacing_m
        polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in points]
    return PolygonStamped(header=copy_header(header), polygon=polygon)


_WIRE_COLOURS = ((0.1, 0.9, 0.2), (0.2, 0.6, 1.0), (1.0, 0.8, 0.1), (0.9, 0.3, 0.9))
_STENT_COLOUR = (1.0, 0.4, 0.1)


def _colour(rgb: Sequence[float], alpha: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def markers_msg(
    result: FrameResult, pixel_spacing_m: float, header: Header, namespace: str = "fluoro"
) -> MarkerArray:
    """RViz markers of one frame: wire centerlines, tip arrows, stent outlines.

    The first marker is a ``DELETEALL`` so that markers of the previous frame never
    linger when a wire disappears.
    """
    spacing = float(pixel_spacing_m)
    markers = [Marker(header=copy_header(header), ns=namespace, action=Marker.DELETEALL)]
    line_width_m = 2.0 * spacing
    for wire in result.wires:
        rgb = _WIRE_COLOURS[wire.wire_id % len(_WIRE_COLOURS)]
        line = Marker(
            header=copy_header(header),
            ns=namespace + "/guidewire",
            id=wire.wire_id,
            type=Marker.LINE_STRIP,
            action=Marker.ADD,
        )
        line.pose.orientation.w = 1.0
        line.scale.x = line_width_m
        line.color = _colour(rgb)
        line.points = points_msg(wire.centerline_px, spacing)
        arrow = Marker(
            header=copy_header(header),
            ns=namespace + "/tip",
            id=wire.wire_id,
            type=Marker.ARROW,
            action=Marker.ADD,
        )
        arrow.pose = pose_from_px(wire.tip_px, wire.tip_direction_rad, spacing)
        arrow.scale = Vector3(x=20.0 * spacing, y=3.0 * spacing, z=3.0 * spacing)
        arrow.color = _colour(rgb)
        markers.extend([line, arrow])
    for stent in result.stents:
        outline = Marker(
            header=copy_header(header),
            ns=namespace + "/stent",
            id=stent.stent_id,
            type=Marker.LINE_STRIP,
            action=Marker.ADD,
        )
        outline.pose.orientation.w = 1.0
        outline.scale.x = line_width_m
        outline.color = _colour(_STENT_COLOUR)
        points = points_msg(stent.outline_px, spacing)
        outline.points = points + points[:1]  # closed
        markers.append(outline)
    return MarkerArray(markers=markers)


#: DiagnosticStatus levels by name.
DIAGNOSTIC_LEVELS = {
    "ok": DiagnosticStatus.OK,
    "warn": DiagnosticStatus.WARN,
    "error": DiagnosticStatus.ERROR,
    "stale": DiagnosticStatus.STALE,
}


def diagnostics_msg(
    name: str,
    hardware_id: str,
    level: str,
    message: str,
    values: Mapping[str, object],
    stamp_ns: int,
) -> DiagnosticArray:
    """One ``DiagnosticStatus`` in a ``DiagnosticArray`` (values rendered as strings).

    Floats are written with 3 decimals so the array stays readable in ``rqt``.
    """
    if level not in DIAGNOSTIC_LEVELS:
        raise ValueError(f"diagnostic level {level!r}; expected one of {list(DIAGNOSTIC_LEVELS)}")

    def text(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    status = DiagnosticStatus(
        level=DIAGNOSTIC_LEVELS[level],
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=text(v)) for k, v in values.items()],
    )
    return DiagnosticArray(header=make_header(stamp_ns, ""), status=[status])


def primary_track(result: FrameResult) -> TipTrack | None:
    """The track of the primary wire (nearest to its tip), else the oldest track."""
    if not result.tracks:
        return None
    primary = result.primary_wire
    if primary is not None:
        distances = [np.hypot(*(t.position_px - primary.tip_px)) for t in result.tracks]
        return result.tracks[int(np.argmin(distances))]
    return max(result.tracks, key=lambda track: track.age_frames)


def pose_messages(
    result: FrameResult,
    header: Header,
    *,
    pixel_spacing_m: float,
    min_tip_confidence: float,
    tracking_enabled: bool,
) -> list[tuple[str, object]]:
    """``(output key, message)`` pairs of the pose outputs of a fresh frame.

    The one place that decides what the control stack receives, shared by the node and
    by offline replay: the primary tip only at or above ``min_tip_confidence``; the
    tracked tip of :func:`primary_track` when tracking is on; the tips of all confident
    wires; the primary centerline (empty when no wire); the first stent's pose (only when
    there is one) and outline (empty polygon when none). Keys are those of the node's
    ``OUTPUT_TOPICS``.
    """
    spacing = pixel_spacing_m
    messages: list[tuple[str, object]] = []
    primary = result.primary_wire
    if primary is not None and primary.confidence >= min_tip_confidence:
        messages.append(("tip", tip_pose_msg(primary, spacing, header)))
    track = primary_track(result) if tracking_enabled else None
    if track is not None:
        messages.append(("tip_tracked", track_odometry_msg(track, spacing, header)))
    confident = [w for w in result.wires if w.confidence >= min_tip_confidence]
    messages.append(("tips", tips_pose_array_msg(confident, spacing, header)))
    centerline = primary.centerline_px if primary is not None else None
    messages.append(("centerline", centerline_path_msg(centerline, spacing, header)))
    stent = result.stents[0] if result.stents else None
    if stent is not None:
        messages.append(("stent_pose", stent_pose_msg(stent, spacing, header)))
    messages.append(("stent_outline", stent_outline_msg(stent, spacing, header)))
    return messages
