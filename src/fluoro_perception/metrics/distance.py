"""Hausdorff and 95th-percentile Hausdorff distances between binary masks.

Directed distances come from Euclidean distance transforms
(``scipy.ndimage.distance_transform_edt``) of each mask's complement, read at the other
mask's pixels; the symmetric value is the larger of the two directed ones, and HD95 takes
the 95th percentile of each directed set first (the convention of MONAI's
``compute_hausdorff_distance``, so numbers compare with the torch-side metric).

By default all foreground pixels are compared (set Hausdorff). ``boundary_only=True``
compares only boundary pixels (mask minus its 4-connected erosion), as MONAI does; for
one-pixel-wide wires both are the same.

Empty masks (documented, never NaN): both empty -> 0.0; exactly one empty -> ``inf``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt

from fluoro_perception.metrics._validation import as_binary_mask, check_same_shape


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~binary_erosion(mask, border_value=0)


def directed_distances(
    source: np.ndarray, reference: np.ndarray, pixel_spacing: float | tuple[float, float] = 1.0
) -> np.ndarray:
    """Distance from every ``source`` pixel to the nearest ``reference`` pixel, ``(N,)``.

    Units are those of ``pixel_spacing`` (one value, or ``(row, column)`` spacing); 1.0
    gives [px]. ``reference`` must not be empty.
    """
    source_mask = as_binary_mask("source", source)
    reference_mask = as_binary_mask("reference", reference)
    check_same_shape(source_mask, reference_mask)
    if not reference_mask.any():
        raise ValueError("reference mask is empty; distances to an empty set are undefined")
    distance_map = distance_transform_edt(~reference_mask, sampling=pixel_spacing)
    return distance_map[source_mask]


def hausdorff_distance(
    prediction: np.ndarray,
    target: np.ndarray,
    percentile: float = 100.0,
    pixel_spacing: float | tuple[float, float] = 1.0,
    boundary_only: bool = False,
) -> float:
    """Symmetric (percentile) Hausdorff distance between two ``(H, W)`` masks.

    Parameters
    ----------
    prediction, target : np.ndarray
        Binary masks (non-zero = foreground), same shape.
    percentile : float
        In ``(0, 100]``; 100 is the Hausdorff distance, 95 the HD95.
    pixel_spacing : float or (float, float)
        Size of a pixel (``(row, column)`` if anisotropic); 1.0 gives [px], metres give [m].
    boundary_only : bool
        Compare boundary pixels only (see module docstring).

    Returns
    -------
    float
        Distance in ``pixel_spacing`` units; 0.0 if both masks are empty, ``inf`` if
        exactly one is.
    """
    if not 0.0 < float(percentile) <= 100.0:
        raise ValueError(
            f"percentile={percentile} must be in (0, 100] (100 = Hausdorff, 95 = HD95)"
        )
    predicted = as_binary_mask("prediction", prediction)
    truth = as_binary_mask("target", target)
    check_same_shape(predicted, truth)
    predicted_any, truth_any = bool(predicted.any()), bool(truth.any())
    if not predicted_any and not truth_any:
        return 0.0
    if not predicted_any or not truth_any:
        return math.inf
    if boundary_only:
        predicted, truth = _boundary(predicted), _boundary(truth)
    forward = directed_distances(predicted, truth, pixel_spacing)
    backward = directed_distances(truth, predicted, pixel_spacing)
    return float(max(np.percentile(forward, percentile), np.percentile(backward, percentile)))


def hausdorff_distance_95(
    prediction: np.ndarray,
    target: np.ndarray,
    pixel_spacing: float | tuple[float, float] = 1.0,
    boundary_only: bool = False,
) -> float:
    """95th-percentile Hausdorff distance; see :func:`hausdorff_distance`."""
    return hausdorff_distance(prediction, target, 95.0, pixel_spacing, boundary_only)
