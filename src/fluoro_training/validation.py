"""Validation of a torch model on whole-frame examples with the shared metric code.

Metrics (all from ``fluoro_perception.metrics``, the same code the runtime's evaluation
uses): guidewire precision / sensitivity / F1 pooled over all pixels of the set (as the
seeds report them), clDice, centerline F1 within 2 px, stent Dice (pooled), tip error
median / p95 [px] of tips matched within a 20 px gate, and the fraction of true tips
found (``tip_found_rate``) and the F1 of the heatmap's peaks as tips (``tip_f1``: a
peak more than 20 px from every true tip is a false tip). ``selection_f1`` (mean of guidewire F1, centerline F1 and, when stents exist,
stent Dice) selects the best checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skimage.feature import peak_local_max

from fluoro_perception.core.types import GUIDEWIRE, STENT
from fluoro_perception.metrics import (
    ConfusionCounts,
    MetricAccumulator,
    centerline_f1,
    cl_dice,
    confusion_counts,
    f1_score,
    match_tips,
    precision,
    sensitivity,
)

TIP_GATE_PX = 20.0
TIP_PEAK_THRESHOLD = 0.3


def heatmap_peaks(heatmap_prob: np.ndarray, max_peaks: int = 4) -> np.ndarray:
    """Local maxima of a sigmoid tip heatmap ``(H, W)`` as ``(N, 2)`` (x, y) [px]."""
    peaks = peak_local_max(
        heatmap_prob, min_distance=8, threshold_abs=TIP_PEAK_THRESHOLD, num_peaks=max_peaks
    )
    return peaks[:, ::-1].astype(np.float32).reshape(-1, 2)


def _pooled(totals: dict[str, Any], key: str, prediction: np.ndarray, target: np.ndarray) -> None:
    """Sum confusion counts over frames (dataset-level pooling, as the seeds report)."""
    counts = confusion_counts(prediction, target)
    previous = totals.get(key, ConfusionCounts(0, 0, 0, 0))
    totals[key] = ConfusionCounts(
        previous.true_positive + counts.true_positive,
        previous.false_positive + counts.false_positive,
        previous.false_negative + counts.false_negative,
        previous.true_negative + counts.true_negative,
    )


@torch.no_grad()
def evaluate_examples(
    model: torch.nn.Module, examples: list[dict[str, Any]], device: torch.device
) -> dict[str, float]:
    """Score ``model`` on whole-frame ``examples`` (see the module docstring for the keys).

    ``model`` maps a ``(1, 1, h, w)`` input to a dict with ``"logits"`` ``(1, C, h, w)``
    and optionally ``"tip_heatmap"`` ``(1, 1, h, w)`` (a torch model in eval mode, or
    :class:`fluoro_training.export.OnnxSegmenter` for exported files).
    """
    model.eval()
    accumulator = MetricAccumulator()
    totals: dict[str, Any] = {}
    tip_errors: list[float] = []
    found = missed = false = 0
    has_stent = False
    for example in examples:
        outputs = model(example["image"][None].to(device))
        labels_pred = outputs["logits"][0].argmax(0).cpu().numpy()
        labels_true = example["labels"].numpy()
        wire_pred, wire_true = labels_pred == GUIDEWIRE, labels_true == GUIDEWIRE
        _pooled(totals, "guidewire", wire_pred, wire_true)
        frame_metrics: dict[str, float] = {}
        if wire_true.any() or wire_pred.any():
            frame_metrics["centerline_f1"] = centerline_f1(wire_pred, wire_true, 2.0).f1
            frame_metrics["cldice"] = cl_dice(wire_pred, wire_true).cl_dice
        if outputs["logits"].shape[1] > STENT:
            stent_pred, stent_true = labels_pred == STENT, labels_true == STENT
            has_stent |= bool(stent_true.any())
            _pooled(totals, "stent", stent_pred, stent_true)
        if "tip_heatmap" in outputs:
            tips_true = example["tips"].numpy()
            tips_true = tips_true[tips_true[:, 2] > 0, :2]
            probability = torch.sigmoid(outputs["tip_heatmap"][0, 0]).cpu().numpy()
            result = match_tips(heatmap_peaks(probability), tips_true, gate_px=TIP_GATE_PX)
            tip_errors.extend(result.errors_px)
            found += result.num_found
            missed += result.num_missed
            false += result.num_false
        accumulator.add(frame_metrics, sequence_id=example.get("sequence_id"))

    summary = accumulator.summary()["metrics"]
    wire_counts = totals["guidewire"]
    metrics = {
        "precision": precision(wire_counts),
        "sensitivity": sensitivity(wire_counts),
        "f1": f1_score(wire_counts),
        "centerline_f1": summary.get("centerline_f1", {}).get("mean") or 0.0,
        "cldice": summary.get("cldice", {}).get("mean") or 0.0,
    }
    if "stent" in totals:
        metrics["stent_dice"] = f1_score(totals["stent"]) if has_stent else float("nan")
    if found + missed:
        metrics["tip_found_rate"] = found / (found + missed)
    if found + missed + false:
        metrics["tip_f1"] = 2 * found / (2 * found + missed + false)
    if tip_errors:
        metrics["tip_error_median_px"] = float(np.median(tip_errors))
        metrics["tip_error_p95_px"] = float(np.percentile(tip_errors, 95))
    parts = [metrics["f1"], metrics["centerline_f1"]]
    if has_stent:
        parts.append(metrics["stent_dice"])
    metrics["selection_f1"] = float(np.mean(parts))
    return {k: float(v) for k, v in metrics.items()}
