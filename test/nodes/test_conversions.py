"""Pure message building (no rclpy.init): units, orientations, headers copied."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluoro_perception.core.types import FrameResult, StentDetection, TipTrack, WireDetection
from fluoro_perception.nodes import conversions as conv

SPACING_M = 2.0e-4  # [m/px]
HEADER_STAMP_NS = 1_700_000_123_456_789_012


def _header(frame_id: str = "fluoro_detector"):
    return conv.make_header(HEADER_STAMP_NS, frame_id)


def _wire(wire_id: int = 0, angle_rad: float = 0.0) -> WireDetection:
    # a straight wire of 5 points along +x, tip first at x = 14
    centerline = np.array([[14, 20], [13, 20], [12, 20], [11, 20], [10, 20]], np.float32)
    return WireDetection(
        wire_id=wire_id,
        centerline_px=centerline,
        tip_px=centerline[0],
        tip_direction_rad=angle_rad,
        confidence=0.9,
        length_px=4.0,
    )


def _assert_header(header, frame_id: str = "fluoro_detector") -> None:
    assert conv.stamp_to_ns(header.stamp) == HEADER_STAMP_NS
    assert header.frame_id == frame_id


@pytest.mark.parametrize(
    ("stamp_ns", "sec", "nanosec"),
    [(0, 0, 0), (1, 0, 1), (1_000_000_000, 1, 0), (1_500_000_001, 1, 500_000_001)],
)
def test_stamp_round_trip(stamp_ns: int, sec: int, nanosec: int) -> None:
    stamp = conv.ns_to_stamp(stamp_ns)
    assert (stamp.sec, stamp.nanosec) == (sec, nanosec)
    assert conv.stamp_to_ns(stamp) == stamp_ns


def test_negative_stamp_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        conv.ns_to_stamp(-1)


@pytest.mark.parametrize(
    ("angle_rad", "z", "w"),
    [
        (0.0, 0.0, 1.0),
        (math.pi / 2, math.sqrt(0.5), math.sqrt(0.5)),
        (math.pi, 1.0, 0.0),
        (-math.pi / 2, -math.sqrt(0.5), math.sqrt(0.5)),
    ],
)
def test_yaw_quaternion_of_known_angles(angle_rad: float, z: float, w: float) -> None:
    quaternion = conv.yaw_quaternion(angle_rad)
    assert (quaternion.x, quaternion.y) == (0.0, 0.0)
    assert quaternion.z == pytest.approx(z, abs=1e-12)
    assert quaternion.w == pytest.approx(w, abs=1e-12)


def test_tip_pose_in_metres_with_direction_and_header() -> None:
    message = conv.tip_pose_msg(_wire(angle_rad=math.pi / 2), SPACING_M, _header())
    _assert_header(message.header)
    # tip at (14, 20) px * 0.2 mm = (2.8, 4.0) mm
    assert message.pose.position.x == pytest.approx(2.8e-3)
    assert message.pose.position.y == pytest.approx(4.0e-3)
    assert message.pose.position.z == 0.0
    assert message.pose.orientation.z == pytest.approx(math.sqrt(0.5))


def test_header_is_copied_not_shared() -> None:
    header = _header()
    message = conv.tip_pose_msg(_wire(), SPACING_M, header)
    header.frame_id = "changed"
    assert message.header.frame_id == "fluoro_detector"


def test_centerline_path_tip_first_facing_the_tip() -> None:
    path = conv.centerline_path_msg(_wire().centerline_px, SPACING_M, _header("cam"))
    _assert_header(path.header, "cam")
    assert len(path.poses) == 5
    xs = [pose.pose.position.x for pose in path.poses]
    assert xs == pytest.approx([14 * SPACING_M, 13 * SPACING_M, 12 * SPACING_M, 11 * SPACING_M,
                                10 * SPACING_M])  # fmt: skip
    for pose in path.poses:
        _assert_header(pose.header, "cam")
        # the wire runs along +x towards the tip: yaw 0 -> w = 1
        assert pose.pose.orientation.w == pytest.approx(1.0)


def test_empty_centerline_gives_empty_path() -> None:
    assert conv.centerline_path_msg(None, SPACING_M, _header()).poses == []
    assert conv.centerline_path_msg(np.zeros((0, 2)), SPACING_M, _header()).poses == []


def test_tips_pose_array_keeps_wire_order() -> None:
    message = conv.tips_pose_array_msg([_wire(0), _wire(1, math.pi)], SPACING_M, _header())
    _assert_header(message.header)
    assert len(message.poses) == 2
    assert message.poses[1].orientation.z == pytest.approx(1.0)


def _track(direction_rad: float) -> TipTrack:
    covariance = np.diag([4.0, 9.0, 16.0, 25.0])  # px^2 and (px/s)^2
    return TipTrack(
        track_id=3,
        stamp_ns=HEADER_STAMP_NS,
        position_px=np.array([10.0, 5.0]),
        velocity_px_s=np.array([0.0, 50.0]),  # 50 px/s downwards in the image
        covariance=covariance,
        direction_rad=direction_rad,
        age_frames=10,
        missed_frames=0,
    )


def test_track_odometry_units_frames_and_covariance() -> None:
    # direction +y (pi/2): the tip frame's x axis is the image's +y axis
    message = conv.track_odometry_msg(_track(math.pi / 2), SPACING_M, _header())
    _assert_header(message.header)
    assert message.child_frame_id == "guidewire_tip"
    assert message.pose.pose.position.x == pytest.approx(10 * SPACING_M)
    assert message.pose.pose.position.y == pytest.approx(5 * SPACING_M)
    pose_cov = np.array(message.pose.covariance).reshape(6, 6)
    assert pose_cov[0, 0] == pytest.approx(4.0 * SPACING_M**2)
    assert pose_cov[1, 1] == pytest.approx(9.0 * SPACING_M**2)
    assert pose_cov[2, 2] == conv.UNOBSERVED_VARIANCE
    # velocity (0, 50) px/s in the image = 50 px/s forward along the tip direction
    assert message.twist.twist.linear.x == pytest.approx(50 * SPACING_M)
    assert message.twist.twist.linear.y == pytest.approx(0.0, abs=1e-12)
    twist_cov = np.array(message.twist.covariance).reshape(6, 6)
    # image vy variance (25) becomes the child-frame x variance after the rotation
    assert twist_cov[0, 0] == pytest.approx(25.0 * SPACING_M**2)
    assert twist_cov[1, 1] == pytest.approx(16.0 * SPACING_M**2)


def _stent() -> StentDetection:
    outline = np.array([[0, 0], [10, 0], [10, 4], [0, 4]], np.float32)
    return StentDetection(
        stent_id=0,
        outline_px=outline,
        centroid_px=np.array([5.0, 2.0]),
        axis_rad=0.0,
        length_px=10.0,
        diameter_px=4.0,
        confidence=0.8,
    )


def test_stent_pose_and_outline_in_metres() -> None:
    pose = conv.stent_pose_msg(_stent(), SPACING_M, _header())
    _assert_header(pose.header)
    assert pose.pose.position.x == pytest.approx(5 * SPACING_M)
    outline = conv.stent_outline_msg(_stent(), SPACING_M, _header())
    _assert_header(outline.header)
    outline_m = np.array([(p.x, p.y) for p in outline.polygon.points])
    expected_m = np.array([(0, 0), (10, 0), (10, 4), (0, 4)]) * SPACING_M
    np.testing.assert_allclose(outline_m, expected_m, rtol=1e-6)  # Point32 is float32
    assert conv.stent_outline_msg(None, SPACING_M, _header()).polygon.points == []


@pytest.mark.parametrize(
    ("image", "encoding", "step"),
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), "mono8", 4),
        (np.arange(12, dtype=np.uint16).reshape(3, 4) * 300, "mono16", 8),
        (np.arange(36, dtype=np.uint8).reshape(3, 4, 3), "rgb8", 12),
    ],
)
def test_image_round_trip(image: np.ndarray, encoding: str, step: int) -> None:
    message = conv.image_to_msg(image, encoding, _header())
    _assert_header(message.header)
    assert (message.height, message.width, message.step) == (3, 4, step)
    assert message.encoding == encoding
    np.testing.assert_array_equal(conv.msg_to_image(message), image)


def test_markers_start_with_deleteall_and_cover_each_object() -> None:
    result = FrameResult(
        stamp_ns=HEADER_STAMP_NS,
        labels=np.zeros((4, 4), np.uint8),
        guidewire_mask=np.zeros((4, 4), np.uint8),
        stent_mask=np.zeros((4, 4), np.uint8),
        wires=[_wire(0), _wire(1)],
        stents=[_stent()],
    )
    message = conv.markers_msg(result, SPACING_M, _header())
    actions = [marker.action for marker in message.markers]
    assert actions[0] == conv.Marker.DELETEALL
    # two wires x (line + arrow) + one stent outline
    assert len(message.markers) == 1 + 4 + 1
    for marker in message.markers:
        _assert_header(marker.header)
    stent_marker = message.markers[-1]
    assert len(stent_marker.points) == 5  # closed polygon


def test_diagnostics_values_and_level() -> None:
    message = conv.diagnostics_msg(
        "fluoro/segmentation_node", "model.onnx", "warn", "dropping", {"rate": 1.23456, "n": 3},
        HEADER_STAMP_NS,
    )  # fmt: skip
    status = message.status[0]
    assert status.level == conv.DiagnosticStatus.WARN
    assert {kv.key: kv.value for kv in status.values} == {"rate": "1.235", "n": "3"}
    with pytest.raises(ValueError, match="diagnostic level"):
        conv.diagnostics_msg("n", "h", "fatal", "", {}, 0)
