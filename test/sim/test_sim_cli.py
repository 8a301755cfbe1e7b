"""Smoke tests of ``fluoro-sim`` (``main([...])`` on tiny sizes) and of the preview drawing."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fluoro_perception.bagio import open_bag, points_px_to_m
from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_perception.sim.cli import BAG_EPOCH_NS, bag_stamp_ns, main, sequence_seeds
from fluoro_perception.sim.dataset import load_frame, read_dataset
from fluoro_perception.sim.preview import (
    FIELD_COLOR_BGR,
    STENT_COLOR_BGR,
    WIRE_COLORS_BGR,
    contact_sheet,
    draw_ground_truth,
    to_display_u8,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

SIZE = ["--size", "64", "64"]


# ----------------------------------------------------------------------------- help / usage


@pytest.mark.parametrize(
    "argv", [["--help"], *[[c, "--help"] for c in ("dataset", "bag", "preview", "bench")]]
)
def test_help_works(argv, capsys):
    assert main(argv) == 0
    assert "usage: fluoro-sim" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required"),
        (["dataset", "OUT", "--frames", "2"], "--sequences"),
        (["dataset", "OUT", "--sequences", "0", "--frames", "2"], "expected >= 1"),
        (["dataset", "OUT", "--sequences", "1", "--frames", "2", "--size", "8", "8"], "32..4096"),
        (
            ["dataset", "OUT", "--sequences", "1", "--frames", "2", "--scenario", "x"],
            "unknown scenario",
        ),
        (
            ["dataset", "OUT", "--sequences", "1", "--frames", "2", "--bit-depth", "10"],
            "invalid choice",
        ),
        (["bag", "OUT", "--frames", "2", "--fps", "-3"], "finite number > 0"),
        (["bag", "OUT", "--frames", "2", "--fps", "10", "--storage", "zip"], "invalid choice"),
        (["bag", "OUT", "--frames", "2", "--fps", "10", "--encoding", "rgb8"], "invalid choice"),
        (["preview", "OUT.png", "--rows", "zero"], "not an integer"),
        (["teleport"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_sequence_seeds_are_distinct_and_reproducible():
    seeds = sequence_seeds(5, 4)
    assert len(set(seeds)) == 4 and seeds == sequence_seeds(5, 4)
    assert set(seeds).isdisjoint(sequence_seeds(6, 4))


def test_bag_stamps_follow_the_rate():
    assert [bag_stamp_ns(k, 15.0) - BAG_EPOCH_NS for k in range(4)] == [
        0,
        66_666_667,
        133_333_333,
        200_000_000,
    ]


# ----------------------------------------------------------------------------- dataset


def test_dataset_command_writes_a_readable_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    argv = ["dataset", str(out), "--sequences", "2", "--frames", "2", "--seed", "3", "--quiet"]
    assert main([*argv, *SIZE, "--bit-depth", "12"]) == 0
    assert "wrote 4 frames in 2 sequences" in capsys.readouterr().out
    dataset = read_dataset(out)
    assert dataset.sequence_ids == ["seq3_0000", "seq3_0001"]
    assert dataset.header["generator"]["seed"] == 3
    frame = load_frame(dataset.records[-1])
    assert frame.image.shape == (64, 64) and frame.image.dtype == np.uint16
    assert frame.bit_depth == 12 and int(frame.image.max()) <= 4095
    # the same sequence simulated again gives the stored frame exactly
    seed = sequence_seeds(3, 2)[1]
    config = SimConfig(height=64, width=64, bit_depth=12)
    expected = SequenceSimulator(seed, config, "seq3_0001").frames(2)[1]
    np.testing.assert_array_equal(frame.image, expected.image)
    np.testing.assert_array_equal(frame.labels, expected.labels)

    # never overwrite without permission; one-line error, exit 2
    assert main([*argv, *SIZE]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert main([*argv, *SIZE, "--overwrite"]) == 0


def test_dataset_into_unwritable_output_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    argv = ["dataset", str(blocker), "--sequences", "1", "--frames", "1", "--quiet", *SIZE]
    assert main(argv) == 2
    assert "is a file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bag


@pytest.mark.parametrize(("storage", "encoding"), [("mcap", "mono16"), ("sqlite3", "mono8")])
def test_bag_command_round_trip(tmp_path, storage, encoding):
    out = tmp_path / "bag"
    argv = ["bag", str(out), "--frames", "3", "--fps", "10", "--seed", "4", "--storage", storage]
    assert main([*argv, "--encoding", encoding, "--scenario", "dual", "--quiet", *SIZE]) == 0
    bit_depth = 8 if encoding == "mono8" else 12
    config = SimConfig(height=64, width=64, fps=10.0, scenario="dual", bit_depth=bit_depth)
    expected = SequenceSimulator(4, config).frames(3)
    with open_bag(out) as bag:
        frames = list(bag.iter_frames())
        assert bag.skipped == {}
    assert [f.image.stamp_ns - BAG_EPOCH_NS for f in frames] == [0, 100_000_000, 200_000_000]
    for got, sim in zip(frames, expected, strict=True):
        assert got.image.encoding == encoding
        np.testing.assert_array_equal(got.image.image, sim.image)
        np.testing.assert_array_equal(got.ground_truth.labels, sim.labels)
        wires = sorted(sim.wires, key=lambda w: w.instance_id)
        tips = np.array([points_px_to_m(w.tip_px, sim.pixel_spacing_m) for w in wires])
        np.testing.assert_allclose(got.ground_truth.tips_m, tips.reshape(-1, 3), atol=1e-12)
        if wires:
            primary = wires[0]
            np.testing.assert_allclose(got.ground_truth.tip_position_m, tips[0], atol=1e-12)
            delta = got.ground_truth.tip_direction_rad - primary.tip_direction_rad
            assert math.isclose(math.cos(delta), 1.0, abs_tol=1e-9)
            centerline = points_px_to_m(primary.centerline_px, sim.pixel_spacing_m)
            np.testing.assert_allclose(got.ground_truth.centerline_m, centerline, atol=1e-12)


def test_bag_refuses_existing_output_and_bad_parent(tmp_path, capsys):
    out = tmp_path / "bag"
    argv = ["bag", str(out), "--frames", "1", "--fps", "5", "--quiet", *SIZE]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["bag", str(blocker / "bag"), "--frames", "1", "--fps", "5", "--quiet", *SIZE]) == 2
    assert "cannot create bag" in capsys.readouterr().err


# ----------------------------------------------------------------------------- preview / bench


def test_preview_command(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    argv = ["preview", str(out), "--rows", "1", "--cols", "2", "--panel", "64", *SIZE]
    assert main(argv) == 0
    sheet = cv2.imread(str(out))
    # tile: 22 px caption + 64 px panel; width 2 panels + 4 px gap; 8 px between tiles;
    # 22 px legend band
    assert sheet.shape == (22 + 64 + 22, 2 * (2 * 64 + 4) + 8, 3)
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["preview", str(tmp_path / "sheet.jpg"), *SIZE]) == 2


def test_bench_command(capsys):
    assert main(["bench", "--frames", "1", *SIZE]) == 0
    assert "frames/s" in capsys.readouterr().out


def _hand_frame(tip_visible: bool) -> SimFrame:
    height, width = 40, 60
    labels = np.zeros((height, width), np.uint8)
    labels[20, 10:40] = 1
    field = np.zeros((height, width), bool)
    field[2:38, 2:58] = True
    centerline = np.array([[10, 20], [25, 20], [39, 20]], np.float32)
    wire = WireTruth(2, "guidewire", centerline, centerline[0].copy(), math.pi, tip_visible, 1.0)
    outline = np.array([[45, 5], [55, 5], [55, 12], [45, 12]], np.float32)
    stent = StentTruth(1, "aortic", outline, np.array([50, 8.5]), 0.0, 10, 7, 1.0)
    return SimFrame(
        np.full((height, width), 2000, np.uint16),
        12,
        labels,
        (labels == 1).astype(np.uint8) * 2,
        field,
        [wire],
        [stent],
        1e-4,
        "hand",
        0,
        0.0,
        "mono",
    )


def _assert_drawn(pixel: np.ndarray, colour: tuple[int, int, int], grey: int) -> None:
    """Anti-aliased lines blend with the background: require the pixel to be much closer
    to the drawing colour than to the grey background."""
    to_colour = np.abs(pixel.astype(int) - np.array(colour)).max()
    to_grey = np.abs(pixel.astype(int) - grey).max()
    assert to_colour <= 40 and to_grey >= 60, (pixel.tolist(), colour)


def test_overlay_draws_each_ground_truth_element_where_it_belongs():
    overlay = draw_ground_truth(_hand_frame(tip_visible=True))
    grey = round(2000 * 255 / 4095)
    assert overlay.shape == (40, 60, 3)
    np.testing.assert_array_equal(overlay[30, 30], [grey] * 3)  # untouched background
    _assert_drawn(overlay[20, 25], WIRE_COLORS_BGR[1], grey)  # centerline, instance 2 colour
    _assert_drawn(overlay[20, 10], WIRE_COLORS_BGR[1], grey)  # tip disc
    _assert_drawn(overlay[5, 50], STENT_COLOR_BGR, grey)  # stent outline, top edge
    _assert_drawn(overlay[30, 2], FIELD_COLOR_BGR, grey)  # field boundary (left edge)
    # the direction arrow leaves the tip towards -x (pi)
    _assert_drawn(overlay[20, 5], WIRE_COLORS_BGR[1], grey)
    # a tip outside the field is a cross, not a disc: the disc's ring pixel stays unmarked
    hidden = draw_ground_truth(_hand_frame(tip_visible=False))
    assert not np.array_equal(hidden[18, 10], overlay[18, 10])


def test_contact_sheet_layout_and_display_scaling():
    frames = [_hand_frame(True), _hand_frame(False), _hand_frame(True)]
    sheet = contact_sheet(frames, cols=2, panel_size=64)
    panel_width = round(60 * 64 / 40)  # 96
    tile_height, tile_width = 22 + 64, 2 * panel_width + 4
    assert sheet.shape == (2 * tile_height + 8, 2 * tile_width + 8, 3)
    assert to_display_u8(np.array([[0, 4095]], np.uint16), 12).tolist() == [[0, 255]]
    with pytest.raises(ValueError, match="bit_depth"):
        to_display_u8(np.zeros((2, 2), np.uint16), 10)
