"""Pixel-wise segmentation metrics: confusion counts, precision, sensitivity, specificity,
F1/Dice, IoU, per-class IoU, MIoU, OIoU and Macro-F1.

Definitions follow ``seeds/002_736d2e60a7c10fcc.txt`` "Evaluation metric" (Eqs. [10]-[16]):
``Precision = TP/(TP+FP)``, ``Recall = TP/(TP+FN)``, ``F1 = 2PR/(P+R)``, ``Macro-F1 = 1/N
sum_i F1_i`` over the ``N`` classes, ``IoU = TP/(TP+FP+FN)``, ``MIoU = 1/N sum_i IoU_i``,
``Dice = 2|X n Y|/(|X|+|Y|)``; precision / sensitivity / F1 are also the metrics of seeds
000 and 001 (Sec. 3), and mIoU that of seed 003 (Sec. III-B).

OIoU: the extracted text of seed 002 reads ``OIoU = sum_i IoU_i``, which cannot be right
(its Table 1 values are below MIoU and below 100 %); its Fig. 7 caption calls it "overall
intersection over union". We implement the usual overall IoU: intersections and unions
are summed first (over the foreground classes here, and over frames by
:class:`~fluoro_perception.metrics.aggregate.MetricAccumulator`) and divided once.

Empty cases (documented, never NaN): a ratio whose denominator is 0 is 1.0 when the frame
has neither predicted nor true foreground (nothing to find, nothing claimed) and 0.0
otherwise; specificity is 1.0 when the target has no negative pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluoro_perception.metrics._validation import as_binary_mask, check_same_shape


@dataclass(frozen=True)
class ConfusionCounts:
    """Pixel counts of one binary comparison (all ``int`` >= 0)."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int

    @property
    def is_empty(self) -> bool:
        """True when neither prediction nor target has a foreground pixel."""
        return self.true_positive + self.false_positive + self.false_negative == 0


def confusion_counts(prediction: np.ndarray, target: np.ndarray) -> ConfusionCounts:
    """Count TP, FP, FN, TN of binary masks ``(H, W)`` (non-zero = foreground)."""
    predicted = as_binary_mask("prediction", prediction)
    truth = as_binary_mask("target", target)
    check_same_shape(predicted, truth)
    true_positive = int(np.count_nonzero(predicted & truth))
    false_positive = int(np.count_nonzero(predicted & ~truth))
    false_negative = int(np.count_nonzero(~predicted & truth))
    true_negative = int(predicted.size) - true_positive - false_positive - false_negative
    return ConfusionCounts(true_positive, false_positive, false_negative, true_negative)


def _ratio(numerator: int, denominator: int, counts: ConfusionCounts) -> float:
    if denominator > 0:
        return numerator / denominator
    return 1.0 if counts.is_empty else 0.0


def precision(counts: ConfusionCounts) -> float:
    """``TP / (TP + FP)``; see the module docstring for empty masks."""
    return _ratio(counts.true_positive, counts.true_positive + counts.false_positive, counts)


def sensitivity(counts: ConfusionCounts) -> float:
    """Sensitivity (recall) ``TP / (TP + FN)``; see the module docstring for empty masks."""
    return _ratio(counts.true_positive, counts.true_positive + counts.false_negative, counts)


recall = sensitivity


def specificity(counts: ConfusionCounts) -> float:
    """``TN / (TN + FP)``; 1.0 when the target has no negative pixel."""
    denominator = counts.true_negative + counts.false_positive
    return counts.true_negative / denominator if denominator > 0 else 1.0


def f1_score(counts: ConfusionCounts) -> float:
    """F1 = Dice = ``2 TP / (2 TP + FP + FN)`` (equal to ``2PR/(P+R)``)."""
    return _ratio(
        2 * counts.true_positive,
        2 * counts.true_positive + counts.false_positive + counts.false_negative,
        counts,
    )


dice_coefficient = f1_score


def iou(counts: ConfusionCounts) -> float:
    """Intersection over union ``TP / (TP + FP + FN)``."""
    return _ratio(
        counts.true_positive,
        counts.true_positive + counts.false_positive + counts.false_negative,
        counts,
    )


def binary_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All binary metrics of one mask pair as a plain dict (keys: ``precision``,
    ``sensitivity``, ``specificity``, ``f1``, ``dice``, ``iou``)."""
    counts = confusion_counts(prediction, target)
    f1 = f1_score(counts)
    return {
        "precision": precision(counts),
        "sensitivity": sensitivity(counts),
        "specificity": specificity(counts),
        "f1": f1,
        "dice": f1,
        "iou": iou(counts),
    }


def confusion_matrix(
    prediction_labels: np.ndarray, target_labels: np.ndarray, num_classes: int
) -> np.ndarray:
    """Multi-class confusion matrix ``(K, K)`` int64: rows true class, columns predicted.

    Labels are integer maps ``(H, W)`` (or any equal shapes) with values in ``[0, K)``;
    other target values (e.g. an ignore label 255) are not counted, other prediction
    values raise ValueError.
    """
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be an int >= 1")
    predicted = np.asarray(prediction_labels)
    truth = np.asarray(target_labels)
    check_same_shape(predicted, truth)
    for name, labels in (("prediction_labels", predicted), ("target_labels", truth)):
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{name} has dtype {labels.dtype}; expected integer class indices")
    predicted = predicted.astype(np.int64).ravel()
    truth = truth.astype(np.int64).ravel()
    if predicted.size and (predicted.min() < 0 or predicted.max() >= num_classes):
        raise ValueError(
            f"prediction_labels span [{predicted.min()}, {predicted.max()}], expected 0..{num_classes - 1}"
        )
    counted = (truth >= 0) & (truth < num_classes)
    flat_index = truth[counted] * num_classes + predicted[counted]
    return np.bincount(flat_index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def class_counts(matrix: np.ndarray) -> list[ConfusionCounts]:
    """One-vs-rest :class:`ConfusionCounts` per class from a ``(K, K)`` confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix has shape {matrix.shape}; expected (K, K)")
    total = int(matrix.sum())
    counts = []
    for k in range(matrix.shape[0]):
        true_positive = int(matrix[k, k])
        false_negative = int(matrix[k, :].sum()) - true_positive
        false_positive = int(matrix[:, k].sum()) - true_positive
        true_negative = total - true_positive - false_negative - false_positive
        counts.append(ConfusionCounts(true_positive, false_positive, false_negative, true_negative))
    return counts


def per_class_iou(
    prediction_labels: np.ndarray, target_labels: np.ndarray, num_classes: int
) -> list[float | None]:
    """IoU per class; ``None`` for a class absent from both prediction and target."""
    counts = class_counts(confusion_matrix(prediction_labels, target_labels, num_classes))
    return [None if c.is_empty else iou(c) for c in counts]


def mean_iou(
    prediction_labels: np.ndarray,
    target_labels: np.ndarray,
    num_classes: int,
    include_background: bool = True,
) -> float:
    """MIoU (seed 002 Eq. [15], seed 003): mean of the per-class IoU.

    Classes absent from both prediction and target are left out of the mean (their IoU
    is undefined); if every class is absent the result is 1.0. ``include_background``
    False drops class 0.
    """
    values = per_class_iou(prediction_labels, target_labels, num_classes)
    values = values if include_background else values[1:]
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else 1.0


def overall_iou_counts(
    prediction_labels: np.ndarray, target_labels: np.ndarray, num_classes: int
) -> tuple[int, int]:
    """``(sum intersection, sum union)`` over the foreground classes ``1..K-1`` [px].

    Sum these over frames and divide once for the dataset-level OIoU.
    """
    counts = class_counts(confusion_matrix(prediction_labels, target_labels, num_classes))
    foreground = counts[1:] if num_classes > 1 else counts
    intersection = sum(c.true_positive for c in foreground)
    union = sum(c.true_positive + c.false_positive + c.false_negative for c in foreground)
    return intersection, union


def overall_iou(
    prediction_labels: np.ndarray, target_labels: np.ndarray, num_classes: int
) -> float:
    """OIoU of one frame: summed foreground intersections / summed unions (1.0 if no
    foreground anywhere). See the module docstring for why this reading of seed 002."""
    intersection, union = overall_iou_counts(prediction_labels, target_labels, num_classes)
    return intersection / union if union > 0 else 1.0


def macro_f1(
    prediction_labels: np.ndarray,
    target_labels: np.ndarray,
    num_classes: int,
    include_background: bool = True,
) -> float:
    """Macro-F1 (seed 002 Eq. [13]): unweighted mean of the per-class F1 over the classes.

    Seed 002 counts both classes of its binary task (background and guidewire), hence
    ``include_background=True`` by default. A class absent from both maps scores 1.0.
    """
    counts = class_counts(confusion_matrix(prediction_labels, target_labels, num_classes))
    counts = counts if include_background else counts[1:]
    if not counts:
        raise ValueError("include_background=False with num_classes=1 leaves no class to score")
    return float(np.mean([f1_score(c) for c in counts]))
