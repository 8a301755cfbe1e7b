"""Image pixels <-> detector metres and yaw <-> quaternion, as the bag format states them.

Positions are metres in the image frame (x right, y down, z into the detector, z = 0 on
the detector plane); directions are rotations about +z by ``atan2(dy, dx)`` [rad].
"""

from __future__ import annotations

import math

import numpy as np


def yaw_to_quaternion(yaw_rad: float) -> tuple[float, float, float, float]:
    """Rotation by ``yaw_rad`` [rad] about +z as a unit quaternion ``(x, y, z, w)``."""
    half = 0.5 * float(yaw_rad)
    return (0.0, 0.0, math.sin(half), math.cos(half))


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    """Rotation angle about +z [rad] in ``(-pi, pi]`` of a quaternion ``(x, y, z, w)``.

    Exact for pure z rotations (what this module writes); for a general rotation it is
    the yaw of its ZYX Euler decomposition.
    """
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _check_spacing(pixel_spacing_m: float) -> float:
    if not isinstance(pixel_spacing_m, int | float | np.floating) or not (
        math.isfinite(float(pixel_spacing_m)) and float(pixel_spacing_m) > 0.0
    ):
        raise ValueError(
            f"pixel_spacing_m={pixel_spacing_m!r}; expected a finite float > 0 [m/px] "
            "(set it in the frame or the dataset header)"
        )
    return float(pixel_spacing_m)


def points_px_to_m(points_px: np.ndarray, pixel_spacing_m: float) -> np.ndarray:
    """Convert image points [px] to detector-plane points [m].

    Parameters
    ----------
    points_px : np.ndarray
        ``(N, 2)`` or ``(2,)`` points ``(x, y)`` [px].
    pixel_spacing_m : float
        Size of one pixel on the detector [m/px].

    Returns
    -------
    np.ndarray
        ``(N, 3)`` (or ``(3,)``) float64 ``(x, y, 0)`` [m], image frame (x right, y down,
        z into the detector).
    """
    spacing = _check_spacing(pixel_spacing_m)
    points = np.asarray(points_px, dtype=np.float64)
    single = points.ndim == 1
    points = np.atleast_2d(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points_px has shape {np.shape(points_px)}; expected (N, 2) or (2,) [px]")
    out = np.zeros((points.shape[0], 3), dtype=np.float64)  # (N, 3)
    out[:, :2] = points * spacing
    return out[0] if single else out


def _as_points_m(points_m: np.ndarray, name: str) -> np.ndarray:
    """Accept ``(N, 2)`` or ``(N, 3)`` metres and return ``(N, 3)`` float64."""
    points = np.asarray(points_m, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"{name} has shape {points.shape}; expected (N, 2) or (N, 3) [m]")
    if points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((points.shape[0], 1))], axis=1)  # (N, 3)
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or inf; expected finite coordinates [m]")
    return points


def path_yaws_toward_tip(points: np.ndarray) -> np.ndarray:
    """Direction at each point of a tip-first polyline, pointing towards the tip [rad].

    Point ``i > 0`` gets ``atan2`` of ``points[i-1] - points[i]``; the tip (point 0) gets
    the direction of its first segment ``points[0] - points[1]``. This is the project's
    tip-direction convention (from the wire body towards the tip). A single point gets 0.
    """
    points = np.asarray(points, dtype=np.float64)
    yaws = np.zeros(points.shape[0], dtype=np.float64)
    if points.shape[0] < 2:
        return yaws
    delta = points[:-1, :2] - points[1:, :2]  # (N-1, 2): towards the previous (tip-side) point
    segment_yaws = np.arctan2(delta[:, 1], delta[:, 0])
    yaws[1:] = segment_yaws
    yaws[0] = segment_yaws[0]
    return yaws
