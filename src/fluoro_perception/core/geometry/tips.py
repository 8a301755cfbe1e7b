"""Distal tip choice: score both ends of a centerline (tip heatmap, image/field border,
catheter around the end, curvature, radio-opacity), wire confidence and tip direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from fluoro_perception.core.geometry.config import GeometryConfig
from fluoro_perception.core.geometry.polyline import (
    _clip_to_grid,
    _end_direction,
    _turning_angle,
)

# Weights of the distal-end score (see ``_EndTerms``). The tip heatmap is the network's
# own opinion and dominates when present; an end at the image/field border or inside a
# catheter is almost surely proximal; curvature and radio-opacity only break near-ties.
_TIP_WEIGHT_HEATMAP = 3.0
_TIP_WEIGHT_BORDER = 3.0
_TIP_WEIGHT_CATHETER = 2.5
_TIP_WEIGHT_CURVATURE = 0.5
_TIP_WEIGHT_OPACITY = 0.5
# Share of the tip-heatmap response in the wire confidence when a heatmap is given.
_CONFIDENCE_TIP_SHARE = 0.3


def _window(array: np.ndarray, point: np.ndarray, radius: int) -> np.ndarray:
    height, width = array.shape
    x, y = int(round(float(point[0]))), int(round(float(point[1])))
    x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    return array[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]


def _sample_nearest(array: np.ndarray, points: np.ndarray) -> np.ndarray:
    indices = np.rint(points).astype(np.intp)  # (n, 2) x, y
    _clip_to_grid(indices, array.shape)
    return array[indices[:, 1], indices[:, 0]]


@dataclass(frozen=True)
class _TipContext:
    """Everything the distal-end score reads besides the centerline."""

    wire_prob: np.ndarray
    tip_prob: np.ndarray | None
    field_mask: np.ndarray | None
    catheter_prob: np.ndarray | None
    image: np.ndarray | None


def _touches_border(point: np.ndarray, context: _TipContext, margin: int) -> bool:
    height, width = context.wire_prob.shape
    x, y = float(point[0]), float(point[1])
    if x < margin or y < margin or x > width - 1 - margin or y > height - 1 - margin:
        return True
    if context.field_mask is not None:
        return not bool(_window(context.field_mask, point, margin + 1).all())
    return False


def _median(values: np.ndarray) -> float:
    """``np.median`` of a short 1-D array, without its general-case overhead."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float(np.mean(ordered[middle - 1 : middle + 1]))


def _in_dark_tube(
    point: np.ndarray,
    outward: np.ndarray,
    end_part: np.ndarray,
    context: _TipContext,
    config: GeometryConfig,
) -> bool:
    """Is the end inside a catheter (a wider dark tube continuing beyond the end)?

    With a catheter probability map: its maximum near the end and just beyond it. With
    only the image: the grey level inside a 5 px wide band along the end's axis (the
    tube lumen and walls, 5-9 px wide catheters per docs/real-fluoroscopy.md) against
    the level 9-12 px to either side (medians make the thin wire itself irrelevant),
    as a fraction of the wire's own contrast against that background. Band pixels
    segmented as wire are left out (another wire passing the end is no catheter).
    """
    normal = np.array([-outward[1], outward[0]])
    along = np.array([-4.0, 0.0, 4.0, 8.0])
    if context.catheter_prob is not None:
        probe = point + along[:, None] * outward
        response = float(_sample_nearest(context.catheter_prob, probe).max())
        if response >= config.catheter_threshold:
            return True
    if context.image is None:
        return False
    inner = np.array([-2.5, 0.0, 2.5])
    outer = np.array([-12.0, -9.0, 9.0, 12.0])
    # Only BEYOND the end: a catheter continues there, a free tip has background there.
    # Samples on the wire itself would mistake a dense radio-opaque distal tip (as wide
    # as the band) for a catheter and flip the tip choice.
    beyond = np.array([3.0, 6.0, 9.0, 12.0])
    centres = point + beyond[:, None] * outward  # (4, 2)
    inner_points = (centres[:, None, :] + inner[None, :, None] * normal).reshape(-1, 2)
    outer_points = (centres[:, None, :] + outer[None, :, None] * normal).reshape(-1, 2)
    # map_coordinates wants (row, col) = (y, x); bilinear, nearest edge value outside.
    # Beyond the end, pixels segmented as wire are another wire (a dual wire passing the
    # tip), not a catheter lumen: they do not count as tube.
    not_wire = _sample_nearest(context.wire_prob, inner_points) < config.wire_threshold
    if not_wire.sum() < inner_points.shape[0] // 2:
        return False
    inner_points = inner_points[not_wire]
    # one interpolation call for the three point sets (the wire's own points lie inside
    # the grid, where "nearest" changes nothing)
    points = np.concatenate([inner_points, outer_points, end_part])
    levels = map_coordinates(context.image, points[:, ::-1].T, order=1, mode="nearest")
    inner_end = len(inner_points)
    outer_end = inner_end + len(outer_points)
    inner_level, outer_level = levels[:inner_end], levels[inner_end:outer_end]
    wire_levels = levels[outer_end:]
    background = _median(outer_level)
    wire_level = _median(wire_levels)
    wire_contrast = background - wire_level
    if wire_contrast <= 1e-6:
        return False  # the wire is not darker than its surroundings: no reference
    contrast = (background - _median(inner_level)) / wire_contrast
    return bool(contrast >= config.catheter_contrast)


def _tip_heat(end: np.ndarray, context: _TipContext, config: GeometryConfig) -> float:
    """Largest tip-heatmap response within ``tip_search_radius_px`` of ``end`` (0 without
    a heatmap)."""
    if context.tip_prob is None:
        return 0.0
    return float(_window(context.tip_prob, end, config.tip_search_radius_px).max())


def _wire_confidence(
    centerline: np.ndarray, tip_heat: float, length: float, context: _TipContext,
    config: GeometryConfig,
) -> float:  # fmt: skip
    """Confidence of a wire in ``[0, 1]``: mean wire probability along the centerline
    (blended with the tip-heatmap response when there is a heatmap), reduced for wires
    shorter than ``confidence_full_length_px``."""
    mean_prob = float(_sample_nearest(context.wire_prob, centerline).mean())
    return _blended_confidence(mean_prob, tip_heat, length, context, config)


def _blended_confidence(
    mean_prob: float, tip_heat: float, length: float, context: _TipContext,
    config: GeometryConfig,
) -> float:  # fmt: skip
    """:func:`_wire_confidence` from the mean wire probability along the centerline."""
    confidence = mean_prob
    if context.tip_prob is not None:
        confidence = (1 - _CONFIDENCE_TIP_SHARE) * mean_prob + _CONFIDENCE_TIP_SHARE * tip_heat
    # Short fragments are less likely to be a whole wire.
    confidence *= min(1.0, length / config.confidence_full_length_px)
    return min(max(confidence, 0.0), 1.0)


def _orient_tip_first(
    centerline: np.ndarray, context: _TipContext, config: GeometryConfig
) -> tuple[np.ndarray, float]:
    """The centerline tip first (the end with the higher distal-end score, see
    :class:`_EndTerms`) and the tip-heatmap response at its tip.

    The catheter test, the costliest term, is evaluated only where it can change the
    choice: when the two scores without it differ by at most its weight.
    """
    start = _EndTerms.of(centerline, context, config)
    end = _EndTerms.of(centerline[::-1], context, config)
    score_start, score_end = start.score(False), end.score(False)
    if abs(score_end - score_start) <= _TIP_WEIGHT_CATHETER + 1e-9:
        score_start = start.score(start.in_catheter(context, config))
        score_end = end.score(end.in_catheter(context, config))
    if score_end > score_start:
        return centerline[::-1], end.heat
    return centerline, start.heat


@dataclass(frozen=True)
class _EndTerms:
    """The terms of the distal-end score of one end of a centerline.

    score = 3.0 * heatmap - 3.0 * border - 2.5 * catheter + 0.5 * curvature
    + 0.5 * opacity, with curvature the turning over the last
    ``tip_curvature_length_px`` divided by pi (clipped to 1) and opacity the mean wire
    probability there (the distal 2-3 cm are more radio-opaque); the catheter term
    (:func:`_in_dark_tube`) is computed on demand.
    """

    ordered: np.ndarray  # the centerline, this end first
    end_part: np.ndarray  # its points within tip_curvature_length_px
    heat: float
    border: bool
    curvature: float
    opacity: float

    @classmethod
    def of(cls, ordered: np.ndarray, context: _TipContext, config: GeometryConfig) -> _EndTerms:
        """Terms of ``ordered[0]``, the end of a centerline given that end first."""
        end = ordered[0]
        count = max(2, int(round(config.tip_curvature_length_px / config.resample_step_px)) + 1)
        end_part = ordered[:count]
        return cls(
            ordered=ordered,
            end_part=end_part,
            heat=_tip_heat(end, context, config),
            border=_touches_border(end, context, config.border_margin_px),
            curvature=min(1.0, _turning_angle(end_part) / math.pi),
            opacity=float(_sample_nearest(context.wire_prob, end_part).mean()),
        )

    def in_catheter(self, context: _TipContext, config: GeometryConfig) -> bool:
        """Whether the end lies inside a catheter (:func:`_in_dark_tube`)."""
        outward = -_end_direction(self.ordered, True, config.direction_sample_px)
        return _in_dark_tube(self.ordered[0], outward, self.end_part, context, config)

    def score(self, catheter: bool) -> float:
        return (
            _TIP_WEIGHT_HEATMAP * self.heat
            - _TIP_WEIGHT_BORDER * self.border
            - _TIP_WEIGHT_CATHETER * catheter
            + _TIP_WEIGHT_CURVATURE * self.curvature
            + _TIP_WEIGHT_OPACITY * self.opacity
        )


def _tip_direction(centerline: np.ndarray, length_px: float) -> float:
    """Direction from the wire body to the tip over the first ``length_px`` [rad].

    Principal axis of the points within ``length_px`` of the tip (arc length),
    oriented towards the tip.
    """
    steps = np.hypot(*np.diff(centerline, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    part = centerline[arc <= length_px]
    if len(part) < 2:
        part = centerline[:2]
    centred = part - part.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    if axis @ (part[0] - part[-1]) < 0:
        axis = -axis
    return float(math.atan2(axis[1], axis[0]))
