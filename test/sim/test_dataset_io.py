"""Dataset folder writing/reading, user data with optional fields, errors, splits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fluoro_perception.sim.dataset import (
    ANNOTATIONS_FILE,
    DATASET_FORMAT_VERSION,
    HEADER_FILE,
    DatasetError,
    DatasetWriter,
    load_frame,
    read_dataset,
    split_dataset,
    split_sequences,
    write_dataset,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

HEIGHT, WIDTH = 32, 48
SPACING_M = 1.5e-4


def make_frame(sequence_id: str, index: int, bit_depth: int = 8) -> SimFrame:
    full_scale = (1 << bit_depth) - 1
    ramp = (np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) * 11 + index) % (full_scale + 1)
    image = ramp.astype(np.uint8 if bit_depth == 8 else np.uint16)
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[10, 5:30] = 1
    labels[20:26, 34:40] = 2
    labels[0, :] = 3
    instances = (labels == 1).astype(np.uint8)
    field = np.ones((HEIGHT, WIDTH), bool)
    field[:, -3:] = False
    centerline = np.array([[5.25, 10.0], [17.5, 10.0], [29.0, 10.125]], np.float32)
    wire = WireTruth(1, "guidewire", centerline, centerline[0].copy(), math.pi, True, 1.5)
    outline = np.array([[34, 20], [39, 20], [39, 25], [34, 25]], np.float32)
    stent = StentTruth(1, "balloon_expandable", outline, np.array([36.5, 22.5]), 0.0, 5, 5, 0.5)
    return SimFrame(
        image=image,
        bit_depth=bit_depth,
        labels=labels,
        wire_instances=instances,
        field_mask=field,
        wires=[wire],
        stents=[stent],
        pixel_spacing_m=SPACING_M,
        sequence_id=sequence_id,
        frame_index=index,
        timestamp_s=index / 10.0,
        scenario="stent",
        params={"seed": np.int64(3), "gain": np.float32(0.5)},
    )


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("bit_depth", [8, 12, 16])
def test_write_read_round_trip(tmp_path, bit_depth):
    frames = [make_frame(seq, i, bit_depth) for seq in ("b_seq", "a_seq") for i in range(3)]
    header_path = write_dataset(tmp_path / "ds", frames, generator={"seed": 7, "tool": "test"})
    header = json.loads(header_path.read_text())
    assert header["format_version"] == DATASET_FORMAT_VERSION
    assert header["classes"] == ["background", "guidewire", "stent", "catheter"]
    assert header["generator"] == {"seed": 7, "tool": "test"}
    assert [(s["sequence_id"], s["n_frames"]) for s in header["sequences"]] == [
        ("b_seq", 3),
        ("a_seq", 3),
    ]

    dataset = read_dataset(tmp_path / "ds")
    assert len(dataset) == 6
    assert dataset.sequence_ids == ["a_seq", "b_seq"]  # records sorted by sequence, frame
    by_key = {(f.sequence_id, f.frame_index): f for f in frames}
    for record in dataset.records:
        original = by_key[(record.sequence_id, record.frame_index)]
        loaded = load_frame(record)
        assert loaded.image.dtype == original.image.dtype
        np.testing.assert_array_equal(loaded.image, original.image)
        np.testing.assert_array_equal(loaded.labels, original.labels)
        np.testing.assert_array_equal(loaded.wire_instances, original.wire_instances)
        np.testing.assert_array_equal(loaded.field_mask, original.field_mask)
        assert loaded.bit_depth == bit_depth
        assert loaded.pixel_spacing_m == SPACING_M
        assert loaded.timestamp_s == pytest.approx(original.timestamp_s)
        assert loaded.scenario == "stent"
        assert loaded.params == {"seed": 3, "gain": 0.5}
        [wire] = loaded.wires
        np.testing.assert_allclose(wire.centerline_px, original.wires[0].centerline_px)
        np.testing.assert_allclose(wire.tip_px, [5.25, 10.0])
        assert (wire.tip_direction_rad, wire.tip_visible, wire.width_px) == (math.pi, True, 1.5)
        [stent] = loaded.stents
        np.testing.assert_allclose(stent.outline_px, original.stents[0].outline_px)
        assert (stent.kind, stent.deployed_fraction) == ("balloon_expandable", 0.5)


def test_writer_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ds"
    write_dataset(out, [make_frame("s", 0)])
    with pytest.raises(DatasetError, match="--overwrite"):
        DatasetWriter(out)
    write_dataset(out, [make_frame("t", 0)], overwrite=True)
    assert read_dataset(out).sequence_ids == ["t"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a dataset folder"):
        DatasetWriter(other, overwrite=True)
    assert (other / "cat.jpg").exists()


def test_duplicate_frame_is_rejected_by_writer(tmp_path):
    with DatasetWriter(tmp_path / "ds") as writer:
        writer.add_frame(make_frame("s", 0))
        with pytest.raises(DatasetError, match="already written"):
            writer.add_frame(make_frame("s", 0))


# ----------------------------------------------------------------------------- user data


def _write_user_image(root: Path, name: str, image: np.ndarray) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return name


def test_user_data_with_optional_fields_missing(tmp_path):
    """No dataset.json, no instance/field maps, no stents, partial wire geometry."""
    root = tmp_path / "user"
    labels = np.zeros((20, 30), np.uint8)
    labels[5, 2:20] = 1  # wire A along row 5
    labels[15, 2:20] = 1  # wire B along row 15
    grey = np.full((20, 30), 200, np.uint8)
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)  # user saved grey frames as colour
    lines = [
        {
            "sequence_id": "patient01",
            "frame_index": 0,
            "image": _write_user_image(root, "img/0.png", colour),
            "labels": _write_user_image(root, "lab/0.png", labels),
            "wires": [
                {"centerline_px": [[2, 5], [19, 5]]},
                {"instance_id": 7, "centerline_px": [[19, 15], [2, 15], [2, 16]]},
            ],
        },
        {
            "sequence_id": "patient01",
            "frame_index": 1,
            "image": _write_user_image(root, "img/1.png", grey),
            "labels": _write_user_image(root, "lab/1.png", np.zeros((20, 30), np.uint8)),
            "stents": [{"outline_px": [[0, 0], [10, 0], [10, 4], [0, 4]]}],
        },
    ]
    (root / ANNOTATIONS_FILE).write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    dataset = read_dataset(root)
    assert dataset.class_names == ("background", "guidewire", "stent", "catheter")
    first, second = (load_frame(r) for r in dataset.records)

    assert first.image.shape == (20, 30) and first.bit_depth == 8
    assert first.field_mask.all()
    assert math.isnan(first.pixel_spacing_m)
    wire_a, wire_b = first.wires
    assert wire_a.instance_id == 1 and wire_b.instance_id == 7
    np.testing.assert_allclose(wire_a.tip_px, [2, 5])  # tip = first centerline point
    # direction from the 2nd point towards the tip: (2,5)-(19,5) points along -x
    assert wire_a.tip_direction_rad == pytest.approx(math.pi)
    assert wire_b.tip_direction_rad == pytest.approx(0.0)
    # instance map derived from the nearest centerline
    assert first.wire_instances[5, 10] == 1 and first.wire_instances[15, 10] == 7
    assert first.wire_instances[0, 0] == 0
    assert first.stents == []

    assert second.wires == []

    # a loaded user frame (unknown spacing) can be written and read back
    write_dataset(tmp_path / "copy", [first, second])
    copied = [load_frame(r) for r in read_dataset(tmp_path / "copy").records]
    assert math.isnan(copied[0].pixel_spacing_m)
    np.testing.assert_array_equal(copied[0].wire_instances, first.wire_instances)
    [stent] = second.stents
    np.testing.assert_allclose(stent.centroid_px, [5, 2])
    assert (stent.length_px, stent.diameter_px) == pytest.approx((10.0, 4.0))
    assert math.sin(stent.axis_rad) == pytest.approx(0.0, abs=1e-6)  # horizontal axis
    assert stent.kind == "unknown"


# ----------------------------------------------------------------------------- malformed


def _valid_line(root: Path) -> dict:
    _write_user_image(root, "i.png", np.zeros((8, 8), np.uint8))
    _write_user_image(root, "l.png", np.zeros((8, 8), np.uint8))
    return {"sequence_id": "s", "frame_index": 0, "image": "i.png", "labels": "l.png"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("labels"), r":1: required key 'labels' is missing"),
        (lambda d: d.update(frame_index="3"), r":1: key 'frame_index' = \"3\"; expected int"),
        (lambda d: d.update(frame_index=-1), r"frame_index=-1; expected >= 0"),
        (lambda d: d.update(image="gone.png"), r"image file 'gone.png' does not exist"),
        (lambda d: d.update(image="/etc/passwd"), r"relative to the dataset folder"),
        (lambda d: d.update(sequence_id="a/b"), r"sequence_id='a/b'"),
        (lambda d: d.update(bit_depth=10), r"bit_depth=10; expected 8, 12 or 16"),
        (
            lambda d: d.update(wires=[{"centerline_px": [[1, 2, 3]]}]),
            r"wires\[0\]: key 'centerline_px' = \[\[1, 2, 3\]\]; expected points",
        ),
        (
            lambda d: d.update(stents=[{"outline_px": [[0, 0], [1, 1]]}]),
            r"stents\[0\]: outline_px has 2 points; expected >= 3",
        ),
    ],
)
def test_malformed_annotation_gives_one_line_error(tmp_path, change, message):
    line = _valid_line(tmp_path)
    change(line)
    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps(line) + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        read_dataset(tmp_path)
    assert "\n" not in str(info.value)
    assert ANNOTATIONS_FILE in str(info.value) or "dataset" in str(info.value)


@pytest.mark.parametrize(
    ("annotations", "header", "message"),
    [
        ('{"sequence_id": "s",\n', None, r"annotations.jsonl:1: invalid JSON"),
        ("", None, r"has no frames"),
        (None, None, r"has no annotations.jsonl"),
        ("VALID\nVALID\n", None, r":2: frame 0 of sequence 's' repeats line 1"),
        ("VALID\n", {"format_version": 99}, r"format_version=99; this reader supports"),
        ("VALID\n", {"classes": ["wire"]}, r"starting with 'background'"),
        ("VALID\n", "{not json", r"dataset.json: invalid JSON"),
    ],
)
def test_malformed_files_give_one_line_errors(tmp_path, annotations, header, message):
    valid = json.dumps(_valid_line(tmp_path))
    if annotations is not None:
        (tmp_path / ANNOTATIONS_FILE).write_text(annotations.replace("VALID", valid))
    if header is not None:
        text = header if isinstance(header, str) else json.dumps(header)
        (tmp_path / HEADER_FILE).write_text(text)
    with pytest.raises(DatasetError, match=message) as info:
        read_dataset(tmp_path)
    assert "\n" not in str(info.value)


def test_bad_label_png_is_reported_on_load(tmp_path):
    line = _valid_line(tmp_path)
    _write_user_image(tmp_path, "l.png", np.full((8, 8), 9, np.uint8))
    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps(line) + "\n")
    [record] = read_dataset(tmp_path).records
    with pytest.raises(DatasetError, match="holds class 9; expected indices 0..3"):
        load_frame(record)


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize(
    ("n_ids", "fractions", "expected_counts"),
    [
        (10, None, {"train": 8, "val": 1, "test": 1}),
        (3, None, {"train": 1, "val": 1, "test": 1}),
        (7, {"train": 0.5, "test": 0.5}, {"train": 4, "test": 3}),
        (4, {"train": 1.0, "val": 0.0}, {"train": 4, "val": 0}),
        (2, None, {"train": 2, "val": 0, "test": 0}),
    ],
)
def test_split_sequences_counts(n_ids, fractions, expected_counts):
    ids = [f"seq{i}" for i in range(n_ids)]
    split = split_sequences(ids, fractions, seed=1)
    assert {name: len(v) for name, v in split.items()} == expected_counts
    assert sorted(x for v in split.values() for x in v) == sorted(ids)
    assert split == split_sequences(ids, fractions, seed=1)


def test_split_seed_changes_assignment_and_rejects_bad_fractions():
    ids = [f"seq{i}" for i in range(20)]
    assert split_sequences(ids, seed=0) != split_sequences(ids, seed=1)
    with pytest.raises(ValueError, match="sum to"):
        split_sequences(ids, {"train": 0.5, "val": 0.2})
    with pytest.raises(ValueError, match="duplicates"):
        split_sequences(["a", "a"])


def test_split_dataset_is_by_sequence(tmp_path):
    frames = [make_frame(f"seq{s}", i) for s in range(5) for i in range(4)]
    write_dataset(tmp_path / "ds", frames)
    dataset = read_dataset(tmp_path / "ds")
    split = split_dataset(dataset, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    owners: dict[str, str] = {}
    for name, records in split.items():
        for record in records:
            assert owners.setdefault(record.sequence_id, name) == name
    assert sum(len(r) for r in split.values()) == 20
    assert {name: len(r) for name, r in split.items()} == {"train": 12, "val": 4, "test": 4}


# ------------------------------------------------------------------- contrast-vessel mask


def _with_vessels(frame: SimFrame) -> SimFrame:
    vessels = np.zeros((HEIGHT, WIDTH), bool)
    vessels[3:7, 2:40] = True  # a vessel band, crossing nothing labelled
    vessels[9:12, 20:26] = True  # and one over the wire (row 10)
    frame.vessel_mask = vessels
    return frame


def test_vessel_mask_round_trip(tmp_path):
    frames = [_with_vessels(make_frame("s", 0)), make_frame("s", 1)]
    write_dataset(tmp_path / "ds", frames)
    lines = [json.loads(x) for x in (tmp_path / "ds" / ANNOTATIONS_FILE).read_text().splitlines()]
    assert lines[0]["vessels"] == "sequences/s/vessels/000000.png"
    assert "vessels" not in lines[1]  # no mask: no key, no file
    assert not (tmp_path / "ds/sequences/s/vessels/000001.png").exists()
    png = cv2.imread(str(tmp_path / "ds" / lines[0]["vessels"]), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and set(np.unique(png)) == {0, 255}  # mono8 0/255
    with_mask, without = (load_frame(r) for r in read_dataset(tmp_path / "ds").records)
    assert with_mask.vessel_mask.dtype == bool
    np.testing.assert_array_equal(with_mask.vessel_mask, frames[0].vessel_mask)
    assert without.vessel_mask is None


def test_vessel_mask_missing_key_is_none_and_bad_files_are_one_line_errors(tmp_path):
    line = _valid_line(tmp_path)  # a user line without "vessels" (like old datasets)
    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps(line) + "\n")
    [record] = read_dataset(tmp_path).records
    assert record.vessels_path is None and load_frame(record).vessel_mask is None
    # a key naming no file is a dangling reference, like any other path
    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps({**line, "vessels": "v.png"}) + "\n")
    with pytest.raises(DatasetError, match="vessels file 'v.png' does not exist"):
        read_dataset(tmp_path)
    # a mask of the wrong size: the file and the expected size are named
    _write_user_image(tmp_path, "v.png", np.zeros((8, 5), np.uint8))
    [record] = read_dataset(tmp_path).records
    with pytest.raises(
        DatasetError, match=r"vessels .*v\.png is uint8\(8, 5\); expected a uint8 \(8, 8\)"
    ) as info:
        load_frame(record)
    assert "\n" not in str(info.value)
    _write_user_image(tmp_path, "v.png", np.zeros((8, 8), np.uint16))
    with pytest.raises(DatasetError, match=r"is uint16\(8, 8\); expected a uint8"):
        load_frame(record)


def test_writer_rejects_a_vessel_mask_of_another_size(tmp_path):
    frame = make_frame("s", 0)
    frame.vessel_mask = np.zeros((HEIGHT, WIDTH + 1), bool)
    with DatasetWriter(tmp_path / "ds") as writer:
        with pytest.raises(ValueError, match=r"vessel_mask has shape \(32, 49\); expected"):
            writer.add_frame(frame)


def test_simulated_dataset_carries_the_vessel_mask(tmp_path):
    from fluoro_perception.sim import SequenceSimulator, SimConfig

    config = SimConfig(height=96, width=96, scenario="contrast", fps=15.0)
    frames = SequenceSimulator(2, config).frames(12)  # t = 0 (before injection) .. 0.73 s
    assert frames[-1].vessel_mask.any() and not frames[0].vessel_mask.any()
    write_dataset(tmp_path / "ds", [frames[0], frames[-1]])
    loaded = [load_frame(r) for r in read_dataset(tmp_path / "ds").records]
    for original, back in zip([frames[0], frames[-1]], loaded, strict=True):
        np.testing.assert_array_equal(back.vessel_mask, original.vessel_mask)
        np.testing.assert_array_equal(back.labels, original.labels)
