"""Evaluation report: ``metrics.json``, ``report.md`` and its PNG figures.

``write_report`` turns an :class:`~fluoro_perception.evaluation.frame_metrics.EvaluationAccumulator`
into

* ``metrics.json`` — run information (model, provider, machine, date, dataset), the
  summary, per-frame metric statistics, per-sequence values, the targets with pass/fail,
  the worst frames and what was skipped (keys in ``docs/evaluation.md``);
* ``report.md`` — the same for people, with the figures below;
* ``tip_error_cdf.png`` (cumulative distribution of the matched tip errors),
  ``sequence_f1.png`` (pooled guidewire F1 per sequence), ``latency_hist.png``
  (pipeline latency histogram), ``worst/<rank>_<sequence>_<frame>.png`` (overlay of the
  result, :func:`~fluoro_perception.core.overlay.render_overlay`, with the ground truth
  drawn in magenta).

Figures use matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch), so the report can be written from any process, with or without a display.

Modules: ``targets`` (acceptance targets, pass/fail), ``run_info`` (model, machine, date),
``worst`` (worst-frame heap, thumbnails), ``plots`` (figures), ``document``
(``metrics.json``), ``markdown`` (``report.md``), ``writer`` (``write_report``). This
package re-exports their names: ``from fluoro_perception.evaluation.report import X`` is
the import path to use.
"""

from __future__ import annotations

from fluoro_perception.evaluation.report.document import (
    METRICS_FORMAT,
    METRICS_FORMAT_VERSION,
    build_metrics_document,
)
from fluoro_perception.evaluation.report.markdown import render_markdown
from fluoro_perception.evaluation.report.plots import (
    plot_latency_histogram,
    plot_sequence_f1,
    plot_tip_error_cdf,
)
from fluoro_perception.evaluation.report.run_info import RunInfo, machine_info, utc_now_iso
from fluoro_perception.evaluation.report.targets import (
    DEFAULT_TARGETS,
    Target,
    evaluate_targets,
    summary_value,
)
from fluoro_perception.evaluation.report.worst import (
    THUMBNAIL_SIDE_PX,
    TRUTH_RGB,
    WorstFrame,
    WorstFrames,
    frame_badness,
    render_comparison,
)
from fluoro_perception.evaluation.report.writer import (
    LATENCY_FILE,
    METRICS_FILE,
    REPORT_FILE,
    SEQUENCE_F1_FILE,
    TIP_CDF_FILE,
    WORST_DIR,
    write_report,
)

__all__ = [
    "summary_value",
    "DEFAULT_TARGETS",
    "LATENCY_FILE",
    "METRICS_FILE",
    "METRICS_FORMAT",
    "METRICS_FORMAT_VERSION",
    "REPORT_FILE",
    "SEQUENCE_F1_FILE",
    "THUMBNAIL_SIDE_PX",
    "TIP_CDF_FILE",
    "TRUTH_RGB",
    "WORST_DIR",
    "RunInfo",
    "Target",
    "WorstFrame",
    "WorstFrames",
    "build_metrics_document",
    "evaluate_targets",
    "frame_badness",
    "machine_info",
    "plot_latency_histogram",
    "plot_sequence_f1",
    "plot_tip_error_cdf",
    "render_comparison",
    "render_markdown",
    "utc_now_iso",
    "write_report",
]
