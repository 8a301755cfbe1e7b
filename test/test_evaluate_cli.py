"""End-to-end runs of ``fluoro-perception evaluate`` on a tiny ``fluoro-sim dataset``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli.main import main
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
    assert "evaluate: 6 frames on CPUExecutionProvider" in out

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


def test_evaluate_skips_an_unreadable_frame(tmp_path, model, dataset, capsys):
    # copy the dataset and break one image: the evaluation goes on without it
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "sequences" / "seq4_0000" / "images" / "000001.png").write_bytes(b"broken")
    output = tmp_path / "report"
    assert _evaluate(broken, "--output", output, "--model", model) == 0
    err = capsys.readouterr().err
    assert "skipped:" in err and "000001.png" in err
    document = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert document["dataset"]["frames_evaluated"] == 5
    assert document["skipped"] == {"unreadable frame": 1}


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
