"""End-to-end runs of ``fluoro-perception infer`` on small inputs (random-weight model).

Inputs: a folder of 8-bit and 16-bit PNGs (+ a 16-bit TIFF and a corrupt PNG), simulated
rosbags in both storage formats, a short MJPG video. Every results.jsonl is checked with
the schema validator, every mask for its size and values.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli.main import main
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


def test_infer_image_folder_8_and_16_bit_skips_corrupt(tmp_path, model, image_folder, capsys):
    output = tmp_path / "out"
    assert _infer(image_folder, "--output", output, "--model", model) == 0
    captured = capsys.readouterr()
    records = _check_outputs(output, FOLDER_SHAPES)
    assert any(r["wires"] or r["stents"] for r in records)  # the random model finds something
    skip_lines = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert len(skip_lines) == 1 and "d_corrupt.png" in skip_lines[0]
    assert "infer: 3 frames" in captured.out and "skipped 1 (undecodable image: 1)" in captured.out
    assert not (output / "masks" / "d_corrupt_guidewire.png").exists()


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
    assert _infer(bag, "--output", output, "--model", model) == 0
    captured = capsys.readouterr()
    assert "is damaged after" in captured.err
    records = list(iter_results(output / "results.jsonl"))
    read = len(records)
    assert 1 <= read < count
    _check_outputs(output, {str(bag_stamp_ns(k, 10.0)): (512, 512) for k in range(read)})
    lost = count - read
    assert f"infer: {read} frames" in captured.out
    assert f"skipped {lost} (damaged bag: {lost})" in captured.out


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
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
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
    assert _infer(image_folder, "--output", output, "--model", model) == 0
    capsys.readouterr()
    assert _infer(image_folder, "--output", output, "--model", model) == 2
    assert "pass --overwrite" in _one_error_line(capsys)
    assert _infer(image_folder, "--output", output, "--model", model, "--overwrite") == 0


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
