"""``fluoro-train export``: checkpoint -> ONNX with metadata, parity check, fp16 / INT8.

The exported file is the contract with the runtime (``fluoro_perception.core.model_metadata``):
opset >= 17, dynamic batch, metadata (classes, heads, input size and stride,
preprocessing, architecture, version, training-config hash, validation metrics). Parity
with torch is checked in ONNX Runtime (max abs diff over all outputs <= 1e-4 on random
input, :func:`fluoro_training.onnx_export.check_parity`). Optional reduced-precision
variants are written next to it, and their accuracy is measured against GROUND TRUTH on
held-out simulator test frames (seeds neither trained on nor used for validation or
calibration) with the same metric code as validation: the report gives each variant's
guidewire pixel F1, centerline F1 and stent Dice and their change vs the fp32 model,
plus label agreement with fp32.

* ``--fp16``: weights and activations in float16, fp32 I/O (for GPU providers). ONNX
  Runtime's CPU provider lacks fp16 kernels for several ops; when the fp16 file cannot
  run there it is still written and its accuracy check is skipped with the reason.
* ``--int8``: static QDQ quantization (per-channel int8 weights, uint8 activations)
  calibrated on held-out simulator frames (CPU path).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from fluoro_perception import __version__
from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata
from fluoro_perception.core.types import MODEL_CLASS_NAMES
from fluoro_training.config import TrainConfig, config_from_dict
from fluoro_training.data.sim_stream import held_out_data, validation_examples, validation_frames
from fluoro_training.models import create_model
from fluoro_training.onnx_export import check_parity, export_onnx
from fluoro_training.trainer import load_checkpoint
from fluoro_training.validation import evaluate_examples

#: Metrics compared between fp32 and reduced-precision variants.
ACCURACY_KEYS = ("f1", "centerline_f1", "stent_dice")


@dataclass
class ExportReport:
    """What ``fluoro-train export`` wrote and measured.

    ``variants`` maps ``"fp32"`` / ``"fp16"`` / ``"int8"`` to a dict with ``path`` and, when
    measured, held-out metrics (``f1``, ``centerline_f1``, ``stent_dice``), their change vs
    fp32 (``f1_change`` ...), ``label_agreement`` with fp32 and ``logits_max_abs_diff``; or
    ``skipped`` with the reason.
    """

    onnx_path: str
    parity_max_abs_diff: float
    metadata: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        """Indented JSON; non-finite numbers (e.g. stent Dice without stents) become null."""

        def finite(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: finite(v) for k, v in value.items()}
            if isinstance(value, list):
                return [finite(v) for v in value]
            return value

        return json.dumps(finite(dataclasses.asdict(self)), indent=2)


def model_from_checkpoint(checkpoint: dict):
    """Rebuild the network of a checkpoint (eval mode) and its training config."""
    config: TrainConfig = config_from_dict(checkpoint["config"])
    model = create_model(
        config.model.name,
        num_classes=config.model.num_classes,
        tip_head=config.model.tip_head,
        **config.model.kwargs,
    )
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, config


def metadata_for(model, config: TrainConfig, checkpoint: dict, *, opset: int = 17) -> ModelMetadata:
    """The runtime contract of an exported checkpoint (``ModelMetadata``).

    Validation metrics are the ones stored with the checkpoint (non-finite values such as
    the stent Dice of a stent-free validation set are left out: JSON has no NaN).
    """
    heads = ("logits", "tip_heatmap") if config.model.tip_head else ("logits",)
    metrics = {
        k: float(v) for k, v in checkpoint.get("metrics", {}).items() if math.isfinite(float(v))
    }
    return ModelMetadata(
        architecture=config.model.name,
        classes=MODEL_CLASS_NAMES[: config.model.num_classes],
        heads=heads,
        stride=int(model.stride),
        preprocessing=config.preprocessing,
        version=__version__,
        training_config_hash=str(checkpoint.get("config_hash", "")),
        validation_metrics=metrics,
        extra={
            "model_kwargs": dict(config.model.kwargs),
            "trained_steps": int(checkpoint.get("step", 0)),
            "experiment": config.name,
            "precision": "fp32",
            "opset": int(opset),
            "dynamic_batch": True,
            "loss": config.loss.name,
        },
    )


def _set_metadata(path: Path, metadata: ModelMetadata) -> None:
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for entry in kept:
        model.metadata_props.add(key=entry.key, value=entry.value)
    model.metadata_props.add(key=METADATA_KEY, value=metadata.to_json())
    onnx.save(model, str(path))


class OnnxSegmenter:
    """An ONNX Runtime session behind the torch-model interface of
    :func:`fluoro_training.validation.evaluate_examples` (so exported variants are scored
    by exactly the validation code). CPU provider only."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def eval(self) -> OnnxSegmenter:
        return self

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.session.run(self.output_names, {"image": image.cpu().numpy()})
        return {
            name: torch.from_numpy(np.asarray(v))
            for name, v in zip(self.output_names, outputs, strict=True)
        }


def held_out_examples(
    config: TrainConfig, metadata: ModelMetadata, role: str, frames: int
) -> list[dict[str, Any]]:
    """Whole-frame examples of held-out simulator sequences (2 frames each).

    ``role`` ``"calibration"`` or ``"test"``; preprocessed with the EXPORTED model's
    preprocessing (its input size may differ from training).
    """
    data = held_out_data(config.data, role, sequences=-(-frames // 2), frames_per_sequence=2)
    examples = validation_examples(
        validation_frames(data),
        metadata.preprocessing,
        config.model.num_classes,
        config.data.tip_sigma_px,
    )
    return examples[:frames]


def _label_agreement(reference: OnnxSegmenter, candidate: OnnxSegmenter, examples) -> dict:
    agree, total, max_diff = 0, 0, 0.0
    for example in examples:
        image = example["image"][None]  # (1, 1, h, w)
        a = reference(image)["logits"].numpy()
        b = candidate(image)["logits"].numpy()
        agree += int((a.argmax(1) == b.argmax(1)).sum())
        total += a.shape[0] * a.shape[2] * a.shape[3]
        max_diff = max(max_diff, float(np.abs(a - b).max()))
    return {"label_agreement": agree / max(total, 1), "logits_max_abs_diff": max_diff}


def _accuracy(path: Path, examples) -> dict[str, float]:
    metrics = evaluate_examples(OnnxSegmenter(path), examples, torch.device("cpu"))
    return {k: metrics[k] for k in ACCURACY_KEYS if k in metrics}


def _changes(candidate: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    return {f"{k}_change": candidate[k] - reference[k] for k in candidate if k in reference}


def quantize_int8(
    source: Path, target: Path, calibration: list[np.ndarray], *, per_channel: bool = True
) -> Path:
    """Static QDQ INT8 quantization of ``source`` calibrated on ``calibration`` inputs.

    ``calibration``: list of ``(1, 1, h, w)`` float32 network inputs (MinMax calibration).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("calibration is empty; pass at least one (1, 1, h, w) input")

    class _Reader(CalibrationDataReader):
        def __init__(self, batches: list[np.ndarray]) -> None:
            self._iter = iter([{"image": b} for b in batches])

        def get_next(self):
            return next(self._iter, None)

    prepared = target.with_name(target.stem + "_prep.onnx")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        prepared.unlink(missing_ok=True)
    return target


def export_checkpoint(
    checkpoint_path: str | Path,
    output: str | Path,
    *,
    input_size: tuple[int, int] | None = None,
    opset: int = 17,
    fp16: bool = False,
    int8: bool = False,
    calibration_frames: int = 16,
    test_frames: int = 16,
    parity_tolerance: float = 1e-4,
) -> ExportReport:
    """Export a training checkpoint to ONNX (+ optional fp16 / INT8 variants).

    Parameters
    ----------
    checkpoint_path : str or Path
        ``best.pt`` / ``last.pt`` written by the trainer.
    output : str or Path
        ``X.onnx``; variants are written as ``X_fp16.onnx`` and ``X_int8.onnx``.
    input_size : (int, int), optional
        Exported ``(H, W)`` [px] (multiples of the model stride); default the training
        ``preprocessing.input_size``.
    opset : int
        ONNX opset, >= 17.
    fp16, int8 : bool
        Also write those variants and measure their accuracy change.
    calibration_frames, test_frames : int
        Held-out simulator frames for INT8 calibration and for the accuracy check.
    parity_tolerance : float
        Largest accepted ``|torch - onnxruntime|`` of the fp32 export.

    Raises
    ------
    fluoro_training.onnx_export.OnnxParityError
        When the fp32 export differs from torch by more than ``parity_tolerance``.
    """
    if opset < 17:
        raise ValueError(f"opset={opset}; the runtime needs opset >= 17 (use --opset 17)")
    if calibration_frames < 1 or test_frames < 1:
        raise ValueError(
            f"calibration_frames={calibration_frames}, test_frames={test_frames}; both must be >= 1"
        )
    checkpoint = load_checkpoint(checkpoint_path)
    model, config = model_from_checkpoint(checkpoint)
    metadata = metadata_for(model, config, checkpoint, opset=opset)
    size = tuple(int(v) for v in (input_size or config.preprocessing.input_size))
    if size != tuple(config.preprocessing.input_size):
        pre = dataclasses.replace(config.preprocessing, input_size=size)
        metadata = dataclasses.replace(metadata, preprocessing=pre)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, output, input_size=size, metadata=metadata, opset=opset, dynamic_batch=True)
    diff = check_parity(model, output, size, tol=parity_tolerance)
    report = ExportReport(str(output), diff, metadata=json.loads(metadata.to_json()))
    report.variants["fp32"] = {"path": str(output)}
    if not (fp16 or int8):
        return report

    test_examples = held_out_examples(config, metadata, "test", test_frames)
    reference = OnnxSegmenter(output)
    fp32_accuracy = _accuracy(output, test_examples)
    report.variants["fp32"].update(fp32_accuracy)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        fp16_path = output.with_name(output.stem + "_fp16.onnx")
        converted = convert_float_to_float16(onnx.load(str(output)), keep_io_types=True)
        onnx.save(converted, str(fp16_path))
        _set_metadata(
            fp16_path, dataclasses.replace(metadata, extra={**metadata.extra, "precision": "fp16"})
        )
        entry: dict[str, Any] = {"path": str(fp16_path)}
        try:
            candidate = OnnxSegmenter(fp16_path)
            entry.update(_label_agreement(reference, candidate, test_examples))
        except Exception as exc:  # ORT raises its own (unexported) types for missing kernels
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            entry["skipped"] = (
                "fp16 model written but ONNX Runtime CPU cannot run it, accuracy check "
                f"skipped (run it on a GPU provider): {type(exc).__name__}: {first_line}"
            )
        else:
            accuracy = _accuracy(fp16_path, test_examples)
            entry.update(accuracy)
            entry.update(_changes(accuracy, fp32_accuracy))
        report.variants["fp16"] = entry
    if int8:
        calibration = [
            e["image"].numpy()[None]  # (1, 1, h, w)
            for e in held_out_examples(config, metadata, "calibration", calibration_frames)
        ]
        int8_path = quantize_int8(output, output.with_name(output.stem + "_int8.onnx"), calibration)
        _set_metadata(
            int8_path, dataclasses.replace(metadata, extra={**metadata.extra, "precision": "int8"})
        )
        accuracy = _accuracy(int8_path, test_examples)
        entry = {"path": str(int8_path), **accuracy, **_changes(accuracy, fp32_accuracy)}
        entry.update(_label_agreement(reference, OnnxSegmenter(int8_path), test_examples))
        report.variants["int8"] = entry
    return report
