"""Evaluation metrics shared by the runtime's evaluation CLI and the training package.

numpy / scipy / scikit-image only (no torch, no rclpy) so the runtime can use them;
``fluoro_training.metrics`` re-exports everything here. Argument order everywhere:
``(prediction, target)``. Coordinates are ``(x, y)`` [px] as in
:mod:`fluoro_perception.core.types`.
"""

from fluoro_perception.metrics.aggregate import MetricAccumulator, summarize_values
from fluoro_perception.metrics.auc import BinnedRocAuc, roc_auc
from fluoro_perception.metrics.centerline import (
    CenterlineScore,
    ClDiceResult,
    centerline_f1,
    centerline_points,
    cl_dice,
    guidewire_specific_precision,
    resample_polyline,
    skeleton_points,
)
from fluoro_perception.metrics.distance import (
    directed_distances,
    hausdorff_distance,
    hausdorff_distance_95,
)
from fluoro_perception.metrics.pixel import (
    ConfusionCounts,
    binary_metrics,
    class_counts,
    confusion_counts,
    confusion_matrix,
    dice_coefficient,
    f1_score,
    iou,
    macro_f1,
    mean_iou,
    overall_iou,
    overall_iou_counts,
    per_class_iou,
    precision,
    recall,
    sensitivity,
    specificity,
)
from fluoro_perception.metrics.tip import (
    TipMatch,
    TipMatchResult,
    match_tips,
    tip_error_mm,
    tip_error_px,
)

__all__ = [
    "BinnedRocAuc",
    "CenterlineScore",
    "ClDiceResult",
    "ConfusionCounts",
    "MetricAccumulator",
    "TipMatch",
    "TipMatchResult",
    "binary_metrics",
    "centerline_f1",
    "centerline_points",
    "cl_dice",
    "class_counts",
    "confusion_counts",
    "confusion_matrix",
    "dice_coefficient",
    "directed_distances",
    "f1_score",
    "guidewire_specific_precision",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "iou",
    "macro_f1",
    "match_tips",
    "mean_iou",
    "overall_iou",
    "overall_iou_counts",
    "per_class_iou",
    "precision",
    "recall",
    "resample_polyline",
    "roc_auc",
    "sensitivity",
    "skeleton_points",
    "specificity",
    "summarize_values",
    "tip_error_mm",
    "tip_error_px",
]
