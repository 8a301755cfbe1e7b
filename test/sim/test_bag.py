"""rosbag2 round trips and broken-bag handling of :mod:`fluoro_perception.bagio`."""

from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from fluoro_perception import bagio
from fluoro_perception.bagio import (
    GT_CENTERLINE_TOPIC,
    GT_TIP_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    BagError,
    BagReader,
    BagWriter,
    open_bag,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

SPACING_M = 2.0e-4  # [m/px]
FPS = 12.5
EPOCH_NS = 1_700_000_000_000_000_000
PERIOD_NS = 80_000_000  # 1 / 12.5 Hz
HEIGHT, WIDTH = 40, 56


def make_frame(index: int, bit_depth: int = 8, n_wires: int = 2) -> SimFrame:
    """A hand-built frame with known geometry (wires along rows, one square stent)."""
    full_scale = (1 << bit_depth) - 1
    ramp = (np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) * 7 + index * 13) % (full_scale + 1)
    image = ramp.astype(np.uint8 if bit_depth == 8 else np.uint16)
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    instances = np.zeros((HEIGHT, WIDTH), np.uint8)
    wires = []
    for k in range(n_wires):
        row = 8 + 12 * k
        labels[row, 4 + index : 30] = 1
        instances[row, 4 + index : 30] = k + 1
        centerline = np.array([[4 + index, row], [17, row], [29, row + 1]], np.float32)
        wires.append(
            WireTruth(k + 1, "guidewire", centerline, centerline[0].copy(), math.pi, True, 2.0)
        )
    labels[30:36, 40:46] = 2
    labels[0:3, :] = 3
    outline = np.array([[40, 30], [45, 30], [45, 35], [40, 35]], np.float32)
    stent = StentTruth(1, "self_expanding", outline, np.array([42.5, 32.5]), 0.0, 5.0, 5.0, 1.0)
    field = np.ones((HEIGHT, WIDTH), bool)
    field[:, :2] = False
    return SimFrame(
        image=image,
        bit_depth=bit_depth,
        labels=labels,
        wire_instances=instances,
        field_mask=field,
        wires=wires,
        stents=[stent],
        pixel_spacing_m=SPACING_M,
        sequence_id="s0",
        frame_index=index,
        timestamp_s=index / FPS,
        scenario="dual",
    )


def write_bag(path: Path, storage: str, bit_depth: int, frames: list[SimFrame]) -> Path:
    encoding = "mono8" if bit_depth == 8 else "mono16"
    with BagWriter(path, storage=storage) as bag:
        for i, frame in enumerate(frames):
            bag.write_sim_frame(frame, EPOCH_NS + i * PERIOD_NS, encoding=encoding)
    return path


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("yaw", "expected_xyzw"),
    [
        (0.0, (0.0, 0.0, 0.0, 1.0)),
        (math.pi / 2, (0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))),
        (math.pi, (0.0, 0.0, 1.0, 0.0)),
        (-math.pi / 2, (0.0, 0.0, -math.sqrt(0.5), math.sqrt(0.5))),
    ],
)
def test_yaw_quaternion_table(yaw, expected_xyzw):
    assert bagio.yaw_to_quaternion(yaw) == pytest.approx(expected_xyzw, abs=1e-12)
    back = bagio.quaternion_to_yaw(*expected_xyzw)
    assert math.isclose(math.cos(back), math.cos(yaw), abs_tol=1e-12)
    assert math.isclose(math.sin(back), math.sin(yaw), abs_tol=1e-12)


def test_path_yaws_point_towards_tip():
    # tip (0,0); body goes right then down: each yaw points back along the wire to the tip
    points = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(bagio.path_yaws_toward_tip(points), [math.pi, math.pi, -math.pi / 2])


def test_points_px_to_m_hand_computed():
    out = bagio.points_px_to_m(np.array([[10.0, 20.0], [0.0, 1.5]]), 1e-4)
    np.testing.assert_allclose(out, [[1e-3, 2e-3, 0.0], [0.0, 1.5e-4, 0.0]])
    with pytest.raises(ValueError, match="pixel_spacing_m"):
        bagio.points_px_to_m(np.zeros((1, 2)), float("nan"))


def test_message_hashes_identical_across_ros2_stores():
    """The typestore choice is safe: Humble..Lyrical agree on every type we write."""
    types = [
        bagio.IMAGE_TYPE,
        bagio.POSE_STAMPED_TYPE,
        bagio.POSE_ARRAY_TYPE,
        bagio.PATH_TYPE,
        bagio.MARKER_ARRAY_TYPE,
        bagio.DIAGNOSTIC_ARRAY_TYPE,
    ]
    reference = bagio.get_bag_typestore()
    for store in (Stores.ROS2_HUMBLE, Stores.ROS2_IRON, Stores.ROS2_JAZZY, Stores.ROS2_LYRICAL):
        other = get_typestore(store)
        for msgtype in types:
            assert other.hash_rihs01(msgtype) == reference.hash_rihs01(msgtype), (store, msgtype)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("bit_depth", [8, 12])
def test_round_trip_images_and_ground_truth(tmp_path, storage, bit_depth):
    frames = [make_frame(i, bit_depth) for i in range(3)]
    path = write_bag(tmp_path / "bag", storage, bit_depth, frames)
    with open_bag(path) as bag:
        assert bag.topics[IMAGE_TOPIC] == IMAGE_TYPE
        assert bag.message_count(IMAGE_TOPIC) == 3
        read = list(bag.iter_frames())
        assert bag.skipped == {}
    assert len(read) == 3
    for i, (frame, got) in enumerate(zip(frames, read, strict=True)):
        assert got.image.stamp_ns == EPOCH_NS + i * PERIOD_NS
        assert got.image.log_time_ns == got.image.stamp_ns
        assert got.image.frame_id == "fluoro_detector"
        assert got.image.encoding == ("mono8" if bit_depth == 8 else "mono16")
        assert got.image.image.dtype == frame.image.dtype
        np.testing.assert_array_equal(got.image.image, frame.image)
        truth = got.ground_truth
        np.testing.assert_array_equal(truth.labels, frame.labels)
        np.testing.assert_array_equal(truth.guidewire_mask, np.where(frame.labels == 1, 255, 0))
        np.testing.assert_array_equal(truth.stent_mask, np.where(frame.labels == 2, 255, 0))
        # primary tip: wire 1 at (4 + i, 8) px -> metres, pointing along -x (pi)
        np.testing.assert_allclose(truth.tip_position_m, [(4 + i) * SPACING_M, 8 * SPACING_M, 0])
        assert math.isclose(abs(truth.tip_direction_rad), math.pi, abs_tol=1e-9)
        np.testing.assert_allclose(
            truth.tips_m, [[(4 + i) * SPACING_M, 8 * SPACING_M, 0], [(4 + i) * SPACING_M, 0.004, 0]]
        )
        expected_centerline = np.array([[4 + i, 8, 0], [17, 8, 0], [29, 9, 0]]) * SPACING_M
        np.testing.assert_allclose(truth.centerline_m, expected_centerline, atol=1e-12)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_compressed_bag_round_trip(tmp_path, storage):
    frames = [make_frame(i, 12) for i in range(2)]
    path = tmp_path / "bag"
    with BagWriter(path, storage=storage, compress=True) as bag:
        for i, frame in enumerate(frames):
            bag.write_sim_frame(frame, EPOCH_NS + i * PERIOD_NS, markers=False)
    metadata = (path / "metadata.yaml").read_text()
    # MCAP compresses its chunks (invisible to rosbag2 metadata); SQLite3 each message
    assert ("compression_mode: message" in metadata) == (storage == "sqlite3")
    with open_bag(path) as bag:
        read = list(bag.iter_frames())
    assert len(read) == 2
    for frame, got in zip(frames, read, strict=True):
        np.testing.assert_array_equal(got.image.image, frame.image)
        np.testing.assert_array_equal(got.ground_truth.labels, frame.labels)


@pytest.mark.parametrize(("storage", "suffix"), [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_single_storage_file_and_lost_metadata_are_readable(tmp_path, storage, suffix):
    frames = [make_frame(i) for i in range(2)]
    path = write_bag(tmp_path / "bag", storage, 8, frames)
    storage_file = next(path.glob(f"*{suffix}"))
    with open_bag(storage_file) as bag:
        stamps = [img.stamp_ns for img in bag.iter_images()]
    assert stamps == [EPOCH_NS, EPOCH_NS + PERIOD_NS]
    (path / "metadata.yaml").unlink()
    reader = BagReader(path)
    assert reader.recovered_without_metadata
    with reader:
        assert len(list(reader.iter_images())) == 2


def test_frame_without_wires_has_empty_tip_topics(tmp_path):
    frames = [make_frame(0, n_wires=0), make_frame(1, n_wires=1)]
    path = write_bag(tmp_path / "bag", "mcap", 8, frames)
    with open_bag(path) as bag:
        assert bag.message_count(GT_TIP_TOPIC) == 1
        first, second = list(bag.iter_frames())
    assert first.ground_truth.tip_position_m is None
    assert first.ground_truth.tips_m.shape == (0, 3)
    assert first.ground_truth.centerline_m.shape == (0, 3)
    np.testing.assert_allclose(second.ground_truth.tip_position_m, [5 * SPACING_M, 0.0016, 0])


def test_messages_deserialize_with_rclpy(tmp_path):
    """The CDR bytes are what a ROS 2 node would receive (cross-check with rclpy)."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    path = write_bag(tmp_path / "bag", "mcap", 12, [make_frame(0, 12)])
    with open_bag(path) as bag:
        reader = bag._reader
        raw = {
            conn.topic: data
            for conn, _, data in reader.messages(
                [c for c in reader.connections if c.topic in (IMAGE_TOPIC, GT_TIP_TOPIC)]
            )
        }
    image = deserialize_message(raw[IMAGE_TOPIC], Image)
    assert (image.height, image.width, image.encoding) == (HEIGHT, WIDTH, "mono16")
    assert image.header.frame_id == "fluoro_detector"
    pixels = np.frombuffer(bytes(image.data), dtype="<u2" if not image.is_bigendian else ">u2")
    np.testing.assert_array_equal(pixels.reshape(HEIGHT, WIDTH), make_frame(0, 12).image)
    tip = deserialize_message(raw[GT_TIP_TOPIC], PoseStamped)
    assert tip.pose.position.x == pytest.approx(4 * SPACING_M)
    assert tip.pose.orientation.z == pytest.approx(1.0)  # rotation by pi about z


# ----------------------------------------------------------------------------- broken bags


def _truncate(path: Path, suffix: str) -> None:
    storage_file = next(path.glob(f"*{suffix}"))
    data = storage_file.read_bytes()
    storage_file.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("damage", "storage", "message"),
    [
        ("missing", "mcap", "does not exist"),
        ("wrong_suffix", "mcap", "expected a rosbag2 directory"),
        ("bad_yaml", "mcap", "Could not load YAML"),
        ("truncated", "sqlite3", "cannot open bag"),
        ("no_storage", "sqlite3", "no metadata.yaml and 0 storage files"),
    ],
)
def test_broken_bags_give_one_line_errors(tmp_path, damage, storage, message):
    path = write_bag(tmp_path / "bag", storage, 8, [make_frame(0)])
    suffix = ".mcap" if storage == "mcap" else ".db3"
    target = path
    if damage == "missing":
        target = tmp_path / "nothing"
    elif damage == "wrong_suffix":
        target = tmp_path / "notes.txt"
        target.write_text("x")
    elif damage == "bad_yaml":
        (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9\n")
    elif damage == "truncated":
        _truncate(path, suffix)
    elif damage == "no_storage":
        shutil.rmtree(path)
        path.mkdir()
    with pytest.raises(BagError, match=message) as info:
        with open_bag(target) as bag:
            list(bag.iter_images())
    assert "\n" not in str(info.value)


def test_truncated_mcap_is_recovered_not_refused(tmp_path):
    # a cut-off MCAP recording is read through bagio.recover_truncated_mcap (see
    # docs/reliability.md): it opens, says so, and counts what was lost
    path = write_bag(tmp_path / "bag", "mcap", 8, [make_frame(i) for i in range(6)])
    _truncate(path, ".mcap")
    with open_bag(path) as bag:
        assert bag.recovered_truncated
        assert any(reason.startswith("truncated recording: last ") for reason in bag.skipped)
        assert bag.skipped.get("messages lost in truncated recording", 0) > 0


@pytest.mark.parametrize(
    ("topic", "message"),
    [("/fluoro/nope", "has no topic /fluoro/nope"), (GT_TIP_TOPIC, "expected sensor_msgs")],
)
def test_missing_topic_and_unexpected_type(tmp_path, topic, message):
    path = write_bag(tmp_path / "bag", "mcap", 8, [make_frame(0)])
    with open_bag(path) as bag, pytest.raises(BagError, match=message):
        list(bag.iter_images(topic))


def test_undecodable_messages_are_counted_and_skipped(tmp_path):
    """A bag with one good image, one CDR-garbage message and one inconsistent Image."""
    typestore = bagio.get_bag_typestore()
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        bag.write_image(IMAGE_TOPIC, np.full((4, 6), 7, np.uint8), EPOCH_NS)
        bad = bagio.default_message(
            IMAGE_TYPE, height=4, width=6, encoding="mono8", step=6, data=np.zeros(5, np.uint8)
        )
        bag.write_message(IMAGE_TOPIC, IMAGE_TYPE, bad, EPOCH_NS + 1)
    # append raw garbage bytes on the same topic with the plain rosbags writer
    garbage_path = tmp_path / "garbage"
    with Writer(garbage_path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(IMAGE_TOPIC, IMAGE_TYPE, typestore=typestore)
        writer.write(conn, EPOCH_NS, typestore.serialize_cdr(bad, IMAGE_TYPE)[:12])
    with open_bag(path) as bag:
        images = list(bag.iter_images())
        assert [img.image.max() for img in images] == [7]
        assert bag.skipped == {f"undecodable image on {IMAGE_TOPIC}": 1}
    with open_bag(garbage_path) as bag:
        assert list(bag.iter_images()) == []
        assert bag.skipped == {f"undecodable {IMAGE_TYPE}": 1}


def _damage_second_image_record(path: Path, part: str) -> None:
    """Overwrite one field of the MCAP record of the second image message.

    MCAP message record: opcode (1 byte), record length (8), channel id (2),
    sequence (4), log time (8), publish time (8), then the CDR data.
    """
    storage_file = next(path.glob("*.mcap"))
    data = bytearray(storage_file.read_bytes())
    with open_bag(path) as bag:
        second = [m for _, m in bag.iter_messages(IMAGE_TOPIC)][1]
    cdr = bagio.get_bag_typestore().serialize_cdr(second, IMAGE_TYPE)
    data_at = data.find(cdr[:40])  # rosbags writes uncompressed chunks
    assert data_at > 0
    if part == "opcode":
        data[data_at - 31] = 0x7F  # an opcode no MCAP version defines
    else:
        data[data_at - 30 : data_at - 22] = struct.pack("<Q", 1 << 40)
    storage_file.write_bytes(bytes(data))


def test_unknown_record_in_mcap_is_counted_as_lost(tmp_path):
    path = write_bag(tmp_path / "bag", "mcap", 8, [make_frame(i) for i in range(3)])
    _damage_second_image_record(path, "opcode")
    with open_bag(path) as bag:
        stamps = [img.stamp_ns for img in bag.iter_images()]
        assert bag.skipped == {"lost in damaged storage": 1}
    assert stamps == [EPOCH_NS, EPOCH_NS + 2 * PERIOD_NS]


def test_corrupt_record_length_in_mcap_is_one_line_error(tmp_path):
    path = write_bag(tmp_path / "bag", "mcap", 8, [make_frame(i) for i in range(3)])
    _damage_second_image_record(path, "length")
    with open_bag(path) as bag, pytest.raises(BagError, match="is damaged after") as info:
        list(bag.iter_images())
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- writer guards


def test_writer_never_overwrites_without_permission(tmp_path):
    path = write_bag(tmp_path / "bag", "mcap", 8, [make_frame(0)])
    with pytest.raises(BagError, match="--overwrite"):
        BagWriter(path)
    write_bag_path = BagWriter(path, overwrite=True)  # an existing bag may be replaced
    with write_bag_path as bag:
        bag.write_image(IMAGE_TOPIC, np.zeros((4, 4), np.uint8), EPOCH_NS)
    with open_bag(path) as bag:
        assert bag.message_count(IMAGE_TOPIC) == 1
    other = tmp_path / "documents"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(BagError, match="not a rosbag2"):
        BagWriter(other, overwrite=True)
    assert (other / "thesis.tex").exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.write_image("no_slash", np.zeros((2, 2), np.uint8), 0), "absolute ROS topic"),
        (lambda b: b.write_image("/i", np.zeros((2, 2), np.uint16), 0, encoding="mono8"), "mono8"),
        (lambda b: b.write_pose("/p", np.zeros(3), 0.0, -5), "stamp_ns"),
        (lambda b: b.write_pose_array("/a", np.zeros((2, 3)), [0.0], 0), "one yaw per pose"),
        (lambda b: b.write_path("/c", np.zeros((2, 4)), 0), r"\(N, 2\) or \(N, 3\)"),
    ],
)
def test_writer_rejects_bad_input(tmp_path, call, message):
    with BagWriter(tmp_path / "bag") as bag, pytest.raises(ValueError, match=message):
        call(bag)


def test_centerline_topic_is_tip_first(tmp_path):
    path = write_bag(tmp_path / "bag", "sqlite3", 8, [make_frame(2)])
    with open_bag(path) as bag:
        [(_, path_msg)] = list(bag.iter_messages(GT_CENTERLINE_TOPIC))
    first = path_msg.poses[0].pose.position
    assert (first.x, first.y) == pytest.approx((6 * SPACING_M, 8 * SPACING_M))
    assert path_msg.poses[0].header.frame_id == "fluoro_detector"


def test_diagnostics_and_markers_round_trip(tmp_path):
    path = tmp_path / "bag"
    status = bagio.DiagnosticStatusSpec("fluoro: sim", 1, "slow", {"fps": "9.5"}, "det0")
    with BagWriter(path) as bag:
        bag.write_diagnostics("/diagnostics", [status], EPOCH_NS)
        bag.write_sim_frame(make_frame(0), EPOCH_NS)
        with pytest.raises(ValueError, match="expected 0 OK"):
            bag.write_diagnostics("/diagnostics", [bagio.DiagnosticStatusSpec("x", 7, "", {})], 0)
    with open_bag(path) as bag:
        [(_, diagnostics)] = list(bag.iter_messages("/diagnostics", bagio.DIAGNOSTIC_ARRAY_TYPE))
        [(_, markers)] = list(bag.iter_messages(bagio.GT_MARKERS_TOPIC))
    [got] = diagnostics.status
    assert (got.level, got.name, got.message, got.hardware_id) == (1, "fluoro: sim", "slow", "det0")
    assert [(kv.key, kv.value) for kv in got.values] == [("fps", "9.5")]
    # DELETEALL, then 2 wires x (centerline + tip arrow), then 1 closed stent outline
    assert [m.action for m in markers.markers] == [3, 0, 0, 0, 0, 0]
    assert [(m.ns, m.id, m.type) for m in markers.markers[1:]] == [
        ("guidewire", 1, 4),
        ("tip", 1, 0),
        ("guidewire", 2, 4),
        ("tip", 2, 0),
        ("stent", 1, 4),
    ]
    stent_points = [(p.x, p.y) for p in markers.markers[-1].points]
    assert len(stent_points) == 5 and stent_points[0] == stent_points[-1]
    assert stent_points[0] == pytest.approx((40 * SPACING_M, 30 * SPACING_M))


def test_iter_frames_on_a_bag_without_ground_truth(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path, storage="sqlite3") as bag:
        for k in (2, 0, 1):  # written out of order: read back in log-time order
            bag.write_image(IMAGE_TOPIC, np.full((3, 5), k, np.uint8), EPOCH_NS + k * PERIOD_NS)
    with open_bag(path) as bag:
        frames = list(bag.iter_frames())
    assert [int(f.image.image[0, 0]) for f in frames] == [0, 1, 2]
    assert all(f.ground_truth is None for f in frames)


# --- pixel spacing in the bag metadata ---------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_pixel_spacing_stored_in_custom_data(tmp_path: Path, storage: str) -> None:
    path = write_bag(tmp_path / "bag", storage, 8, [make_frame(0), make_frame(1)])
    with open_bag(path) as bag:
        assert bag.custom_data[bagio.PIXEL_SPACING_KEY] == repr(SPACING_M)
        assert bag.pixel_spacing_m == SPACING_M


def test_bag_without_sim_frames_has_no_pixel_spacing(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bag", custom_data={"note": "x"}) as bag:
        bag.write_image(IMAGE_TOPIC, np.zeros((4, 4), np.uint8), EPOCH_NS)
    with open_bag(tmp_path / "bag") as bag:
        assert bag.custom_data == {"note": "x"}
        assert bag.pixel_spacing_m is None


@pytest.mark.parametrize(
    ("text", "expected", "skipped"),
    [("0.00025", 2.5e-4, None), ("abc", None, "custom_data pixel spacing not a number"),
     ("-1e-4", None, "custom_data pixel spacing not positive")],
)  # fmt: skip
def test_pixel_spacing_parsing(tmp_path: Path, text: str, expected, skipped) -> None:
    with BagWriter(tmp_path / "bag", custom_data={bagio.PIXEL_SPACING_KEY: text}) as bag:
        bag.write_image(IMAGE_TOPIC, np.zeros((4, 4), np.uint8), EPOCH_NS)
    with open_bag(tmp_path / "bag") as bag:
        assert bag.pixel_spacing_m == expected
        if skipped is not None:
            assert bag.skipped == {skipped: 1}


def test_mixed_pixel_spacings_in_one_bag_rejected(tmp_path: Path) -> None:
    other = make_frame(1)
    other.pixel_spacing_m = 3.0e-4
    with pytest.raises(ValueError, match="pixel_spacing_m=0.0003"):
        write_bag(tmp_path / "bag", "mcap", 8, [make_frame(0), other])


def test_replay_prefers_metadata_spacing_and_falls_back_to_markers(tmp_path: Path) -> None:
    from fluoro_perception.replay import resolve_pixel_spacing

    # no markers: only the metadata can give the spacing
    no_markers = tmp_path / "no_markers"
    with BagWriter(no_markers) as bag:
        bag.write_sim_frame(make_frame(0), EPOCH_NS, markers=False)
    spacing, source = resolve_pixel_spacing(no_markers, None)
    assert spacing == SPACING_M and bagio.PIXEL_SPACING_KEY in source
    # metadata and markers both present and consistent
    both = write_bag(tmp_path / "both", "mcap", 8, [make_frame(0)])
    spacing, source = resolve_pixel_spacing(both, None)
    assert spacing == SPACING_M and "markers agree" in source
    # the bare storage file has no metadata.yaml: the markers are the fallback
    (storage_file,) = both.glob("*.mcap")
    spacing, source = resolve_pixel_spacing(storage_file, None)
    assert spacing == pytest.approx(SPACING_M, rel=1e-9)
    assert source.startswith("ground-truth tip markers")
