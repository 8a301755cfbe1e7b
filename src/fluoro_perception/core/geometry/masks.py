"""Input checks and binary masks: map validation, small-component removal, hole filling,
bounding boxes."""

from __future__ import annotations

import cv2
import numpy as np

from fluoro_perception.core.geometry.config import GeometryConfig


def _check_map(name: str, array: object, shape: tuple[int, int] | None) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{name} is a {type(array).__name__}: expected a numpy array of shape (H, W); "
            "convert with np.asarray."
        )
    if array.ndim != 2:
        raise ValueError(
            f"{name} has shape {array.shape}: expected a 2-D (H, W) map; squeeze batch and "
            "channel axes first."
        )
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"{name} has shape {array.shape}: expected {shape} like the probability map; "
            "pass all maps on the same grid."
        )
    return array


def clean_mask(mask: np.ndarray, min_component_px: int) -> np.ndarray:
    """Remove connected components (8-connectivity) smaller than ``min_component_px``.

    Parameters
    ----------
    mask : np.ndarray
        ``(H, W)`` bool or integer mask; non-zero is foreground.
    min_component_px : int
        Smallest component area kept [px^2]; 0 or 1 keeps everything.

    Returns
    -------
    np.ndarray
        ``(H, W)`` bool mask.
    """
    mask = _check_map("mask", mask, None)
    if isinstance(min_component_px, bool) or not isinstance(min_component_px, (int, np.integer)):
        raise TypeError(
            f"min_component_px={min_component_px!r}: expected an int area [px^2]; pass e.g. 20."
        )
    if min_component_px < 0:
        raise ValueError(f"min_component_px={min_component_px}: expected >= 0; pass e.g. 20.")
    mask_u8 = (mask != 0).view(np.uint8) if mask.dtype == bool else (mask != 0).astype(np.uint8)
    if min_component_px <= 1:
        return mask_u8.astype(bool)
    count, labels, stats = _label_components(mask_u8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_component_px
    keep[0] = False
    return keep[labels]


def _label_components(mask_u8: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a 0/1 uint8 mask: count, labels, stats."""
    # 16-bit labels are faster; an 8-connected image holds at most size/4 components.
    label_type = cv2.CV_16U if mask_u8.size // 4 < 65535 else cv2.CV_32S
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask_u8, connectivity=8, ltype=label_type
    )
    return count, labels, stats


def _fill_small_holes(mask: np.ndarray, max_hole_px: int) -> np.ndarray:
    """Fill background components not touching the array border up to ``max_hole_px``."""
    if max_hole_px <= 0:
        return mask
    inverse = (~mask).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    x, y, w, h, area = (stats[:, i] for i in range(5))
    height, width = mask.shape
    inner = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
    fill = inner & (area <= max_hole_px)
    fill[0] = False  # label 0 is the foreground of ``inverse``
    if not fill.any():
        return mask
    return mask | fill[labels]


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) exclusive box of the non-zero pixels, grown by ``margin``."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0 or h == 0:
        return None
    height, width = mask.shape
    return (
        max(0, x - margin),
        max(0, y - margin),
        min(width, x + w + margin),
        min(height, y + h + margin),
    )


def _wire_components(
    mask: np.ndarray, config: GeometryConfig, caps_hit: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label a bool wire mask and keep the components worth tracing.

    Components smaller than ``min_component_px`` are removed (as :func:`clean_mask`),
    those wider than ``max_component_width_px`` on average are skipped as blobs, and of
    the rest the ``max_wire_components`` with the longest bounding-box side (then the
    largest area) are kept; skipped components are counted in ``caps_hit``.

    Returns
    -------
    keep, labels, ranked, boxes
        ``(count,)`` bool, True for the kept labels (index ``labels`` with it for the
        mask of the kept components, in the window needed only); ``(H, W)`` component
        labels (0 = background); the kept labels ``(k,)``, most wire-like first; their
        bounding boxes ``(k, 4)`` (x, y, width, height).
    """
    count, labels, stats = _label_components(np.ascontiguousarray(mask).view(np.uint8))
    ids = np.arange(1, count)
    area = stats[1:, cv2.CC_STAT_AREA]
    extent = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    chosen = area >= config.min_component_px
    if config.max_component_width_px > 0:
        wide = chosen & (area > config.max_component_width_px * extent)
        caps_hit["wide_components"] += int(np.count_nonzero(wide))
        chosen &= ~wide
    ids, area, extent = ids[chosen], area[chosen], extent[chosen]
    ranked = ids[np.lexsort((-area, -extent))]  # longest side first, then area
    if len(ranked) > config.max_wire_components:
        caps_hit["wire_components"] += len(ranked) - config.max_wire_components
        ranked = ranked[: config.max_wire_components]
    keep = np.zeros(count, dtype=bool)
    keep[ranked] = True
    boxes = stats[ranked, :4]  # x, y, width, height
    return keep, labels, ranked, boxes
