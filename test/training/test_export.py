"""Export: checkpoint -> ONNX with metadata, runtime load, parity, INT8/fp16, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from fluoro_perception.core.engine import InferenceEngine
from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata
from fluoro_training.cli import main
from fluoro_training.config import config_from_dict, config_hash
from fluoro_training.export import export_checkpoint
from fluoro_training.trainer import Trainer, load_checkpoint

SIZE = 64
RAW_CONFIG = {
    "name": "tiny_export",
    "steps": 2,
    "val_every": 2,
    "log_every": 1,
    "cpu_threads": 1,
    "model": {"name": "fra_net", "kwargs": {"width_mult": 0.25, "depth_mult": 0.5}},
    "data": {
        "sim_size": [SIZE, SIZE],
        "image_size": [SIZE, SIZE],
        "crop_size": [SIZE, SIZE],
        "frames_per_sequence": 2,
        "batch_size": 2,
        "val_sequences": 1,
        "val_frames_per_sequence": 2,
    },
    "preprocessing": {"input_size": [SIZE, SIZE]},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    Trainer(config_from_dict(RAW_CONFIG), run_dir, progress=False).fit()
    return run_dir / "best.pt"


def stored_metadata(path: Path) -> ModelMetadata:
    proto = onnx.load(str(path))
    entries = [p.value for p in proto.metadata_props if p.key == METADATA_KEY]
    assert len(entries) == 1
    return ModelMetadata.from_json(entries[0])


def test_export_metadata_round_trip_and_runtime_load(checkpoint, tmp_path):
    output = tmp_path / "model.onnx"
    report = export_checkpoint(checkpoint, output)
    assert report.parity_max_abs_diff <= 1e-4
    saved = load_checkpoint(checkpoint)
    config = config_from_dict(saved["config"])

    metadata = stored_metadata(output)
    assert metadata.architecture == "fra_net"
    assert metadata.classes == ("background", "guidewire", "stent")
    assert metadata.heads == ("logits", "tip_heatmap")
    assert metadata.stride == 32
    assert metadata.preprocessing == config.preprocessing
    assert metadata.preprocessing.input_size == (SIZE, SIZE)
    assert metadata.training_config_hash == config_hash(config)
    expected_metrics = {k: v for k, v in saved["metrics"].items() if math.isfinite(v)}
    assert metadata.validation_metrics == pytest.approx(expected_metrics)
    assert "selection_f1" in metadata.validation_metrics
    assert metadata.extra["trained_steps"] == 2
    assert metadata.extra["model_kwargs"] == {"width_mult": 0.25, "depth_mult": 0.5}
    assert metadata.version

    proto = onnx.load(str(output))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # dynamic batch

    engine = InferenceEngine(output, providers=["CPUExecutionProvider"], use_optimized_cache=False)
    try:
        assert engine.metadata == metadata
        outputs = engine.run(np.zeros((3, 1, SIZE, SIZE), np.float32))
        assert outputs["logits"].shape == (3, 3, SIZE, SIZE)
        assert outputs["tip_heatmap"].shape == (3, 1, SIZE, SIZE)
    finally:
        engine.close()


def test_export_at_another_input_size(checkpoint, tmp_path):
    report = export_checkpoint(checkpoint, tmp_path / "m96.onnx", input_size=(96, 128))
    assert report.parity_max_abs_diff <= 1e-4
    assert stored_metadata(tmp_path / "m96.onnx").preprocessing.input_size == (96, 128)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 16}, "opset"),
        ({"input_size": (80, 80)}, "stride"),
        ({"calibration_frames": 0}, "calibration_frames"),
    ],
)
def test_export_rejects_bad_options(checkpoint, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_checkpoint(checkpoint, tmp_path / "bad.onnx", **kwargs)


def test_int8_and_fp16_report_f1_change_against_ground_truth(checkpoint, tmp_path):
    output = tmp_path / "model.onnx"
    report = export_checkpoint(
        checkpoint, output, int8=True, fp16=True, calibration_frames=2, test_frames=2
    )
    fp32 = report.variants["fp32"]
    int8 = report.variants["int8"]
    assert Path(int8["path"]).is_file() and int8["path"].endswith("model_int8.onnx")
    for key in ("f1", "centerline_f1"):
        assert 0.0 <= fp32[key] <= 1.0
        assert int8[f"{key}_change"] == pytest.approx(int8[key] - fp32[key])
    assert 0.0 <= int8["label_agreement"] <= 1.0
    int8_metadata = stored_metadata(Path(int8["path"]))
    assert int8_metadata.extra["precision"] == "int8"
    proto = onnx.load(int8["path"])
    assert any(node.op_type == "QuantizeLinear" for node in proto.graph.node)  # static QDQ
    with InferenceEngine(
        int8["path"], providers=["CPUExecutionProvider"], use_optimized_cache=False
    ) as engine:
        assert engine.run(np.zeros((1, 1, SIZE, SIZE), np.float32))["logits"].shape[1] == 3

    fp16 = report.variants["fp16"]
    assert Path(fp16["path"]).is_file()
    assert stored_metadata(Path(fp16["path"])).extra["precision"] == "fp16"
    # either measured on ONNX Runtime CPU, or skipped with the reason spelled out
    if "skipped" in fp16:
        assert "accuracy check skipped" in fp16["skipped"]
    else:
        assert fp16["f1_change"] == pytest.approx(fp16["f1"] - fp32["f1"])
    json.loads(report.to_json())  # strict JSON (no NaN)


def test_cli_export_smoke(checkpoint, tmp_path, capsys):
    output = tmp_path / "cli.onnx"
    assert main(["export", str(checkpoint), "--output", str(output)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["onnx_path"] == str(output)
    assert printed["parity_max_abs_diff"] <= 1e-4
    assert stored_metadata(output).architecture == "fra_net"


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "absent.pt"), "--output", str(tmp_path / "x.onnx")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fluoro-train export: error:") and "absent.pt" in error
    assert "\n" not in error


def test_cli_train_then_compare_smoke(tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(RAW_CONFIG))
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(config_path), "--output", str(run_dir), "--no-progress"]
    assert main([*args, "--set", "steps=1", "--set", "val_every=1"]) == 0
    out = capsys.readouterr().out
    assert "best checkpoint" in out and "s/step" in out
    assert (run_dir / "best.pt").is_file()

    compare_dir = tmp_path / "compare"
    compare_args = ["compare", "--models", "unet", "--config", str(config_path), "--steps", "1"]
    compare_args += ["--test-sequences", "1", "--output", str(compare_dir)]
    compare_args += ["--set", "model.kwargs={width_mult: 0.125}"]
    compare_args += ["--checkpoint", f"trained={run_dir / 'best.pt'}"]
    assert main(compare_args) == 0
    table = capsys.readouterr().out
    assert "| unet |" in table and "| trained |" in table and "cpu_ms" in table
    assert "| frangi (baseline) |" in table
    rows = json.loads((compare_dir / "results.json").read_text())
    assert [row["model"] for row in rows] == ["frangi (baseline)", "unet", "trained"]
    baseline, rows = rows[0], rows[1:]
    # the classical filter on the same test set through the same scoring: no weights
    assert baseline["architecture"] == "frangi-baseline" and baseline["steps"] == 0
    assert baseline["params_m"] == 0 and baseline["cpu_ms"] > 0
    assert 0.0 <= baseline["f1"] <= 1.0 and 0.0 <= baseline["centerline_f1"] <= 1.0
    assert {"confusion_share", "primary_tip_correct", "tip_found_rate"} <= set(baseline)
    assert rows[0]["architecture"] == "unet" and rows[0]["steps"] == 1
    assert rows[1]["architecture"] == "fra_net" and rows[1]["steps"] == 1
    for row in rows:
        assert row["params_m"] > 0 and row["cpu_ms"] > 0 and row["gflops"] > 0
        # tip / dual-wire columns come from the runtime pipeline on the same frames (None in
        # the JSON where an untrained model found no tip or the set has no dual wire)
        assert {"tip_error_median_px", "tip_found_rate", "both_wires_found"} <= set(row)
        assert row["tip_found_rate"] is None or 0.0 <= row["tip_found_rate"] <= 1.0
        assert not any(key.startswith("tip_") and "heatmap" in key for key in row)
    assert (compare_dir / "trained" / "trained.onnx").is_file()

    only = ["compare", "--checkpoint", f"trained={run_dir / 'best.pt'}", "--no-baseline"]
    only += ["--test-sequences", "1", "--output", str(tmp_path / "only")]
    assert main(only) == 0
    capsys.readouterr()
    rows = json.loads((tmp_path / "only" / "results.json").read_text())
    assert [row["model"] for row in rows] == ["trained"]

    bad = main(["compare", "--models", "unet", "--checkpoint", "nopath"])
    assert bad == 2 and "expected NAME=PATH" in capsys.readouterr().err
    assert main(["compare"]) == 2 and "nothing to compare" in capsys.readouterr().err


def test_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "fluoro_training.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("train", "export", "compare"):
        assert command in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0


def test_compare_recipes_pick_sections_from_the_right_files(tmp_path):
    from fluoro_training.compare import _base_config
    from fluoro_training.config import load_config

    base = dict(RAW_CONFIG, loss={"name": "focal_dice", "kwargs": {"dice_weight": 1.0}})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    for name, loss in (
        ("unet", {"name": "hybrid", "kwargs": {"alpha": 100.0}}),
        ("lsnet", {"name": "lsnet", "kwargs": {"dice_weight": 0.2}}),
    ):
        own = dict(
            RAW_CONFIG,
            model={"name": name, "num_classes": 3, "kwargs": {"width_mult": 0.125}},
            loss=loss,
        )
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(own))
    config_path = tmp_path / "base.yaml"

    path, first = _base_config("unet", config_path, "paper")
    assert path == tmp_path / "unet.yaml" and first == []
    path, first = _base_config("unet", config_path, "common")
    config = load_config(path, first)
    assert config.model.name == "unet" and config.model.kwargs == {"width_mult": 0.125}
    assert config.loss.name == "focal_dice"  # the common recipe's loss, not the paper's
    config = load_config(*_base_config("lsnet", config_path, "common"))
    assert config.model.name == "lsnet" and config.loss.name == "lsnet"  # tied to its outputs
    # a model without its own file takes the generic config with its kwargs reset
    path, first = _base_config("fga_net", config_path, "common")
    assert path == config_path and first == ["model.name=fga_net", "model.kwargs={}"]
