"""Input checks shared by the metric modules (numpy only, private)."""

from __future__ import annotations

import numpy as np


def as_binary_mask(name: str, mask: np.ndarray) -> np.ndarray:
    """Return ``mask`` as a 2-D bool array (non-zero = foreground); raise on other shapes."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(
            f"{name} has shape {array.shape}; expected a 2-D (H, W) mask (select one class/frame first)"
        )
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected bool or numeric (non-zero = foreground)"
        )
    return array != 0


def check_same_shape(prediction: np.ndarray, target: np.ndarray) -> None:
    """Raise ValueError unless prediction and target shapes are equal."""
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} != target shape {target.shape}; "
            "resize the prediction to the label grid before scoring"
        )


def as_points(name: str, points: np.ndarray) -> np.ndarray:
    """Return ``points`` as a float64 ``(N, 2)`` array of ``(x, y)`` [px]."""
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} has shape {array.shape}; expected (N, 2) points (x, y) [px]")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite coordinates; drop them before scoring")
    return array
