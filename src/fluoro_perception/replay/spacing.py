"""The pixel spacing [m/px] a replay turns metres into pixels with, and where it came from."""

from __future__ import annotations

import math
from pathlib import Path

from fluoro_perception.bagio import (
    GT_MARKERS_TOPIC,
    MARKER_ARRAY_TYPE,
    PIXEL_SPACING_KEY,
    BagError,
    BagReader,
    open_bag,
)

#: Pixel spacing used when neither the user nor the bag gives one: the segmentation
#: node's default ``pixel_spacing_m`` [m/px] (``config/segment.yaml``).
FALLBACK_PIXEL_SPACING_M = 2.0e-4
#: Length of the GT tip arrows ``fluoro-sim bag`` writes on ``/fluoro/ground_truth/markers``
#: [px] (``bagio.markers.frame_markers``): arrow length [m] / this = the bag's pixel spacing.
GT_TIP_ARROW_LENGTH_PX = 20.0


def pixel_spacing_from_markers(bag: BagReader) -> float | None:
    """Pixel spacing [m/px] of a ``fluoro-sim bag`` from its GT tip arrows, None if absent.

    The simulator writes every GT tip as an ARROW marker ``GT_TIP_ARROW_LENGTH_PX`` long
    with both end points in metres, so ``|head - tail| [m] / 20 [px]`` is the spacing the
    bag's metre positions were computed with (bags written before ``fluoro-sim bag``
    stored :data:`~fluoro_perception.bagio.PIXEL_SPACING_KEY` have no spacing field).
    """
    if bag.topics.get(GT_MARKERS_TOPIC) != MARKER_ARRAY_TYPE:
        return None
    for _, message in bag.iter_messages(GT_MARKERS_TOPIC, MARKER_ARRAY_TYPE):
        for marker in message.markers:
            if marker.ns == "tip" and marker.type == 0 and len(marker.points) == 2:
                tail, head = marker.points
                length_m = math.hypot(head.x - tail.x, head.y - tail.y)
                if length_m > 0.0:
                    return length_m / GT_TIP_ARROW_LENGTH_PX
    return None


def resolve_pixel_spacing(bag_path: str | Path, override_m: float | None) -> tuple[float, str]:
    """The pixel spacing [m/px] to use for a bag and where it came from.

    Order: ``override_m`` (``--pixel-spacing``), the bag's ``metadata.yaml`` custom data
    (:data:`~fluoro_perception.bagio.PIXEL_SPACING_KEY`, written by ``fluoro-sim bag``),
    the GT tip markers of a simulator bag (:func:`pixel_spacing_from_markers`, for bags
    written before the key existed or read without their metadata), else
    :data:`FALLBACK_PIXEL_SPACING_M` (the node default; metre outputs and mm errors then
    carry that assumption). When both the metadata and the markers give a spacing, the
    metadata wins and the returned source says whether the markers agree (rel. 1e-6).
    """
    if override_m is not None:
        if not (math.isfinite(override_m) and override_m > 0.0):
            raise ValueError(
                f"--pixel-spacing {override_m!r}; expected a finite spacing > 0 [m/px], e.g. 2e-4"
            )
        return float(override_m), "--pixel-spacing"
    with open_bag(bag_path) as bag:
        from_metadata = bag.pixel_spacing_m
        try:
            from_markers = pixel_spacing_from_markers(bag)
        except BagError:
            from_markers = None  # a damaged marker topic: fall back, the frames may still read
    if from_metadata is not None:
        source = f"bag metadata custom_data ({PIXEL_SPACING_KEY})"
        if from_markers is not None:
            # the markers are a cross-check: a bag edited or merged by hand can disagree
            agree = math.isclose(from_markers, from_metadata, rel_tol=1e-6)
            source += (
                "; ground-truth tip markers agree"
                if agree
                else f"; ground-truth tip markers disagree ({from_markers!r} m/px, not used)"
            )
        return from_metadata, source
    if from_markers is not None:
        return from_markers, f"ground-truth tip markers ({GT_MARKERS_TOPIC})"
    return FALLBACK_PIXEL_SPACING_M, "assumed (segmentation_node default pixel_spacing_m)"
