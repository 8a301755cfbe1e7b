"""Wire candidates: smooth the traced chains, bound their confidence, orient (tip first)
only those that can still be reported, add the second wire of every fork.

Choosing the distal end (:func:`~fluoro_perception.core.geometry.tips._orient_tip_first`)
is the costliest step per chain, and on a segmentation with false-positive pieces most
chains cannot be among the ``max_wires`` reported. The orientation changes a chain's
confidence only through the tip-heatmap response at its tip, so both possible values
are cheap to compute; a chain whose higher value is below the ``max_wires``-th best
lower value of the chains that stay is never reported, and is not oriented. Forks are
handled alike: whether a branch attaches to a trunk, and its tip, do not depend on the
trunk's orientation, so the branches that forks remove are known before any
orientation, and a fork (at most ``_FORK_RANK`` of its trunk) is built only where it
can still be reported. The result is the same as orienting everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fluoro_perception.core.geometry.chains import _fork_attachment, _fork_wire
from fluoro_perception.core.geometry.config import GeometryConfig
from fluoro_perception.core.geometry.polyline import (
    _clip_to_grid,
    _path_length,
    _smooth_centerline,
)
from fluoro_perception.core.geometry.tips import (
    _blended_confidence,
    _orient_tip_first,
    _sample_nearest,
    _tip_heat,
    _TipContext,
    _wire_confidence,
)

#: A fork's confidence is at most this share of the wire it branches from.
_FORK_RANK = 0.95
#: Margin on confidence comparisons (the two orientations sum the same values in
#: another order).
_CONFIDENCE_EPS = 1e-9

#: A wire candidate: (confidence, tip-first centerline (N, 2), length [px]).
Candidate = tuple[float, np.ndarray, float]


@dataclass
class _Chain:
    """A smoothed chain long enough to be a wire, not oriented yet."""

    centerline: np.ndarray
    length: float
    low: float  # the lower of its confidences over both orientations
    high: float


def wire_candidates(
    chains: list[np.ndarray],
    offset: np.ndarray,
    context: _TipContext,
    config: GeometryConfig,
    caps_hit: dict[str, int],
) -> list[Candidate]:
    """Step 3 of :func:`extract_wires`: every wire and fork that can be among the
    ``max_wires`` reported, oriented tip first and scored, in the order the ranking
    breaks ties by (chains, then forks)."""
    pieces, branches = _smoothed(chains, offset, context, config, caps_hit)
    attachments: list[tuple[int, np.ndarray]] = []  # (trunk, branch ordered tip first)
    if config.max_wires >= 2 and branches and pieces:
        attachments = _fork_attachments(pieces, branches, config)
    # a branch that became a fork is not also a wire of its own
    used = [ordered[0] for _, _, ordered in attachments]
    removed = [
        any(np.hypot(*(piece.centerline[[0, -1]] - tip).T).min() < 1.0 for tip in used)
        for piece in pieces
    ]
    lows = sorted(
        (p.low for p, gone in zip(pieces, removed, strict=True) if not gone), reverse=True
    )
    bar = (
        lows[config.max_wires - 1] - _CONFIDENCE_EPS if len(lows) >= config.max_wires else -math.inf
    )
    oriented: dict[int, Candidate] = {}

    def candidate(index: int) -> Candidate:
        if index not in oriented:
            piece = pieces[index]
            centerline, tip_heat = _orient_tip_first(piece.centerline, context, config)
            confidence = _wire_confidence(centerline, tip_heat, piece.length, context, config)
            oriented[index] = (confidence, centerline, piece.length)
        return oriented[index]

    kept = [
        candidate(index)
        for index, piece in enumerate(pieces)
        if not removed[index] and piece.high >= bar
    ]
    forks = []
    for trunk_index, branch, _ in attachments:
        if _FORK_RANK * pieces[trunk_index].high < bar:
            continue  # ranked below the bar whatever its own confidence
        fork = _fork(branch, candidate(trunk_index), context, config)
        if fork is not None:
            forks.append(fork)
    return kept + forks


def _smoothed(
    chains: list[np.ndarray],
    offset: np.ndarray,
    context: _TipContext,
    config: GeometryConfig,
    caps_hit: dict[str, int],
) -> tuple[list[_Chain], list[np.ndarray]]:
    """Smooth every chain long enough to be a wire or a fork's branch (at most
    ``max_wire_chains``, longest first) and bound its confidence.

    Returns the chains long enough to be wires and the smoothed pieces long enough to be
    a fork's branch.
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
    pieces: list[_Chain] = []
    branches: list[np.ndarray] = []
    for chain in (chains[index] for index in long_enough):
        centerline = _smooth_centerline(chain + offset, config)
        # Smoothing and junction curves may overshoot the grid by a fraction of a pixel.
        _clip_to_grid(centerline, shape)
        length = _path_length(centerline)
        if len(centerline) < 2:
            continue
        if config.fork_min_branch_px and length >= config.fork_min_branch_px:
            branches.append(centerline)
        if length < config.min_wire_length_px:
            continue  # too short for a wire of its own (or smoothing shortened it)
        mean_prob = float(_sample_nearest(context.wire_prob, centerline).mean())
        bounds = [
            _blended_confidence(mean_prob, _tip_heat(end, context, config), length, context, config)
            for end in (centerline[0], centerline[-1])
        ]
        pieces.append(_Chain(centerline, length, min(bounds), max(bounds)))
    return pieces, branches


def _fork_attachments(
    pieces: list[_Chain], branches: list[np.ndarray], config: GeometryConfig
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(trunk index, branch, branch ordered tip first) of every branch that attaches to
    a trunk, trunks in order, then branches."""
    # A branch attaches within junction_trim_px + 2 of the trunk (see _fork_attachment):
    # one with neither end in the trunk's box grown by that much is skipped cheaply.
    reach = config.junction_trim_px + 2.0
    branch_ends = [(*branch[0].tolist(), *branch[-1].tolist()) for branch in branches]
    attachments = []
    for trunk_index, piece in enumerate(pieces):
        trunk = piece.centerline
        x_low, y_low = (trunk.min(axis=0) - reach).tolist()
        x_high, y_high = (trunk.max(axis=0) + reach).tolist()
        for branch, (xa, ya, xb, yb) in zip(branches, branch_ends, strict=True):
            if not (
                (x_low <= xa <= x_high and y_low <= ya <= y_high)
                or (x_low <= xb <= x_high and y_low <= yb <= y_high)
            ):
                continue
            attachment = _fork_attachment(branch, trunk, config)
            if attachment is not None:
                attachments.append((trunk_index, branch, attachment[0]))
    return attachments


def _fork(
    branch: np.ndarray, trunk: Candidate, context: _TipContext, config: GeometryConfig
) -> Candidate | None:
    """The second wire of a fork (branch + the oriented trunk's proximal part), ranked
    below the wire it leaves: a fork never outranks it, so the primary tip stays put."""
    confidence, centerline, _ = trunk
    fork = _fork_wire(branch, centerline, config)
    if fork is None:
        return None
    _clip_to_grid(fork, context.wire_prob.shape)
    length = _path_length(fork)
    tip_heat = _tip_heat(fork[0], context, config)
    fork_confidence = _wire_confidence(fork, tip_heat, length, context, config)
    return (min(fork_confidence, _FORK_RANK * confidence), fork, length)
