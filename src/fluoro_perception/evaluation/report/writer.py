"""``write_report``: every file of the evaluation report into one folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from fluoro_perception.evaluation.frame_metrics import EvaluationAccumulator
from fluoro_perception.evaluation.report.document import build_metrics_document
from fluoro_perception.evaluation.report.markdown import render_markdown
from fluoro_perception.evaluation.report.plots import (
    plot_latency_histogram,
    plot_sequence_f1,
    plot_tip_error_cdf,
)
from fluoro_perception.evaluation.report.run_info import RunInfo
from fluoro_perception.evaluation.report.targets import DEFAULT_TARGETS, Target
from fluoro_perception.evaluation.report.worst import WorstFrame, _thumbnail, render_comparison

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
TIP_CDF_FILE = "tip_error_cdf.png"
SEQUENCE_F1_FILE = "sequence_f1.png"
LATENCY_FILE = "latency_hist.png"
WORST_DIR = "worst"


def write_report(
    output_dir: str | Path,
    accumulator: EvaluationAccumulator,
    run_info: RunInfo,
    *,
    worst_frames: list[WorstFrame] | None = None,
    skipped: dict[str, int] | None = None,
    targets: tuple[Target, ...] = DEFAULT_TARGETS,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md``, the figures and worst-frame thumbnails.

    Parameters
    ----------
    output_dir : str or Path
        Folder (created if needed).
    accumulator : EvaluationAccumulator
        Metrics of every evaluated frame.
    run_info : RunInfo
        Model, provider, machine, date and dataset.
    worst_frames : list of WorstFrame, optional
        Frames to show (``WorstFrames.frames()``), worst first.
    skipped : dict[str, int], optional
        Reason -> count of frames that could not be evaluated.
    targets : tuple of Target
        Acceptance targets (default :data:`DEFAULT_TARGETS`).

    Returns
    -------
    dict[str, Path]
        ``metrics``, ``report``, ``tip_error_cdf``, ``sequence_f1``, ``latency_hist`` and
        ``worst_<rank>`` paths.
    """
    if not isinstance(accumulator, EvaluationAccumulator):
        raise TypeError(
            f"accumulator is {type(accumulator).__name__}; expected EvaluationAccumulator"
        )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    worst_frames = list(worst_frames or [])
    document = build_metrics_document(
        accumulator, run_info, targets=targets, worst_frames=worst_frames, skipped=skipped
    )
    paths: dict[str, Path] = {}
    paths["tip_error_cdf"] = plot_tip_error_cdf(
        accumulator.tip_errors_px, accumulator.tip_errors_mm, out / TIP_CDF_FILE
    )
    paths["sequence_f1"] = plot_sequence_f1(
        accumulator.sequence_guidewire_f1(), out / SEQUENCE_F1_FILE
    )
    budget = next((t.threshold for t in targets if t.metric.startswith("latency_ms")), None)
    paths["latency_hist"] = plot_latency_histogram(
        accumulator.latencies_ms, out / LATENCY_FILE, budget
    )
    worst_files: list[tuple[dict, str]] = []
    worst_dir = out / WORST_DIR
    if worst_dir.is_dir():
        # thumbnails of an earlier report in this folder would mix with this one's
        for stale in worst_dir.glob("[0-9][0-9]_*.png"):
            stale.unlink()
    if worst_frames:
        worst_dir.mkdir(exist_ok=True)
    for rank, (frame, entry) in enumerate(
        zip(worst_frames, document["worst_frames"], strict=True), 1
    ):
        rgb = _thumbnail(render_comparison(frame.image, frame.encoding, frame.result, frame.truth))
        relative = f"{WORST_DIR}/{rank:02d}_{frame.sequence_id}_{frame.frame_index:06d}.png"
        if not cv2.imwrite(str(out / relative), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {out / relative}; check that the folder is writable")
        entry["thumbnail"] = relative
        paths[f"worst_{rank:02d}"] = out / relative
        worst_files.append((entry, relative))
    figures = {name: paths[name].name for name in ("tip_error_cdf", "sequence_f1", "latency_hist")}
    paths["metrics"] = out / METRICS_FILE
    paths["metrics"].write_text(
        json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths["report"] = out / REPORT_FILE
    paths["report"].write_text(render_markdown(document, figures, worst_files), encoding="utf-8")
    return paths
