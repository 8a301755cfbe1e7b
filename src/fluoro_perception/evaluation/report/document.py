"""The content of ``metrics.json`` (keys in ``docs/evaluation.md``)."""

from __future__ import annotations

from fluoro_perception.evaluation.frame_metrics import (
    CENTERLINE_TOLERANCE_PX,
    TIP_GATE_PX,
    EvaluationAccumulator,
)
from fluoro_perception.evaluation.report.run_info import RunInfo
from fluoro_perception.evaluation.report.targets import DEFAULT_TARGETS, Target, evaluate_targets
from fluoro_perception.evaluation.report.worst import WorstFrame
from fluoro_perception.jsonsafe import json_safe

METRICS_FORMAT = "fluoro_perception.evaluation"
METRICS_FORMAT_VERSION = 1


def build_metrics_document(
    accumulator: EvaluationAccumulator,
    run_info: RunInfo,
    *,
    targets: tuple[Target, ...] = DEFAULT_TARGETS,
    worst_frames: list[WorstFrame] | None = None,
    skipped: dict[str, int] | None = None,
) -> dict:
    """The content of ``metrics.json`` (see ``docs/evaluation.md`` for every key)."""
    evaluation = accumulator.summary()
    worst = [
        {
            "sequence_id": w.sequence_id,
            "frame_index": w.frame_index,
            "badness": w.score,
            "values": w.values,
        }
        for w in (worst_frames or [])
    ]
    document = {
        "format": METRICS_FORMAT,
        "format_version": METRICS_FORMAT_VERSION,
        "date_utc": run_info.date_utc,
        "model": {
            "path": run_info.model_path,
            "sha256": run_info.model_sha256,
            "architecture": run_info.architecture,
            "version": run_info.model_version,
            "provider": run_info.provider,
        },
        "machine": run_info.machine,
        "dataset": {
            "path": run_info.dataset_path,
            "frames_in_dataset": run_info.dataset_frames,
            "max_frames": run_info.max_frames,
            "frames_evaluated": accumulator.num_frames,
        },
        "settings": {
            "centerline_tolerance_px": CENTERLINE_TOLERANCE_PX,
            "tip_gate_px": TIP_GATE_PX,
        },
        "summary": evaluation["summary"],
        "targets": evaluate_targets(evaluation["summary"], targets),
        "metrics": evaluation["metrics"],
        "pooled_counts": evaluation["pooled_counts"],
        "per_sequence": evaluation["per_sequence"],
        "worst_frames": worst,
        "skipped": dict(skipped or {}),
    }
    return json_safe(document)
