"""Learning curves: validation metrics against training CPU minutes (``fluoro-train curves``).

Reads the ``log.csv`` of one or more run folders (``split=val`` rows) and plots each
validation metric against the training wall time, one line per run, so that an ablation
compares runs at the same CPU budget and shows whether more steps would still help.

The x axis is the logged ``elapsed_min`` of each validation (written since 2026-12-02).
Older logs have none; their minutes are estimated from the logged training rows: every
``log_every``-th step records its ``step_s`` and ``data_s``, and the steps in between are
taken to cost the same (validation time is then not counted). The plot says which.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

#: Metrics plotted by default (one panel each).
DEFAULT_METRICS: tuple[str, ...] = ("selection_f1", "centerline_f1", "precision", "stent_dice")


def read_validation_curve(run_dir: str | Path) -> tuple[dict[str, list[tuple[float, float]]], bool]:
    """``({metric: [(minutes, value), ...]}, estimated)`` of one run folder's ``log.csv``.

    ``estimated`` is True when the minutes were rebuilt from the training rows (see the
    module docstring) because the log has no ``elapsed_min``.
    """
    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a training run folder with log.csv")
    train: dict[int, dict[str, float]] = defaultdict(dict)
    val: dict[int, dict[str, float]] = defaultdict(dict)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                step, value = int(row["step"]), float(row["value"])
            except (KeyError, TypeError, ValueError):
                continue
            (val if row.get("split") == "val" else train)[step][row["key"]] = value
    if not val:
        raise ValueError(f"{path} has no validation rows; expected split=val rows")
    estimated = not all("elapsed_min" in metrics for metrics in val.values())
    minutes_at: dict[int, float] = {}
    if estimated:
        logged = sorted(s for s, m in train.items() if "step_s" in m)
        seconds, previous = 0.0, 0
        for step in logged:
            per_step = train[step]["step_s"] + train[step].get("data_s", 0.0)
            seconds += per_step * (step - previous)
            previous = step
            minutes_at[step] = seconds / 60.0
    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for step in sorted(val):
        metrics = val[step]
        if estimated:
            known = [s for s in minutes_at if s <= step]
            minutes = minutes_at[max(known)] if known else 0.0
        else:
            minutes = metrics["elapsed_min"]
        for key, value in metrics.items():
            if key != "elapsed_min" and value == value:  # NaN (no stent in the set) left out
                curves[key].append((minutes, value))
    return dict(curves), estimated


def plot_curves(
    runs: dict[str, str | Path], output: str | Path, metrics: tuple[str, ...] = DEFAULT_METRICS
) -> Path:
    """PNG of ``metrics`` against training minutes, one line per named run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.4), squeeze=False)
    notes = []
    for label, run_dir in runs.items():
        curves, estimated = read_validation_curve(run_dir)
        if estimated:
            notes.append(f"{label}: minutes estimated from logged step times")
        for axis, metric in zip(axes[0], metrics, strict=True):
            points = curves.get(metric, [])
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker="o", markersize=3, label=label)
    for axis, metric in zip(axes[0], metrics, strict=True):
        axis.set_title(metric)
        axis.set_xlabel("training wall time [min], 2-core CPU")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation (unseen sequences)")
    axes[0][-1].legend(fontsize=8)
    if notes:
        figure.text(0.01, 0.01, "; ".join(notes), fontsize=7)
    figure.tight_layout(rect=(0, 0.04 if notes else 0, 1, 1))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


__all__ = ["DEFAULT_METRICS", "plot_curves", "read_validation_curve"]
