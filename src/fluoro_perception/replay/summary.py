"""What a replay did: :class:`ReplaySummary`, written as ``replay.json`` and ``replay.md``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fluoro_perception.jsonsafe import json_safe
from fluoro_perception.replay.spacing import FALLBACK_PIXEL_SPACING_M

SUMMARY_JSON = "replay.json"
SUMMARY_MD = "replay.md"
#: The evaluation report's markdown file (``evaluation.report.REPORT_FILE``), linked from
#: ``replay.md``.
REPORT_LINK = "report.md"


@dataclass
class ReplaySummary:
    """What a replay did (written to ``replay.json`` / ``replay.md``).

    Attributes
    ----------
    mode : str
        ``offline`` or ``live``.
    bag_path, output_bag : str
        Input bag and the output bag written.
    image_topic : str
        Image topic replayed.
    frames_in_bag : int
        Image messages the bag index lists.
    frames_read : int
        Images decoded from the bag (offline) / published by the player (live).
    frames_processed : int
        Frames with perception output in the output bag.
    frames_dropped : dict[str, int]
        Reason -> frames without output (node drops, lost in transport, pipeline errors).
    skipped : dict[str, int]
        Reason -> bag messages that could not be read.
    frames_failed : dict[str, int]
        ``errors.jsonl`` stage -> frames recorded there as failed (``docs/replay.md``):
        bag messages that could not be read (unnamed groups), frames the pipeline
        (offline) or the node (live) could not process, frames whose scoring failed. A
        read frame that failed is also in ``frames_dropped``; empty when none failed.
    errors_file : str
        The ``errors.jsonl`` written ("" when the run wrote none).
    latency_ms : dict
        Statistics of the per-frame latency [ms]: the pipeline time offline, the
        end-to-end time (input on DDS -> labels output on DDS) live.
    clock_latency_ms : dict
        Live only: output receive time on the ROS (sim) clock - header stamp, converted
        to wall time by dividing by ``rate`` [ms].
    rate_hz : float
        Frames processed per second of wall time over the run [Hz].
    input_rate_hz : float
        Rate of the input frames as recorded [Hz] (0 for a single frame).
    rate : float
        Playback speed factor (live).
    wall_s : float
        Wall time of the run [s].
    pixel_spacing_m : float
        Spacing used for metres [m/px], with ``pixel_spacing_source``.
    has_ground_truth : bool
        Frames with ground truth were evaluated (see ``report``).
    topics_written : dict[str, int]
        Output bag topic -> message count.
    report : dict[str, str]
        Evaluation report files (``metrics``, ``report``, figures), empty without GT.
    accuracy : dict
        Key accuracy figures of the evaluation (empty without GT).
    """

    mode: str
    bag_path: str
    output_bag: str
    image_topic: str
    frames_in_bag: int = 0
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    frames_failed: dict[str, int] = field(default_factory=dict)
    errors_file: str = ""
    latency_ms: dict = field(default_factory=dict)
    clock_latency_ms: dict = field(default_factory=dict)
    rate_hz: float = 0.0
    input_rate_hz: float = 0.0
    rate: float = 1.0
    wall_s: float = 0.0
    pixel_spacing_m: float = FALLBACK_PIXEL_SPACING_M
    pixel_spacing_source: str = ""
    has_ground_truth: bool = False
    topics_written: dict[str, int] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)

    @property
    def num_dropped(self) -> int:
        return int(sum(self.frames_dropped.values()))

    @property
    def num_failed(self) -> int:
        """Frames in ``errors.jsonl`` (named ones and unnamed groups)."""
        return int(sum(self.frames_failed.values()))

    def record_errors(self, errors: Any) -> None:
        """Take over the counts of a (closed) ``FrameErrorLog``: its stages and its file."""
        self.frames_failed = dict(errors.by_stage)
        self.errors_file = str(errors.path)

    def record_evaluation(self, paths: dict[str, Path], evaluation_summary: dict) -> None:
        """Attach an evaluation: its report files and key figures of its ``summary``."""
        self.has_ground_truth = True
        self.report = {name: str(path) for name, path in paths.items()}
        self.accuracy = accuracy_figures(evaluation_summary)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {**asdict(self), "num_dropped": self.num_dropped, "num_failed": self.num_failed}
        )

    def one_line(self) -> str:
        """A one-line summary for the terminal."""
        latency = self.latency_ms
        text = (
            f"replay ({self.mode}): {self.frames_processed} of {self.frames_read} frames "
            f"processed, {self.num_dropped} dropped, {self.num_failed} failed, "
            f"{sum(self.skipped.values())} bag messages "
            f"skipped; latency p50 {_fmt(latency.get('median'))} ms, p95 "
            f"{_fmt(latency.get('p95'))} ms, max {_fmt(latency.get('max'))} ms; "
            f"{self.rate_hz:.1f} frames/s"
        )
        if self.accuracy:
            text += (
                f"; guidewire F1 {_fmt(self.accuracy.get('guidewire_f1'), 3)}, tip error "
                f"median {_fmt(self.accuracy.get('tip_error_px_median'))} px"
            )
        return text


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:.{digits}f}"


def render_summary_markdown(summary: ReplaySummary) -> str:
    """``replay.md`` / ``demo.md``: frame accounting, timing and skipped messages of a run."""
    latency, clock_latency = summary.latency_ms, summary.clock_latency_ms
    lines = [
        "# Demo" if summary.mode == "demo" else f"# Replay ({summary.mode})",
        "",
        "| | |",
        "|---|---|",
        f"| input | `{summary.bag_path}` (topic `{summary.image_topic}`) |",
        f"| output bag | `{summary.output_bag}` |",
        f"| frames in bag / read / processed | {summary.frames_in_bag} / {summary.frames_read} / "
        f"{summary.frames_processed} |",
        f"| frames dropped | {summary.num_dropped} |",
        f"| frames failed (`errors.jsonl`) | {summary.num_failed} |",
        {
            "live": f"| playback rate | {summary.rate:g}x the recorded rate |",
            "offline": "| playback | as fast as possible, frame by frame |",
        }.get(summary.mode, "| source | simulator node over DDS |"),
        f"| input rate (recorded) | {summary.input_rate_hz:.2f} Hz |",
        f"| rate achieved | {summary.rate_hz:.2f} frames/s over {summary.wall_s:.2f} s |",
        f"| pixel spacing | {summary.pixel_spacing_m * 1e3:.4f} mm/px ({summary.pixel_spacing_source}) |",
        "",
        "## Latency",
        "",
        "| latency | p50 | p95 | max | frames |",
        "|---|---|---|---|---|",
        f"| {'pipeline' if summary.mode == 'offline' else 'end-to-end (input -> labels on DDS)'}"
        f" [ms] | {_fmt(latency.get('median'))} | {_fmt(latency.get('p95'))} | "
        f"{_fmt(latency.get('max'))} | {latency.get('count', 0)} |",
    ]
    if clock_latency:
        lines.append(
            f"| ROS clock - header stamp, / rate [ms] | {_fmt(clock_latency.get('median'))} | "
            f"{_fmt(clock_latency.get('p95'))} | {_fmt(clock_latency.get('max'))} | "
            f"{clock_latency.get('count', 0)} |"
        )
    lines += ["", "## Dropped frames", "", *_count_lines(summary.frames_dropped)]
    lines += ["", "## Failed frames", "", *_count_lines(summary.frames_failed)]
    if summary.frames_failed:
        name = Path(summary.errors_file).name
        lines += ["", f"One record per failed frame (or unnamed group) in `{name}`."]
    lines += ["", "## Skipped bag messages", "", *_count_lines(summary.skipped)]
    lines += ["", "## Output topics", "", "| topic | messages |", "|---|---|"]
    lines += [f"| `{topic}` | {count} |" for topic, count in sorted(summary.topics_written.items())]
    lines += ["", "## Accuracy", ""]
    if summary.has_ground_truth:
        lines.append(f"Evaluation report: [`{REPORT_LINK}`]({REPORT_LINK}).")
        lines += [f"- {name}: {_fmt(value, 3)}" for name, value in summary.accuracy.items()]
    else:
        lines.append("The bag has no ground truth: no accuracy figures.")
    return "\n".join(lines) + "\n"


def _count_lines(counts: dict[str, int]) -> list[str]:
    """``- key: count`` per entry, or ``none``."""
    return [f"- {key}: {count}" for key, count in counts.items()] or ["none"]


def write_summary(
    output_dir: Path, summary: ReplaySummary, stem: str = "replay"
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (default ``replay.*``) into ``output_dir``."""
    json_path = output_dir / f"{stem}.json"
    json_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    md_path = output_dir / f"{stem}.md"
    md_path.write_text(render_summary_markdown(summary), encoding="utf-8")
    return json_path, md_path


def accuracy_figures(document_summary: dict) -> dict[str, float | None]:
    """The few accuracy numbers a replay prints from an evaluation summary."""
    return {
        "guidewire_f1": document_summary.get("guidewire_f1"),
        "centerline_f1_mean": document_summary.get("centerline_f1_mean"),
        "tip_error_px_median": document_summary.get("tip_error_px", {}).get("median"),
        "tip_error_mm_median": document_summary.get("tip_error_mm", {}).get("median"),
        "tip_detection_rate": document_summary.get("tip_detection_rate"),
        "stent_dice": document_summary.get("stent_dice"),
    }


def _input_rate_hz(stamps_ns: list[int]) -> float:
    if len(stamps_ns) < 2:
        return 0.0
    span_s = (max(stamps_ns) - min(stamps_ns)) * 1e-9
    return (len(stamps_ns) - 1) / span_s if span_s > 0 else 0.0


def achieved_rate_hz(receive_times_s: list[float]) -> float:
    """Output rate [Hz]: (frames - 1) / (last - first receive time); 0 below two frames."""
    if len(receive_times_s) < 2:
        return 0.0
    span_s = max(receive_times_s) - min(receive_times_s)
    return (len(receive_times_s) - 1) / span_s if span_s > 0 else 0.0
