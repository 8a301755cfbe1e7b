"""``report.md``: the metrics document for people, one builder per section."""

from __future__ import annotations

from typing import Any

from fluoro_perception.evaluation.frame_metrics import PER_FRAME_METRICS


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


def _header_lines(document: dict) -> list[str]:
    """Title and the run table: model, provider, machine, date, dataset."""
    model = document["model"]
    machine = document["machine"]
    dataset = document["dataset"]
    return [
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
    ]


def _targets_lines(document: dict) -> list[str]:
    """``## Targets``: one row per target with its verdict."""
    lines = [
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
    return lines


def _summary_lines(document: dict) -> list[str]:
    """``## Summary``: the headline figures and the distributions."""
    summary = document["summary"]
    tips = summary["tips"]
    return [
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
        f"| confusion share: predicted wire pixels on catheter or vessel GT (pooled) | {_fmt(summary['confusion_share'])} |",
        f"| confusion share on catheter GT / on vessel GT (pooled) | {_fmt(summary.get('confusion_share_catheter'))} / {_fmt(summary.get('confusion_share_vessel'))} (vessel GT in {summary.get('vessel_truth_frames', 0)} frames with a GT wire) |",
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
    ]


def _per_sequence_lines(document: dict) -> list[str]:
    """``## Per sequence``: pooled F1, stent Dice and median tip error of each sequence."""
    lines = [
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
    return lines


def _figures_lines(figures: dict[str, str]) -> list[str]:
    """``## Figures``: the three plots."""
    return [
        "",
        "## Figures",
        "",
        f"![tip error CDF]({figures['tip_error_cdf']})",
        "",
        f"![guidewire F1 per sequence]({figures['sequence_f1']})",
        "",
        f"![latency histogram]({figures['latency_hist']})",
        "",
    ]


def _worst_lines(worst_files: list[tuple[dict, str]]) -> list[str]:
    """``## Worst frames``: each thumbnail with its Dice and tip error."""
    lines = [
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
    return lines


def _skipped_lines(document: dict) -> list[str]:
    """``## Skipped``: reason -> count, only when a frame was skipped."""
    if not document["skipped"]:
        return []
    lines = ["## Skipped", ""]
    lines += [f"- {reason}: {count}" for reason, count in document["skipped"].items()]
    lines.append("")
    return lines


def _definitions_lines() -> list[str]:
    """``## Metric definitions``: the per-frame metric names and meanings."""
    lines = [
        "## Metric definitions",
        "",
        'See `docs/evaluation.md`. Per-frame metrics in `metrics.json["metrics"]`:',
        "",
    ]
    lines += [f"- `{name}`: {meaning}" for name, meaning in PER_FRAME_METRICS.items()]
    return lines


def render_markdown(
    document: dict, figures: dict[str, str], worst_files: list[tuple[dict, str]]
) -> str:
    """``report.md`` text for a metrics document and the relative paths of its figures."""
    lines = [
        *_header_lines(document),
        *_targets_lines(document),
        *_summary_lines(document),
        *_per_sequence_lines(document),
        *_figures_lines(figures),
        *_worst_lines(worst_files),
        *_skipped_lines(document),
        *_definitions_lines(),
    ]
    return "\n".join(lines) + "\n"
