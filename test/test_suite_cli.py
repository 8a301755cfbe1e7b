"""``fluoro-perception suite`` (every test set, one table) and ``evaluate --baseline``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_fixtures import make_random_onnx_model

from fluoro_perception.cli.main import main
from fluoro_perception.cli.suite import make_set, render_table, set_names
from fluoro_perception.model_registry import write_model_card
from fluoro_perception.sim.dataset import read_dataset
from fluoro_perception.sim.styles import STYLE_CHOICES


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = make_random_onnx_model(tmp_path_factory.mktemp("model") / "r.onnx", input_size=(64, 64))
    write_model_card(path)
    return path


def test_set_names_cover_every_style_and_the_foreign_set_when_present(tmp_path):
    names = set_names(None)
    assert names[:4] == ["heldout", "negatives", "vessels", "contrast_wires"]
    assert [n for n in names if n.startswith("style_")] == [f"style_{s}" for s in STYLE_CHOICES]
    (tmp_path / "wires").mkdir()
    assert set_names(tmp_path)[-2:] == ["foreign_wires", "foreign_negatives"]


def test_sets_are_made_once_and_reused(tmp_path):
    first = make_set("negatives", tmp_path, 1, tmp_path, quiet=True)
    stamp = (first / "annotations.jsonl").stat().st_mtime_ns
    assert make_set("negatives", tmp_path, 1, tmp_path, quiet=True) == first
    assert (first / "annotations.jsonl").stat().st_mtime_ns == stamp
    assert read_dataset(first).header["generator"]["negatives"] is True
    with pytest.raises(ValueError, match="unknown set 'mine'"):
        make_set("mine", tmp_path, 1, tmp_path, quiet=True)
    with pytest.raises(FileNotFoundError, match="--foreign"):
        make_set("foreign_wires", tmp_path, 1, tmp_path / "absent", quiet=True)


def test_table_has_a_row_per_set_and_the_style_deltas():
    rows = {
        "heldout": {"num_frames": 6, "centerline_f1_mean": 0.5, "tip_error_px": {"median": 2.0}},
        "style_none": {"num_frames": 3, "centerline_f1_mean": 0.6},
        "style_noise": {"num_frames": 3, "centerline_f1_mean": 0.45},
    }
    table = render_table(rows, "Suite: test")
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 4  # heading + 3 sets
    assert lines[1].startswith("| heldout | 6 | 0.500 |") and "2.0 / n/a" in lines[1]
    assert lines[3].endswith("| -0.150 |")
    assert lines[1].endswith("| n/a |") and lines[2].endswith("| n/a |")


def test_suite_runs_every_named_set_with_the_baseline_and_a_model(tmp_path, model, capsys):
    sets = ["--sets", "heldout", "negatives", "--sequences", "1", "--quiet"]
    data = ["--data", str(tmp_path / "data")]
    code = main(["suite", "--model", str(model), "--output", str(tmp_path / "m"), *data, *sets])
    assert code == 0
    document = json.loads((tmp_path / "m" / "suite.json").read_text())
    assert list(document["sets"]) == ["heldout", "negatives"]
    assert document["sets"]["negatives"]["negative_frames"] == 3
    assert (tmp_path / "m" / "heldout" / "report.md").is_file()
    assert "| negatives | 3 |" in (tmp_path / "m" / "suite.md").read_text()

    out = tmp_path / "frangi"
    argv = ["suite", "--baseline", "frangi", "--model", str(model), "--output", str(out)]
    assert main([*argv, *data, *sets]) == 0
    metrics = json.loads((out / "heldout" / "metrics.json").read_text())
    assert metrics["model"]["architecture"] == "frangi-baseline"
    assert "Suite: frangi-baseline" in capsys.readouterr().out


def test_oracle_and_baseline_together_are_refused(tmp_path, model, capsys):
    argv = ["evaluate", str(tmp_path), "--oracle", "--baseline", "frangi"]
    assert main([*argv, "--model", str(model), "--output", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err


def test_vessel_sets_span_the_injection_with_and_without_wires(tmp_path):
    vessels = read_dataset(make_set("vessels", tmp_path, 1, tmp_path, quiet=True))
    wires = read_dataset(make_set("contrast_wires", tmp_path, 1, tmp_path, quiet=True))
    for dataset in (vessels, wires):
        generator = dataset.header["generator"]
        assert generator["frame_step"] == 10 and generator["scenario"] == "contrast"
        assert [r.frame_index for r in dataset.records] == [0, 10, 20]
    assert vessels.header["generator"]["negatives"] is True
    assert "negatives" not in wires.header["generator"]
