"""Summary statistics, pass/fail against the targets, tables and JSON of ``fluoro-perception bench``.

Everything here works on plain dicts (the JSON report), so a saved report can be printed
again or compared without re-running anything. Keys are documented in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fluoro_perception.jsonsafe import json_safe

#: Version of the JSON layout written by :func:`write_json`.
SCHEMA_VERSION = 1

#: The real-time targets the report is checked against (512x512 mono8, default model).
TARGET_INPROCESS_FPS = 25.0
TARGET_INPROCESS_MEDIAN_MS = 40.0
TARGET_DDS_RATE_HZ = 15.0
TARGET_DDS_DURATION_S = 60.0
TARGET_DDS_P95_MS = 60.0
#: Issue 13: share of frames answered at 15 Hz with a subscriber on every output [%].
TARGET_DDS_ANSWERED_PERCENT = 98.0
TARGET_RATIO_VS_ATTENTION_UNET = 4.0
TARGET_SIZE_PX = 512


def summarize_ms(samples_ms: Iterable[float]) -> dict[str, float | int]:
    """Order statistics of a list of durations.

    Parameters
    ----------
    samples_ms : iterable of float
        Durations [ms]; must be finite.

    Returns
    -------
    dict
        ``n``, ``median``, ``p95``, ``p99``, ``mean``, ``std`` (the jitter), ``min``,
        ``max`` [ms]; percentiles interpolate linearly between samples (numpy's default).

    Raises
    ------
    ValueError
        When there is no sample or one is not finite.
    """
    values = np.asarray(list(samples_ms), dtype=np.float64)
    if values.size == 0:
        raise ValueError("no timing samples to summarize; expected at least one duration [ms]")
    if not np.isfinite(values).all():
        raise ValueError("timing samples contain NaN/inf; expected finite durations [ms]")
    return {
        "n": int(values.size),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _target(
    name: str, target: str, measured: float | None, unit: str, passed: bool | None, note: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "target": target,
        "measured": measured,
        "unit": unit,
        "passed": passed,
        "note": note,
    }


def evaluate_targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check a report against the real-time targets.

    Parameters
    ----------
    report : mapping
        The report dict (``meta``, ``inprocess``, ``dds``, ``ratios`` sections).

    Returns
    -------
    list of dict
        One entry per target: ``name``, ``target`` (text), ``measured`` (number or None),
        ``unit``, ``passed`` (True/False, None when not measured) and ``note`` (why a figure
        is missing or only indicative: another input size, a shorter DDS run, ...).
    """
    meta = report.get("meta", {})
    size_note = ""
    if meta.get("size_px") != TARGET_SIZE_PX:
        size_note = f"measured at {meta.get('size_px')} px, targets are for {TARGET_SIZE_PX} px"
    targets: list[dict[str, Any]] = []

    inprocess = report.get("inprocess") or {}
    if inprocess.get("skipped") or "latency_ms" not in inprocess:
        reason = inprocess.get("skipped") or "in-process bench not run"
        targets.append(
            _target("inprocess_throughput", ">= 25 frames/s", None, "frames/s", None, reason)
        )
        targets.append(_target("inprocess_median_latency", "<= 40 ms", None, "ms", None, reason))
    else:
        fps = float(inprocess["throughput_fps"])
        median = float(inprocess["latency_ms"]["median"])
        targets.append(
            _target(
                "inprocess_throughput",
                f">= {TARGET_INPROCESS_FPS:g} frames/s",
                fps,
                "frames/s",
                fps >= TARGET_INPROCESS_FPS,
                size_note,
            )
        )
        targets.append(
            _target(
                "inprocess_median_latency",
                f"<= {TARGET_INPROCESS_MEDIAN_MS:g} ms",
                median,
                "ms",
                median <= TARGET_INPROCESS_MEDIAN_MS,
                size_note,
            )
        )

    dds = report.get("dds") or {}
    row = None
    for candidate in dds.get("rates", []) or []:
        if math.isclose(float(candidate["rate_hz"]), TARGET_DDS_RATE_HZ):
            row = candidate
    if dds.get("skipped") or row is None:
        reason = dds.get("skipped") or f"no DDS run at {TARGET_DDS_RATE_HZ:g} Hz"
        targets.append(_target("dds_15hz_p95_latency", "<= 60 ms", None, "ms", None, reason))
        targets.append(_target("dds_15hz_dropped_frames", "0", None, "frames", None, reason))
    else:
        notes = [size_note] if size_note else []
        if float(row["duration_s"]) < TARGET_DDS_DURATION_S:
            notes.append(
                f"ran {row['duration_s']:g} s, target is {TARGET_DDS_DURATION_S:g} s: indicative"
            )
        note = "; ".join(notes)
        latency = row.get("latency_ms")
        p95 = float(latency["p95"]) if latency else None
        targets.append(
            _target(
                "dds_15hz_p95_latency",
                f"<= {TARGET_DDS_P95_MS:g} ms",
                p95,
                "ms",
                None if p95 is None else p95 <= TARGET_DDS_P95_MS,
                note if p95 is not None else "no frame came back",
            )
        )
        targets.append(
            _target(
                "dds_15hz_dropped_frames",
                "0",
                float(row["dropped"]),
                "frames",
                int(row["dropped"]) == 0,
                note,
            )
        )

    ratio = (report.get("ratios") or {}).get("pipeline_over_attention_unet_eager")
    torch_section = report.get("torch_baselines") or {}
    ratio_note = size_note
    if ratio is None:
        ratio_note = torch_section.get("skipped") or "AttentionUnet or in-process figure missing"
    targets.append(
        _target(
            "throughput_vs_attention_unet_eager",
            f">= {TARGET_RATIO_VS_ATTENTION_UNET:g}x",
            ratio,
            "x",
            None if ratio is None else ratio >= TARGET_RATIO_VS_ATTENTION_UNET,
            ratio_note,
        )
    )
    return targets


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _latency_cells(summary: Mapping[str, Any] | None) -> list[str]:
    if not summary:
        return ["-", "-", "-"]
    return [_number(summary["median"]), _number(summary["p95"]), _number(summary["std"], 2)]


#: What each ``--content`` is, for the report's header.
_CONTENT_TEXT = {
    "sim": "simulator frames",
    "distractors": "distractor-dense simulator frames with contrast",
    "noise": "pure noise images",
}


def _caps_text(frames: Mapping[str, int], items: Mapping[str, int] | None = None) -> str:
    if not any(frames.values()):
        return "none bit"
    return ", ".join(
        f"{name} {count}" + (f" / {items[name]}" if items is not None else "")
        for name, count in frames.items()
        if count
    )


def _geometry_maps_lines(section: Mapping[str, Any]) -> list[str]:
    """The geometry-only table (adversarial maps), or one line saying why it is missing."""
    if not section:
        return []
    if section.get("skipped"):
        return ["", f"Geometry alone on adversarial maps: skipped ({section['skipped']})"]
    rows = []
    for kind, row in [*section["kinds"].items(), ("all maps", section["all"])]:
        wall, cpu = row["geometry_ms"], row["cpu_ms"]
        rows.append(
            [kind, _number(wall["median"], 2), _number(wall["p99"], 2), _number(wall["max"], 2),
             _number(cpu["median"], 2), _number(cpu["p99"], 2),
             _number(row["wires"], 1) if "wires" in row else "", _number(row["stents"], 1) if "stents" in row else "",
             _caps_text(row["caps_hit"]) if "caps_hit" in row else ""]
        )  # fmt: skip
    verdict = "PASS" if section["passed"] else "FAIL"
    return [
        "",
        f"Geometry alone on adversarial maps ({section['size_px']} px, {section['repeats']} maps "
        f"per kind; wires + stents per map; CPU = this thread's CPU time): p99 "
        f"{_number(section['all']['geometry_ms']['p99'], 2)} ms, target <= "
        f"{section['target_p99_ms']:g} ms: {verdict}",
        format_table(
            ["map", "p50 ms", "p99 ms", "max ms", "CPU p50 ms", "CPU p99 ms", "wires", "stents",
             "caps that bit (items left out)"],
            rows,
        ),
    ]  # fmt: skip


def _dds_detail_lines(dds: Mapping[str, Any], size_px: Any = None) -> list[str]:
    """Per-topic latency, the node's core / overlay+markers split, the answered check."""
    lines: list[str] = []
    for row in dds.get("rates", []):
        label = f"{_number(row['rate_hz'])} Hz"
        topics = row.get("topics") or {}
        if len(topics) > 2:
            cells = [
                [key, item["received"], *_latency_cells(item.get("latency_ms"))[:2]]
                for key, item in topics.items()
            ]
            lines += [
                f"{label}: per output topic (first receipt of each published frame)",
                format_table(["topic", "received", "median ms", "p95 ms"], cells),
            ]
        split = row.get("node_split")
        if split:
            lines.append(
                f"{label}: node time per frame (stage p50, last 200 frames): core outputs "
                f"{_number(split['core_ms'])} ms (of which sending {_number(split['publish_core_ms'])} ms); "
                f"markers {_number(split.get('markers_ms'))} ms, after the core outputs; overlay "
                f"{_number(split.get('overlay_ms'))} ms on its own thread; overlay + markers "
                f"{_number(split.get('side_share_percent'))} % of the node's time"
            )
        counters = row.get("node_counters") or {}
        if counters:
            lines.append(
                f"{label}: node counters: superseded {counters.get('dropped.superseded', 0)}, "
                f"stale {counters.get('dropped.stale', 0)}, tips withheld "
                f"{counters.get('tips_withheld', 0)}, overlays skipped "
                f"{counters.get('overlays_skipped', 0)}"
            )
        if math.isclose(float(row["rate_hz"]), TARGET_DDS_RATE_HZ) and len(topics) > 2:
            answered = row.get("answered_percent")
            core = (row.get("latency_core_ms") or {}).get("p95")
            verdict = (
                "PASS"
                if answered is not None
                and core is not None
                and answered >= TARGET_DDS_ANSWERED_PERCENT
                and core <= TARGET_DDS_P95_MS
                else "FAIL"
            )
            caveats = []
            if size_px is not None and int(size_px) != TARGET_SIZE_PX:
                caveats.append(f"{size_px} px, the target is for {TARGET_SIZE_PX} px")
            if float(row["duration_s"]) < TARGET_DDS_DURATION_S:
                caveats.append(
                    f"{row['duration_s']:g} s, the target is {TARGET_DDS_DURATION_S:g} s"
                )
            lines.append(
                f"{label}, every output subscribed: answered {_number(answered)} % (target >= "
                f"{TARGET_DDS_ANSWERED_PERCENT:g} %), core outputs p95 {_number(core)} ms "
                f"(target <= {TARGET_DDS_P95_MS:g} ms): {verdict}"
                + (f" (indicative: {'; '.join(caveats)})" if caveats else "")
            )
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    """The whole report as text tables (what ``fluoro-perception bench`` prints)."""
    meta = report.get("meta", {})
    machine = meta.get("machine", {})
    model = meta.get("model", {})
    parts = [
        f"fluoro-perception bench  {meta.get('date_utc', '')}",
        f"machine: {machine.get('cpu_model', '?')}, {machine.get('logical_cpus', '?')} logical CPUs, "
        f"load average {_number(machine.get('load_average_1min_start'), 2)} at start / "
        f"{_number(machine.get('load_average_1min_end'), 2)} at end (1 min)",
        f"model: {model.get('path', '?')} ({model.get('architecture', '?')}, input "
        f"{model.get('input_size', '?')}, {model.get('source_note', '')})",
        f"frames: {meta.get('size_px')}x{meta.get('size_px')} mono8, content "
        f"{meta.get('content', 'sim')} ({_CONTENT_TEXT.get(meta.get('content', 'sim'), '?')}); "
        f"ORT intra-op threads of the pipeline runs: {meta.get('threads') or 'ORT default'}",
    ]

    latency_rows = []
    for row in report.get("model_latency", []) or []:
        if row.get("skipped"):
            cells = [row["provider"], row.get("optimized_cache", "-"), *["-"] * 6, row["skipped"]]
            latency_rows.append(cells)
            continue
        latency_rows.append(
            [
                row["provider"],
                row["optimized_cache"],
                row["intra_op_threads"] or "ORT default",
                _number(row["load_ms"], 0),
                *_latency_cells(row["latency_ms"]),
                _number(row["throughput_fps"]),
                row.get("active_provider", ""),
            ]
        )
    if latency_rows:
        parts += [
            "",
            "Model only (ONNX Runtime, batch 1)",
            format_table(
                [
                    "provider",
                    "opt. cache",
                    "threads",
                    "load ms",
                    "median ms",
                    "p95 ms",
                    "jitter ms",
                    "frames/s",
                    "ran on / note",
                ],
                latency_rows,
            ),
        ]

    inprocess = report.get("inprocess") or {}
    if inprocess.get("skipped"):
        parts += ["", f"In-process end to end: skipped ({inprocess['skipped']})"]
    elif inprocess:
        latency = inprocess["latency_ms"]
        parts += [
            "",
            f"In-process end to end ({inprocess['frames']} frames, {inprocess['provider']}): "
            f"median {_number(latency['median'])} ms, p95 {_number(latency['p95'])} ms, "
            f"jitter (std) {_number(latency['std'], 2)} ms, throughput "
            f"{_number(inprocess['throughput_fps'])} frames/s, CPU {_number(inprocess['cpu_percent'], 0)} % "
            f"(100 % = one core), peak RSS {_number(inprocess['peak_rss_mib'], 0)} MiB",
        ]
        if inprocess.get("messages_note"):
            parts.append(f"  note: {inprocess['messages_note']}")
        stage_rows = []
        total = float(latency["mean"]) or 1.0
        for stage, summary in inprocess["stages_ms"].items():
            stage_rows.append(
                [stage, _number(summary["median"], 2), _number(summary["p95"], 2),
                 _number(summary.get("p99"), 2), _number(summary["mean"], 2),
                 _number(100.0 * summary["mean"] / total, 0)]
            )  # fmt: skip
        parts.append(
            format_table(
                ["stage", "p50 ms", "p95 ms", "p99 ms", "mean ms", "% of mean"], stage_rows
            )
        )
        if inprocess.get("geometry_caps_frames") is not None:
            parts.append(
                "geometry caps (frames in which the cap bit / items left out): "
                + _caps_text(inprocess["geometry_caps_frames"], inprocess["geometry_caps_hit"])
            )
    parts += _geometry_maps_lines(report.get("geometry_maps") or {})

    dds = report.get("dds") or {}
    if dds.get("skipped"):
        parts += ["", f"DDS across processes: skipped ({dds['skipped']})"]
    elif dds:
        dds_rows = []
        core_topics = next((r.get("core_topics") or [] for r in dds.get("rates", [])), [])
        for row in dds.get("rates", []):
            dds_rows.append(
                [
                    _number(row["rate_hz"]),
                    _number(row["duration_s"]),
                    row["published"],
                    row["received"],
                    row["dropped"],
                    _number(row.get("answered_percent")),
                    *_latency_cells(row.get("latency_ms")),
                    _number((row.get("latency_last_output_ms") or {}).get("p95")),
                    _number((row.get("latency_core_ms") or {}).get("median")),
                    _number((row.get("latency_core_ms") or {}).get("p95")),
                    _number(row.get("node_cpu_percent"), 0),
                    _number(row.get("subscriber_cpu_percent"), 0),
                ]
            )
        parts += [
            "",
            f"DDS across processes (publisher -> segmentation_node -> subscriber, ROS_DOMAIN_ID "
            f"{dds.get('domain_id')}, localhost; content {dds.get('content', 'sim')}; subscriber "
            f"on {len(dds.get('subscribed_topics') or ['tips', 'labels'])} output topics "
            f"({dds.get('subscribe', 'tip')}); latency = receive time - header stamp on the tips "
            f"topic; core = until {', '.join(core_topics) or 'tips, labels'} of the frame have "
            "all arrived)",
            format_table(
                ["rate Hz", "s", "published", "received", "dropped", "answered %", "median ms",
                 "p95 ms", "jitter ms", "labels p95 ms", "core p50 ms", "core p95 ms",
                 "node CPU %", "sub CPU %"],
                dds_rows,
            ),
        ]  # fmt: skip
        parts += _dds_detail_lines(dds, (report.get("meta") or {}).get("size_px"))
        peak = dds.get("peak") or {}
        if peak.get("steps"):
            parts.append(
                f"peak search: highest rate without drops {_number(peak.get('max_clean_rate_hz'))} Hz; "
                f"highest output rate {_number(peak.get('max_output_rate_hz'))} frames/s "
                f"(tried {', '.join(_number(s['rate_hz']) for s in peak['steps'])} Hz)"
            )

    torch_section = report.get("torch_baselines") or {}
    if torch_section.get("skipped"):
        parts += ["", f"Torch eager baselines: skipped ({torch_section['skipped']})"]
    elif torch_section:
        torch_rows = []
        for row in torch_section.get("rows", []):
            if row.get("skipped"):
                torch_rows.append([row["name"], "-", "-", "-", "-", "-", "-", row["skipped"]])
                continue
            torch_rows.append(
                [row["name"], row["threads"], _number(row["parameters"] / 1e6, 2), *_latency_cells(row["latency_ms"]),
                 _number(row["throughput_fps"]), row.get("description", "")]
            )  # fmt: skip
        parts += [
            "",
            f"Torch eager baselines (torch {torch_section.get('torch_version')}, "
            f"threads {torch_section.get('threads')}, batch 1, {torch_section.get('size_px')} px)",
            format_table(
                [
                    "model",
                    "threads",
                    "M params",
                    "median ms",
                    "p95 ms",
                    "jitter ms",
                    "frames/s",
                    "what",
                ],
                torch_rows,
            ),
        ]
    ratios = report.get("ratios") or {}
    if ratios:
        parts.append(
            "ratios: "
            + ", ".join(f"{name} = {_number(value, 2)}" for name, value in ratios.items())
        )

    target_rows = []
    for target in report.get("targets", []) or []:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[target["passed"]]
        target_rows.append(
            [
                target["name"],
                target["target"],
                _number(target["measured"], 2),
                verdict,
                target["note"],
            ]
        )
    if target_rows:
        parts += [
            "",
            "Targets",
            format_table(["target", "wanted", "measured", "result", "note"], target_rows),
        ]
    for note in meta.get("notes", []):
        parts.append(f"note: {note}")
    return "\n".join(parts)


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report as indented JSON (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(dict(report)), indent=2, sort_keys=False) + "\n")
    return path
