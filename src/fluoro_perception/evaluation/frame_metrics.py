"""Per-frame metrics of a :class:`FrameResult` against ground truth, and their aggregation.

Every number comes from :mod:`fluoro_perception.metrics` (the same code the trainer's
validation uses); this module only decides *what* is compared. Definitions and seed
references are in ``docs/evaluation.md``; in short:

* **Guidewire precision / sensitivity / F1** (seeds ``000_a7406d7b89063154.txt`` and
  ``001_d0d03ac8067c31fe.txt`` Sec. 4.1): the predicted guidewire mask against GT class
  1. Dataset values are *pooled*: TP, FP and FN are summed over all frames and divided
  once, so frames without a wire do not score a free 1.0.
* **Dice** (per frame, = F1 of that frame's masks), **clDice** (seed
  ``002_736d2e60a7c10fcc.txt`` Eq. 7), **HD95** [px] of the guidewire and stent masks.
* **Centerline F1 within 2 px**: all predicted centerlines against all GT centerlines,
  both resampled every 1 px (:func:`~fluoro_perception.metrics.centerline_f1`).
* **GSP** (seed 001 Eq. 5): mean distance from GT centerline points to the predicted mask.
* **Tip error** [px] and [mm]: predicted tips matched to GT tips that are inside the
  field (``tip_visible``) with the Hungarian algorithm and a 20 px gate
  (:func:`~fluoro_perception.metrics.match_tips`), so every wire of a dual-wire frame is
  scored. Unmatched GT tips are *missed*, unmatched predictions *false*.
* **Both wires found**: in frames with >= 2 visible GT tips, 1.0 when every one of them
  is matched.
* **Primary tip correct**: in frames with a visible GT tip, 1.0 when the primary wire's
  tip (``wires[0]``, published on ``/tip``) lies within the tip gate of a GT tip.
* **Stent Dice** (pooled, like the guidewire F1) and per frame where a stent is
  predicted or present.
* **Hard negatives**: in frames without any ground-truth wire, whether a wire is
  reported at all (``wire_reported_on_negative``), and in frames without a stent how
  many stents are reported (``stents_reported_on_negative``).
* **Confusion share**: in frames that hold a wire, the share of the predicted guidewire
  pixels that lie on distractor ground truth, pooled over the set: the catheter class
  (label 3) or the contrast-vessel mask (``SimFrame.vessel_mask``) where it is not
  labelled guidewire, stent or catheter and lies farther than the centerline tolerance
  from the GT wire. ``confusion_share_catheter`` and
  ``confusion_share_vessel`` split it (they add up to it); a frame without a vessel
  mask counts catheters only.
* **Latency** [ms]: the pipeline's own ``timings_ms["total"]`` and ``["inference"]``.

Metrics that do not apply to a frame (tip error without a matched tip, stent Dice
without any stent) are left out of that frame rather than scored 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from fluoro_perception.core.types import BACKGROUND, CATHETER, GUIDEWIRE, STENT, FrameResult
from fluoro_perception.metrics import (
    ConfusionCounts,
    MetricAccumulator,
    TipMatchResult,
    centerline_f1,
    cl_dice,
    confusion_counts,
    f1_score,
    guidewire_specific_precision,
    hausdorff_distance_95,
    match_tips,
    resample_polyline,
    summarize_values,
)
from fluoro_perception.sim.types import SimFrame

#: Tolerance of the centerline F1 [px].
CENTERLINE_TOLERANCE_PX = 2.0
#: Largest tip error that still counts as the same wire [px].
TIP_GATE_PX = 20.0
#: Resampling step of centerlines before they are compared [px].
_CENTERLINE_STEP_PX = 1.0


@dataclass(frozen=True)
class FrameMetrics:
    """Metrics of one frame.

    Attributes
    ----------
    sequence_id : str
        Sequence of the frame.
    frame_index : int
        Index within the sequence.
    guidewire_counts, stent_counts : ConfusionCounts
        Pixel confusion counts of the guidewire and stent masks (for pooling).
    values : dict[str, float]
        Per-frame scalar metrics that apply to this frame (keys in
        :data:`PER_FRAME_METRICS`); ``inf`` marks a distance to an empty mask.
    tip_match : TipMatchResult
        Matching of predicted to visible GT tips.
    tip_errors_px : list of float
        Error of every matched tip [px].
    tip_errors_mm : list of float
        The same in [mm]; empty when the pixel spacing is unknown.
    dual_wire : bool
        The frame has >= 2 visible GT tips.
    wire_px_predicted, wire_px_on_distractors : int
        In frames that hold a GT wire: predicted guidewire pixels, and those of them on
        distractor ground truth (catheter or contrast vessel); 0 in frames without a wire.
    wire_px_on_catheter, wire_px_on_vessel : int
        The two parts of ``wire_px_on_distractors``: on catheter GT (label 3), and on
        the vessel mask where the label is background, beyond the centerline tolerance of
        the GT wire (0 without a vessel mask).
    vessel_truth : bool
        The frame holds a GT wire and a vessel mask (its vessel share was measured).
    """

    sequence_id: str
    frame_index: int
    guidewire_counts: ConfusionCounts
    stent_counts: ConfusionCounts
    values: dict[str, float]
    tip_match: TipMatchResult
    tip_errors_px: list[float] = field(default_factory=list)
    tip_errors_mm: list[float] = field(default_factory=list)
    dual_wire: bool = False
    wire_px_predicted: int = 0
    wire_px_on_distractors: int = 0
    wire_px_on_catheter: int = 0
    wire_px_on_vessel: int = 0
    vessel_truth: bool = False


#: Per-frame metric names and meaning (units in brackets); each frame carries the subset
#: that applies to it.
PER_FRAME_METRICS: dict[str, str] = {
    "guidewire_dice": "Dice (= F1) of the guidewire mask of the frame",
    "guidewire_cldice": "clDice of the guidewire mask (seed 002 Eq. 7)",
    "centerline_f1": f"centerline F1 within {CENTERLINE_TOLERANCE_PX:g} px",
    "centerline_precision": f"predicted centerline points within {CENTERLINE_TOLERANCE_PX:g} px of GT",
    "centerline_recall": f"GT centerline points within {CENTERLINE_TOLERANCE_PX:g} px of the prediction",
    "gsp_px": "mean distance GT centerline -> predicted mask [px] (seed 001 Eq. 5)",
    "guidewire_hd95_px": "95th-percentile Hausdorff distance of the guidewire masks [px]",
    "tip_error_px": "mean error of the matched tips of the frame [px]",
    "tip_error_mm": "mean error of the matched tips of the frame [mm]",
    "both_wires_found": "dual-wire frames: 1 when every visible GT tip is matched",
    "primary_tip_correct": "frames with a visible GT tip: 1 when the primary wire's tip "
    "(wire 0, the /tip topic) lies within the tip gate of one",
    "wire_reported_on_negative": "frames without a GT wire: 1 when any wire is reported",
    "stents_reported_on_negative": "frames without a GT stent: number of stents reported",
    "confusion_share": "frames with a GT wire: share of the predicted guidewire pixels on "
    "distractor GT (catheter, or contrast vessel not labelled guidewire / stent)",
    "confusion_share_catheter": "frames with a GT wire: share of the predicted guidewire "
    "pixels on catheter GT",
    "confusion_share_vessel": "frames with a GT wire and a vessel mask: share of the "
    "predicted guidewire pixels on contrast vessel labelled background",
    "stent_dice": "Dice of the stent mask (frames with a GT or predicted stent)",
    "stent_hd95_px": "95th-percentile Hausdorff distance of the stent masks [px]",
    "latency_ms": "pipeline time of the frame, preprocess to masks [ms]",
    "inference_ms": "ONNX Runtime time of the frame [ms]",
}


def _check_same_grid(result: FrameResult, truth: SimFrame) -> None:
    expected = truth.labels.shape
    for name in ("guidewire_mask", "stent_mask"):
        shape = getattr(result, name).shape
        if shape != expected:
            raise ValueError(
                f"result.{name} has shape {shape}; expected the ground truth's {expected} "
                "(run the pipeline on the frame's own image)"
            )
    if truth.vessel_mask is not None and np.shape(truth.vessel_mask) != expected:
        raise ValueError(
            f"truth.vessel_mask has shape {np.shape(truth.vessel_mask)}; expected the "
            f"labels' {expected}"
        )


def _near(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``(H, W)`` bool: pixels within ``radius_px`` (Euclidean, pixel centres) of ``mask``."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= radius_px


def _all_centerlines(polylines: list[np.ndarray]) -> np.ndarray:
    """Every polyline resampled every 1 px and stacked, ``(N, 2)`` [px]."""
    parts = [
        resample_polyline(np.asarray(p, dtype=np.float64).reshape(-1, 2), _CENTERLINE_STEP_PX)
        for p in polylines
        if len(p)
    ]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 2), dtype=np.float64)


def compute_frame_metrics(
    result: FrameResult,
    truth: SimFrame,
    *,
    centerline_tolerance_px: float = CENTERLINE_TOLERANCE_PX,
    tip_gate_px: float = TIP_GATE_PX,
) -> FrameMetrics:
    """Score one pipeline result against the ground truth of the same frame.

    Parameters
    ----------
    result : FrameResult
        Output of :meth:`PerceptionPipeline.process` on ``truth.image`` (input grid).
    truth : SimFrame
        Ground truth (simulator frame or a dataset frame from
        :func:`~fluoro_perception.sim.dataset.load_frame`).
    centerline_tolerance_px : float
        Tolerance of the centerline F1 [px].
    tip_gate_px : float
        Largest tip error counted as a match [px].

    Returns
    -------
    FrameMetrics
        See the module docstring for the definitions.
    """
    if not isinstance(result, FrameResult):
        raise TypeError(f"result is {type(result).__name__}; expected a FrameResult")
    if not isinstance(truth, SimFrame):
        raise TypeError(f"truth is {type(truth).__name__}; expected a SimFrame (load_frame)")
    _check_same_grid(result, truth)
    values: dict[str, float] = {}

    true_wire_mask = truth.labels == GUIDEWIRE  # (H, W) bool
    predicted_wire_mask = result.guidewire_mask > 0
    guidewire_counts = confusion_counts(predicted_wire_mask, true_wire_mask)
    has_wire = bool(true_wire_mask.any()) or bool(predicted_wire_mask.any())
    if has_wire:
        values["guidewire_dice"] = f1_score(guidewire_counts)
        values["guidewire_cldice"] = cl_dice(predicted_wire_mask, true_wire_mask).cl_dice
        values["guidewire_hd95_px"] = hausdorff_distance_95(predicted_wire_mask, true_wire_mask)

    predicted_centerline = _all_centerlines([w.centerline_px for w in result.wires])
    true_centerline = _all_centerlines([w.centerline_px for w in truth.wires])
    if len(predicted_centerline) or len(true_centerline):
        score = centerline_f1(predicted_centerline, true_centerline, centerline_tolerance_px)
        values["centerline_f1"] = score.f1
        values["centerline_precision"] = score.precision
        values["centerline_recall"] = score.recall
    if len(true_centerline):
        values["gsp_px"] = guidewire_specific_precision(predicted_wire_mask, true_centerline)

    predicted_tips = np.array([w.tip_px for w in result.wires], dtype=np.float64).reshape(-1, 2)
    true_tips = np.array(
        [w.tip_px for w in truth.wires if w.tip_visible], dtype=np.float64
    ).reshape(-1, 2)
    tip_match = match_tips(predicted_tips, true_tips, tip_gate_px)
    tip_errors_px = tip_match.errors_px
    spacing = float(truth.pixel_spacing_m)
    spacing_known = math.isfinite(spacing) and spacing > 0.0
    tip_errors_mm = tip_match.errors_mm(spacing) if spacing_known else []
    if tip_errors_px:
        values["tip_error_px"] = float(np.mean(tip_errors_px))
    if tip_errors_mm:
        values["tip_error_mm"] = float(np.mean(tip_errors_mm))
    if len(true_tips):
        # what the robot follows: the primary wire's tip (published on /tip), not just any
        # wire's tip matched somewhere
        primary_correct = bool(result.wires) and bool(
            np.hypot(*(true_tips - result.wires[0].tip_px).T).min() <= tip_gate_px
        )
        values["primary_tip_correct"] = float(primary_correct)
    dual_wire = len(true_tips) >= 2
    if dual_wire:
        values["both_wires_found"] = float(tip_match.num_missed == 0)

    wire_present = bool(true_wire_mask.any()) or bool(truth.wires)
    wire_px_predicted = wire_px_on_catheter = wire_px_on_vessel = 0
    vessel_truth = wire_present and truth.vessel_mask is not None
    if not wire_present:
        values["wire_reported_on_negative"] = float(bool(result.wires))
    elif predicted_wire_mask.any():
        wire_px_predicted = int(predicted_wire_mask.sum())
        wire_px_on_catheter = int((predicted_wire_mask & (truth.labels == CATHETER)).sum())
        if vessel_truth:
            # vessel pixels labelled guidewire / stent / catheter are not vessel confusion
            # (a wire inside a filled lumen lies on both), nor those within the centerline
            # tolerance of the GT wire (a prediction 1 px wider than a wire inside a
            # filled lumen is not a vessel mistaken for the wire); other background ones are
            on_vessel = (
                np.asarray(truth.vessel_mask, dtype=bool)
                & (truth.labels == BACKGROUND)
                & ~_near(true_wire_mask, centerline_tolerance_px)
            )
            wire_px_on_vessel = int((predicted_wire_mask & on_vessel).sum())
            values["confusion_share_vessel"] = wire_px_on_vessel / wire_px_predicted
        values["confusion_share"] = (wire_px_on_catheter + wire_px_on_vessel) / wire_px_predicted
        values["confusion_share_catheter"] = wire_px_on_catheter / wire_px_predicted

    true_stent_mask = truth.labels == STENT
    if not true_stent_mask.any() and not truth.stents:
        values["stents_reported_on_negative"] = float(len(result.stents))
    predicted_stent_mask = result.stent_mask > 0
    stent_counts = confusion_counts(predicted_stent_mask, true_stent_mask)
    if true_stent_mask.any() or predicted_stent_mask.any():
        values["stent_dice"] = f1_score(stent_counts)
        values["stent_hd95_px"] = hausdorff_distance_95(predicted_stent_mask, true_stent_mask)

    if "total" in result.timings_ms:
        values["latency_ms"] = float(result.timings_ms["total"])
    if "inference" in result.timings_ms:
        values["inference_ms"] = float(result.timings_ms["inference"])
    return FrameMetrics(
        sequence_id=str(truth.sequence_id),
        frame_index=int(truth.frame_index),
        guidewire_counts=guidewire_counts,
        stent_counts=stent_counts,
        values=values,
        tip_match=tip_match,
        tip_errors_px=list(tip_errors_px),
        tip_errors_mm=list(tip_errors_mm),
        dual_wire=dual_wire,
        wire_px_predicted=wire_px_predicted,
        wire_px_on_distractors=wire_px_on_catheter + wire_px_on_vessel,
        wire_px_on_catheter=wire_px_on_catheter,
        wire_px_on_vessel=wire_px_on_vessel,
        vessel_truth=vessel_truth,
    )


def _pooled(counts: ConfusionCounts) -> dict[str, float | None]:
    """Pooled precision / sensitivity / F1 of summed counts (None when undefined)."""
    tp, fp, fn = counts.true_positive, counts.false_positive, counts.false_negative

    def ratio(numerator: int, denominator: int) -> float | None:
        return numerator / denominator if denominator > 0 else None

    return {
        "precision": ratio(tp, tp + fp),
        "sensitivity": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "true_positive_px": tp,
        "false_positive_px": fp,
        "false_negative_px": fn,
    }


def _add_counts(total: ConfusionCounts, counts: ConfusionCounts) -> ConfusionCounts:
    return ConfusionCounts(
        total.true_positive + counts.true_positive,
        total.false_positive + counts.false_positive,
        total.false_negative + counts.false_negative,
        total.true_negative + counts.true_negative,
    )


_ZERO_COUNTS = ConfusionCounts(0, 0, 0, 0)


class EvaluationAccumulator:
    """Collect :class:`FrameMetrics` and produce the ``summary`` of ``metrics.json``.

    Per-frame values go to a :class:`~fluoro_perception.metrics.MetricAccumulator`
    (mean / median / p95, non-finite values counted, per sequence too); pixel counts
    and tip counts are pooled over the dataset and per sequence.
    """

    def __init__(self) -> None:
        self.frames = MetricAccumulator()
        self._guidewire: dict[str | None, ConfusionCounts] = {}
        self._stent: dict[str | None, ConfusionCounts] = {}
        self._tips: dict[str, int] = {
            "num_true": 0,
            "num_found": 0,
            "num_missed": 0,
            "num_false": 0,
        }
        self.tip_errors_px: list[float] = []
        self.tip_errors_mm: list[float] = []
        self.latencies_ms: list[float] = []
        self.num_dual_wire_frames = 0
        self.num_dual_wire_found = 0
        self.wire_px_predicted = 0
        self.wire_px_on_distractors = 0
        self.wire_px_on_catheter = 0
        self.wire_px_on_vessel = 0
        self.vessel_truth_frames = 0
        self.stents_on_negative = 0

    @property
    def num_frames(self) -> int:
        return self.frames.num_frames

    def add(self, metrics: FrameMetrics) -> None:
        """Add one frame."""
        if not isinstance(metrics, FrameMetrics):
            raise TypeError(f"metrics is {type(metrics).__name__}; expected FrameMetrics")
        self.frames.add(metrics.values, sequence_id=metrics.sequence_id)
        for key in (None, metrics.sequence_id):
            self._guidewire[key] = _add_counts(
                self._guidewire.get(key, _ZERO_COUNTS), metrics.guidewire_counts
            )
            self._stent[key] = _add_counts(self._stent.get(key, _ZERO_COUNTS), metrics.stent_counts)
        match = metrics.tip_match
        self._tips["num_true"] += match.num_found + match.num_missed
        self._tips["num_found"] += match.num_found
        self._tips["num_missed"] += match.num_missed
        self._tips["num_false"] += match.num_false
        self.tip_errors_px.extend(metrics.tip_errors_px)
        self.tip_errors_mm.extend(metrics.tip_errors_mm)
        if "latency_ms" in metrics.values:
            self.latencies_ms.append(metrics.values["latency_ms"])
        if metrics.dual_wire:
            self.num_dual_wire_frames += 1
            self.num_dual_wire_found += int(metrics.tip_match.num_missed == 0)
        self.wire_px_predicted += metrics.wire_px_predicted
        self.wire_px_on_distractors += metrics.wire_px_on_distractors
        self.wire_px_on_catheter += metrics.wire_px_on_catheter
        self.wire_px_on_vessel += metrics.wire_px_on_vessel
        self.vessel_truth_frames += int(metrics.vessel_truth)
        self.stents_on_negative += int(metrics.values.get("stents_reported_on_negative", 0))

    def sequence_guidewire_f1(self) -> dict[str, float | None]:
        """Pooled guidewire F1 per sequence id."""
        return {
            key: _pooled(counts)["f1"]
            for key, counts in sorted(self._guidewire.items(), key=lambda kv: str(kv[0]))
            if key is not None
        }

    def summary(self) -> dict:
        """JSON-ready summary (the ``summary``, ``metrics`` and ``per_sequence`` of
        ``metrics.json``; keys documented in ``docs/evaluation.md``)."""
        frame_summary = self.frames.summary()
        guidewire = _pooled(self._guidewire.get(None, _ZERO_COUNTS))
        stent = _pooled(self._stent.get(None, _ZERO_COUNTS))
        tips = dict(self._tips)
        latency = summarize_values(self.latencies_ms)
        mean_latency = latency["mean"]

        def mean_of(name: str) -> float | None:
            entry = frame_summary["metrics"].get(name)
            return None if entry is None else entry["mean"]

        def summary_of(name: str) -> dict:
            return frame_summary["metrics"].get(name) or summarize_values([])

        def wire_share(pixels: int) -> float | None:
            """``pixels`` over all predicted wire pixels of the frames with a GT wire."""
            return pixels / self.wire_px_predicted if self.wire_px_predicted else None

        summary = {
            "num_frames": self.num_frames,
            "guidewire_precision": guidewire["precision"],
            "guidewire_sensitivity": guidewire["sensitivity"],
            "guidewire_f1": guidewire["f1"],
            "guidewire_dice_mean": mean_of("guidewire_dice"),
            "guidewire_cldice_mean": mean_of("guidewire_cldice"),
            "centerline_f1_mean": mean_of("centerline_f1"),
            "gsp_px_mean": mean_of("gsp_px"),
            "guidewire_hd95_px": summary_of("guidewire_hd95_px"),
            "tip_error_px": summarize_values(self.tip_errors_px),
            "tip_error_mm": summarize_values(self.tip_errors_mm),
            "tip_detection_rate": (
                tips["num_found"] / tips["num_true"] if tips["num_true"] else None
            ),
            "tips": tips,
            "primary_tip_correct_rate": mean_of("primary_tip_correct"),
            "dual_wire_frames": self.num_dual_wire_frames,
            "both_wires_found_rate": (
                self.num_dual_wire_found / self.num_dual_wire_frames
                if self.num_dual_wire_frames
                else None
            ),
            "negative_frames": summary_of("wire_reported_on_negative")["count"],
            "wire_reported_on_negative_rate": mean_of("wire_reported_on_negative"),
            "stents_reported_on_negative": self.stents_on_negative,
            "confusion_share": wire_share(self.wire_px_on_distractors),
            "confusion_share_catheter": wire_share(self.wire_px_on_catheter),
            # None when no frame with a GT wire carried a vessel mask (not measured)
            "confusion_share_vessel": (
                wire_share(self.wire_px_on_vessel) if self.vessel_truth_frames else None
            ),
            "vessel_truth_frames": self.vessel_truth_frames,
            "stent_dice": stent["f1"],
            "stent_hd95_px": summary_of("stent_hd95_px"),
            "latency_ms": latency,
            "frames_per_s": (1000.0 / mean_latency) if mean_latency else None,
        }
        per_sequence = {}
        for sequence_id, entry in frame_summary["per_sequence"].items():
            per_sequence[sequence_id] = {
                "num_frames": entry["num_frames"],
                "guidewire": _pooled(self._guidewire.get(sequence_id, _ZERO_COUNTS)),
                "stent_dice": _pooled(self._stent.get(sequence_id, _ZERO_COUNTS))["f1"],
                "metrics": entry["metrics"],
            }
        return {
            "summary": summary,
            "metrics": frame_summary["metrics"],
            "pooled_counts": {"guidewire": guidewire, "stent": stent},
            "per_sequence": per_sequence,
        }


__all__ = [
    "CENTERLINE_TOLERANCE_PX",
    "PER_FRAME_METRICS",
    "TIP_GATE_PX",
    "EvaluationAccumulator",
    "FrameMetrics",
    "compute_frame_metrics",
]
