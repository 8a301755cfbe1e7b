"""Centerline metrics: clDice, tolerance-based centerline precision/recall/F1 and GSP.

* clDice (Shit et al., CVPR 2021; used in ``seeds/002_736d2e60a7c10fcc.txt`` section
  "Loss", Eq. [7]): ``Tprec = |S_P n V_L| / |S_P|``, ``Tsens = |S_L n V_P| / |S_L|``,
  ``clDice = 2 Tprec Tsens / (Tprec + Tsens)`` with ``V_P, V_L`` the predicted and true
  masks and ``S_P, S_L`` their skeletons (``skimage.morphology.skeletonize``). (Seed 002's
  text swaps the P/L names; we follow the clDice paper: P = prediction, L = label.)
* Centerline precision / recall / F1 within a tolerance: a predicted centerline point is
  correct if a true centerline point lies within ``tolerance_px`` (default 2 px), and a
  true point is found if a predicted point lies within it (``scipy.spatial.cKDTree``).
* GSP, ``seeds/001_d0d03ac8067c31fe.txt`` Sec. 4.1 Eq. 5: the mean over ground-truth
  centerline points of the distance to the nearest predicted point [px].

Inputs may be point sets ``(N, 2)`` ``(x, y)`` [px] or 2-D masks (skeletonized first).
Ordered polylines with gaps over 1 px should be densified with :func:`resample_polyline`
so that every part of the curve is represented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from fluoro_perception.metrics._validation import as_binary_mask, as_points, check_same_shape


def skeleton_points(mask: np.ndarray) -> np.ndarray:
    """Skeleton pixels of a 2-D mask as ``(N, 2)`` float64 ``(x, y)`` [px]."""
    skeleton = skeletonize(as_binary_mask("mask", mask))
    rows, cols = np.nonzero(skeleton)
    return np.stack([cols, rows], axis=1).astype(np.float64)  # (N, 2) as (x, y)


def centerline_points(points_or_mask: np.ndarray) -> np.ndarray:
    """Return ``(N, 2)`` ``(x, y)`` [px]: points as given, or the skeleton of a 2-D mask.

    An array is taken as points when it has shape ``(N, 2)`` with a float dtype or
    ``N == 0``; any other 2-D array is a mask.
    """
    array = np.asarray(points_or_mask)
    is_points = (
        array.ndim == 2
        and array.shape[1] == 2
        and (np.issubdtype(array.dtype, np.floating) or array.shape[0] == 0)
    )
    if is_points or array.size == 0:
        return as_points("points", array)
    return skeleton_points(array)


def resample_polyline(points_px: np.ndarray, spacing_px: float = 1.0) -> np.ndarray:
    """Resample an ordered polyline ``(N, 2)`` [px] at arc-length steps of ``spacing_px``.

    The first and last points are kept; a single point is returned unchanged.
    """
    points = as_points("points_px", points_px)
    if not float(spacing_px) > 0.0:
        raise ValueError(f"spacing_px={spacing_px} must be > 0")
    if len(points) < 2:
        return points.copy()
    segment_lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc_length = np.concatenate([[0.0], np.cumsum(segment_lengths)])
    total = arc_length[-1]
    if total == 0.0:
        return points[:1].copy()
    samples = np.append(np.arange(0.0, total, float(spacing_px)), total)
    x = np.interp(samples, arc_length, points[:, 0])
    y = np.interp(samples, arc_length, points[:, 1])
    return np.stack([x, y], axis=1)


@dataclass(frozen=True)
class ClDiceResult:
    """Topology precision, topology sensitivity and clDice, each in ``[0, 1]``."""

    topology_precision: float
    topology_sensitivity: float
    cl_dice: float


def cl_dice(prediction: np.ndarray, target: np.ndarray) -> ClDiceResult:
    """clDice of binary masks ``(H, W)`` (see module docstring).

    Empty cases: both masks empty -> all 1.0; exactly one empty -> all 0.0.
    """
    predicted = as_binary_mask("prediction", prediction)
    truth = as_binary_mask("target", target)
    check_same_shape(predicted, truth)
    predicted_any, truth_any = bool(predicted.any()), bool(truth.any())
    if not predicted_any and not truth_any:
        return ClDiceResult(1.0, 1.0, 1.0)
    if not predicted_any or not truth_any:
        return ClDiceResult(0.0, 0.0, 0.0)
    skeleton_predicted = skeletonize(predicted)
    skeleton_truth = skeletonize(truth)
    # A non-empty mask always has a non-empty skeleton in 2-D, so no zero division here.
    topology_precision = np.count_nonzero(skeleton_predicted & truth) / np.count_nonzero(
        skeleton_predicted
    )
    topology_sensitivity = np.count_nonzero(skeleton_truth & predicted) / np.count_nonzero(
        skeleton_truth
    )
    denominator = topology_precision + topology_sensitivity
    value = 2.0 * topology_precision * topology_sensitivity / denominator if denominator else 0.0
    return ClDiceResult(float(topology_precision), float(topology_sensitivity), float(value))


@dataclass(frozen=True)
class CenterlineScore:
    """Tolerance-based centerline agreement.

    Attributes
    ----------
    precision : float
        Fraction of predicted points within the tolerance of the true centerline.
    recall : float
        Fraction of true points within the tolerance of the predicted centerline.
    f1 : float
        Harmonic mean of precision and recall.
    num_predicted, num_true : int
        Number of points compared on each side.
    """

    precision: float
    recall: float
    f1: float
    num_predicted: int
    num_true: int


def _nearest_distances(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance [px] from every ``query`` point to its nearest ``reference`` point."""
    distances, _ = cKDTree(reference).query(query, k=1)
    return np.asarray(distances, dtype=np.float64)


def centerline_f1(
    prediction: np.ndarray, target: np.ndarray, tolerance_px: float = 2.0
) -> CenterlineScore:
    """Centerline precision / recall / F1 within ``tolerance_px`` [px] (inclusive).

    ``prediction`` and ``target`` are ``(N, 2)`` point sets ``(x, y)`` [px] or 2-D masks.
    Empty cases: both empty -> 1, 1, 1; one empty -> 0, 0, 0.
    """
    if not (float(tolerance_px) >= 0.0 and math.isfinite(float(tolerance_px))):
        raise ValueError(f"tolerance_px={tolerance_px} must be a finite number >= 0")
    predicted = centerline_points(prediction)
    truth = centerline_points(target)
    if len(predicted) == 0 and len(truth) == 0:
        return CenterlineScore(1.0, 1.0, 1.0, 0, 0)
    if len(predicted) == 0 or len(truth) == 0:
        return CenterlineScore(0.0, 0.0, 0.0, len(predicted), len(truth))
    precision = float(np.mean(_nearest_distances(predicted, truth) <= tolerance_px))
    recall = float(np.mean(_nearest_distances(truth, predicted) <= tolerance_px))
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return CenterlineScore(precision, recall, f1, len(predicted), len(truth))


def guidewire_specific_precision(prediction: np.ndarray, target: np.ndarray) -> float:
    """GSP (seed 001 Eq. 5): mean distance [px] from true centerline points to the prediction.

    Parameters
    ----------
    prediction : np.ndarray
        Predicted segmentation mask ``(H, W)`` (all foreground pixels are used, as in the
        paper: "distances from ground truth to segmentation results") or points ``(N, 2)``.
    target : np.ndarray
        True centerline points ``(M, 2)`` ``(x, y)`` [px], or a true mask (skeletonized).

    Returns
    -------
    float
        Mean distance [px]; ``nan`` if the target has no centerline (undefined), ``inf``
        if the prediction is empty but the target is not (the wire was missed).
    """
    truth = centerline_points(target)
    predicted_array = np.asarray(prediction)
    if (
        predicted_array.ndim == 2
        and not (
            predicted_array.shape[1] == 2 and np.issubdtype(predicted_array.dtype, np.floating)
        )
        and predicted_array.size
    ):
        rows, cols = np.nonzero(as_binary_mask("prediction", predicted_array))
        predicted = np.stack([cols, rows], axis=1).astype(np.float64)
    else:
        predicted = as_points("prediction", predicted_array)
    if len(truth) == 0:
        return math.nan
    if len(predicted) == 0:
        return math.inf
    return float(np.mean(_nearest_distances(truth, predicted)))
