"""Public entry point of wire geometry: :func:`extract_wires` (probability maps ->
ordered guidewire centerlines with their distal tips), as a sequence of named steps."""

from __future__ import annotations

import math

import numpy as np

from fluoro_perception.core.geometry.chains import _fork_wire, _wire_chains
from fluoro_perception.core.geometry.config import GeometryConfig, _require_config, new_caps_hit
from fluoro_perception.core.geometry.masks import (
    _bounding_box,
    _check_map,
    _fill_small_holes,
    _wire_components,
)
from fluoro_perception.core.geometry.polyline import _path_length, _smooth_centerline
from fluoro_perception.core.geometry.skeleton_graph import _skeletonize, _skeletonize_parts
from fluoro_perception.core.geometry.tips import (
    _orient_tip_first,
    _tip_direction,
    _tip_heat,
    _TipContext,
    _wire_confidence,
)
from fluoro_perception.core.types import WireDetection

#: A fork's confidence is at most this share of the wire it branches from.
_FORK_RANK = 0.95

#: A wire candidate: (confidence, tip-first centerline (N, 2), length [px]).
_Candidate = tuple[float, np.ndarray, float]


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
        ``wire_chains``; see the ``max_*`` fields of :class:`GeometryConfig`).

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
    candidates, branches = _wire_candidates(chains, offset, context, config, caps_hit)
    if config.max_wires >= 2 and branches and candidates:
        candidates = _with_forks(candidates, branches, context, config)
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
    kept, labels, ranked, boxes = _wire_components(roi, config, caps_hit)
    inner = _bounding_box(kept, margin=1)
    if inner is None:
        return None
    # work only inside the box of the kept components
    bx0, by0, bx1, by1 = inner
    kept, labels = kept[by0:by1, bx0:bx1], labels[by0:by1, bx0:bx1]
    x0, y0, x1, y1 = x0 + bx0, y0 + by0, x0 + bx1, y0 + by1
    # Zero border of 1 px so 8-neighbour lookups never leave the array.
    labels = np.pad(labels, 1)
    boxes = boxes + np.array([1 - bx0, 1 - by0, 0, 0])  # into the padded crop
    if int((boxes[:, 2] * boxes[:, 3]).sum()) * 2 < kept.size:
        # small components spread over a large box: thin each in its own box
        skeleton = _skeletonize_parts(labels, ranked, boxes)
    else:
        skeleton = _skeletonize(np.pad(kept, 1))
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
    ``max_skeleton_px``, taking components in ``ranked`` order while they fit."""
    if np.count_nonzero(skeleton) <= config.max_skeleton_px:
        return
    sizes = np.bincount(labels[skeleton], minlength=int(ranked.max()) + 1)
    fits = np.zeros(len(sizes), dtype=bool)
    used = 0
    for label in ranked.tolist():
        if used + sizes[label] <= config.max_skeleton_px:
            used += int(sizes[label])
            fits[label] = True
        else:
            caps_hit["skeleton_px"] += 1
    skeleton[skeleton] = fits[labels[skeleton]]


def _wire_candidates(
    chains: list[np.ndarray],
    offset: np.ndarray,
    context: _TipContext,
    config: GeometryConfig,
    caps_hit: dict[str, int],
) -> tuple[list[_Candidate], list[np.ndarray]]:
    """Step 3: smooth every chain long enough to be a wire or a fork's branch (at most
    ``max_wire_chains``, longest first), orient it tip first and score it.

    Returns the wire candidates and the smoothed pieces long enough to be a fork's branch.
    """
    shape = context.wire_prob.shape
    shortest = max(min(config.min_wire_length_px, config.fork_min_branch_px or math.inf), 2.0)
    lengths = [_path_length(chain) for chain in chains]
    long_enough = [index for index, length in enumerate(lengths) if length >= shortest]
    if len(long_enough) > config.max_wire_chains:
        caps_hit["wire_chains"] += len(long_enough) - config.max_wire_chains
        # the longest ones, in their original order
        long_enough = sorted(
            sorted(long_enough, key=lambda index: -lengths[index])[: config.max_wire_chains]
        )
    candidates: list[_Candidate] = []
    branches: list[np.ndarray] = []
    for chain in (chains[index] for index in long_enough):
        centerline = _smooth_centerline(chain + offset, config)
        # Smoothing and junction curves may overshoot the grid by a fraction of a pixel.
        np.clip(centerline, 0.0, (shape[1] - 1, shape[0] - 1), out=centerline)
        length = _path_length(centerline)
        if len(centerline) < 2:
            continue
        if config.fork_min_branch_px and length >= config.fork_min_branch_px:
            branches.append(centerline)
        if length < config.min_wire_length_px:
            continue  # too short for a wire of its own (or smoothing shortened it)
        centerline, tip_heat = _orient_tip_first(centerline, context, config)
        confidence = _wire_confidence(centerline, tip_heat, length, context, config)
        candidates.append((confidence, centerline, length))
    return candidates, branches


def _with_forks(
    candidates: list[_Candidate],
    branches: list[np.ndarray],
    context: _TipContext,
    config: GeometryConfig,
) -> list[_Candidate]:
    """Step 4: add the second wire of every fork (branch + shared trunk), ranked below
    the wire it leaves, and drop the branches that became forks as wires of their own."""
    shape = context.wire_prob.shape
    forks: list[_Candidate] = []
    # A branch attaches within junction_trim_px + 2 of the trunk (see _fork_wire): one
    # with neither end in the trunk's box grown by that much is skipped cheaply.
    reach = config.junction_trim_px + 2.0
    branch_ends = [(*branch[0].tolist(), *branch[-1].tolist()) for branch in branches]
    for confidence, trunk, _ in candidates:
        x_low, y_low = (trunk.min(axis=0) - reach).tolist()
        x_high, y_high = (trunk.max(axis=0) + reach).tolist()
        for branch, (xa, ya, xb, yb) in zip(branches, branch_ends, strict=True):
            if not (
                (x_low <= xa <= x_high and y_low <= ya <= y_high)
                or (x_low <= xb <= x_high and y_low <= yb <= y_high)
            ):
                continue
            fork = _fork_wire(branch, trunk, config)
            if fork is None:
                continue
            np.clip(fork, 0.0, (shape[1] - 1, shape[0] - 1), out=fork)
            length = _path_length(fork)
            # a fork never outranks the wire it leaves: the primary tip stays put
            tip_heat = _tip_heat(fork[0], context, config)
            fork_confidence = _wire_confidence(fork, tip_heat, length, context, config)
            rank = min(fork_confidence, _FORK_RANK * confidence)
            forks.append((rank, fork, length))
    # a branch that became a fork is not also a wire of its own
    used = [fork[1][0] for fork in forks]
    kept = [
        c
        for c in candidates
        if not any(np.hypot(*(c[1][[0, -1]] - tip).T).min() < 1.0 for tip in used)
    ]
    return kept + forks


def _wire_detections(candidates: list[_Candidate], config: GeometryConfig) -> list[WireDetection]:
    """Step 5: the ``max_wires`` most confident candidates as detections, ``wire_id`` 0
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
