"""Stent detection: close the strut mesh, take instances as external contours, measure
outline, centroid, principal axis, length and diameter (:func:`extract_stents`)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from fluoro_perception.core.geometry.config import GeometryConfig, _require_config
from fluoro_perception.core.geometry.masks import _bounding_box, _check_map
from fluoro_perception.core.types import StentDetection


def extract_stents(
    stent_prob: np.ndarray, config: GeometryConfig, *, caps_hit: dict[str, int] | None = None
) -> list[StentDetection]:
    """Stent instances with outline, centroid, principal axis, length and diameter.

    The strut mesh of a deployed stent segments as many small pieces, so the mask is
    closed with a ``stent_close_px`` disc and its holes filled before instances are
    taken as external contours. The ``max_stents`` largest instances are measured and
    reported; every outline is a closed polygon of at least 3 distinct points (a
    contour too thin for one, e.g. a 1 px line, is replaced by the convex hull of its
    pixels' corners).

    Parameters
    ----------
    stent_prob : np.ndarray
        ``(H, W)`` float probability of the stent class in ``[0, 1]``.
    config : GeometryConfig
        ``stent_threshold``, ``stent_close_px``, ``stent_min_area_px``,
        ``stent_outline_epsilon_px``, ``max_stents``.
    caps_hit : dict, optional
        Counter to which the instances left out by ``max_stents`` are added (key
        ``stents``; instances counted by their contour's size bound, not measured).

    Returns
    -------
    list[StentDetection]
        Sorted by confidence (mean probability over the instance's thresholded pixels);
        axis in ``[-pi/2, pi/2)`` [rad]; length along / diameter across the axis as the
        extent of the instance's pixels (+1 px for the pixel size) [px].
    """
    _require_config(config)
    stent_prob = _check_map("stent_prob", stent_prob, None)
    mask = stent_prob >= config.stent_threshold
    margin = config.stent_close_px + 1
    box = _bounding_box(mask, margin=margin)
    if box is None:
        return []
    x0, y0, x1, y1 = box
    roi_mask = mask[y0:y1, x0:x1]
    closed = _closed_mask(roi_mask, margin, config)
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    roi_prob = stent_prob[y0:y1, x0:x1]
    min_area = max(config.stent_min_area_px, 3)
    # A filled contour covers at most its area plus its boundary pixels: rank by that
    # bound and skip small blobs before rasterizing (noisy maps have thousands of them).
    sizes = [cv2.contourArea(contour) + len(contour) + 1 for contour in contours]
    ranked = [
        k for k in sorted(range(len(contours)), key=lambda k: -sizes[k]) if sizes[k] >= min_area
    ]
    instances = []
    for rank, k in enumerate(ranked):
        if len(instances) == config.max_stents:
            if caps_hit is not None:
                caps_hit["stents"] += len(ranked) - rank
            break
        instance = _stent_instance(contours[k], roi_mask, roi_prob, (x0, y0), config)
        if instance is not None:
            instances.append(instance)
    instances.sort(key=lambda item: -item[0])
    return [
        StentDetection(
            stent_id=stent_id,
            outline_px=outline_px,
            centroid_px=centroid,
            axis_rad=axis_rad,
            length_px=length,
            diameter_px=diameter,
            confidence=confidence,
        )
        for stent_id, (confidence, outline_px, centroid, axis_rad, length, diameter) in enumerate(
            instances
        )
    ]


def _closed_mask(roi_mask: np.ndarray, margin: int, config: GeometryConfig) -> np.ndarray:
    """uint8 stent mask closed with a ``stent_close_px`` disc (struts joined)."""
    # Pad so closing near the array border behaves as inside.
    closed = np.pad(roi_mask, margin).view(np.uint8)
    if config.stent_close_px > 0:
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (config.stent_close_px, config.stent_close_px)
        )
        closed = cv2.morphologyEx(closed, cv2.MORPH_CLOSE, kernel)
    return closed[margin:-margin, margin:-margin]


def _stent_instance(
    contour: np.ndarray,
    roi_mask: np.ndarray,
    roi_prob: np.ndarray,
    origin: tuple[int, int],
    config: GeometryConfig,
) -> tuple[float, np.ndarray, np.ndarray, float, float, float] | None:
    """(confidence, outline, centroid, axis, length, diameter) of one external contour
    of the closed mask (ROI coordinates; ``origin`` maps them to the map), or None when
    the instance is too small or holds no segmented pixel."""
    x0, y0 = origin
    min_area = max(config.stent_min_area_px, 3)
    # rasterized in its own bounding box, not the whole ROI
    bx, by, bw, bh = cv2.boundingRect(contour)
    filled = np.zeros((bh, bw), dtype=np.uint8)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED, offset=(-bx, -by))
    moments = cv2.moments(filled, binaryImage=True)
    if moments["m00"] < min_area:
        return None
    window = (slice(by, by + bh), slice(bx, bx + bw))
    segmented = roi_mask[window] & filled.view(bool)
    if not segmented.any():
        return None
    confidence = float(roi_prob[window][segmented].mean())
    # centroid and covariance of the filled pixels from their image moments (one pass
    # in C, not an (n, 2) array: a saturated map is one instance of the whole frame)
    centroid = np.array(
        [moments["m10"] / moments["m00"] + bx + x0, moments["m01"] / moments["m00"] + by + y0]
    )
    covariance = np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]])
    eigenvalues, eigenvectors = np.linalg.eigh(covariance / moments["m00"])
    major = eigenvectors[:, int(np.argmax(eigenvalues))]
    axis_rad = math.atan2(major[1], major[0])
    # Fold into [-pi/2, pi/2): an axis has no sense of direction.
    if axis_rad >= math.pi / 2:
        axis_rad -= math.pi
    elif axis_rad < -math.pi / 2:
        axis_rad += math.pi
    # the extremes along any direction lie on the outer contour: project it only
    centred = contour.reshape(-1, 2) + np.array([x0, y0]) - centroid
    minor = np.array([-major[1], major[0]])
    along = centred @ major
    across = centred @ minor
    outline = cv2.approxPolyDP(contour, config.stent_outline_epsilon_px, closed=True)
    outline_px = outline.reshape(-1, 2).astype(np.float32) + np.array([x0, y0], np.float32)
    if not _is_polygon(outline_px):
        ys, xs = np.nonzero(filled)
        outline_px = _pixel_hull(np.stack([xs + bx + x0, ys + by + y0], axis=1))
    return (
        min(max(confidence, 0.0), 1.0),
        outline_px,
        centroid.astype(np.float32),
        float(axis_rad),
        float(along.max() - along.min() + 1.0),
        float(across.max() - across.min() + 1.0),
    )


#: Corners of a pixel around its centre (x, y) [px].
_PIXEL_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


def _is_polygon(outline: np.ndarray) -> bool:
    """A non-zero enclosed area (shoelace formula), so at least 3 distinct vertices."""
    return len(outline) >= 3 and cv2.contourArea(outline) > 1e-6


def _pixel_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull ``(M, 2)`` float32 of the corners of pixels at ``points`` (x, y):
    at least 4 vertices and 1 px^2 for any non-empty set."""
    corners = (points[:, None, :] + _PIXEL_CORNERS[None, :, :]).reshape(-1, 2)
    return cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2)
