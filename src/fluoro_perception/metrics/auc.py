"""Area under the ROC curve of pixel-wise probabilities (seed 002 "Evaluation metric",
``seeds/002_736d2e60a7c10fcc.txt``: "we utilize the area under the curve (AUC)").

ROC AUC equals the Mann-Whitney U statistic: the probability that a random foreground
pixel scores higher than a random background pixel, ties counting one half. We compute it
from average ranks (``scipy.stats.rankdata``) because scikit-learn is not a dependency of
the runtime; this is exact (no thresholds or binning) and O(n log n).

For datasets too large to hold every pixel, :class:`BinnedRocAuc` accumulates fixed-width
probability histograms per class and applies the same rank statistic to the binned
scores (equal to the trapezoid-rule area under the binned ROC);
its error is bounded by the ties it creates inside one bin (``1 / num_bins`` wide).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from fluoro_perception.metrics._validation import check_same_shape


def _flatten(probabilities: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(target)
    check_same_shape(scores, labels)
    if not np.all(np.isfinite(scores)):
        raise ValueError("probabilities contain NaN or inf; expected finite scores")
    return scores.ravel(), labels.ravel() != 0


def roc_auc(probabilities: np.ndarray, target: np.ndarray) -> float:
    """Exact ROC AUC of ``probabilities`` (any shape) against binary ``target`` (same shape).

    Parameters
    ----------
    probabilities : np.ndarray
        Foreground scores, higher = more likely foreground (probabilities or logits).
    target : np.ndarray
        Ground truth, non-zero = foreground.

    Returns
    -------
    float
        AUC in ``[0, 1]``; ``nan`` when the target has only one class (AUC undefined);
        :class:`~fluoro_perception.metrics.aggregate.MetricAccumulator` counts such
        frames as undefined instead of averaging them.
    """
    scores, positive = _flatten(probabilities, target)
    num_positive = int(np.count_nonzero(positive))
    num_negative = positive.size - num_positive
    if num_positive == 0 or num_negative == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks for ties, 1-based
    rank_sum_positive = float(ranks[positive].sum())
    u_statistic = rank_sum_positive - num_positive * (num_positive + 1) / 2.0
    return u_statistic / (num_positive * num_negative)


class BinnedRocAuc:
    """Streaming ROC AUC over many frames from per-class probability histograms.

    Parameters
    ----------
    num_bins : int
        Number of equal-width bins on ``[0, 1]`` (>= 2); scores are clipped into it.
    """

    def __init__(self, num_bins: int = 1000) -> None:
        if not isinstance(num_bins, int) or num_bins < 2:
            raise ValueError(f"num_bins={num_bins} must be an int >= 2")
        self.num_bins = num_bins
        self.positive_histogram = np.zeros(num_bins, dtype=np.int64)
        self.negative_histogram = np.zeros(num_bins, dtype=np.int64)

    def update(self, probabilities: np.ndarray, target: np.ndarray) -> None:
        """Add one frame's probabilities in ``[0, 1]`` and binary target (same shape)."""
        scores, positive = _flatten(probabilities, target)
        bins = np.clip((scores * self.num_bins).astype(np.int64), 0, self.num_bins - 1)
        self.positive_histogram += np.bincount(bins[positive], minlength=self.num_bins)
        self.negative_histogram += np.bincount(bins[~positive], minlength=self.num_bins)

    def compute(self) -> float:
        """AUC of everything added so far; ``nan`` while one class has no pixel."""
        num_positive = int(self.positive_histogram.sum())
        num_negative = int(self.negative_histogram.sum())
        if num_positive == 0 or num_negative == 0:
            return math.nan
        # Same rank statistic on the binned scores: negatives in lower bins count 1,
        # negatives in the same bin count 1/2 (a tie).
        negatives_below = np.cumsum(self.negative_histogram) - self.negative_histogram
        wins = self.positive_histogram * (negatives_below + 0.5 * self.negative_histogram)
        return float(wins.sum()) / (num_positive * num_negative)
