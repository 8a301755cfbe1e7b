"""Per-frame evaluation metrics and the report (fluoro_perception.evaluation).

Hand-built results against hand-built ground truth on a 32x32 grid:
GT wire along row 10 from the tip (5, 10) to (25, 10); GT stent rows 20..25, cols 8..19.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from fluoro_perception.core.types import (
    GUIDEWIRE,
    STENT,
    FrameResult,
    StentDetection,
    WireDetection,
)
from fluoro_perception.evaluation.frame_metrics import (
    EvaluationAccumulator,
    compute_frame_metrics,
)
from fluoro_perception.evaluation.report import (
    DEFAULT_TARGETS,
    RunInfo,
    Target,
    WorstFrames,
    evaluate_targets,
    write_report,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

SIZE = 32
SPACING_M = 2e-4  # 0.2 mm per px


def _line(x_from: int, x_to: int, row: int) -> np.ndarray:
    """Horizontal centerline from x_from to x_to (tip first) on ``row`` [px]."""
    step = 1 if x_to >= x_from else -1
    xs = np.arange(x_from, x_to + step, step, dtype=np.float32)
    return np.stack([xs, np.full_like(xs, row)], axis=1)


def _wire_truth(instance_id: int, centerline: np.ndarray, visible: bool = True) -> WireTruth:
    return WireTruth(
        instance_id, "guidewire", centerline, centerline[0].copy(), math.pi, visible, 1.0
    )


def _truth(
    wires=((5, 25, 10),), stent: bool = True, visible: bool = True, sequence="seq_a", index=0
):
    labels = np.zeros((SIZE, SIZE), np.uint8)
    wire_truths = []
    for number, (x_from, x_to, row) in enumerate(wires, start=1):
        labels[row, min(x_from, x_to) : max(x_from, x_to) + 1] = GUIDEWIRE
        wire_truths.append(_wire_truth(number, _line(x_from, x_to, row), visible))
    stents = []
    if stent:
        labels[20:26, 8:20] = STENT
        outline = np.array([[8, 20], [19, 20], [19, 25], [8, 25]], np.float32)
        stents.append(
            StentTruth(
                1,
                "balloon_expandable",
                outline,
                np.array([13.5, 22.5], np.float32),
                0.0,
                11.0,
                5.0,
                1.0,
            )
        )
    return SimFrame(
        image=np.full((SIZE, SIZE), 128, np.uint8),
        bit_depth=8,
        labels=labels,
        wire_instances=(labels == GUIDEWIRE).astype(np.uint8),
        field_mask=np.ones((SIZE, SIZE), bool),
        wires=wire_truths,
        stents=stents,
        pixel_spacing_m=SPACING_M,
        sequence_id=sequence,
        frame_index=index,
        timestamp_s=0.1 * index,
        scenario="test",
    )


def _wire(wire_id: int, centerline: np.ndarray) -> WireDetection:
    return WireDetection(
        wire_id, centerline, centerline[0].copy(), math.pi, 0.9, float(len(centerline) - 1)
    )


def _result(
    truth: SimFrame, wires: list[WireDetection], stent: bool = True, latency_ms=10.0
) -> FrameResult:
    guidewire_mask = np.zeros((SIZE, SIZE), np.uint8)
    for wire in wires:
        points = np.round(wire.centerline_px).astype(int)
        guidewire_mask[points[:, 1], points[:, 0]] = 255
    stent_mask = (
        np.where(truth.labels == STENT, 255, 0).astype(np.uint8)
        if stent
        else np.zeros_like(guidewire_mask)
    )
    stents = []
    if stent:
        outline = np.array([[8, 20], [19, 20], [19, 25], [8, 25]], np.float32)
        stents.append(
            StentDetection(0, outline, np.array([13.5, 22.5], np.float32), 0.0, 11.0, 5.0, 0.8)
        )
    return FrameResult(
        stamp_ns=0,
        labels=np.zeros((SIZE, SIZE), np.uint8),
        guidewire_mask=guidewire_mask,
        stent_mask=stent_mask,
        wires=wires,
        stents=stents,
        timings_ms={"total": latency_ms, "inference": latency_ms / 2},
    )


def test_perfect_result_scores_one_and_zero_tip_error():
    truth = _truth()
    metrics = compute_frame_metrics(_result(truth, [_wire(0, _line(5, 25, 10))]), truth)
    values = metrics.values
    for key in ("guidewire_dice", "guidewire_cldice", "centerline_f1", "stent_dice"):
        assert values[key] == pytest.approx(1.0), key
    for key in ("tip_error_px", "tip_error_mm", "guidewire_hd95_px", "stent_hd95_px", "gsp_px"):
        assert values[key] == pytest.approx(0.0), key
    assert metrics.tip_errors_px == [pytest.approx(0.0)]
    assert metrics.guidewire_counts.false_positive == metrics.guidewire_counts.false_negative == 0
    assert metrics.guidewire_counts.true_positive == 21
    assert values["latency_ms"] == 10.0 and values["inference_ms"] == 5.0
    assert not metrics.dual_wire and "both_wires_found" not in values


def test_shifted_tip_gives_the_known_error():
    # prediction starts 3 px behind the true tip: (8, 10) instead of (5, 10)
    truth = _truth()
    metrics = compute_frame_metrics(_result(truth, [_wire(0, _line(8, 25, 10))]), truth)
    assert metrics.tip_errors_px == [pytest.approx(3.0)]
    assert metrics.values["tip_error_px"] == pytest.approx(3.0)
    assert metrics.values["tip_error_mm"] == pytest.approx(3.0 * 0.2)
    # centerline: 18 predicted points all within 2 px; GT x = 5 is the only true point
    # farther than 2 px from the prediction -> recall 20/21, F1 = 40/41
    assert metrics.values["centerline_precision"] == pytest.approx(1.0)
    assert metrics.values["centerline_recall"] == pytest.approx(20 / 21)
    assert metrics.values["centerline_f1"] == pytest.approx(40 / 41)
    # masks: 18 TP, 3 FN -> Dice 36 / 39
    assert metrics.values["guidewire_dice"] == pytest.approx(36 / 39)


@pytest.mark.parametrize(
    ("predicted_lines", "both_found", "found", "missed", "false"),
    [
        ([(5, 25, 10), (26, 6, 16)], 1.0, 2, 0, 0),  # both wires, second tip 1 px off
        ([(5, 25, 10)], 0.0, 1, 1, 0),  # second wire missed
        ([(5, 25, 10), (0, 3, 28)], 0.0, 1, 1, 1),  # a far-away false wire does not count
        ([], 0.0, 0, 2, 0),
    ],
)
def test_dual_wire_found_flag(predicted_lines, both_found, found, missed, false):
    truth = _truth(wires=((5, 25, 10), (25, 6, 16)), stent=False)
    wires = [_wire(i, _line(*line)) for i, line in enumerate(predicted_lines)]
    metrics = compute_frame_metrics(_result(truth, wires, stent=False), truth)
    assert metrics.dual_wire
    assert metrics.values["both_wires_found"] == both_found
    assert (
        metrics.tip_match.num_found,
        metrics.tip_match.num_missed,
        metrics.tip_match.num_false,
    ) == (
        found,
        missed,
        false,
    )


def test_primary_tip_correct_scores_only_the_primary_wire():
    """The robot follows wire 0's tip: a true tip found by wire 1 counts as found but the
    primary tip is wrong when wire 0 is a false piece 29 px away."""
    truth = _truth()
    true_wire, false_piece = _wire(0, _line(5, 25, 10)), _wire(0, _line(28, 31, 28))
    wrong_first = compute_frame_metrics(_result(truth, [false_piece, true_wire]), truth)
    assert wrong_first.tip_match.num_found == 1
    assert wrong_first.values["primary_tip_correct"] == 0.0
    right_first = compute_frame_metrics(_result(truth, [true_wire, false_piece]), truth)
    assert right_first.values["primary_tip_correct"] == 1.0
    assert compute_frame_metrics(_result(truth, []), truth).values["primary_tip_correct"] == 0.0
    hidden = _truth(visible=False)  # no visible GT tip: not scored
    assert (
        "primary_tip_correct"
        not in compute_frame_metrics(_result(hidden, [true_wire]), hidden).values
    )
    accumulator = EvaluationAccumulator()
    for metrics in (wrong_first, right_first):
        accumulator.add(metrics)
    assert accumulator.summary()["summary"]["primary_tip_correct_rate"] == pytest.approx(0.5)


def test_tip_outside_the_field_is_not_scored():
    truth = _truth(visible=False, stent=False)
    metrics = compute_frame_metrics(
        _result(truth, [_wire(0, _line(5, 25, 10))], stent=False), truth
    )
    assert metrics.tip_match.num_found == metrics.tip_match.num_missed == 0
    assert metrics.tip_match.num_false == 1
    assert "tip_error_px" not in metrics.values
    assert metrics.values["centerline_f1"] == pytest.approx(1.0)


def test_unknown_pixel_spacing_gives_no_mm():
    truth = _truth()
    truth.pixel_spacing_m = float("nan")
    metrics = compute_frame_metrics(_result(truth, [_wire(0, _line(8, 25, 10))]), truth)
    assert metrics.tip_errors_px == [pytest.approx(3.0)]
    assert metrics.tip_errors_mm == [] and "tip_error_mm" not in metrics.values


def test_missed_stent_and_empty_frame():
    truth = _truth()
    metrics = compute_frame_metrics(
        _result(truth, [_wire(0, _line(5, 25, 10))], stent=False), truth
    )
    assert metrics.values["stent_dice"] == 0.0
    assert math.isinf(metrics.values["stent_hd95_px"])
    empty = _truth(wires=(), stent=False)
    metrics = compute_frame_metrics(_result(empty, [], stent=False), empty)
    # nothing to find and nothing claimed: no segmentation metric applies, only the
    # hard-negative ones (no wire and no stent reported where there is none)
    assert set(metrics.values) == {
        "latency_ms",
        "inference_ms",
        "wire_reported_on_negative",
        "stents_reported_on_negative",
    }
    assert metrics.values["wire_reported_on_negative"] == 0.0
    assert metrics.values["stents_reported_on_negative"] == 0.0


def test_hard_negative_frames_count_reported_wires_and_stents():
    empty = _truth(wires=(), stent=False, sequence="neg", index=0)
    false_wire = compute_frame_metrics(_result(empty, [_wire(0, _line(5, 25, 10))]), empty)
    assert false_wire.values["wire_reported_on_negative"] == 1.0
    assert false_wire.values["stents_reported_on_negative"] == 1.0  # _result adds one stent
    clean = compute_frame_metrics(_result(empty, [], stent=False), empty)
    with_wire = _truth()
    scored = compute_frame_metrics(_result(with_wire, [_wire(0, _line(5, 25, 10))]), with_wire)
    assert "wire_reported_on_negative" not in scored.values
    assert "stents_reported_on_negative" not in scored.values  # the frame has a stent
    accumulator = EvaluationAccumulator()
    for metrics in (false_wire, clean, scored):
        accumulator.add(metrics)
    summary = accumulator.summary()["summary"]
    assert summary["negative_frames"] == 2
    assert summary["wire_reported_on_negative_rate"] == pytest.approx(0.5)
    assert summary["stents_reported_on_negative"] == 1


def test_confusion_share_counts_wire_pixels_on_the_catheter():
    truth = _truth(stent=False)
    truth.labels[14, 5:15] = 3  # a catheter of 10 px below the wire
    on_catheter = _wire(1, _line(5, 14, 14))  # 10 px, all on the catheter
    metrics = compute_frame_metrics(
        _result(truth, [_wire(0, _line(5, 25, 10)), on_catheter], stent=False), truth
    )
    assert metrics.wire_px_predicted == 31 and metrics.wire_px_on_distractors == 10
    assert metrics.values["confusion_share"] == pytest.approx(10 / 31)
    clean = compute_frame_metrics(_result(truth, [_wire(0, _line(5, 25, 10))], stent=False), truth)
    assert clean.values["confusion_share"] == 0.0
    # frames without a GT wire add nothing: their false pixels are the negative metric's
    empty = _truth(wires=(), stent=False)
    negative = compute_frame_metrics(_result(empty, [on_catheter], stent=False), empty)
    assert "confusion_share" not in negative.values and negative.wire_px_predicted == 0
    accumulator = EvaluationAccumulator()
    for item in (metrics, clean, negative):
        accumulator.add(item)
    # pooled: 10 of 31 + 21 predicted pixels
    assert accumulator.summary()["summary"]["confusion_share"] == pytest.approx(10 / 52)


def test_shape_mismatch_is_a_one_line_error():
    truth = _truth()
    result = _result(truth, [])
    result.guidewire_mask = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match=r"guidewire_mask has shape \(16, 16\); expected"):
        compute_frame_metrics(result, truth)


def test_accumulator_pools_counts_over_frames():
    accumulator = EvaluationAccumulator()
    perfect = _truth(stent=False, sequence="seq_a", index=0)
    accumulator.add(
        compute_frame_metrics(_result(perfect, [_wire(0, _line(5, 25, 10))], stent=False), perfect)
    )
    # a frame without GT wire where 21 false wire pixels are predicted
    empty = _truth(wires=(), stent=False, sequence="seq_b", index=0)
    accumulator.add(
        compute_frame_metrics(_result(empty, [_wire(0, _line(5, 25, 10))], stent=False), empty)
    )
    summary = accumulator.summary()
    # pooled: TP 21, FP 21, FN 0 -> precision 0.5, sensitivity 1, F1 42 / 63
    assert summary["summary"]["guidewire_precision"] == pytest.approx(0.5)
    assert summary["summary"]["guidewire_sensitivity"] == pytest.approx(1.0)
    assert summary["summary"]["guidewire_f1"] == pytest.approx(42 / 63)
    assert summary["summary"]["tips"] == {
        "num_true": 1,
        "num_found": 1,
        "num_missed": 0,
        "num_false": 1,
    }
    assert summary["summary"]["stent_dice"] is None  # no stent anywhere: undefined
    assert accumulator.sequence_guidewire_f1() == {
        "seq_a": pytest.approx(1.0),
        "seq_b": pytest.approx(0.0),
    }
    assert summary["per_sequence"]["seq_a"]["num_frames"] == 1


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"guidewire_f1": 0.95}, True),
        ({"guidewire_f1": 0.5}, False),
        ({"guidewire_f1": None}, None),
        ({}, None),
    ],
)
def test_evaluate_targets(summary, expected):
    (row,) = evaluate_targets(summary, (Target("gw", "guidewire_f1", ">=", 0.9, "test"),))
    assert row["passed"] is expected


def test_evaluate_targets_nested_and_at_most():
    summary = {"latency_ms": {"p95": 50.0}}
    (row,) = evaluate_targets(summary, (Target("lat", "latency_ms.p95", "<=", 83.3, "seed"),))
    assert row["passed"] is True and row["value"] == 50.0
    with pytest.raises(ValueError, match="operator"):
        Target("bad", "x", "==", 1.0, "none")


def test_worst_frames_keeps_the_worst_in_order():
    worst = WorstFrames(2)
    truth = _truth(stent=False)
    for start in (5, 6, 12, 9):  # tip errors 0, 1, 7, 4 px
        result = _result(truth, [_wire(0, _line(start, 25, 10))], stent=False)
        metrics = compute_frame_metrics(result, truth)
        worst.offer(metrics, truth.image, "mono8", result, truth)
    kept = worst.frames()
    assert [round(frame.values["tip_error_px"]) for frame in kept] == [7, 4]


def _run_info() -> RunInfo:
    return RunInfo(
        model_path="models/test.onnx",
        model_sha256="ab" * 32,
        architecture="random_test_net",
        model_version="0.1.0",
        provider="CPUExecutionProvider",
        dataset_path="data/test",
        dataset_frames=4,
        max_frames=3,
    )


def test_report_files_written_with_documented_keys(tmp_path):
    accumulator = EvaluationAccumulator()
    worst = WorstFrames(2)
    cases = [((5, 25, 10),), ((5, 25, 10), (25, 6, 16)), ((5, 25, 10),)]
    for index, (wires, start) in enumerate(zip(cases, (5, 7, 9), strict=True)):
        truth = _truth(wires=wires, sequence=f"seq_{index % 2}", index=index)
        result = _result(truth, [_wire(0, _line(start, 25, 10))], latency_ms=10.0 + index)
        metrics = compute_frame_metrics(result, truth)
        accumulator.add(metrics)
        worst.offer(metrics, truth.image, "mono8", result, truth)
    paths = write_report(
        tmp_path / "report",
        accumulator,
        _run_info(),
        worst_frames=worst.frames(),
        skipped={"unreadable frame": 1},
    )

    for name in ("tip_error_cdf", "sequence_f1", "latency_hist", "worst_01", "worst_02"):
        image = cv2.imread(str(paths[name]))
        assert image is not None and image.size > 0, name
    document = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert set(document) == {
        "format",
        "format_version",
        "date_utc",
        "model",
        "machine",
        "dataset",
        "settings",
        "summary",
        "targets",
        "metrics",
        "pooled_counts",
        "per_sequence",
        "worst_frames",
        "skipped",
    }
    summary = document["summary"]
    for key in (
        "num_frames",
        "guidewire_precision",
        "guidewire_sensitivity",
        "guidewire_f1",
        "guidewire_dice_mean",
        "guidewire_cldice_mean",
        "centerline_f1_mean",
        "gsp_px_mean",
        "guidewire_hd95_px",
        "tip_error_px",
        "tip_error_mm",
        "tip_detection_rate",
        "tips",
        "dual_wire_frames",
        "both_wires_found_rate",
        "stent_dice",
        "stent_hd95_px",
        "latency_ms",
        "frames_per_s",
    ):
        assert key in summary, key
    assert summary["num_frames"] == 3
    assert summary["tip_error_px"]["median"] == pytest.approx(2.0)  # errors 0, 2, 4 px
    assert summary["tip_error_mm"]["max"] == pytest.approx(0.8)
    assert summary["dual_wire_frames"] == 1 and summary["both_wires_found_rate"] == 0.0
    assert summary["latency_ms"]["mean"] == pytest.approx(11.0)
    assert document["model"]["provider"] == "CPUExecutionProvider"
    assert document["dataset"] == {
        "path": "data/test",
        "frames_in_dataset": 4,
        "max_frames": 3,
        "frames_evaluated": 3,
    }
    assert [row["name"] for row in document["targets"]] == [t.name for t in DEFAULT_TARGETS]
    by_metric = {row["metric"]: row for row in document["targets"]}
    assert by_metric["tip_error_px.median"]["passed"] is True  # 2 px <= 3 px
    assert by_metric["tip_error_px.p95"]["passed"] is True  # p95 of 0, 2, 4 px < 10 px
    assert by_metric["both_wires_found_rate"]["passed"] is False
    assert document["skipped"] == {"unreadable frame": 1}
    assert len(document["worst_frames"]) == 2
    # the dual-wire frame lost a wire: worse than the 4 px tip error of frame 2
    assert [(w["sequence_id"], w["frame_index"]) for w in document["worst_frames"]] == [
        ("seq_1", 1),
        ("seq_0", 2),
    ]

    report = paths["report"].read_text(encoding="utf-8")
    for text in (
        "models/test.onnx",
        "CPUExecutionProvider",
        "data/test",
        "date (UTC)",
        "machine",
        "PASS",
        "FAIL",
    ):
        assert text in report, text
    for name in (
        "tip_error_cdf.png",
        "sequence_f1.png",
        "latency_hist.png",
        document["worst_frames"][0]["thumbnail"],
    ):
        assert f"]({name})" in report, name


def test_ground_truth_as_prediction_scores_perfectly_on_simulated_frames(tmp_path):
    """Oracle check on real simulator output: GT masks and centerlines as the 'result'."""
    from fluoro_perception.sim.cli import main as sim_main
    from fluoro_perception.sim.dataset import load_frame, read_dataset

    root = tmp_path / "sim"
    args = ["dataset", str(root), "--sequences", "2", "--frames", "2", "--seed", "7"]
    assert sim_main([*args, "--size", "64", "64", "--quiet"]) == 0
    accumulator = EvaluationAccumulator()
    for record in read_dataset(root).records:
        truth = load_frame(record)
        wires = [
            WireDetection(i, w.centerline_px, w.centerline_px[0], w.tip_direction_rad, 1.0, 0.0)
            for i, w in enumerate(truth.wires)
        ]
        result = FrameResult(
            stamp_ns=0,
            labels=truth.labels,
            guidewire_mask=np.where(truth.labels == GUIDEWIRE, 255, 0).astype(np.uint8),
            stent_mask=np.where(truth.labels == STENT, 255, 0).astype(np.uint8),
            wires=wires,
            timings_ms={"total": 1.0},
        )
        accumulator.add(compute_frame_metrics(result, truth))
    summary = accumulator.summary()["summary"]
    assert summary["num_frames"] == 4
    assert summary["guidewire_f1"] == pytest.approx(1.0)
    assert summary["centerline_f1_mean"] == pytest.approx(1.0)
    assert summary["tips"]["num_missed"] == summary["tips"]["num_false"] == 0
    assert summary["tips"]["num_true"] >= 1  # seed 7 has a visible tip in every frame
    assert summary["tip_error_px"]["count"] == summary["tips"]["num_true"]
    assert summary["tip_error_px"]["max"] == pytest.approx(0.0)


def test_docs_list_the_targets_the_report_checks():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "evaluation.md").read_text("utf-8")
    for target in DEFAULT_TARGETS:
        row = f"| {target.name} | {target.operator} {target.threshold:g} |"
        assert row in docs, f"docs/evaluation.md lacks the target row {row!r}"


def test_confusion_share_counts_wire_pixels_on_vessel_ground_truth(tmp_path):
    truth = _truth(stent=False)  # GT wire on row 10, x 5..25
    truth.labels[14, 5:15] = 3  # a catheter of 10 px
    vessels = np.zeros((SIZE, SIZE), bool)
    vessels[9:12, 0:SIZE] = True  # a filled vessel around the GT wire (row 10) ...
    vessels[4, 2:30] = True  # ... and a branch on row 4
    vessels[14, 5:10] = True  # overlapping the catheter: counted once, as catheter
    truth.labels[4, 6:8] = STENT  # vessel labelled stent: not vessel confusion
    truth.vessel_mask = vessels
    wires = [
        _wire(0, _line(5, 25, 10)),  # 21 px on the GT wire: inside the vessel, not confusion
        _wire(1, _line(5, 14, 14)),  # 10 px on the catheter
        _wire(2, _line(6, 13, 4)),  # 8 px on the vessel branch, 6 labelled background
        _wire(3, _line(26, 28, 10)),  # 3 px past the tip in the vessel, x 26-27 within 2 px
    ]
    metrics = compute_frame_metrics(_result(truth, wires, stent=False), truth)
    assert metrics.wire_px_predicted == 42
    assert (metrics.wire_px_on_catheter, metrics.wire_px_on_vessel) == (10, 7)
    assert metrics.wire_px_on_distractors == 17 and metrics.vessel_truth
    assert metrics.values["confusion_share"] == pytest.approx(17 / 42)
    assert metrics.values["confusion_share_catheter"] == pytest.approx(10 / 42)
    assert metrics.values["confusion_share_vessel"] == pytest.approx(7 / 42)
    # the same frame without a vessel mask counts catheters only, as before
    truth.vessel_mask = None
    catheter_only = compute_frame_metrics(_result(truth, wires, stent=False), truth)
    assert catheter_only.values["confusion_share"] == pytest.approx(10 / 42)
    assert "confusion_share_vessel" not in catheter_only.values
    assert not catheter_only.vessel_truth
    # pooled: (10 + 7 + 10) / (42 + 42); the vessel part only from the first frame
    accumulator = EvaluationAccumulator()
    accumulator.add(metrics)
    accumulator.add(catheter_only)
    summary = accumulator.summary()["summary"]
    assert summary["confusion_share"] == pytest.approx(27 / 84)
    assert summary["confusion_share_catheter"] == pytest.approx(20 / 84)
    assert summary["confusion_share_vessel"] == pytest.approx(7 / 84)
    assert summary["vessel_truth_frames"] == 1
    report = write_report(tmp_path / "report", accumulator, _run_info())["report"]
    text = report.read_text(encoding="utf-8")
    assert (
        "| confusion share: predicted wire pixels on catheter or vessel GT (pooled) | 0.321 |"
        in text
    )
    assert (
        "| confusion share on catheter GT / on vessel GT (pooled) | 0.238 / 0.083 "
        "(vessel GT in 1 frames with a GT wire) |"
    ) in text
    # a set without any vessel mask has no vessel share (not measured, not 0)
    only_old = EvaluationAccumulator()
    only_old.add(catheter_only)
    assert only_old.summary()["summary"]["confusion_share_vessel"] is None
    assert only_old.summary()["summary"]["confusion_share_catheter"] == pytest.approx(10 / 42)


def test_vessel_mask_of_another_size_is_a_one_line_error():
    truth = _truth(stent=False)
    truth.vessel_mask = np.zeros((SIZE, SIZE + 1), bool)
    with pytest.raises(ValueError, match=r"truth.vessel_mask has shape \(32, 33\); expected"):
        compute_frame_metrics(_result(truth, [], stent=False), truth)
