"""Tests of fluoro_perception.metrics (numpy) with hand-computed expectations."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from fluoro_perception.metrics import (
    BinnedRocAuc,
    MetricAccumulator,
    binary_metrics,
    centerline_f1,
    cl_dice,
    confusion_counts,
    confusion_matrix,
    f1_score,
    guidewire_specific_precision,
    hausdorff_distance,
    hausdorff_distance_95,
    iou,
    macro_f1,
    match_tips,
    mean_iou,
    overall_iou,
    overall_iou_counts,
    per_class_iou,
    precision,
    resample_polyline,
    roc_auc,
    sensitivity,
    specificity,
    summarize_values,
    tip_error_mm,
    tip_error_px,
)


def _mask(shape, pixels):
    """Bool mask of ``shape`` with the given ``(row, col)`` pixels set."""
    mask = np.zeros(shape, dtype=bool)
    for row, col in pixels:
        mask[row, col] = True
    return mask


# ---------------------------------------------------------------------------- pixel metrics

# prediction [[1,1,0],[0,1,0]] vs target [[1,0,0],[1,1,0]]:
# TP = 2 ((0,0),(1,1)), FP = 1 ((0,1)), FN = 1 ((1,0)), TN = 2.
# precision 2/3, sensitivity 2/3, specificity TN/(TN+FP) = 2/3, F1 = 4/6, IoU = 2/4.
PRED_A = np.array([[1, 1, 0], [0, 1, 0]], dtype=np.uint8)
TARGET_A = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.uint8)


@pytest.mark.parametrize(
    ("prediction", "target", "expected"),
    [
        (
            PRED_A,
            TARGET_A,
            dict(
                precision=2 / 3, sensitivity=2 / 3, specificity=2 / 3, f1=2 / 3, dice=2 / 3, iou=0.5
            ),
        ),
        # Both empty: nothing to find, nothing claimed -> perfect.
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            dict(precision=1.0, sensitivity=1.0, specificity=1.0, f1=1.0, dice=1.0, iou=1.0),
        ),
        # Empty prediction, non-empty target: every foreground ratio is 0; TN=3, FP=0.
        (
            np.zeros((2, 2)),
            _mask((2, 2), [(0, 0)]),
            dict(precision=0.0, sensitivity=0.0, specificity=1.0, f1=0.0, dice=0.0, iou=0.0),
        ),
        # Empty target, non-empty prediction: TN=3, FP=1 -> specificity 3/4.
        (
            _mask((2, 2), [(0, 0)]),
            np.zeros((2, 2)),
            dict(precision=0.0, sensitivity=0.0, specificity=0.75, f1=0.0, dice=0.0, iou=0.0),
        ),
        # Target all foreground: no negatives -> specificity defined as 1.0.
        (
            _mask((1, 2), [(0, 0)]),
            np.ones((1, 2)),
            dict(precision=1.0, sensitivity=0.5, specificity=1.0, f1=2 / 3, dice=2 / 3, iou=0.5),
        ),
    ],
)
def test_binary_metrics_hand_computed(prediction, target, expected):
    result = binary_metrics(prediction, target)
    assert result == pytest.approx(expected)


def test_confusion_counts_hand_computed():
    counts = confusion_counts(PRED_A, TARGET_A)
    assert (counts.true_positive, counts.false_positive) == (2, 1)
    assert (counts.false_negative, counts.true_negative) == (1, 2)


def test_argument_order_precision_and_sensitivity_swap():
    # prediction has 2 px, target 1 px inside it: precision 1/2, sensitivity 1/1.
    prediction = _mask((1, 3), [(0, 0), (0, 1)])
    target = _mask((1, 3), [(0, 0)])
    counts = confusion_counts(prediction, target)
    assert precision(counts) == pytest.approx(0.5)
    assert sensitivity(counts) == pytest.approx(1.0)
    swapped = confusion_counts(target, prediction)
    assert precision(swapped) == pytest.approx(1.0)
    assert sensitivity(swapped) == pytest.approx(0.5)
    assert f1_score(counts) == f1_score(swapped)
    assert iou(counts) == pytest.approx(0.5)
    assert specificity(counts) == pytest.approx(0.5)  # TN=1, FP=1


@pytest.mark.parametrize(
    ("prediction", "target", "error"),
    [
        (np.zeros((2, 2)), np.zeros((2, 3)), ValueError),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), ValueError),
        (np.array([["a", "b"]]), np.zeros((1, 2)), TypeError),
    ],
)
def test_binary_metrics_bad_input(prediction, target, error):
    with pytest.raises(error):
        binary_metrics(prediction, target)


# Three classes, one row: prediction [0, 1, 2, 2], target [0, 1, 1, 2].
# Confusion (rows target): t0 -> p0; t1 -> p1, p2; t2 -> p2.
# IoU: class 0: 1/1; class 1: TP1, FN1 -> 1/2; class 2: TP1, FP1 -> 1/2.
# F1: 1, 2/3, 2/3 -> Macro-F1 7/9. MIoU 2/3 (with bg), 1/2 (without).
# OIoU: foreground intersections 1+1 over unions 2+2 = 1/2.
PRED_LABELS = np.array([[0, 1, 2, 2]])
TARGET_LABELS = np.array([[0, 1, 1, 2]])


def test_confusion_matrix_hand_computed():
    expected = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(PRED_LABELS, TARGET_LABELS, 3), expected)


def test_confusion_matrix_skips_ignore_label_and_rejects_bad_prediction():
    target = np.array([[0, 255, 1]])
    matrix = confusion_matrix(np.array([[0, 1, 1]]), target, 2)
    assert int(matrix.sum()) == 2
    with pytest.raises(ValueError, match="prediction_labels"):
        confusion_matrix(np.array([[0, 3, 1]]), target, 2)
    with pytest.raises(TypeError):
        confusion_matrix(np.array([[0.0, 1.0]]), np.array([[0, 1]]), 2)
    with pytest.raises(ValueError):
        confusion_matrix(PRED_LABELS, TARGET_LABELS, 0)


@pytest.mark.parametrize(
    ("include_background", "expected_miou", "expected_macro_f1"),
    [(True, 2 / 3, 7 / 9), (False, 1 / 2, 2 / 3)],
)
def test_miou_macro_f1_hand_computed(include_background, expected_miou, expected_macro_f1):
    assert mean_iou(PRED_LABELS, TARGET_LABELS, 3, include_background) == pytest.approx(
        expected_miou
    )
    assert macro_f1(PRED_LABELS, TARGET_LABELS, 3, include_background) == pytest.approx(
        expected_macro_f1
    )


def test_per_class_iou_absent_class_is_none_and_left_out_of_miou():
    values = per_class_iou(PRED_LABELS, TARGET_LABELS, 4)
    assert values[:3] == pytest.approx([1.0, 0.5, 0.5])
    assert values[3] is None
    assert mean_iou(PRED_LABELS, TARGET_LABELS, 4) == pytest.approx(2 / 3)


def test_overall_iou_hand_computed():
    assert overall_iou_counts(PRED_LABELS, TARGET_LABELS, 3) == (2, 4)
    assert overall_iou(PRED_LABELS, TARGET_LABELS, 3) == pytest.approx(0.5)
    assert overall_iou(np.zeros((2, 2), int), np.zeros((2, 2), int), 3) == 1.0


# ------------------------------------------------------------------------------------- AUC


@pytest.mark.parametrize(
    ("scores", "target", "expected"),
    [
        # Positive 0.35 beats 0.1, loses to 0.4; positive 0.8 beats both: 3 of 4 pairs.
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
        ([0.5, 0.5], [0, 1], 0.5),  # a tie counts one half
        ([0.1, 0.9], [0, 1], 1.0),
        ([0.9, 0.1], [0, 1], 0.0),
        # 2 positives (0.6, 0.3), 3 negatives (0.2, 0.3, 0.7): 0.6 beats 0.2, 0.3 -> 2;
        # 0.3 beats 0.2, ties 0.3 -> 1.5; total 3.5 / 6.
        ([0.6, 0.3, 0.2, 0.3, 0.7], [1, 1, 0, 0, 0], 3.5 / 6),
    ],
)
def test_roc_auc_hand_computed(scores, target, expected):
    assert roc_auc(np.array(scores), np.array(target)) == pytest.approx(expected)


def test_roc_auc_undefined_for_single_class_and_bad_input():
    assert math.isnan(roc_auc(np.array([0.2, 0.3]), np.array([0, 0])))
    assert math.isnan(roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))
    with pytest.raises(ValueError):
        roc_auc(np.array([0.2, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError):
        roc_auc(np.zeros((2, 2)), np.zeros((2, 3)))


def test_binned_auc_matches_exact_when_bins_separate_scores():
    binned = BinnedRocAuc(num_bins=10)
    binned.update(np.array([0.05, 0.45]), np.array([0, 0]))
    assert math.isnan(binned.compute())
    binned.update(np.array([0.35, 0.85]), np.array([1, 1]))
    assert binned.compute() == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    target = rng.random(2000) < 0.3
    scores = np.clip(rng.normal(0.4 + 0.2 * target, 0.15), 0, 1)
    fine = BinnedRocAuc(num_bins=10_000)
    fine.update(scores, target)
    assert fine.compute() == pytest.approx(roc_auc(scores, target), abs=1e-3)
    with pytest.raises(ValueError):
        BinnedRocAuc(num_bins=1)


# ------------------------------------------------------------------------------ centerline


def test_cl_dice_identical_partial_thick_and_empty():
    target = _mask((7, 11), [(3, c) for c in range(1, 10)])  # 9 px line, skeleton = itself
    assert cl_dice(target, target).cl_dice == pytest.approx(1.0)
    # Prediction covers 3 of the 9 target px: Tprec 3/3, Tsens 3/9, clDice 2*(1/3)/(4/3) = 0.5.
    partial = _mask((7, 11), [(3, c) for c in range(1, 4)])
    result = cl_dice(partial, target)
    assert (result.topology_precision, result.topology_sensitivity) == pytest.approx((1.0, 1 / 3))
    assert result.cl_dice == pytest.approx(0.5)
    # A 3 px thick bar over the line. skimage's skeleton of the bar is row 3, cols 1..7 plus
    # one spur pixel (2, 8) off the target: Tprec 7/8; target skeleton inside the bar: Tsens 1.
    # clDice = 2 * 7/8 / (15/8) = 14/15, while pixel Dice is only 2*9/(27+9) = 0.5.
    thick = np.zeros((7, 11), dtype=bool)
    thick[2:5, 1:10] = True
    result = cl_dice(thick, target)
    assert result.topology_precision == pytest.approx(7 / 8)
    assert result.topology_sensitivity == pytest.approx(1.0)
    assert result.cl_dice == pytest.approx(14 / 15)
    empty = np.zeros((7, 11), dtype=bool)
    assert cl_dice(empty, empty).cl_dice == 1.0
    assert cl_dice(empty, target).cl_dice == 0.0
    assert cl_dice(target, empty).cl_dice == 0.0


LINE_X = np.arange(0.0, 21.0)  # 21 points, 1 px apart


def _horizontal_line(y_px: float) -> np.ndarray:
    return np.stack([LINE_X, np.full_like(LINE_X, y_px)], axis=1)


@pytest.mark.parametrize(
    ("shift_px", "tolerance_px", "expected_f1"),
    [
        (0.0, 2.0, 1.0),
        (1.5, 2.0, 1.0),  # within tolerance
        (2.0, 2.0, 1.0),  # tolerance is inclusive
        (3.0, 2.0, 0.0),  # outside tolerance
        (3.0, 3.5, 1.0),  # a wider tolerance accepts it
    ],
)
def test_centerline_f1_shifted_line(shift_px, tolerance_px, expected_f1):
    score = centerline_f1(_horizontal_line(10.0 + shift_px), _horizontal_line(10.0), tolerance_px)
    assert score.f1 == pytest.approx(expected_f1)
    assert (score.num_predicted, score.num_true) == (21, 21)


def test_centerline_f1_extra_branch_lowers_precision_only():
    spurious = np.stack([np.arange(10.0), np.full(10, 40.0)], axis=1)  # 10 px far away
    prediction = np.concatenate([_horizontal_line(10.0), spurious])
    score = centerline_f1(prediction, _horizontal_line(10.0))
    # precision 21/31, recall 1, F1 = 2 * (21/31) / (1 + 21/31) = 42/52.
    assert score.precision == pytest.approx(21 / 31)
    assert score.recall == pytest.approx(1.0)
    assert score.f1 == pytest.approx(42 / 52)


def test_centerline_f1_masks_and_empty_cases():
    target = _mask((20, 20), [(10, c) for c in range(2, 18)])
    shifted = _mask((20, 20), [(11, c) for c in range(2, 18)])
    far = _mask((20, 20), [(15, c) for c in range(2, 18)])
    assert centerline_f1(shifted, target).f1 == pytest.approx(1.0)
    assert centerline_f1(far, target).f1 == pytest.approx(0.0)
    empty_points = np.zeros((0, 2))
    assert centerline_f1(empty_points, empty_points).f1 == 1.0
    assert centerline_f1(empty_points, _horizontal_line(1.0)).f1 == 0.0
    assert centerline_f1(_horizontal_line(1.0), empty_points).f1 == 0.0
    with pytest.raises(ValueError):
        centerline_f1(_horizontal_line(1.0), _horizontal_line(1.0), tolerance_px=-1.0)
    with pytest.raises(ValueError):
        centerline_f1(np.array([[0.0, np.nan]]), _horizontal_line(1.0))  # non-finite point
    with pytest.raises(ValueError):
        centerline_f1(np.zeros((2, 3, 3)), _horizontal_line(1.0))  # neither points nor a mask


def test_gsp_hand_computed_points_mask_and_empty():
    target_points = np.array([[0.0, 0.0], [4.0, 0.0]])
    prediction_points = np.array([[0.0, 1.0], [4.0, 3.0]])
    # distances from the true points: 1 and 3 -> mean 2.
    assert guidewire_specific_precision(prediction_points, target_points) == pytest.approx(2.0)
    # Mask prediction with pixels (x=0, y=1) and (x=4, y=3), i.e. rows 1 and 3.
    prediction_mask = _mask((5, 6), [(1, 0), (3, 4)])
    assert guidewire_specific_precision(prediction_mask, target_points) == pytest.approx(2.0)
    # GSP is directed (truth -> prediction): extra predicted points do not change it.
    extra = np.concatenate([prediction_points, [[100.0, 100.0]]])
    assert guidewire_specific_precision(extra, target_points) == pytest.approx(2.0)
    assert math.isinf(guidewire_specific_precision(np.zeros((0, 2)), target_points))
    assert math.isinf(guidewire_specific_precision(np.zeros((5, 6), bool), target_points))
    assert math.isnan(guidewire_specific_precision(prediction_points, np.zeros((0, 2))))


def test_resample_polyline_hand_computed():
    polyline = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 2.0]])  # arc length 5
    resampled = resample_polyline(polyline, spacing_px=1.0)
    expected = [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2]]
    np.testing.assert_allclose(resampled, expected)
    with pytest.raises(ValueError):
        resample_polyline(polyline, spacing_px=0.0)


# -------------------------------------------------------------------------------------- tip


@pytest.mark.parametrize(
    ("predicted", "true", "spacing_m", "expected_px", "expected_mm"),
    [
        ((0.0, 0.0), (3.0, 4.0), 2e-4, 5.0, 1.0),  # 5 px * 0.2 mm
        ((10.5, 7.0), (10.5, 7.0), 3e-4, 0.0, 0.0),
        ((1.0, 1.0), (2.0, 1.0), 1e-3, 1.0, 1.0),
    ],
)
def test_tip_error_hand_computed(predicted, true, spacing_m, expected_px, expected_mm):
    assert tip_error_px(predicted, true) == pytest.approx(expected_px)
    assert tip_error_mm(predicted, true, spacing_m) == pytest.approx(expected_mm)


@pytest.mark.parametrize("spacing_m", [0.0, -1e-4, math.inf])
def test_tip_error_rejects_bad_spacing(spacing_m):
    with pytest.raises(ValueError, match="pixel_spacing_m"):
        tip_error_mm((0, 0), (1, 1), spacing_m)


def test_tip_error_rejects_bad_point():
    with pytest.raises(ValueError):
        tip_error_px((0, 0, 0), (1, 1))


def test_match_tips_two_wires_in_swapped_order():
    predicted = np.array([[10.0, 10.0], [50.0, 52.0]])
    true = np.array([[51.0, 50.0], [11.0, 10.0]])
    result = match_tips(predicted, true, gate_px=20.0)
    assert [(m.predicted_index, m.true_index) for m in result.matches] == [(1, 0), (0, 1)]
    assert result.errors_px == pytest.approx([math.sqrt(5.0), 1.0])
    assert result.errors_mm(5e-4) == pytest.approx([math.sqrt(5.0) * 0.5, 0.5])
    assert (result.num_found, result.num_missed, result.num_false) == (2, 0, 0)


def test_match_tips_is_optimal_where_greedy_fails():
    # Greedy nearest-first would pair B=(5,0) with T1=(4,0) (1 px) and leave A-T2 = 9 px,
    # beyond the 5 px gate: 1 found. The assignment pairs A-T1 and B-T2 (4 px each).
    predicted = np.array([[0.0, 0.0], [5.0, 0.0]])
    true = np.array([[4.0, 0.0], [9.0, 0.0]])
    result = match_tips(predicted, true, gate_px=5.0)
    assert (result.num_found, result.num_missed, result.num_false) == (2, 0, 0)
    assert result.errors_px == pytest.approx([4.0, 4.0])


@pytest.mark.parametrize(
    ("predicted", "true", "expected_counts"),
    [
        ([[0.0, 0.0]], [[30.0, 0.0]], (0, 1, 1)),  # beyond the gate: missed + false
        (np.zeros((0, 2)), [[1.0, 1.0], [5.0, 5.0]], (0, 2, 0)),
        ([[1.0, 1.0]], np.zeros((0, 2)), (0, 0, 1)),
        ([[1.0, 1.0], [40.0, 40.0]], [[2.0, 1.0]], (1, 0, 1)),
    ],
)
def test_match_tips_gate_and_empty(predicted, true, expected_counts):
    result = match_tips(np.array(predicted), np.array(true), gate_px=20.0)
    assert (result.num_found, result.num_missed, result.num_false) == expected_counts


def test_match_tips_rejects_bad_gate():
    with pytest.raises(ValueError, match="gate_px"):
        match_tips(np.zeros((1, 2)), np.zeros((1, 2)), gate_px=0.0)


# --------------------------------------------------------------------------------- distance


def test_hausdorff_shifted_line_and_spacing():
    target = _mask((8, 8), [(r, 3) for r in range(2, 6)])
    shifted = _mask((8, 8), [(r, 5) for r in range(2, 6)])
    assert hausdorff_distance(shifted, target) == pytest.approx(2.0)
    assert hausdorff_distance(shifted, target, pixel_spacing=0.5) == pytest.approx(1.0)
    assert hausdorff_distance(target, target) == 0.0


def test_hausdorff_is_symmetric_and_hd95_ignores_one_outlier():
    target = _mask((12, 20), [(0, c) for c in range(20)])
    prediction = target.copy()
    prediction[10, 0] = True  # one outlier 10 px away; 21 predicted px
    assert hausdorff_distance(prediction, target) == pytest.approx(10.0)
    assert hausdorff_distance(target, prediction) == pytest.approx(10.0)
    # directed distances: 20 zeros and one 10; 95th percentile (linear) = sorted[19] = 0.
    assert hausdorff_distance_95(prediction, target) == pytest.approx(0.0)


def test_hausdorff_empty_masks_and_bad_percentile():
    empty = np.zeros((4, 4), dtype=bool)
    one = _mask((4, 4), [(1, 1)])
    assert hausdorff_distance(empty, empty) == 0.0
    assert math.isinf(hausdorff_distance(empty, one))
    assert math.isinf(hausdorff_distance_95(one, empty))
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(one, one, percentile=0.0)


def test_hausdorff_boundary_only_ignores_interior():
    square = np.zeros((9, 9), dtype=bool)
    square[1:8, 1:8] = True
    bigger = np.zeros((9, 9), dtype=bool)
    bigger[0:9, 0:9] = True
    # Set Hausdorff: every square pixel is inside 'bigger'; the far corner of 'bigger'
    # (0, 0) is 1 diagonal px from (1, 1): sqrt(2).
    assert hausdorff_distance(bigger, square) == pytest.approx(math.sqrt(2.0))
    # Boundaries are two rings 1 px apart; the outer corner (0, 0) -> (1, 1) is sqrt(2).
    assert hausdorff_distance(bigger, square, boundary_only=True) == pytest.approx(math.sqrt(2.0))
    # A 1 px ring (the square without its 5x5 centre) vs the filled square: the boundaries
    # coincide (0), but the square's centre pixel (4, 4) is 3 px from the nearest ring pixel.
    ring = square & ~np.pad(np.ones((5, 5), bool), 2)
    assert hausdorff_distance(ring, square, boundary_only=True) == pytest.approx(0.0)
    assert hausdorff_distance(ring, square) == pytest.approx(3.0)


# -------------------------------------------------------------------------------- aggregate


def test_accumulator_summary_hand_computed_and_json():
    accumulator = MetricAccumulator()
    accumulator.add({"dice": 0.5, "auc": 0.9}, sequence_id="seq_a")
    accumulator.add({"dice": 0.7, "auc": math.nan}, sequence_id="seq_a")
    accumulator.add({"dice": 1.0, "hd_px": math.inf}, sequence_id="seq_b")
    accumulator.add({"dice": None})
    accumulator.add_pooled("oiou", 1, 1, sequence_id="seq_a")  # frame IoU 1
    accumulator.add_pooled("oiou", 1, 3, sequence_id="seq_b")  # frame IoU 1/3
    summary = accumulator.summary()
    json.dumps(summary, allow_nan=False)  # strictly JSON-serializable
    dice = summary["metrics"]["dice"]
    assert summary["num_frames"] == 4
    assert dice["count"] == 3 and dice["num_nan"] == 1 and dice["num_inf"] == 0
    assert dice["mean"] == pytest.approx((0.5 + 0.7 + 1.0) / 3)
    assert dice["median"] == pytest.approx(0.7)
    assert dice["p95"] == pytest.approx(0.7 + 0.9 * 0.3)  # linear: index 1.9 of [.5, .7, 1]
    assert (dice["min"], dice["max"]) == (0.5, 1.0)
    assert summary["metrics"]["hd_px"]["count"] == 0
    assert summary["metrics"]["hd_px"]["num_inf"] == 1
    assert summary["metrics"]["hd_px"]["mean"] is None
    # Pooled OIoU 2/4, not the frame mean (1 + 1/3) / 2.
    assert summary["pooled"]["oiou"] == pytest.approx(0.5)
    seq_a = summary["per_sequence"]["seq_a"]
    assert seq_a["num_frames"] == 2
    assert seq_a["metrics"]["dice"]["mean"] == pytest.approx(0.6)
    assert seq_a["metrics"]["auc"]["num_nan"] == 1
    assert seq_a["pooled"]["oiou"] == pytest.approx(1.0)
    assert summary["per_sequence"]["seq_b"]["pooled"]["oiou"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("metrics", "error"),
    [({"dice": "high"}, TypeError), ({3: 0.5}, TypeError), ([("dice", 0.5)], TypeError)],
)
def test_accumulator_rejects_bad_values(metrics, error):
    with pytest.raises(error):
        MetricAccumulator().add(metrics)


def test_accumulator_rejects_bad_pooled_values():
    with pytest.raises(ValueError, match="oiou"):
        MetricAccumulator().add_pooled("oiou", 1.0, -1.0)


def test_summarize_values_empty():
    assert summarize_values([]) == {
        "count": 0,
        "num_nan": 0,
        "num_inf": 0,
        "mean": None,
        "median": None,
        "p95": None,
        "min": None,
        "max": None,
    }


def test_runtime_metrics_do_not_import_torch_or_training():
    code = (
        "import sys, fluoro_perception.metrics; "
        "bad = [m for m in ('torch', 'fluoro_training', 'rclpy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
