"""Per-frame metric accumulator with JSON-ready summaries.

Used by the runtime's evaluation CLI and by the trainer's validation so that both report
the same numbers. Frames add plain ``{name: value}`` dicts; non-finite values (``nan`` =
undefined, e.g. AUC of a frame without foreground; ``inf`` = e.g. Hausdorff distance with
a missed wire) are not averaged but counted per metric, so nothing is dropped silently.
Ratios that must be pooled over the dataset before dividing (OIoU: summed intersections
over summed unions) are added with :meth:`MetricAccumulator.add_pooled`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

import numpy as np


def summarize_values(values) -> dict[str, float | int | None]:
    """Summary of a list of numbers as a plain dict.

    Keys: ``count`` (finite values), ``num_nan``, ``num_inf``, and over the finite values
    ``mean``, ``median``, ``p95``, ``min``, ``max`` (``None`` when there is none).
    """
    array = np.asarray(list(values), dtype=np.float64)
    finite = array[np.isfinite(array)]
    summary: dict[str, float | int | None] = {
        "count": int(finite.size),
        "num_nan": int(np.count_nonzero(np.isnan(array))),
        "num_inf": int(np.count_nonzero(np.isinf(array))),
    }
    if finite.size == 0:
        summary.update(mean=None, median=None, p95=None, min=None, max=None)
    else:
        summary.update(
            mean=float(finite.mean()),
            median=float(np.median(finite)),
            p95=float(np.percentile(finite, 95)),
            min=float(finite.min()),
            max=float(finite.max()),
        )
    return summary


class MetricAccumulator:
    """Collect per-frame metrics and summarise them overall and per sequence.

    Examples
    --------
    >>> acc = MetricAccumulator()
    >>> acc.add({"dice": 0.8, "tip_error_px": 1.5}, sequence_id="seq_a")
    >>> acc.add_pooled("oiou", 30, 40, sequence_id="seq_a")
    >>> acc.summary()["metrics"]["dice"]["mean"]
    0.8
    """

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = defaultdict(list)
        self._sequence_values: dict[str, dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._pooled: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._sequence_pooled: dict[str, dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0.0, 0.0])
        )
        self._num_frames = 0
        self._sequence_frames: dict[str, int] = defaultdict(int)

    @property
    def num_frames(self) -> int:
        """Number of :meth:`add` calls so far."""
        return self._num_frames

    def add(self, metrics: Mapping[str, float | None], sequence_id: str | None = None) -> None:
        """Add one frame's metrics; ``None`` values are recorded as undefined (``nan``).

        Raises
        ------
        TypeError
            If a value is not a real number (or None), or a name is not a string.
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics is a {type(metrics).__name__}; expected a dict name -> float")
        clean: dict[str, float] = {}
        for name, value in metrics.items():
            if not isinstance(name, str):
                raise TypeError(f"metric name {name!r} is not a string")
            if value is None:
                clean[name] = math.nan
            elif isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(
                    f"metric {name!r} has value {value!r} of type {type(value).__name__}; expected a float"
                )
            else:
                clean[name] = float(value)
        for name, value in clean.items():
            self._values[name].append(value)
            if sequence_id is not None:
                self._sequence_values[str(sequence_id)][name].append(value)
        self._num_frames += 1
        if sequence_id is not None:
            self._sequence_frames[str(sequence_id)] += 1

    def add_pooled(
        self, name: str, numerator: float, denominator: float, sequence_id: str | None = None
    ) -> None:
        """Add to a dataset-level ratio ``sum numerators / sum denominators`` (e.g. OIoU)."""
        numerator, denominator = float(numerator), float(denominator)
        if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator < 0:
            raise ValueError(
                f"pooled {name!r} got numerator={numerator}, denominator={denominator}; "
                "expected finite values with denominator >= 0"
            )
        totals = self._pooled[name]
        totals[0] += numerator
        totals[1] += denominator
        if sequence_id is not None:
            seq_totals = self._sequence_pooled[str(sequence_id)][name]
            seq_totals[0] += numerator
            seq_totals[1] += denominator

    @staticmethod
    def _pooled_ratios(pooled: Mapping[str, list[float]]) -> dict[str, float | None]:
        return {
            name: (numerator / denominator if denominator > 0 else None)
            for name, (numerator, denominator) in sorted(pooled.items())
        }

    def summary(self) -> dict:
        """Return a JSON-serializable summary.

        Returns
        -------
        dict
            ``{"num_frames": int, "metrics": {name: summarize_values(...)},
            "pooled": {name: ratio or None}, "per_sequence": {sequence_id:
            {"num_frames", "metrics", "pooled"}}}``.
        """
        per_sequence = {}
        for sequence_id in sorted(set(self._sequence_values) | set(self._sequence_pooled)):
            per_sequence[sequence_id] = {
                "num_frames": self._sequence_frames.get(sequence_id, 0),
                "metrics": {
                    name: summarize_values(values)
                    for name, values in sorted(self._sequence_values[sequence_id].items())
                },
                "pooled": self._pooled_ratios(self._sequence_pooled[sequence_id]),
            }
        return {
            "num_frames": self._num_frames,
            "metrics": {name: summarize_values(v) for name, v in sorted(self._values.items())},
            "pooled": self._pooled_ratios(self._pooled),
            "per_sequence": per_sequence,
        }
