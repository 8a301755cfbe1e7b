"""Wire visibility: contrast-to-noise along the labelled centerline (``fluoro-train visibility``).

Issue 12 found training crops whose labelled wire is invisible in the image while darker,
unlabelled curves dominate: the network is then asked to find what nobody could see.
This measures, per frame, how visible the labelled guidewire is, the way a person judges
it: how much darker the wire is than the background right beside it, in units of the
frame's noise.

``CNR = median over centerline pixels of (b - w) / sigma``, where

* ``w`` is the image at the centerline (skeleton of the guidewire label), lightly
  smoothed (Gaussian, 0.7 px) as the eye integrates along a line;
* ``b`` is the local background: the mean over a ring ``RING_PX`` away from the wire label
  (no instrument pixels), within a ``WINDOW_PX`` window around each centerline pixel;
* ``sigma`` is the noise: 1.4826 x the median absolute deviation of the high-pass
  residual (image minus a 2 px Gaussian) over all ring pixels of the frame.

A CNR below ~1 is a wire nobody can point at; 3 and above is clearly visible. Written
here because no library measures the visibility of a labelled curvilinear structure.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

from fluoro_perception.core.types import GUIDEWIRE

#: Background ring: farther than RING_PX[0], at most RING_PX[1] from the wire label [px].
RING_PX = (2.0, 6.0)
#: Side of the window over which the local background is averaged [px].
WINDOW_PX = 15
#: Visibility classes reported by the command.
CNR_LEVELS: tuple[float, ...] = (1.0, 2.0, 3.0)


def wire_cnr(
    image01: np.ndarray, labels: np.ndarray, field_mask: np.ndarray | None = None
) -> float:
    """Contrast-to-noise ratio of the labelled guidewire of one frame (module docstring).

    Parameters
    ----------
    image01 : np.ndarray
        ``(H, W)`` float image in [0, 1], instruments dark.
    labels : np.ndarray
        ``(H, W)`` class indices (``GUIDEWIRE`` = 1; any label > 0 is an instrument).
    field_mask : np.ndarray, optional
        ``(H, W)`` bool exposed field; pixels outside never count as background.

    Returns
    -------
    float
        The CNR, or NaN when the frame has no labelled wire or no background beside it.
    """
    image = np.asarray(image01, np.float32)
    wire = labels == GUIDEWIRE
    if not wire.any():
        return float("nan")
    field = np.ones(wire.shape, bool) if field_mask is None else np.asarray(field_mask, bool)
    distance = cv2.distanceTransform((~wire).astype(np.uint8), cv2.DIST_L2, 3)
    ring = (distance > RING_PX[0]) & (distance <= RING_PX[1]) & (labels == 0) & field
    centerline = skeletonize(wire) & field
    if not ring.any() or not centerline.any():
        return float("nan")
    residual = image - cv2.GaussianBlur(image, (0, 0), 2.0)
    values = residual[ring]
    sigma = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    if sigma <= 0:
        return float("nan")
    ring_f = ring.astype(np.float32)
    window = (WINDOW_PX, WINDOW_PX)
    weight = cv2.boxFilter(ring_f, -1, window, normalize=False)
    background = cv2.boxFilter(image * ring_f, -1, window, normalize=False)
    rows, cols = np.nonzero(centerline & (weight > 0))
    if rows.size == 0:
        return float("nan")
    local_background = background[rows, cols] / weight[rows, cols]
    at_wire = cv2.GaussianBlur(image, (0, 0), 0.7)[rows, cols]
    return float(np.median((local_background - at_wire) / sigma))


def summarize_cnr(values: list[float]) -> dict[str, float | int]:
    """Distribution of finite CNR values: count, percentiles and share below each level."""
    finite = np.asarray([v for v in values if np.isfinite(v)], np.float64)
    summary: dict[str, float | int] = {"frames_with_wire": int(finite.size)}
    if finite.size:
        for q in (5, 25, 50, 75, 95):
            summary[f"p{q}"] = float(np.percentile(finite, q))
        for level in CNR_LEVELS:
            summary[f"share_below_{level:g}"] = float(np.mean(finite < level))
    return summary


#: Shares of a frame's pixels on contrast-filled vessel truth that the report counts.
VESSEL_COVER_LEVELS = (0.01, 0.05)


def summarize_vessel_cover(shares: list[float]) -> dict[str, float | int]:
    """How much filled vessel the frames show: ``shares`` is each frame's fraction of
    pixels on the simulator's vessel mask (0 without one). Count, mean share and the
    share of frames above each :data:`VESSEL_COVER_LEVELS` value."""
    values = np.asarray(shares, np.float64)
    summary: dict[str, float | int] = {"frames": int(values.size)}
    if values.size:
        summary["mean_share"] = float(values.mean())
        for level in VESSEL_COVER_LEVELS:
            summary[f"frames_above_{level:g}"] = float(np.mean(values > level))
    return summary


__all__ = [
    "CNR_LEVELS",
    "RING_PX",
    "VESSEL_COVER_LEVELS",
    "WINDOW_PX",
    "summarize_cnr",
    "summarize_vessel_cover",
    "wire_cnr",
]
