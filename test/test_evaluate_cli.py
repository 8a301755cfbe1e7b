"""End-to-end runs of ``fluoro-perception evaluate`` on a tiny ``fluoro-sim dataset``.

A frame that cannot be read, processed or scored gets an errors.jsonl record, is left out
of the scores, and the others are evaluated; the exit code is then 3.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_injection import fail_on_call
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli.main import main
from fluoro_perception.evaluation.frame_errors import EXIT_FRAMES_FAILED, iter_errors
from fluoro_perception.model_registry import write_model_card
from fluoro_perception.sim.cli import main as sim_main


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = make_random_onnx_model(
        tmp_path_factory.mktemp("model") / "rand.onnx", input_size=(64, 64)
    )
    write_model_card(path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "sim"
    # 12-bit frames exercise the mono16 path of the pipeline
    args = ["dataset", str(root), "--sequences", "2", "--frames", "3", "--seed", "4"]
    assert sim_main([*args, "--size", "64", "64", "--bit-depth", "12", "--quiet"]) == 0
    return root


def _evaluate(*args: str | Path) -> int:
    return main(["evaluate", *map(str, args), "--quiet"])


def test_evaluate_writes_report_and_metrics(tmp_path, model, dataset, capsys):
    output = tmp_path / "report"
    assert _evaluate(dataset, "--output", output, "--model", model, "--worst", "2") == 0
    out = capsys.readouterr().out
    assert "evaluate: 6 frames on CPUExecutionProvider" in out and "; 0 failed;" in out
    assert (output / "errors.jsonl").read_text(encoding="utf-8") == ""

    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["format"] == "fluoro_perception.evaluation"
    assert document["dataset"]["frames_evaluated"] == 6
    assert document["dataset"]["frames_in_dataset"] == 6
    assert document["model"]["architecture"] == "random_test_net"
    assert document["model"]["provider"] == "CPUExecutionProvider"
    assert sorted(document["per_sequence"]) == ["seq4_0000", "seq4_0001"]
    summary = document["summary"]
    assert summary["num_frames"] == 6
    assert summary["latency_ms"]["count"] == 6
    for key in ("guidewire_precision", "guidewire_sensitivity", "guidewire_f1"):
        value = summary[key]
        assert value is None or 0.0 <= value <= 1.0, key
    tips = summary["tips"]
    assert tips["num_found"] + tips["num_missed"] == tips["num_true"]
    assert summary["tip_error_px"]["count"] == tips["num_found"]
    assert {row["passed"] for row in document["targets"]} <= {True, False, None}
    assert len(document["worst_frames"]) <= 2

    report = (output / "report.md").read_text(encoding="utf-8")
    assert "## Targets" in report and str(dataset) in report
    for name in ("tip_error_cdf.png", "sequence_f1.png", "latency_hist.png"):
        assert cv2.imread(str(output / name)) is not None, name
    for entry in document["worst_frames"]:
        assert cv2.imread(str(output / entry["thumbnail"])) is not None


def test_evaluate_max_frames_and_overwrite(tmp_path, model, dataset, capsys):
    output = tmp_path / "report"
    assert _evaluate(dataset, "--output", output, "--model", model, "--max-frames", "2") == 0
    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["dataset"]["frames_evaluated"] == 2
    assert document["dataset"]["max_frames"] == 2
    assert list(document["per_sequence"]) == ["seq4_0000"]
    assert len(list((output / "worst").glob("*.png"))) == len(document["worst_frames"]) >= 1
    capsys.readouterr()
    assert _evaluate(dataset, "--output", output, "--model", model) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    # a replaced report keeps none of the earlier worst-frame thumbnails
    args = ("--output", output, "--model", model, "--overwrite", "--worst", "0")
    assert _evaluate(dataset, *args) == 0
    assert list((output / "worst").glob("*.png")) == []
    assert json.loads((output / "metrics.json").read_text(encoding="utf-8"))["worst_frames"] == []


def _frame_file(root: Path, sequence: str, kind: str, index: int) -> Path:
    return root / "sequences" / sequence / kind / f"{index:06d}.png"


def test_evaluate_records_unreadable_frames_and_goes_on(tmp_path, model, dataset, capsys):
    # copy the dataset and break two frames: a truncated image, an empty label file
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    image = _frame_file(broken, "seq4_0000", "images", 1)
    image.write_bytes(image.read_bytes()[:40])
    _frame_file(broken, "seq4_0001", "labels", 2).write_bytes(b"")
    output = tmp_path / "report"
    assert _evaluate(broken, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    captured = capsys.readouterr()
    assert "failed: frame seq4_0000/000001 [read]" in captured.err and "000001.png" in captured.err
    assert "evaluate: 4 frames" in captured.out and "2 failed (read: 2)" in captured.out
    errors = list(iter_errors(output / "errors.jsonl"))
    assert [(e["frame"], e["stage"]) for e in errors] == [
        ("seq4_0000/000001", "read"),
        ("seq4_0001/000002", "read"),
    ]
    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["dataset"]["frames_evaluated"] == 4
    assert document["skipped"] == {"read": 2}
    assert "## Skipped" in (output / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("module", "name", "stage"),
    [
        ("fluoro_perception.core.pipeline", "extract_stents", "geometry"),
        ("fluoro_perception.evaluation.runner", "compute_frame_metrics", "metrics"),
    ],
)
def test_evaluate_a_stage_that_raises_on_one_frame(
    tmp_path, model, dataset, capsys, monkeypatch, module, name, stage
):
    import importlib

    failure = FloatingPointError("one frame goes wrong")
    fail_on_call(monkeypatch, importlib.import_module(module), name, 3, lambda: failure)
    output = tmp_path / "report"
    assert _evaluate(dataset, "--output", output, "--model", model) == EXIT_FRAMES_FAILED
    assert f"1 failed ({stage}: 1)" in capsys.readouterr().out
    [error] = iter_errors(output / "errors.jsonl")
    assert error == {
        "frame": "seq4_0000/000002",
        "stage": stage,
        "reason": "FloatingPointError: one frame goes wrong",
        "count": 1,
    }
    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["dataset"]["frames_evaluated"] == 5
    assert document["skipped"] == {stage: 1}


def test_evaluate_bad_dataset_exits_2_with_one_line(tmp_path, model, capsys):
    assert _evaluate(tmp_path / "nothing", "--output", tmp_path / "r", "--model", model) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fluoro-perception evaluate: error: ")


def test_evaluate_oracle_scores_the_ground_truth_on_the_model_grid(
    tmp_path, model, dataset, capsys
):
    """--oracle: the network is replaced by each frame's labels on the model's grid, so the
    pixel scores are exact and the report says no model ran; the random model scores lower."""
    output = tmp_path / "ceiling"
    assert _evaluate(dataset, "--output", output, "--model", model, "--oracle") == 0
    assert "on none (ground truth)" in capsys.readouterr().out
    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["model"]["architecture"] == "oracle(random_test_net)"
    assert document["model"]["sha256"] == "none"
    oracle = document["summary"]
    assert oracle["guidewire_f1"] == 1.0 and oracle["guidewire_precision"] == 1.0
    random_run = tmp_path / "random"
    assert _evaluate(dataset, "--output", random_run, "--model", model) == 0
    random_summary = json.loads((random_run / "metrics.json").read_text(encoding="utf-8"))[
        "summary"
    ]
    assert (random_summary["guidewire_f1"] or 0.0) < 0.5


def test_ground_truth_engine_needs_a_frame_first(model):
    from fluoro_perception.core.engine import read_model_metadata
    from fluoro_perception.evaluation.oracle import GroundTruthEngine

    engine = GroundTruthEngine(read_model_metadata(model))
    with pytest.raises(RuntimeError, match="before observe"):
        engine.run(np.zeros((1, 1, 64, 64), np.float32))
