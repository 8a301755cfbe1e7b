"""Acceptance targets of the evaluation report and their pass/fail check."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from fluoro_perception.evaluation.frame_metrics import CENTERLINE_TOLERANCE_PX


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
        "confusion share: predicted wire pixels on catheter or vessel GT",
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


def summary_value(summary: dict, path: str) -> float | None:
    """The finite number at the dot-separated ``path`` of ``summary`` (``tip_error_px.p95``),
    or None when it is missing, not a number or not finite."""
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
        value = summary_value(summary, target.metric)
        if value is None:
            passed = None
        elif target.operator == ">=":
            passed = value >= target.threshold
        else:
            passed = value <= target.threshold
        rows.append({**asdict(target), "value": value, "passed": passed})
    return rows
