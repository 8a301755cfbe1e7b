"""``fluoro-perception demo``: the simulator -> segmentation graph over real DDS, short mode.

Random-weight model (``make_random_onnx_model``): the test checks the files the demo
promises and their structure, not accuracy. DDS is isolated per test session
(``test/conftest.py``); the demo's own loop has a deadline (``--timeout``). Frames that
fail (in the node, or in the evaluation afterwards) are recorded in ``errors.jsonl`` and
the demo still writes every other file, exiting with 3.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_injection import fail_on_call
from model_fixtures import make_random_onnx_model

from fluoro_perception.bagio import open_bag
from fluoro_perception.cli.demo import CONTACT_SHEET_TILE_PX, contact_sheet, write_video
from fluoro_perception.cli.main import main
from fluoro_perception.evaluation.frame_errors import (
    EXIT_FRAMES_FAILED,
    FrameErrorLog,
    iter_errors,
)
from fluoro_perception.replay import perception_topics, record_node_failures

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


def test_node_failures_become_error_records(tmp_path: Path) -> None:
    drops = {"superseded": 4, "processing_error": 2, "decode_error": 1, "stale": 3}
    with FrameErrorLog(tmp_path / "errors.jsonl") as errors:
        record_node_failures(errors, drops, "processing_error: ValueError: outline of 2")
    assert errors.by_stage == {"decode": 1, "pipeline": 2}  # load shedding is no failure
    assert errors.exit_code() == EXIT_FRAMES_FAILED
    records = list(iter_errors(tmp_path / "errors.jsonl"))
    assert [(r["frame"], r["stage"], r["count"]) for r in records] == [
        (None, "decode", 1),
        (None, "pipeline", 2),
    ]
    assert records[1]["reason"] == (
        "segmentation_node dropped 2 frame(s) (processing_error); last: ValueError: outline of 2"
    )


def _run_demo(tmp_path: Path) -> tuple[int, Path]:
    model = make_random_onnx_model(tmp_path / "random.onnx")
    out = tmp_path / "demo"
    code = main(
        ["demo", "--output", str(out), "--frames", str(FRAMES), "--fps", "15", "--size",
         str(SIZE_PX), str(SIZE_PX), "--model", str(model), "--providers", "cpu", "--quiet",
         "--timeout", "90"]
    )  # fmt: skip
    return code, out


def _check_media(out: Path) -> None:
    video = out / "overlay.mp4" if (out / "overlay.mp4").exists() else out / "overlay.avi"
    assert video.stat().st_size > 0
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] > 0
    for name in ("demo.json", "demo.md"):
        assert (out / name).is_file(), name


@pytest.mark.ros
def test_demo_short_run_writes_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run_demo(tmp_path)
    printed = capsys.readouterr().out
    assert code == 0, printed
    _check_media(out)
    for name in ("metrics.json", "report.md"):
        assert (out / name).is_file(), name
    assert list(iter_errors(out / "errors.jsonl")) == []
    assert "failed frames: 0 failed" in printed
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


@pytest.mark.ros
def test_demo_with_failing_frames_writes_the_rest_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's geometry raises on one frame and the evaluation of the recording fails:
    both are recorded, the video, sheet and frame accounting are still written."""
    import fluoro_perception.core.pipeline as pipeline_module
    import fluoro_perception.replay as replay_module

    failure = RuntimeError("one frame goes wrong")
    fail_on_call(monkeypatch, pipeline_module, "extract_stents", 3, lambda: failure)
    fail_on_call(
        monkeypatch, replay_module, "evaluate_recorded", 1, lambda: ValueError("scoring broke")
    )
    code, out = _run_demo(tmp_path)
    captured = capsys.readouterr()
    assert code == EXIT_FRAMES_FAILED, captured.out
    _check_media(out)
    assert not (out / "report.md").exists()
    records = list(iter_errors(out / "errors.jsonl"))
    assert [(r["frame"], r["stage"]) for r in records] == [(None, "pipeline"), (None, "metrics")]
    assert records[0]["count"] == 1 and "one frame goes wrong" in records[0]["reason"]
    assert "ValueError: scoring broke" in records[1]["reason"]
    stored = json.loads((out / "demo.json").read_text())
    assert stored["frames_dropped"].get("processing_error") == 1
    assert "failed frames: " in captured.out and "(pipeline: 1, metrics:" in captured.out


def test_node_failure_detail_survives_later_drops_of_another_reason(tmp_path: Path) -> None:
    # the node's snapshot keeps the last detail per reason: a superseded frame dropped
    # after the failure does not hide why the frame failed
    from fluoro_perception.nodes.perception_stats import PerceptionStats

    stats = PerceptionStats()
    stats.note_drop("processing_error", "RuntimeError: one frame goes wrong")
    stats.note_drop("superseded")
    snapshot = stats.snapshot(0.0)
    assert snapshot["last_drop"] == "superseded"
    with FrameErrorLog(tmp_path / "errors.jsonl") as errors:
        record_node_failures(errors, dict(stats.drops), snapshot)
    [record] = list(iter_errors(tmp_path / "errors.jsonl"))
    assert record["reason"].endswith("; last: RuntimeError: one frame goes wrong")
