"""Offline inference and evaluation: frame sources, ``results.jsonl``, per-frame metrics
against ground truth, and the evaluation report.

Used by ``fluoro-perception infer`` and ``fluoro-perception evaluate``
(:mod:`fluoro_perception.cli.infer`, :mod:`fluoro_perception.cli.evaluate`). No rclpy;
metrics come from :mod:`fluoro_perception.metrics` only. The default model and its
integrity check live in :mod:`fluoro_perception.model_registry`.

Modules
-------
sources
    Image folders, video files and rosbag2 inputs -> ``SourceFrame``.
results_io
    The ``results.jsonl`` schema: writer and validator.
frame_metrics
    ``compute_frame_metrics(result, truth)`` and ``EvaluationAccumulator``.
report
    ``write_report``: ``metrics.json``, ``report.md`` and PNG figures.
"""

from fluoro_perception.evaluation.frame_metrics import (
    EvaluationAccumulator,
    FrameMetrics,
    compute_frame_metrics,
)
from fluoro_perception.evaluation.results_io import (
    ResultsFormatError,
    ResultsWriter,
    validate_record,
    validate_results_file,
)
from fluoro_perception.evaluation.sources import SourceFrame, open_source

__all__ = [
    "EvaluationAccumulator",
    "FrameMetrics",
    "ResultsFormatError",
    "ResultsWriter",
    "SourceFrame",
    "compute_frame_metrics",
    "open_source",
    "validate_record",
    "validate_results_file",
]
