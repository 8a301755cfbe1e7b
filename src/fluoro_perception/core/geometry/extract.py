"""Public entry point of wire geometry: :func:`extract_wires` (probability maps ->
ordered guidewire centerlines with their distal tips), as a sequence of named steps."""

from __future__ import annotations

import numpy as np

from fluoro_perception.core.geometry.candidates import Candidate, wire_candidates
from fluoro_perception.core.geometry.chains import _wire_chains
from fluoro_perception.core.geometry.config import GeometryConfig, _require_config, new_caps_hit
from fluoro_perception.core.geometry.masks import (
    _bounding_box,
    _check_map,
    _fill_small_holes,
    _wire_components,
)
from fluoro_perception.core.geometry.skeleton_graph import (
    _neighbour_counts,
    _skeletonize,
    _skeletonize_parts,
)
from fluoro_perception.core.geometry.tips import (
    _tip_direction,
    _TipContext,
)
from fluoro_perception.core.types import WireDetection


def extract_wires(
    wire_prob: np.ndarray,
    tip_prob: np.ndarray | None,
    config: GeometryConfig,
    field_mask: np.ndarray | None = None,
    *,
    catheter_prob: np.ndarray | None = None,
    image: np.ndarray | None = None,
    stent_prob: np.ndarray | None = None,
    caps_hit: dict[str, int] | None = None,
) -> list[WireDetection]:
    """Ordered guidewire centerlines with their distal tips.

    Parameters
    ----------
    wire_prob : np.ndarray
        ``(H, W)`` float probability of the guidewire class in ``[0, 1]``.
    tip_prob : np.ndarray or None
        ``(H, W)`` tip heatmap (sigmoid) in ``[0, 1]``, or None when the model has none.
    config : GeometryConfig
        Thresholds and lengths.
    field_mask : np.ndarray, optional
        ``(H, W)`` bool, True inside the exposed field; wire pixels outside are ignored
        and an end at the field's edge is proximal.
    catheter_prob : np.ndarray, optional
        ``(H, W)`` catheter probability (models whose metadata lists a catheter class);
        an end inside a catheter is proximal.
    image : np.ndarray, optional
        ``(H, W)`` float image on the same grid, instruments dark (any affine grey
        scale, e.g. the normalized network input); used to recognise a catheter tube
        around an end.
    stent_prob : np.ndarray, optional
        ``(H, W)`` stent probability; wire pieces on both sides of a stent are joined
        through it (``config.stent_bridge_px``).
    caps_hit : dict, optional
        Counter (e.g. :func:`new_caps_hit`) to which the items each cost cap left out
        are added (keys ``wire_components``, ``wide_components``, ``skeleton_px``,
        ``graph_nodes``, ``wire_chains``; see the ``max_*`` fields of :class:`GeometryConfig`).

    Returns
    -------
    list[WireDetection]
        At most ``config.max_wires`` wires sorted by confidence (``wire_id`` 0 first);
        centerlines tip first, resampled every ``config.resample_step_px`` [px], in the
        grid of ``wire_prob``.
    """
    _require_config(config)
    context = _checked_context(wire_prob, tip_prob, field_mask, catheter_prob, image)
    if stent_prob is not None:
        stent_prob = _check_map("stent_prob", stent_prob, context.wire_prob.shape)
    if caps_hit is None:
        caps_hit = new_caps_hit()
    traced = _skeleton_chains(context.wire_prob, field_mask=context.field_mask,
                              stent_prob=stent_prob, config=config, caps_hit=caps_hit)  # fmt: skip
    if traced is None:
        return []
    chains, offset = traced
    candidates = wire_candidates(chains, offset, context, config, caps_hit)
    return _wire_detections(candidates, config)


def _checked_context(
    wire_prob: np.ndarray,
    tip_prob: np.ndarray | None,
    field_mask: np.ndarray | None,
    catheter_prob: np.ndarray | None,
    image: np.ndarray | None,
) -> _TipContext:
    """Step 1: validate the maps (all on the grid of ``wire_prob``) for the tip logic."""
    wire_prob = _check_map("wire_prob", wire_prob, None)
    shape = wire_prob.shape
    if tip_prob is not None:
        tip_prob = _check_map("tip_prob", tip_prob, shape)
    if field_mask is not None:
        field_mask = _check_map("field_mask", field_mask, shape).astype(bool, copy=False)
    if catheter_prob is not None:
        catheter_prob = _check_map("catheter_prob", catheter_prob, shape)
    if image is not None:
        image = _check_map("image", image, shape).astype(np.float32, copy=False)
    return _TipContext(
        wire_prob=wire_prob,
        tip_prob=tip_prob,
        field_mask=field_mask,
        catheter_prob=catheter_prob,
        image=image,
    )


def _skeleton_chains(
    wire_prob: np.ndarray,
    *,
    field_mask: np.ndarray | None,
    stent_prob: np.ndarray | None,
    config: GeometryConfig,
    caps_hit: dict[str, int],
) -> tuple[list[np.ndarray], np.ndarray] | None:
    """Step 2: threshold the wire map, keep the most wire-like components, skeletonize
    them inside their bounding box and trace the skeleton into chains.

    Returns the ordered chains (x, y) in the padded box and the offset that maps them to
    the grid of ``wire_prob``, or None when nothing is left to trace.
    """
    mask = wire_prob >= config.wire_threshold
    if field_mask is not None:
        mask &= field_mask
    box = _bounding_box(mask, margin=1)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    roi = _fill_small_holes(mask[y0:y1, x0:x1], config.hole_fill_px)
    keep, labels, ranked, boxes = _wire_components(roi, config, caps_hit)
    if len(ranked) == 0:
        return None  # early exit: nothing wire-like (blobs, specks, an empty map)
    # work only inside the box of the kept components (the union of their boxes, 1 px
    # margin), the kept mask built there only and only where it is thinned as a whole
    height, width = roi.shape
    bx0, by0 = (max(int(v) - 1, 0) for v in boxes[:, :2].min(axis=0))
    bx1 = min(int((boxes[:, 0] + boxes[:, 2]).max()) + 1, width)
    by1 = min(int((boxes[:, 1] + boxes[:, 3]).max()) + 1, height)
    x0, y0, x1, y1 = x0 + bx0, y0 + by0, x0 + bx1, y0 + by1
    # Zero border of 1 px so 8-neighbour lookups never leave the array.
    labels = np.pad(labels[by0:by1, bx0:bx1], 1)
    boxes = boxes + np.array([1 - bx0, 1 - by0, 0, 0])  # into the padded crop
    if int((boxes[:, 2] * boxes[:, 3]).sum()) * 2 < (by1 - by0) * (bx1 - bx0):
        # small components spread over a large box: thin each in its own box
        skeleton = _skeletonize_parts(labels, ranked, boxes)
    else:
        # the kept mask, zero border included (label 0 is never kept); ``take`` is ~2.5x
        # faster than fancy indexing with a 16-bit label image
        skeleton = _skeletonize(keep.take(labels))
    _limit_skeleton(skeleton, labels, ranked, config, caps_hit)
    offset = np.array([x0 - 1.0, y0 - 1.0])
    stent_roi = None
    if stent_prob is not None and config.stent_bridge_px > 0:
        stent_roi = np.pad(stent_prob[y0:y1, x0:x1] >= config.stent_threshold, 1)
    return _wire_chains(skeleton, config, stent_roi), offset


def _limit_skeleton(
    skeleton: np.ndarray,
    labels: np.ndarray,
    ranked: np.ndarray,
    config: GeometryConfig,
    caps_hit: dict[str, int],
) -> None:
    """Clear (in place) the skeletons of the components that do not fit in
    ``max_skeleton_px`` skeleton pixels and ``max_graph_nodes`` graph node pixels,
    taking components in ``ranked`` order while they fit; each one skipped is counted
    under the cap it did not fit (``skeleton_px`` first)."""
    flat = np.flatnonzero(skeleton)
    if len(flat) <= min(config.max_skeleton_px, config.max_graph_nodes):
        return  # neither cap can bite (node pixels are skeleton pixels)
    node_labels = None
    if len(flat) > config.max_graph_nodes:
        nodes = flat[_neighbour_counts(skeleton, flat) != 2]
        if len(nodes) > config.max_graph_nodes:
            node_labels = labels.ravel()[nodes]
    if node_labels is None and len(flat) <= config.max_skeleton_px:
        return
    minlength = int(ranked.max()) + 1
    sizes = np.bincount(labels.ravel()[flat], minlength=minlength).tolist()
    node_counts = (
        [0] * minlength
        if node_labels is None
        else np.bincount(node_labels, minlength=minlength).tolist()
    )
    fits = np.zeros(minlength, dtype=bool)
    used_px = used_nodes = 0
    for label in ranked.tolist():
        if used_px + sizes[label] > config.max_skeleton_px:
            caps_hit["skeleton_px"] += 1
        elif used_nodes + node_counts[label] > config.max_graph_nodes:
            caps_hit["graph_nodes"] += 1
        else:
            used_px += sizes[label]
            used_nodes += node_counts[label]
            fits[label] = True
    np.put(skeleton, flat, fits[labels.ravel()[flat]])  # in place, any memory layout


def _wire_detections(candidates: list[Candidate], config: GeometryConfig) -> list[WireDetection]:
    """Step 4: the ``max_wires`` most confident candidates as detections, ``wire_id`` 0
    first."""
    candidates = sorted(candidates, key=lambda item: -item[0])
    wires = []
    for wire_id, (confidence, centerline, length) in enumerate(candidates[: config.max_wires]):
        centerline_px = np.ascontiguousarray(centerline, dtype=np.float32)
        wires.append(
            WireDetection(
                wire_id=wire_id,
                centerline_px=centerline_px,
                tip_px=centerline_px[0].copy(),
                tip_direction_rad=_tip_direction(centerline, config.tip_direction_length_px),
                confidence=confidence,
                length_px=float(length),
            )
        )
    return wires
