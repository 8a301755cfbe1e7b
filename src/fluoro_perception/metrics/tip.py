"""Guidewire tip localization metrics: tip error and multi-wire tip matching.

Tip error is the Euclidean distance between predicted and true tip [px], converted to
millimetres with the detector pixel spacing (``SimFrame.pixel_spacing_m``). Dual-wire
scenes (``seeds/001_d0d03ac8067c31fe.txt``, dual-guidewire sequences) need an assignment
of predicted to true tips: we use the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on the distance matrix, and reject pairs
farther apart than a gate, which then count as a missed wire plus a false detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from fluoro_perception.metrics._validation import as_points

_M_TO_MM = 1000.0


def _tip(name: str, tip_px) -> np.ndarray:
    point = np.asarray(tip_px, dtype=np.float64).reshape(-1)
    if point.shape != (2,) or not np.all(np.isfinite(point)):
        raise ValueError(f"{name}={tip_px!r}; expected one finite (x, y) position [px]")
    return point


def _check_spacing(pixel_spacing_m: float) -> float:
    spacing = float(pixel_spacing_m)
    if not (spacing > 0.0 and math.isfinite(spacing)):
        raise ValueError(
            f"pixel_spacing_m={pixel_spacing_m} must be a finite value > 0 [m] (e.g. 3e-4 for 0.3 mm)"
        )
    return spacing


def tip_error_px(predicted_tip_px, true_tip_px) -> float:
    """Euclidean tip error [px] between two ``(x, y)`` positions [px]."""
    return float(
        np.linalg.norm(
            _tip("predicted_tip_px", predicted_tip_px) - _tip("true_tip_px", true_tip_px)
        )
    )


def tip_error_mm(predicted_tip_px, true_tip_px, pixel_spacing_m: float) -> float:
    """Euclidean tip error [mm] for square pixels of ``pixel_spacing_m`` [m] (detector plane)."""
    return tip_error_px(predicted_tip_px, true_tip_px) * _check_spacing(pixel_spacing_m) * _M_TO_MM


@dataclass(frozen=True)
class TipMatch:
    """One accepted prediction-truth pair: indices into the two input arrays, error [px]."""

    predicted_index: int
    true_index: int
    error_px: float


@dataclass(frozen=True)
class TipMatchResult:
    """Outcome of :func:`match_tips`.

    Attributes
    ----------
    matches : list of TipMatch
        Accepted pairs, sorted by ``true_index``.
    num_found : int
        True tips with a match within the gate.
    num_missed : int
        True tips without a match (false negatives).
    num_false : int
        Predicted tips without a match (false positives).
    """

    matches: list[TipMatch] = field(default_factory=list)
    num_found: int = 0
    num_missed: int = 0
    num_false: int = 0

    @property
    def errors_px(self) -> list[float]:
        """Tip errors [px] of the accepted pairs."""
        return [m.error_px for m in self.matches]

    def errors_mm(self, pixel_spacing_m: float) -> list[float]:
        """Tip errors [mm] of the accepted pairs for pixels of ``pixel_spacing_m`` [m]."""
        scale = _check_spacing(pixel_spacing_m) * _M_TO_MM
        return [m.error_px * scale for m in self.matches]


def match_tips(
    predicted_tips_px: np.ndarray, true_tips_px: np.ndarray, gate_px: float = 20.0
) -> TipMatchResult:
    """Match predicted to true tips one-to-one with minimal total distance.

    Parameters
    ----------
    predicted_tips_px : np.ndarray
        ``(N, 2)`` predicted tips ``(x, y)`` [px]; ``N`` may be 0.
    true_tips_px : np.ndarray
        ``(M, 2)`` true tips ``(x, y)`` [px]; ``M`` may be 0.
    gate_px : float
        Largest accepted tip error [px] (inclusive), > 0.

    Returns
    -------
    TipMatchResult
        Pairs, found / missed / false counts.
    """
    if not (float(gate_px) > 0.0 and math.isfinite(float(gate_px))):
        raise ValueError(f"gate_px={gate_px} must be a finite value > 0 [px]")
    predicted = as_points("predicted_tips_px", predicted_tips_px)
    truth = as_points("true_tips_px", true_tips_px)
    if len(predicted) == 0 or len(truth) == 0:
        return TipMatchResult([], 0, len(truth), len(predicted))
    # (N, 1, 2) - (1, M, 2) -> (N, M) distances [px]
    distances = np.linalg.norm(predicted[:, None, :] - truth[None, :, :], axis=2)
    # Pairs beyond the gate get a cost above any sum of gated pairs, so the assignment
    # maximises the number of gated matches first and their total error second.
    blocked_cost = float(gate_px) * (min(len(predicted), len(truth)) + 1)
    cost = np.where(distances <= gate_px, distances, blocked_cost)
    rows, cols = linear_sum_assignment(cost)
    matches = [
        TipMatch(int(r), int(c), float(distances[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if distances[r, c] <= gate_px
    ]
    matches.sort(key=lambda m: m.true_index)
    num_found = len(matches)
    return TipMatchResult(matches, num_found, len(truth) - num_found, len(predicted) - num_found)
