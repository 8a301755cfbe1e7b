"""End-to-end runs of ``fluoro-perception infer`` on small inputs (random-weight model).

Inputs: a folder of 8-bit and 16-bit PNGs (+ a 16-bit TIFF and a corrupt PNG), simulated
rosbags in both storage formats, a short MJPG video. Every results.jsonl is checked with
the schema validator, every mask for its size and values. Frames that fail (bad files, a
stage that raises or returns what the schema refuses, a mask that cannot be written) each
get an errors.jsonl record while every other frame is processed, and the exit code is 3.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_injection import fail_on_call
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli.main import main
from fluoro_perception.core.engine import InferenceEngine
from fluoro_perception.core.types import StentDetection
from fluoro_perception.evaluation.frame_errors import (
    ERROR_KEYS,
    EXIT_FRAMES_FAILED,
    ErrorsFormatError,
    FrameError,
    error_record,
    failure_stage,
    iter_errors,
    validate_error_record,
)
from fluoro_perception.evaluation.results_io import (
    RESULT_KEYS,
    STENT_KEYS,
    WIRE_KEYS,
    ResultsFormatError,
    iter_results,
    validate_record,
    validate_results_file,
)
from fluoro_perception.model_registry import write_model_card
from fluoro_perception.sim.cli import bag_stamp_ns
from fluoro_perception.sim.cli import main as sim_main

FOLDER_SHAPES = {"a_frame8": (72, 96), "b_frame16": (64, 64), "c_tiff16": (80, 64)}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = make_random_onnx_model(
        tmp_path_factory.mktemp("model") / "rand.onnx", input_size=(64, 64)
    )
    write_model_card(path, "random-weight test model")
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for name, (height, width) in FOLDER_SHAPES.items():
        grey = rng.uniform(0.3, 0.8, (height, width))
        grey[height // 2, 5:-5] = 0.1  # a dark wire-like line
        if name.endswith("8"):
            cv2.imwrite(str(folder / f"{name}.png"), np.round(grey * 255).astype(np.uint8))
        else:
            suffix = ".tif" if "tiff" in name else ".png"
            cv2.imwrite(str(folder / f"{name}{suffix}"), np.round(grey * 4095).astype(np.uint16))
    (folder / "d_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG body")
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    return folder


def _infer(*args: str | Path) -> int:
    return main(["infer", *map(str, args), "--quiet"])


def _check_outputs(output: Path, expected_shapes: dict[str, tuple[int, int]]) -> list[dict]:
    """Validate results.jsonl and the masks; returns the records."""
    assert validate_results_file(output / "results.jsonl") == len(expected_shapes)
    records = list(iter_results(output / "results.jsonl"))
    assert [r["frame"] for r in records] == list(expected_shapes)
    for record in records:
        assert tuple(record) == RESULT_KEYS
        assert isinstance(record["latency_ms"], float) and record["latency_ms"] > 0
        for wire in record["wires"]:
            assert tuple(wire) == WIRE_KEYS
            assert wire["tip_px"] == wire["centerline_px"][0]  # tip first
        for stent in record["stents"]:
            assert tuple(stent) == STENT_KEYS
        height, width = expected_shapes[record["frame"]]
        points = [p for w in record["wires"] for p in w["centerline_px"]]
        points += [p for s in record["stents"] for p in s["outline_px"]]
        for x, y in points:  # input grid, not the 64x64 model grid
            assert -0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5
        for kind in ("guidewire", "stent"):
            mask = cv2.imread(
                str(output / "masks" / f"{record['frame']}_{kind}.png"), cv2.IMREAD_UNCHANGED
            )
            assert mask is not None, (record["frame"], kind)
            assert mask.shape == (height, width) and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
    return records


def _errors(output: Path) -> list[dict]:
    records = list(iter_errors(output / "errors.jsonl"))
    assert all(tuple(record) == ERROR_KEYS for record in records)
    return records


def test_infer_image_folder_8_and_16_bit_records_the_corrupt_frame(
    tmp_path, model, image_folder, capsys
):
    output = tmp_path / "out"
    assert _infer(image_folder, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    captured = capsys.readouterr()
    records = _check_outputs(output, FOLDER_SHAPES)
    assert any(r["wires"] or r["stents"] for r in records)  # the random model finds something
    fail_lines = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(fail_lines) == 1 and "d_corrupt.png" in fail_lines[0]
    [error] = _errors(output)
    assert error["frame"] == "d_corrupt" and error["stage"] == "decode" and error["count"] == 1
    assert "d_corrupt.png: not a decodable image" in error["reason"]
    assert "infer: 3 frames" in captured.out and "1 failed (decode: 1)" in captured.out
    assert not (output / "masks" / "d_corrupt_guidewire.png").exists()


GOOD_FRAMES = ("a_good", "b_good", "c_good", "d_good")
WARMUP_RUNS = inspect.signature(InferenceEngine).parameters["warmup_runs"].default


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    """Four good 8-bit frames and three bad files: truncated PNG, empty file, float TIFF."""
    folder = tmp_path / "bad_frames"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in GOOD_FRAMES:
        cv2.imwrite(str(folder / f"{name}.png"), rng.integers(60, 200, (64, 64), dtype=np.uint8))
    png = cv2.imencode(".png", rng.integers(0, 255, (64, 64), dtype=np.uint8))[1].tobytes()
    (folder / "b_truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "c_empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "d_float.tiff"), rng.random((64, 64)).astype(np.float32))
    return folder


def test_bad_files_get_error_records_and_every_other_frame_is_processed(
    tmp_path, model, bad_folder, capsys
):
    output = tmp_path / "out"
    assert _infer(bad_folder, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    out = capsys.readouterr().out
    _check_outputs(output, {name: (64, 64) for name in GOOD_FRAMES})
    errors = {e["frame"]: e for e in _errors(output)}
    assert sorted(errors) == ["b_truncated", "c_empty", "d_float"]
    assert {e["stage"] for e in errors.values()} == {"decode"}
    assert "an empty file" in errors["c_empty"]["reason"]
    assert "float32" in errors["d_float"]["reason"]
    assert "infer: 4 frames" in out and "3 failed (decode: 3)" in out


def _two_point_stent():
    """The failure the issue reports: a stent outline of 2 points (the schema wants >= 3)."""
    outline = np.array([[10.0, 10.0], [12.0, 10.0]], np.float32)
    centroid = np.array([11.0, 10.0])
    return [StentDetection(0, outline, centroid, 0.0, 3.0, 1.0, 0.9)]


@pytest.mark.parametrize(
    ("patched", "call", "make_failure", "stage", "reason"),
    [
        (
            "pipeline.extract_stents",
            2,
            lambda: RuntimeError("geometry broke"),
            "geometry",
            "RuntimeError: geometry broke",
        ),
        ("pipeline.extract_stents", 2, _two_point_stent, "validate", "expected a list of >= 3"),
        # the engine's first runs are its warm-up when it loads
        ("InferenceEngine.run", WARMUP_RUNS + 2, MemoryError, "inference", "MemoryError"),
    ],
)
def test_a_stage_that_fails_on_one_frame_is_recorded_and_the_run_goes_on(
    tmp_path, model, bad_folder, capsys, monkeypatch, patched, call, make_failure, stage, reason
):
    import fluoro_perception.core.pipeline as pipeline_module

    for bad in bad_folder.glob("[bcd]_[tef]*"):
        bad.unlink()
    # each is called once per frame: the 2nd frame (b_good) fails
    target = {"pipeline": pipeline_module, "InferenceEngine": InferenceEngine}
    owner, name = patched.split(".")
    fail_on_call(monkeypatch, target[owner], name, call, make_failure)
    output = tmp_path / "out"
    assert _infer(bad_folder, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    assert f"1 failed ({stage}: 1)" in capsys.readouterr().out
    kept = [name for name in GOOD_FRAMES if name != "b_good"]
    _check_outputs(output, {name: (64, 64) for name in kept})
    [error] = _errors(output)
    assert (error["frame"], error["stage"]) == ("b_good", stage)
    assert reason in error["reason"]
    assert not list((output / "masks").glob("b_good_*"))  # a failed frame leaves no masks


def test_a_mask_that_cannot_be_written_fails_only_its_frame(
    tmp_path, model, bad_folder, monkeypatch
):
    import fluoro_perception.cli.infer as infer_module

    for bad in bad_folder.glob("[bcd]_[tef]*"):
        bad.unlink()
    # the 6th mask write is c_good's stent mask, after its guidewire mask was written
    fail_on_call(monkeypatch, infer_module.cv2, "imwrite", 6, lambda: False)
    output = tmp_path / "out"
    assert _infer(bad_folder, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    _check_outputs(output, {name: (64, 64) for name in GOOD_FRAMES if name != "c_good"})
    [error] = _errors(output)
    assert (error["frame"], error["stage"]) == ("c_good", "write")
    assert "cannot write" in error["reason"] and "c_good_stent.png" in error["reason"]
    assert not list((output / "masks").glob("c_good_*"))  # its guidewire mask is removed


def test_an_interrupted_run_keeps_every_line_written(tmp_path, model, bad_folder, monkeypatch):
    import fluoro_perception.core.pipeline as pipeline_module

    fail_on_call(monkeypatch, pipeline_module, "extract_stents", 3, KeyboardInterrupt)
    output = tmp_path / "out"
    assert _infer(bad_folder, "--output", output, "--model", model) == 130
    # name order: a_good, b_good, b_truncated, c_empty, c_good (interrupted), ...
    records = list(iter_results(output / "results.jsonl"))
    assert [r["frame"] for r in records] == ["a_good", "b_good"]
    assert [e["frame"] for e in _errors(output)] == ["b_truncated", "c_empty"]


def test_no_frame_processed_exits_2_and_keeps_the_error_records(
    tmp_path, model, bad_folder, capsys
):
    for good in bad_folder.glob("*_good.png"):
        good.unlink()
    output = tmp_path / "out"
    assert _infer(bad_folder, "--output", output, "--model", model) == 2
    assert "no frame of" in _one_error_line_of(capsys.readouterr().err)
    assert len(_errors(output)) == 3
    assert validate_results_file(output / "results.jsonl") == 0


@pytest.mark.parametrize(("storage", "encoding"), [("mcap", "mono8"), ("sqlite3", "mono16")])
def test_infer_rosbag_both_storage_formats(tmp_path, model, storage, encoding):
    bag = tmp_path / f"bag_{storage}"
    sim_args = ["bag", str(bag), "--frames", "3", "--fps", "10", "--storage", storage]
    assert (
        sim_main(
            [*sim_args, "--encoding", encoding, "--size", "64", "80", "--seed", "2", "--quiet"]
        )
        == 0
    )
    output = tmp_path / "out"
    assert _infer(bag, "--output", output, "--model", model) == 0
    stamps = [str(bag_stamp_ns(k, 10.0)) for k in range(3)]
    _check_outputs(output, {stamp: (64, 80) for stamp in stamps})
    # the storage file alone is a valid input too
    storage_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    assert _infer(storage_file, "--output", tmp_path / "out_file", "--model", model) == 0
    assert validate_results_file(tmp_path / "out_file" / "results.jsonl") == 3


def test_infer_damaged_bag_keeps_the_frames_before_the_damage(tmp_path, model, capsys):
    from fluoro_perception import bagio

    bag = tmp_path / "bag"
    count = 6  # 6 x 256 KiB frames span more than one MCAP chunk (1 MiB)
    with bagio.BagWriter(bag, storage="mcap") as writer:
        for k in range(count):
            image = np.full((512, 512), 40 + 30 * k, np.uint8)
            writer.write_image(bagio.IMAGE_TOPIC, image, bag_stamp_ns(k, 10.0))
    # MCAP message record: opcode (1 byte), record length (8 bytes), channel id (2),
    # sequence (4), log time (8), publish time (8), then the CDR; an absurd length on the
    # last image makes the rest of its chunk unreadable
    storage_file = next(bag.glob("*.mcap"))
    data = bytearray(storage_file.read_bytes())
    with bagio.open_bag(bag) as reader:
        last = [message for _, message in reader.iter_messages(bagio.IMAGE_TOPIC)][-1]
    cdr = bagio.get_bag_typestore().serialize_cdr(last, bagio.IMAGE_TYPE)
    cdr_at = data.find(cdr[:40])
    assert cdr_at > 0
    data[cdr_at - 30 : cdr_at - 22] = (1 << 40).to_bytes(8, "little")
    storage_file.write_bytes(bytes(data))

    output = tmp_path / "out"
    assert _infer(bag, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    captured = capsys.readouterr()
    assert "is damaged after" in captured.err
    records = list(iter_results(output / "results.jsonl"))
    read = len(records)
    assert 1 <= read < count
    _check_outputs(output, {str(bag_stamp_ns(k, 10.0)): (512, 512) for k in range(read)})
    lost = count - read
    assert f"infer: {read} frames" in captured.out
    assert f"{lost} failed (read: {lost})" in captured.out
    [error] = _errors(output)
    assert error["frame"] is None and error["stage"] == "read" and error["count"] == lost


def test_infer_video(tmp_path, model):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for level in (60, 120, 180):
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    output = tmp_path / "out"
    assert _infer(video, "--output", output, "--model", model) == 0
    _check_outputs(output, {f"frame_{k:06d}": (48, 64) for k in range(3)})


def _one_error_line(capsys) -> str:
    return _one_error_line_of(capsys.readouterr().err)


def _one_error_line_of(err: str) -> str:
    """The one ``fluoro-perception infer: error:`` line of stderr (per-frame lines aside)."""
    err_lines = [line for line in err.splitlines() if line.strip()]
    err_lines = [line for line in err_lines if not line.startswith("failed: ")]
    assert len(err_lines) == 1, err_lines
    assert err_lines[0].startswith("fluoro-perception infer: error: ")
    return err_lines[0]


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda root: root / "missing_dir", "does not exist"),
        (lambda root: _touch(root / "table.csv"), "has suffix '.csv'"),
        (lambda root: _mkdir(root / "empty"), "holds no image files"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, model, capsys, make_input, message):
    assert _infer(make_input(tmp_path), "--output", tmp_path / "out", "--model", model) == 2
    assert message in _one_error_line(capsys)


def _touch(path: Path) -> Path:
    path.write_text("x", encoding="utf-8")
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_bag_topic_errors(tmp_path, model, image_folder, capsys):
    bag = tmp_path / "bag"
    assert (
        sim_main(["bag", str(bag), "--frames", "1", "--fps", "10", "--size", "64", "64", "--quiet"])
        == 0
    )
    assert _infer(bag, "--output", tmp_path / "o1", "--model", model, "--topic", "/nope") == 2
    line = _one_error_line(capsys)
    assert "/nope is not in it" in line and "/fluoro/image_raw (sensor_msgs/msg/Image)" in line
    assert _infer(image_folder, "--output", tmp_path / "o2", "--model", model, "--topic", "/x") == 2
    assert "is not a rosbag2" in _one_error_line(capsys)


def test_model_problems_exit_2(tmp_path, model, image_folder, capsys, monkeypatch):
    import fluoro_perception.model_registry as registry

    # no --model and nothing shipped in the (patched) share directories
    monkeypatch.setattr(registry, "share_dirs", lambda: [tmp_path / "share"])
    assert _infer(image_folder, "--output", tmp_path / "o1") == 2
    assert "no default model is shipped: models/default.onnx is missing" in _one_error_line(capsys)
    # a tampered model is refused by its card
    tampered = tmp_path / "tampered.onnx"
    tampered.write_bytes(model.read_bytes() + b"\0")
    tampered.with_suffix(".md").write_text(
        model.with_suffix(".md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert _infer(image_folder, "--output", tmp_path / "o2", "--model", tampered) == 2
    assert "does not match its card" in _one_error_line(capsys)


def test_existing_results_need_overwrite(tmp_path, model, image_folder, capsys):
    output = tmp_path / "out"
    assert _infer(image_folder, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    capsys.readouterr()
    assert _infer(image_folder, "--output", output, "--model", model) == 2
    assert "pass --overwrite" in _one_error_line(capsys)
    clean = tmp_path / "clean"
    shutil.copytree(image_folder, clean)
    (clean / "d_corrupt.png").unlink()
    assert _infer(clean, "--output", output, "--model", model, "--overwrite") == 0
    assert _errors(output) == []  # the previous run's record is gone with it


# ----------------------------------------------------------------------------- validator

GOOD_RECORD = {
    "frame": "000001",
    "wires": [
        {
            "id": 0,
            "centerline_px": [[10.0, 5.5], [11.0, 6.0], [12.0, 7.0]],
            "tip_px": [10.0, 5.5],
            "tip_direction_rad": -2.5,
            "confidence": 0.8,
        }
    ],
    "stents": [
        {
            "centroid_px": [30.0, 30.0],
            "axis_rad": 0.3,
            "outline_px": [[25.0, 28.0], [35.0, 28.0], [35.0, 32.0], [25.0, 32.0]],
            "confidence": 0.6,
        }
    ],
    "latency_ms": 12.5,
}


def _mutated(path: tuple, value) -> dict:
    record = copy.deepcopy(GOOD_RECORD)
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return record


def test_validator_accepts_the_documented_example():
    validate_record(copy.deepcopy(GOOD_RECORD))
    json.dumps(GOOD_RECORD, allow_nan=False)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("latency_ms",), KeyError, "missing \\['latency_ms'\\]"),
        (("extra",), 1, "unexpected \\['extra'\\]"),
        (("frame",), 3, "expected a non-empty string"),
        (("latency_ms",), math.nan, "latency_ms = nan"),
        (("wires", 0, "tip_px"), [12.0, 7.0], "expected the centerline ordered tip first"),
        (("wires", 0, "confidence"), 1.5, "confidence = 1.5"),
        (("wires", 0, "id"), True, "expected an int >= 0"),
        (("wires", 0, "centerline_px"), [], "expected a list of >= 1"),
        (("wires", 0, "score"), 0.5, "unexpected \\['score'\\]"),
        (("stents", 0, "outline_px"), [[0.0, 0.0], [1.0, 1.0]], "expected a list of >= 3"),
        (("stents", 0, "centroid_px"), [1.0], "expected \\[x, y\\]"),
        (("stents",), {}, "stents is dict; expected a list"),
    ],
)
def test_validator_rejects(path, value, message):
    with pytest.raises(ResultsFormatError, match=message):
        validate_record(_mutated(path, value))


def test_validator_rejects_repeated_frames_and_bad_json(tmp_path):
    path = tmp_path / "results.jsonl"
    line = json.dumps(GOOD_RECORD)
    path.write_text(f"{line}\n{line}\n", encoding="utf-8")
    with pytest.raises(ResultsFormatError, match="results.jsonl:2: frame '000001' repeats line 1"):
        validate_results_file(path)
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ResultsFormatError, match="results.jsonl:1: invalid JSON"):
        validate_results_file(path)


# ----------------------------------------------------------------------------- errors.jsonl


def test_error_records_are_one_line_and_validate(tmp_path):
    record = error_record("seq01_0007", "validate", ValueError("bad\n  outline " + "x" * 900))
    assert tuple(record) == ERROR_KEYS and record["count"] == 1
    assert "\n" not in record["reason"] and record["reason"].startswith("ValueError: bad outline")
    assert len(record["reason"]) == 500 and record["reason"].endswith("...")
    group = error_record(None, "read", "bag damaged after frame 3", count=4)
    path = tmp_path / "errors.jsonl"
    path.write_text(f"{json.dumps(record)}\n\n{json.dumps(group)}\n", encoding="utf-8")
    assert list(iter_errors(path)) == [record, group]
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ErrorsFormatError, match="errors.jsonl:1: invalid JSON"):
        list(iter_errors(path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "expected exactly"),
        ({"frame": ""}, "expected a non-empty string or null"),
        ({"stage": "somewhere"}, "expected one of"),
        ({"reason": "two\nlines"}, "expected one non-empty line"),
        ({"count": 0}, "expected an int >= 1"),
        ({"count": True}, "expected an int >= 1"),
        ({"count": 2}, "expected 1"),
    ],
)
def test_error_record_validator_rejects(change, message):
    record = {"frame": "a", "stage": "decode", "reason": "not an image", "count": 1, **change}
    with pytest.raises(ErrorsFormatError, match=message):
        validate_error_record(record)


def test_failure_stage_names_the_stage():
    def raised(function):
        try:
            function()
        except Exception as exc:
            return exc
        raise AssertionError("did not raise")

    assert failure_stage(FrameError("write", "disk full")) == "write"
    assert failure_stage(ResultsFormatError("x")) == "validate"
    assert failure_stage(raised(lambda: 1 / 0)) == "pipeline"
    assert failure_stage(raised(lambda: 1 / 0), default="read") == "read"
    with pytest.raises(ValueError, match="expected one of"):
        FrameError("elsewhere", "x")
