"""The report's figures: tip error CDF, guidewire F1 per sequence, latency histogram.

matplotlib's object API on the Agg canvas (no pyplot, no global backend switch), so the
figures can be drawn from any process, with or without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_FIGURE_DPI = 100


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
