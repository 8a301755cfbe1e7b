"""``fluoro-perception demo``: the simulator -> segmentation graph over real DDS, short mode.

Random-weight model (``make_random_onnx_model``): the test checks the files the demo
promises and their structure, not accuracy. DDS is isolated per test session
(``test/conftest.py``); the demo's own loop has a deadline (``--timeout``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.bagio import open_bag
from fluoro_perception.cli.demo import CONTACT_SHEET_TILE_PX, contact_sheet, write_video
from fluoro_perception.cli.main import main
from fluoro_perception.replay import perception_topics

FRAMES = 12
SIZE_PX = 64


@pytest.mark.parametrize(
    ("frames", "count", "columns", "expected_shape", "filled_tiles"),
    [
        # 5 frames of 32 x 64 px -> tiles 128 x 256 px, 5 tiles on a 2 x 4 grid
        (5, 12, 4, (2 * 128, 4 * CONTACT_SHEET_TILE_PX, 3), 5),
        # 20 frames, 6 picked evenly, 3 columns -> 2 full rows
        (20, 6, 3, (2 * 128, 3 * CONTACT_SHEET_TILE_PX, 3), 6),
        (1, 12, 4, (128, CONTACT_SHEET_TILE_PX, 3), 1),
    ],
)
def test_contact_sheet_layout(frames, count, columns, expected_shape, filled_tiles) -> None:
    images = [(i * 66_666_667, np.full((32, 64, 3), 100 + i, np.uint8)) for i in range(frames)]
    sheet = contact_sheet(images, count=count, columns=columns)
    assert sheet.shape == expected_shape
    tiles = [
        sheet[row * 128 : (row + 1) * 128, col * 256 : (col + 1) * 256]
        for row in range(expected_shape[0] // 128)
        for col in range(columns)
    ]
    assert sum(int(tile.any()) for tile in tiles) == filled_tiles
    # the first tile is the first frame (grey 100 under the label text)
    assert int(np.median(tiles[0])) == 100


def test_contact_sheet_needs_frames() -> None:
    with pytest.raises(ValueError, match="frames is empty"):
        contact_sheet([])


def test_write_video_writes_a_readable_file(tmp_path: Path) -> None:
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(6)]
    path, note = write_video(frames, tmp_path, 15.0)
    assert path.stat().st_size > 0
    assert path.suffix in (".mp4", ".avi") and note
    capture = cv2.VideoCapture(str(path))
    read = 0
    while capture.read()[0]:
        read += 1
    capture.release()
    assert read == 6


@pytest.mark.ros
def test_demo_short_run_writes_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_random_onnx_model(tmp_path / "random.onnx")
    out = tmp_path / "demo"
    code = main(
        ["demo", "--output", str(out), "--frames", str(FRAMES), "--fps", "15", "--size",
         str(SIZE_PX), str(SIZE_PX), "--model", str(model), "--providers", "cpu", "--quiet",
         "--timeout", "90"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    video = out / "overlay.mp4" if (out / "overlay.mp4").exists() else out / "overlay.avi"
    assert video.stat().st_size > 0
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > 0
    for name in ("metrics.json", "report.md", "demo.json", "demo.md"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    for section in ("## Targets", "## Summary", "## Figures", "## Worst frames"):
        assert section in report
    stored = json.loads((out / "demo.json").read_text())
    # every simulated frame was processed or counted as dropped
    assert stored["frames_read"] == FRAMES
    assert stored["frames_processed"] + stored["num_dropped"] == FRAMES
    assert stored["frames_processed"] >= 1
    topics = perception_topics()
    with open_bag(out / "output_bag") as bag:
        assert bag.message_count(topics["labels"][0]) == stored["frames_processed"]
        assert bag.message_count("/fluoro/ground_truth/labels") == FRAMES
        assert "/diagnostics" in bag.topics
    # it ends by printing where the files are
    for text in ("overlay video", "contact sheet:", "output bag:", "evaluation report:"):
        assert text in printed


def test_demo_without_a_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--output", str(tmp_path / "d"), "--model", str(tmp_path / "no.onnx")])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert "no.onnx not found" in error and "\n" not in error
