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
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fluoro_perception.core.overlay import render_overlay
from fluoro_perception.core.types import FrameResult
from fluoro_perception.evaluation.frame_metrics import (
    CENTERLINE_TOLERANCE_PX,
    PER_FRAME_METRICS,
    TIP_GATE_PX,
    EvaluationAccumulator,
    FrameMetrics,
)
from fluoro_perception.jsonsafe import json_safe
from fluoro_perception.sim.types import SimFrame

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
TIP_CDF_FILE = "tip_error_cdf.png"
SEQUENCE_F1_FILE = "sequence_f1.png"
LATENCY_FILE = "latency_hist.png"
WORST_DIR = "worst"
METRICS_FORMAT = "fluoro_perception.evaluation"
METRICS_FORMAT_VERSION = 1
#: Ground truth colour in the worst-frame thumbnails (RGB): magenta, unused by the overlay.
TRUTH_RGB = (255, 0, 255)
#: Longest side of a worst-frame thumbnail [px].
THUMBNAIL_SIDE_PX = 384
_FIGURE_DPI = 100


@dataclass(frozen=True)
class Target:
    """One acceptance target checked against the summary.

    Attributes
    ----------
    name : str
        What people read in the report.
    metric : str
        Key path into ``metrics.json["summary"]``, dot-separated (``tip_error_mm.median``).
    operator : str
        ``">="`` or ``"<="``.
    threshold : float
        Value to reach.
    source : str
        Where the number comes from.
    """

    name: str
    metric: str
    operator: str
    threshold: float
    source: str

    def __post_init__(self) -> None:
        if self.operator not in (">=", "<="):
            raise ValueError(
                f"Target {self.name!r} operator={self.operator!r}; expected '>=' or '<='"
            )


#: Acceptance targets of the report: the product targets for the default model on the
#: held-out simulator set (issue "Shipped trained models": centerline F1, pixel Dice, tip
#: error, stent Dice, dual-wire) and the real-time CPU budget (issue "Real-time
#: performance": <= 40 ms end to end at 512x512 on 2 cores).
DEFAULT_TARGETS: tuple[Target, ...] = (
    Target(
        f"guidewire centerline F1 within {CENTERLINE_TOLERANCE_PX:g} px (mean)",
        "centerline_f1_mean",
        ">=",
        0.90,
        "product target; FRA-Net reports F1 0.940 (seed 001 Table 4)",
    ),
    Target(
        "guidewire pixel Dice (pooled)",
        "guidewire_f1",
        ">=",
        0.80,
        "product target (seed 001 Table 4: U-Net 0.909 on real data)",
    ),
    Target("tip error median [px]", "tip_error_px.median", "<=", 3.0, "product target"),
    Target("tip error p95 [px]", "tip_error_px.p95", "<=", 10.0, "product target"),
    Target(
        "stent Dice (pooled)",
        "stent_dice",
        ">=",
        0.85,
        "product target (seed 000 Table 2: U-Net 0.896, LDA-Net 0.969)",
    ),
    Target(
        "both wires found (dual-wire frames)",
        "both_wires_found_rate",
        ">=",
        0.90,
        "product target (seed 001 dual-guidewire tracking)",
    ),
    Target(
        "primary tip within the 20 px gate of a true tip",
        "primary_tip_correct_rate",
        ">=",
        0.90,
        "product target: the /tip pose the robot follows (issue 12)",
    ),
    Target(
        "wire reported in frames without a wire",
        "wire_reported_on_negative_rate",
        "<=",
        0.02,
        "hard-negative target (issue 12): vessels, catheters, leads, bone edges",
    ),
    Target(
        "confusion share: predicted wire pixels on catheter GT",
        "confusion_share",
        "<=",
        0.05,
        "hard-negative target (issue 12)",
    ),
    Target(
        "latency median [ms]",
        "latency_ms.median",
        "<=",
        40.0,
        "real-time target: 25 frames/s end to end on a 2-core CPU",
    ),
)


def _lookup(summary: dict, path: str) -> float | None:
    value: Any = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def evaluate_targets(summary: dict, targets: tuple[Target, ...] = DEFAULT_TARGETS) -> list[dict]:
    """Check each target against ``summary``.

    Returns
    -------
    list of dict
        ``{name, metric, operator, threshold, source, value, passed}``; ``value`` and
        ``passed`` are None when the metric was not measured (e.g. no stent in the data).
    """
    rows = []
    for target in targets:
        value = _lookup(summary, target.metric)
        if value is None:
            passed = None
        elif target.operator == ">=":
            passed = value >= target.threshold
        else:
            passed = value <= target.threshold
        rows.append({**asdict(target), "value": value, "passed": passed})
    return rows


def machine_info() -> dict[str, Any]:
    """The machine the evaluation ran on (platform, CPU, Python, ONNX Runtime)."""
    import onnxruntime as ort

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "available_providers": list(ort.get_available_providers()),
    }


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class RunInfo:
    """What was evaluated, how and where (the header of the report).

    Attributes
    ----------
    model_path : str
        ONNX file.
    model_sha256 : str
        Hex digest of the file.
    architecture, model_version : str
        From the model's metadata.
    provider : str
        ONNX Runtime execution provider that ran the graph.
    dataset_path : str
        Dataset folder.
    dataset_frames : int
        Frames in the dataset.
    max_frames : int or None
        ``--max-frames`` limit, None for all.
    date_utc : str
        ISO 8601 start time.
    machine : dict
        :func:`machine_info`.
    """

    model_path: str
    model_sha256: str
    architecture: str
    model_version: str
    provider: str
    dataset_path: str
    dataset_frames: int
    max_frames: int | None = None
    date_utc: str = field(default_factory=utc_now_iso)
    machine: dict = field(default_factory=machine_info)

    @classmethod
    def for_engine(cls, engine: Any, **dataset: Any) -> RunInfo:
        """Header of a run on ``engine`` (an :class:`~fluoro_perception.core.engine.
        InferenceEngine`); ``dataset``: ``dataset_path``, ``dataset_frames`` and optional
        ``max_frames``."""
        return cls(
            model_path=str(engine.model_path),
            model_sha256=engine.model_sha256,
            architecture=engine.metadata.architecture,
            model_version=engine.metadata.version,
            provider=engine.active_provider,
            **dataset,
        )

    @classmethod
    def for_model_file(cls, model_path: str | Path, provider: str, **dataset: Any) -> RunInfo:
        """Header of a run that another process's engine ran (live replay, demo): model
        metadata and sha256 read from the file, without an ONNX Runtime session."""
        from fluoro_perception.core.engine import file_sha256, read_model_metadata

        metadata = read_model_metadata(model_path)
        return cls(
            model_path=str(Path(model_path)),
            model_sha256=file_sha256(model_path),
            architecture=metadata.architecture,
            model_version=metadata.version,
            provider=provider,
            **dataset,
        )


@dataclass(frozen=True)
class WorstFrame:
    """A frame kept for the report's worst-frame thumbnails."""

    score: float
    sequence_id: str
    frame_index: int
    values: dict[str, float]
    image: np.ndarray
    encoding: str
    result: FrameResult
    truth: SimFrame


def frame_badness(metrics: FrameMetrics) -> float | None:
    """How bad a frame is for the worst-frame list (higher = worse), None if perfect/empty.

    ``(1 - guidewire Dice) + min(tip error, gate) / gate + missed tips``: segmentation
    failures, displaced tips and lost wires all rank a frame up.
    """
    values = metrics.values
    if "guidewire_dice" not in values and not metrics.tip_match.num_missed:
        return None
    badness = 1.0 - values.get("guidewire_dice", 1.0)
    badness += min(values.get("tip_error_px", 0.0), TIP_GATE_PX) / TIP_GATE_PX
    badness += float(metrics.tip_match.num_missed)
    return badness if badness > 0.0 else None


class WorstFrames:
    """Keep the ``capacity`` worst frames seen (a bounded heap; O(log k) per frame)."""

    def __init__(self, capacity: int = 6) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity={capacity!r}; expected an int >= 0 (frames to keep)")
        self.capacity = capacity
        self._heap: list[tuple[float, int, WorstFrame]] = []
        self._counter = itertools.count()

    def offer(
        self,
        metrics: FrameMetrics,
        image: np.ndarray,
        encoding: str,
        result: FrameResult,
        truth: SimFrame,
    ) -> None:
        """Consider one frame (kept only if it is among the worst so far)."""
        badness = frame_badness(metrics)
        if badness is None or self.capacity == 0:
            return
        entry = (badness, next(self._counter))
        if len(self._heap) >= self.capacity and entry <= self._heap[0][:2]:
            return
        frame = WorstFrame(
            badness,
            metrics.sequence_id,
            metrics.frame_index,
            dict(metrics.values),
            image,
            encoding,
            result,
            truth,
        )
        if len(self._heap) >= self.capacity:
            heapq.heapreplace(self._heap, (*entry, frame))
        else:
            heapq.heappush(self._heap, (*entry, frame))

    def frames(self) -> list[WorstFrame]:
        """Kept frames, worst first."""
        return [item[2] for item in sorted(self._heap, key=lambda item: item[:2], reverse=True)]


def _fixed(points: np.ndarray) -> np.ndarray:
    # 4 fractional bits, as the overlay draws sub-pixel geometry
    return np.round(np.asarray(points, dtype=np.float64).reshape(-1, 1, 2) * 16).astype(np.int32)


def render_comparison(
    image: np.ndarray, encoding: str, result: FrameResult, truth: SimFrame
) -> np.ndarray:
    """The result's overlay with the ground truth drawn on top in magenta.

    GT wire centerlines as thin lines, visible GT tips as hollow circles, GT stent
    outlines as closed polygons. Returns ``(H, W, 3)`` uint8 RGB.
    """
    canvas = render_overlay(image, result, encoding)
    thickness = max(1, round(min(canvas.shape[:2]) / 384))
    radius = max(4, round(min(canvas.shape[:2]) / 60))
    for wire in truth.wires:
        if len(wire.centerline_px) >= 2:
            cv2.polylines(
                canvas, [_fixed(wire.centerline_px)], False, TRUTH_RGB, thickness, cv2.LINE_AA, 4
            )
        if wire.tip_visible:
            centre = tuple(int(v) for v in _fixed(wire.tip_px)[0, 0])
            cv2.circle(canvas, centre, radius * 16, TRUTH_RGB, thickness, cv2.LINE_AA, 4)
    for stent in truth.stents:
        cv2.polylines(
            canvas, [_fixed(stent.outline_px)], True, TRUTH_RGB, thickness, cv2.LINE_AA, 4
        )
    return canvas


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = THUMBNAIL_SIDE_PX / max(height, width)
    if scale >= 1.0:
        # small frames are enlarged by whole pixels (nearest) so they stay legible and exact
        factor = int(scale)
        if factor <= 1:
            return rgb
        return cv2.resize(rgb, (width * factor, height * factor), interpolation=cv2.INTER_NEAREST)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _new_figure(width_in: float = 6.0, height_in: float = 4.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=_FIGURE_DPI, layout="constrained")
    return figure, figure.add_subplot(1, 1, 1)


def _note(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def plot_tip_error_cdf(errors_px: list[float], errors_mm: list[float], path: Path) -> Path:
    """Empirical CDF of the matched tip errors ([mm] when the spacing is known, else [px])."""
    figure, axes = _new_figure()
    errors, unit = (errors_mm, "mm") if errors_mm else (errors_px, "px")
    values = np.sort(np.asarray(errors, dtype=np.float64))
    if values.size:
        fraction = np.arange(1, values.size + 1) / values.size
        axes.step(values, fraction, where="post", color="tab:red")
        median = float(np.median(values))
        axes.axvline(median, color="grey", linestyle="--", label=f"median {median:.2f} {unit}")
        axes.legend(loc="lower right")
        axes.set_xlim(left=0.0)
    else:
        _note(axes, "no matched tip")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel(f"tip error [{unit}]")
    axes.set_ylabel("fraction of matched tips")
    axes.set_title(f"Tip error CDF ({values.size} tips)")
    axes.grid(True, alpha=0.3)
    figure.savefig(path)
    return path


def plot_sequence_f1(sequence_f1: dict[str, float | None], path: Path) -> Path:
    """Bar chart of the pooled guidewire F1 per sequence ("n/a": no wire pixel at all)."""
    names = list(sequence_f1)
    figure, axes = _new_figure(max(6.0, 0.45 * len(names) + 2.0), 4.0)
    if names:
        heights = [v if v is not None else 0.0 for v in sequence_f1.values()]
        bars = axes.bar(range(len(names)), heights, color="tab:green")
        for bar, value in zip(bars, sequence_f1.values(), strict=True):
            label = "n/a" if value is None else f"{value:.2f}"
            axes.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    else:
        _note(axes, "no sequence")
    axes.set_ylim(0.0, 1.1)
    axes.set_ylabel("guidewire F1 (pooled)")
    axes.set_title("Guidewire F1 per sequence")
    axes.grid(True, axis="y", alpha=0.3)
    figure.savefig(path)
    return path


def plot_latency_histogram(latencies_ms: list[float], path: Path, budget_ms: float | None) -> Path:
    """Histogram of the per-frame pipeline latency [ms], with the budget as a line."""
    figure, axes = _new_figure()
    values = np.asarray(latencies_ms, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size:
        axes.hist(values, bins=min(40, max(5, values.size // 2)), color="tab:blue")
        p95 = float(np.percentile(values, 95))
        axes.axvline(p95, color="grey", linestyle="--", label=f"p95 {p95:.1f} ms")
        if budget_ms is not None:
            axes.axvline(budget_ms, color="tab:red", label=f"budget {budget_ms:g} ms")
        axes.legend(loc="upper right")
    else:
        _note(axes, "no latency measured")
    axes.set_xlabel("pipeline latency per frame [ms]")
    axes.set_ylabel("frames")
    axes.set_title(f"Latency ({values.size} frames)")
    figure.savefig(path)
    return path


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


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _summary_line(name: str, stats: dict, unit: str) -> str:
    return (
        f"| {name} | {_fmt(stats.get('mean'), 2)} | {_fmt(stats.get('median'), 2)} | "
        f"{_fmt(stats.get('p95'), 2)} | {stats.get('count', 0)} | {unit} |"
    )


def render_markdown(
    document: dict, figures: dict[str, str], worst_files: list[tuple[dict, str]]
) -> str:
    """``report.md`` text for a metrics document and the relative paths of its figures."""
    summary = document["summary"]
    model = document["model"]
    machine = document["machine"]
    dataset = document["dataset"]
    lines = [
        "# Evaluation report",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{model['path']}` ({model['architecture']} {model['version']}, sha256 `{str(model['sha256'])[:16]}...`) |",
        f"| provider | {model['provider']} |",
        f"| machine | {machine.get('processor')}, {machine.get('cpu_count')} CPUs, {machine.get('platform')}, Python {machine.get('python')}, ONNX Runtime {machine.get('onnxruntime')} |",
        f"| date (UTC) | {document['date_utc']} |",
        f"| dataset | `{dataset['path']}`: {dataset['frames_evaluated']} of {dataset['frames_in_dataset']} frames evaluated"
        + (f" (--max-frames {dataset['max_frames']})" if dataset["max_frames"] else "")
        + " |",
        "",
        "## Targets",
        "",
        "| target | value | required | result | source |",
        "|---|---|---|---|---|",
    ]
    for row in document["targets"]:
        verdict = (
            "n/a (not measured)" if row["passed"] is None else ("PASS" if row["passed"] else "FAIL")
        )
        lines.append(
            f"| {row['name']} | {_fmt(row['value'])} | {row['operator']} {row['threshold']:g} | "
            f"**{verdict}** | {row['source']} |"
        )
    tips = summary["tips"]
    lines += [
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
        f"| guidewire precision / sensitivity / F1 (pooled) | {_fmt(summary['guidewire_precision'])} / {_fmt(summary['guidewire_sensitivity'])} / {_fmt(summary['guidewire_f1'])} |",
        f"| guidewire Dice / clDice (mean per frame) | {_fmt(summary['guidewire_dice_mean'])} / {_fmt(summary['guidewire_cldice_mean'])} |",
        f"| centerline F1 within {document['settings']['centerline_tolerance_px']:g} px (mean) | {_fmt(summary['centerline_f1_mean'])} |",
        f"| GSP (mean) [px] | {_fmt(summary['gsp_px_mean'])} |",
        f"| tips found / GT tips / false tips | {tips['num_found']} / {tips['num_true']} / {tips['num_false']} (rate {_fmt(summary['tip_detection_rate'])}) |",
        f"| primary wire's tip (`/tip`) within the tip gate of a GT tip | {_fmt(summary['primary_tip_correct_rate'])} of frames with a visible GT tip |",
        f"| dual-wire frames with both wires found | {_fmt(summary['both_wires_found_rate'])} of {summary['dual_wire_frames']} frames |",
        f"| frames without a GT wire where a wire is reported | {_fmt(summary['wire_reported_on_negative_rate'])} of {summary['negative_frames']} frames |",
        f"| stents reported in frames without a GT stent | {summary['stents_reported_on_negative']} |",
        f"| confusion share: predicted wire pixels on catheter GT (pooled) | {_fmt(summary['confusion_share'])} |",
        f"| stent Dice (pooled) | {_fmt(summary['stent_dice'])} |",
        f"| frames per second (1000 / mean latency) | {_fmt(summary['frames_per_s'], 1)} |",
        "",
        "| distribution | mean | median | p95 | count | unit |",
        "|---|---|---|---|---|---|",
        _summary_line("tip error", summary["tip_error_px"], "px"),
        _summary_line("tip error", summary["tip_error_mm"], "mm"),
        _summary_line("guidewire HD95", summary["guidewire_hd95_px"], "px"),
        _summary_line("stent HD95", summary["stent_hd95_px"], "px"),
        _summary_line("latency", summary["latency_ms"], "ms"),
        "",
        "HD95 is infinite when one of the two masks is empty; such frames are counted in",
        "`metrics.json` (`num_inf`) and left out of the mean.",
        "",
        "## Per sequence",
        "",
        "| sequence | frames | guidewire F1 (pooled) | stent Dice (pooled) | tip error median [px] |",
        "|---|---|---|---|---|",
    ]
    for sequence_id, entry in document["per_sequence"].items():
        tip = entry["metrics"].get("tip_error_px", {})
        lines.append(
            f"| {sequence_id} | {entry['num_frames']} | {_fmt(entry['guidewire']['f1'])} | "
            f"{_fmt(entry['stent_dice'])} | {_fmt(tip.get('median'), 2)} |"
        )
    lines += [
        "",
        "## Figures",
        "",
        f"![tip error CDF]({figures['tip_error_cdf']})",
        "",
        f"![guidewire F1 per sequence]({figures['sequence_f1']})",
        "",
        f"![latency histogram]({figures['latency_hist']})",
        "",
        "## Worst frames",
        "",
        "Result overlay (guidewire green, centerline yellow, tip red, stent orange) with the",
        "ground truth in **magenta** (centerlines, tip circles, stent outlines).",
        "",
    ]
    if not worst_files:
        lines.append("No frame with a wire error.")
    for entry, relative in worst_files:
        values = entry["values"]
        lines += [
            f"**{entry['sequence_id']} frame {entry['frame_index']}**: guidewire Dice "
            f"{_fmt(values.get('guidewire_dice'))}, tip error {_fmt(values.get('tip_error_px'), 2)} px",
            "",
            f"![{entry['sequence_id']} {entry['frame_index']}]({relative})",
            "",
        ]
    if document["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- {reason}: {count}" for reason, count in document["skipped"].items()]
        lines.append("")
    lines += [
        "## Metric definitions",
        "",
        'See `docs/evaluation.md`. Per-frame metrics in `metrics.json["metrics"]`:',
        "",
    ]
    lines += [f"- `{name}`: {meaning}" for name, meaning in PER_FRAME_METRICS.items()]
    return "\n".join(lines) + "\n"


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


__all__ = [
    "DEFAULT_TARGETS",
    "METRICS_FILE",
    "REPORT_FILE",
    "RunInfo",
    "Target",
    "WorstFrame",
    "WorstFrames",
    "build_metrics_document",
    "evaluate_targets",
    "frame_badness",
    "machine_info",
    "render_comparison",
    "render_markdown",
    "write_report",
]
