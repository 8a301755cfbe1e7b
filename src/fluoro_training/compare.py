"""``fluoro-train compare``: several architectures, one budget, one table.

Each model is trained with the same data, steps (or minutes) and seed, exported to
ONNX, and measured on a held-out simulator test set of unseen sequences (the ``"test"``
seeds of :func:`fluoro_training.data.sim_stream.held_out_data`: never trained on, never
used for checkpoint selection, every validation scenario). The table follows the
seeds' format: precision, sensitivity, F1, clDice, tip error median / p95, params,
GFLOPs and CPU ms/frame (ONNX Runtime, batch 1, median), plus the runtime's primary tip
and the confusion share of issue 12 (wire pixels painted on catheters and vessels).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from fluoro_perception.jsonsafe import json_safe
from fluoro_training.config import TrainConfig, config_from_dict, load_config
from fluoro_training.data.sim_stream import held_out_data, validation_examples, validation_frames
from fluoro_training.export import OnnxSegmenter, export_checkpoint, model_from_checkpoint
from fluoro_training.models import available_models
from fluoro_training.trainer import load_checkpoint
from fluoro_training.trainer_variants import create_trainer
from fluoro_training.validation import evaluate_examples

#: Training recipes of :func:`compare_models`.
RECIPES = ("paper", "common")
#: Row name of the classical baseline (:func:`measure_baseline`).
BASELINE_ROW = "frangi (baseline)"
#: Models whose loss supervises extra outputs, so the common recipe keeps their own loss.
OWN_LOSS_MODELS = frozenset({"lsnet"})

COLUMNS = (
    ("model", "{}"),
    ("precision", "{:.3f}"),
    ("sensitivity", "{:.3f}"),
    ("f1", "{:.3f}"),
    ("cldice", "{:.3f}"),
    ("centerline_f1", "{:.3f}"),
    ("stent_dice", "{:.3f}"),
    ("tip_error_median_px", "{:.2f}"),
    ("tip_error_p95_px", "{:.2f}"),
    ("tip_found_rate", "{:.2f}"),
    ("both_wires_found", "{:.2f}"),
    ("primary_tip_correct", "{:.2f}"),
    ("confusion_share", "{:.3f}"),
    ("params_m", "{:.2f}"),
    ("gflops", "{:.2f}"),
    ("cpu_ms", "{:.1f}"),
    ("steps", "{}"),
)


def count_gflops(model: torch.nn.Module, input_size: tuple[int, int]) -> float:
    """Forward FLOPs at batch 1 in GFLOPs (1 multiply-add = 2 FLOPs)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 1, *input_size))
    return counter.get_total_flops() / 1e9


def onnx_cpu_latency_ms(path: Path, input_size: tuple[int, int], runs: int = 20) -> float:
    """Median ONNX Runtime CPU latency at batch 1 [ms] (after 3 warm-up runs)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 1, *input_size)).astype(np.float32)
    for _ in range(3):
        session.run(None, {"image": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"image": x})
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def held_out_test_config(config: TrainConfig, sequences: int) -> TrainConfig:
    """``config`` whose validation set is the held-out test set (4 frames per sequence)."""
    data = held_out_data(config.data, "test", sequences, frames_per_sequence=4)
    return dataclasses.replace(config, data=data)


def compare_models(
    models: list[str],
    *,
    config_path: str | Path,
    output_dir: Path,
    steps: int | None = None,
    minutes: float | None = None,
    test_sequences: int = 12,
    overrides: list[str] | None = None,
    recipe: str = "paper",
    checkpoints: dict[str, str | Path] | None = None,
    baseline: bool = True,
) -> str:
    """Train, export and measure each model; write ``results.json`` and ``results.md``.

    ``recipe="paper"``: a model uses ``<config dir>/<model>.yaml`` when it exists (its
    paper's size, loss and optimizer), else ``config_path`` with ``model.name`` replaced.
    ``recipe="common"``: every model takes its ``model`` section (architecture and size)
    from ``<config dir>/<model>.yaml`` and everything else (loss, optimizer, schedule,
    data) from ``config_path``, so the table isolates the architecture; models whose
    paper loss is tied to extra outputs (L-SNet's RoI keypoint and box terms,
    :data:`OWN_LOSS_MODELS`) keep that loss. ``steps`` / ``minutes`` and ``overrides``
    apply to every model, so all share one budget. ``checkpoints`` maps extra row names
    to already trained ``best.pt`` files (e.g. the shipped default's run), measured the
    same way without training. ``baseline``: the first row is the classical Frangi
    baseline (:func:`measure_baseline`) on the first model's test set and model grid, so
    the gain over it is visible. Returns the Markdown table.
    """
    if not models and not checkpoints:
        raise ValueError("nothing to compare; give --models and/or --checkpoint NAME=BEST_PT")
    unknown = [name for name in models if name not in available_models()]
    if unknown:
        raise ValueError(f"unknown models {unknown}; expected some of {available_models()}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r}; expected one of {RECIPES}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in models:
        base, first = _base_config(name, Path(config_path), recipe)
        last = [f"name=compare_{name}"]
        if steps is not None:
            last += [f"steps={steps}", f"val_every={steps}"]
        if minutes is not None:
            last.append(f"time_budget_min={minutes}")
        config = load_config(base, first + list(overrides or []) + last)
        run_dir = output_dir / name
        trainer = create_trainer(config, run_dir)
        trainer.fit()
        row = measure_checkpoint(name, run_dir / "best.pt", run_dir, test_sequences)
        row["train_step_s"] = trainer.timing.get("step_s", float("nan"))
        _add_row(rows, row, run_dir / "best.pt", run_dir / f"{name}.onnx", baseline, test_sequences)
        _write_rows(output_dir, rows)
    for name, checkpoint in (checkpoints or {}).items():
        row = measure_checkpoint(name, Path(checkpoint), output_dir / name, test_sequences)
        onnx_path = output_dir / name / f"{name}.onnx"
        _add_row(rows, row, Path(checkpoint), onnx_path, baseline, test_sequences)
        _write_rows(output_dir, rows)
    table = format_table(rows)
    (output_dir / "results.md").write_text(table + "\n")
    return table


def measure_checkpoint(
    name: str, checkpoint_path: Path, run_dir: Path, test_sequences: int
) -> dict:
    """Export ``checkpoint_path`` and measure it on the held-out test set: one table row.

    Accuracy is that of the exported ONNX file (what ships), scored by the validation
    code; params and GFLOPs from the torch model; CPU ms from ONNX Runtime.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    model, config = model_from_checkpoint(checkpoint)
    run_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = run_dir / f"{name}.onnx"
    export_checkpoint(checkpoint_path, onnx_path)
    held_out = held_out_test_config(config, test_sequences)
    frames = validation_frames(held_out.data)
    examples = validation_examples(
        frames, config.preprocessing, config.model.num_classes, config.data.tip_sigma_px
    )
    metrics = evaluate_examples(OnnxSegmenter(onnx_path), examples, torch.device("cpu"))
    # the tip-heatmap head's own tips (when it has one) stay in results.json; the table's
    # tip columns are the runtime's tips (below), which every architecture has
    metrics = {
        (f"heatmap_{key}" if key.startswith("tip_") else key): value
        for key, value in metrics.items()
    }
    size = tuple(config.preprocessing.input_size)
    return {
        "model": name,
        "architecture": config.model.name,
        **metrics,
        **runtime_metrics(onnx_path, frames),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": count_gflops(model, size),
        "cpu_ms": onnx_cpu_latency_ms(onnx_path, size),
        "steps": int(checkpoint.get("step", 0)),
    }


class _EngineAsModel:
    """An engine-like object (``run(numpy) -> {"logits": numpy}``) as the torch-style
    callable :func:`~fluoro_training.validation.evaluate_examples` scores."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def eval(self) -> _EngineAsModel:
        return self

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.engine.run(image.cpu().numpy())
        return {key: torch.from_numpy(value) for key, value in outputs.items()}


def measure_baseline(onnx_path: Path, config: TrainConfig, test_sequences: int) -> dict:
    """The classical baseline's row (scikit-image Frangi filter, thresholded:
    :class:`fluoro_perception.evaluation.baseline.FrangiEngine`) on the same held-out
    test set, on the model grid of ``onnx_path`` (a measured model of the table), scored
    by the same validation and runtime code as every model; no parameters, no FLOPs
    counted, CPU ms = the filter's median time per frame."""
    from fluoro_perception.core.engine import read_model_metadata
    from fluoro_perception.evaluation.baseline import FrangiEngine

    engine = FrangiEngine(read_model_metadata(onnx_path))
    held_out = held_out_test_config(config, test_sequences)
    frames = validation_frames(held_out.data)
    examples = validation_examples(
        frames, config.preprocessing, config.model.num_classes, config.data.tip_sigma_px
    )
    times = []
    for example in examples[:5]:
        start = time.perf_counter()
        engine.run(example["image"][None].numpy())
        times.append((time.perf_counter() - start) * 1e3)
    metrics = evaluate_examples(_EngineAsModel(engine), examples, torch.device("cpu"))
    return {
        "model": BASELINE_ROW,
        "architecture": engine.metadata.architecture,
        **metrics,
        **runtime_metrics(None, frames, engine=engine),
        "params_m": 0.0,
        "gflops": float("nan"),
        "cpu_ms": float(np.median(times)),
        "steps": 0,
    }


def runtime_metrics(
    onnx_path: Path | None, frames: list, engine: object | None = None
) -> dict[str, float | int | str | None]:
    """Tips and dual-wire detection of the runtime pipeline on ``frames`` (dataset order).

    The ONNX file runs in :class:`fluoro_perception.core.pipeline.PerceptionPipeline`
    exactly as the node runs it (decode, geometry, tracking per sequence), scored by the
    runtime's evaluation code (``fluoro-perception evaluate``): tip error median / p95 [px]
    of tips matched within its gate, the fraction of true tips found, the fraction of
    dual-wire frames in which both wires were found, the fraction of frames whose primary
    tip (``/tip``) lies on a true tip, and the confusion share (predicted wire pixels on
    catheter or contrast-vessel truth; ``docs/evaluation.md``), NaN where the set has none.

    ``engine`` (an engine-like object, e.g. the Frangi baseline's) replaces the ONNX file;
    the caller closes it.

    A frame the pipeline or its scoring fails on is left out and counted: ``failed_frames``
    and the one-line reason of the first (``failed_frames_first_reason``, None when none
    failed); the other frames are scored, so one frame never ends a comparison.
    """
    from fluoro_perception.core.engine import InferenceEngine
    from fluoro_perception.evaluation.frame_errors import one_line
    from fluoro_perception.evaluation.runner import FrameEvaluator

    own_engine = engine is None
    if engine is None:
        engine = InferenceEngine(onnx_path, providers=["CPUExecutionProvider"])
    failed = 0
    first_reason = None
    try:
        evaluator = FrameEvaluator(engine)
        for frame in frames:
            try:
                evaluator.evaluate(frame)
            except Exception as exc:  # one frame never ends the comparison
                failed += 1
                if first_reason is None:
                    first_reason = f"{frame.sequence_id}/{frame.frame_index:06d}: {one_line(exc)}"
    finally:
        if own_engine:
            engine.close()
    summary = evaluator.accumulator.summary()["summary"]

    def number(value: float | None) -> float:
        return float("nan") if value is None else float(value)

    return {
        "tip_error_median_px": number(summary["tip_error_px"]["median"]),
        "tip_error_p95_px": number(summary["tip_error_px"]["p95"]),
        "tip_found_rate": number(summary["tip_detection_rate"]),
        "both_wires_found": number(summary["both_wires_found_rate"]),
        "primary_tip_correct": number(summary["primary_tip_correct_rate"]),
        "confusion_share": number(summary["confusion_share"]),
        "failed_frames": failed,
        "failed_frames_first_reason": first_reason,
    }


def _add_row(
    rows: list[dict],
    row: dict,
    checkpoint_path: Path,
    onnx_path: Path,
    baseline: bool,
    test_sequences: int,
) -> None:
    """Append a model's row; before the first one, the baseline's (when asked for), on
    that model's test set (its checkpoint's config) and model grid (its ONNX file)."""
    if baseline and not rows:
        config = config_from_dict(load_checkpoint(checkpoint_path)["config"])
        rows.append(measure_baseline(onnx_path, config, test_sequences))
    rows.append(row)


def _write_rows(output_dir: Path, rows: list[dict]) -> None:
    (output_dir / "results.json").write_text(json.dumps(json_safe(rows), indent=2))


def _base_config(name: str, config_path: Path, recipe: str) -> tuple[Path, list[str]]:
    """(YAML file, first overrides) that define model ``name`` under ``recipe``."""
    specific = config_path.parent / f"{name}.yaml"
    if not specific.is_file():
        # the generic config's model kwargs belong to its own model: reset them first, so
        # that user overrides (e.g. a tiny width for every model) still apply
        return config_path, [f"model.name={name}", "model.kwargs={}"]
    if recipe == "paper":
        return specific, []
    own = yaml.safe_load(specific.read_text()) or {}
    # JSON is YAML: the sections travel as one override value each
    first = [f"model={json.dumps(own['model'])}"]
    if name in OWN_LOSS_MODELS:
        first.append(f"loss={json.dumps(own['loss'])}")
    return config_path, first


def format_table(rows: list[dict]) -> str:
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        cells = []
        for name, fmt in COLUMNS:
            value = row.get(name)
            cells.append("n/a" if value is None or value != value else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
