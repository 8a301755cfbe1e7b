"""Wire chains: link paired skeleton edges into chains, join them smoothly through
junctions, bridge gaps (collinear ends, stents) and find the second wire of a fork."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from fluoro_perception.core.geometry.config import GeometryConfig
from fluoro_perception.core.geometry.polyline import (
    _concatenate,
    _end_direction,
    _smooth_centerline,
    _trim,
)
from fluoro_perception.core.geometry.skeleton_graph import (
    _pair_at_junctions,
    _simplify_graph,
    _skeleton_edges,
    _UnionFind,
)


def _link_sequences(
    item_count: int, partner: dict[tuple[int, int], tuple[int, int]], active: list[bool]
) -> list[list[tuple[int, int]]]:
    """Follow pairings between item ends into sequences of ``(item, entry_side)``.

    ``partner[(i, side)] = (j, side_j)`` means the end ``side`` (0 start, 1 end) of item
    ``i`` continues into item ``j`` through its end ``side_j``. Open sequences start at
    free ends; closed cycles are opened at an arbitrary item.
    """
    used = [not flag for flag in active]
    sequences: list[list[tuple[int, int]]] = []

    def trace(item: int, entry_side: int) -> list[tuple[int, int]]:
        sequence = []
        while True:
            used[item] = True
            sequence.append((item, entry_side))
            following = partner.get((item, 1 - entry_side))
            if following is None or used[following[0]]:
                return sequence
            item, entry_side = following

    for item in range(item_count):
        for side in (0, 1):
            if not used[item] and (item, side) not in partner:
                sequences.append(trace(item, side))
    for item in range(item_count):
        if not used[item]:
            sequences.append(trace(item, 0))
    return sequences


def _touched_labels(labels: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Largest component label within ``radius`` px of each ``(x, y)`` point on the grid
    of ``labels`` (0: none), all windows read in one gather."""
    height, width = labels.shape
    centres = np.rint(points).astype(np.intp)
    window = np.arange(-radius, radius + 1)
    # indices clipped to the grid repeat its edge pixels, which the window holds anyway
    xs = np.clip(centres[:, 0, None] + window, 0, width - 1)  # (n, 2 radius + 1)
    ys = np.clip(centres[:, 1, None] + window, 0, height - 1)
    return labels[ys[:, :, None], xs[:, None, :]].max(axis=(1, 2))


#: A chain end: (chain index, side 0 start / 1 end, position (x, y), outward direction).
_ChainEnd = tuple[int, int, np.ndarray, np.ndarray]


def _bridge_gaps(
    chains: list[np.ndarray], config: GeometryConfig, stent_mask: np.ndarray | None = None
) -> list[np.ndarray]:
    """Join chains whose ends face each other across a short, collinear gap, or across a
    longer one that runs through a stent (``stent_mask``, same grid as the chains)."""
    reach = config.gap_bridge_px
    if stent_mask is not None and config.stent_bridge_px > 0 and stent_mask.any():
        reach = max(reach, config.stent_bridge_px)
    else:
        stent_mask = None
    if reach <= 0 or len(chains) < 2:
        return chains
    ends, straight_positions = _chain_ends(chains, config)
    positions = np.array([end[2] for end in ends])
    stent_of_end = np.zeros(len(ends), np.int32)
    if stent_mask is not None:
        _, stent_labels = cv2.connectedComponents(stent_mask.astype(np.uint8), connectivity=8)
        stent_of_end = _touched_labels(stent_labels, positions, config.stent_touch_px)
    candidates = _bridge_candidates(
        ends, positions, straight_positions, stent_of_end, reach, config
    )
    if not candidates:
        return chains
    partner: dict[tuple[int, int], tuple[int, int]] = {}
    groups = _UnionFind(len(chains))
    for _, i, j in sorted(candidates):
        key_i, key_j = ends[i][:2], ends[j][:2]
        if key_i in partner or key_j in partner:
            continue
        if groups.find(key_i[0]) == groups.find(key_j[0]):
            continue  # would close a loop
        groups.union(key_i[0], key_j[0])
        partner[key_i] = key_j
        partner[key_j] = key_i
    return _join_sequences(chains, partner, [True] * len(chains), config)


def _chain_ends(
    chains: list[np.ndarray], config: GeometryConfig
) -> tuple[list[_ChainEnd], np.ndarray]:
    """Both ends of every chain, and the end positions behind the bent last pixels."""
    ends = []  # (chain, side, position, outward direction)
    straight_ends = []  # end positions behind the bent last pixels
    for chain_index, points in enumerate(chains):
        for side in (0, 1):
            # The last pixels of a skeleton bend along the edge where the mask was cut
            # off; measure the direction behind them.
            trimmed = _trim(points, config.junction_trim_px, at_start=side == 0)
            inward = _end_direction(trimmed, side == 0, config.direction_sample_px)
            ends.append((chain_index, side, points[0] if side == 0 else points[-1], -inward))
            straight_ends.append(trimmed[0] if side == 0 else trimmed[-1])
    return ends, np.array(straight_ends, np.float64)


def _bridge_candidates(
    ends: list[_ChainEnd],
    positions: np.ndarray,
    straight_positions: np.ndarray,
    stent_of_end: np.ndarray,
    reach: float,
    config: GeometryConfig,
) -> list[tuple[float, int, int]]:
    """Every pair of ends of different chains that may be bridged, with its cost (in no
    particular order)."""
    stent_cos_limit = math.cos(min(2.0 * config.gap_max_angle_rad, math.pi / 2))
    cos_limit = math.cos(config.gap_max_angle_rad)
    # all pairs i < j of ends of different chains within reach, in array operations
    # (np.vecdot: the same dot products as ``a @ b`` per pair)
    gaps_all = positions[None, :, :] - positions[:, None, :]  # (n, n, 2): j - i
    distances_all = np.hypot(gaps_all[..., 0], gaps_all[..., 1])
    chain_of = np.array([end[0] for end in ends])
    near = (distances_all <= reach) & (distances_all > 0)
    near &= chain_of[:, None] != chain_of[None, :]
    pair_i, pair_j = np.nonzero(np.triu(near, 1))
    distance = distances_all[pair_i, pair_j]
    unit_gap = gaps_all[pair_i, pair_j] / distance[:, None]
    outward = np.array([end[3] for end in ends])
    out_i, out_j = outward[pair_i], outward[pair_j]
    # a long gap only through one stent, each end pointing into the gap
    stent_i = stent_of_end[pair_i]
    long_gap = np.flatnonzero(
        (distance > config.gap_bridge_px)
        & (stent_i != 0)
        & (stent_i == stent_of_end[pair_j])
        & (np.vecdot(out_i, unit_gap) >= stent_cos_limit)
        & (np.vecdot(out_j, -unit_gap) >= stent_cos_limit)
    )
    # The two ends must face each other (anti-parallel directions) and the gap must run
    # along their mean direction; using the mean of both estimates tolerates one end
    # whose last pixels are bent.
    short = np.flatnonzero(distance <= config.gap_bridge_px)
    mean_direction = out_i[short] - out_j[short]
    # math.hypot, as per pair before (np.hypot can differ in the last bit)
    norm = np.array([math.hypot(x, y) for x, y in mean_direction.tolist()])
    usable = norm >= 1e-9
    short, mean_direction, norm = short[usable], mean_direction[usable], norm[usable]
    facing = np.vecdot(out_i[short], -out_j[short])
    along = np.vecdot(mean_direction, unit_gap[short]) / norm
    # sideways offset of the gap from the ends' mean direction [px], between the ends
    # behind their bent last pixels
    offset = straight_positions[pair_j[short]] - straight_positions[pair_i[short]]
    lateral = (
        np.abs(mean_direction[:, 0] * offset[:, 1] - mean_direction[:, 1] * offset[:, 0]) / norm
    )
    straight = (along >= cos_limit) | ((along > 0.0) & (lateral <= config.gap_lateral_px))
    facing_straight = (facing >= cos_limit) & straight
    short = short[facing_straight]
    # Prefer short gaps that both ends point straight at; a long one costs more per px.
    costs = np.concatenate(
        [
            distance[long_gap] * 3.0,
            distance[short] * (3.0 - facing[facing_straight] - along[facing_straight]),
        ]
    )
    chosen = np.concatenate([long_gap, short])
    return list(zip(costs.tolist(), pair_i[chosen].tolist(), pair_j[chosen].tolist(), strict=True))


def _join_sequences(
    pieces: list[np.ndarray],
    partner: dict[tuple[int, int], tuple[int, int]],
    active: list[bool],
    config: GeometryConfig,
) -> list[np.ndarray]:
    """Concatenate the active ``pieces`` along their end pairings into chains, each
    junction or gap crossed by a smooth curve (:func:`_join_through_junction`)."""
    joined = []
    for sequence in _link_sequences(len(pieces), partner, active):
        chain = None
        for index, side in sequence:
            points = pieces[index] if side == 0 else pieces[index][::-1]
            chain = points if chain is None else _join_through_junction(chain, points, config)
        joined.append(chain)
    return joined


def _wire_chains(
    skeleton: np.ndarray, config: GeometryConfig, stent_mask: np.ndarray | None = None
) -> list[np.ndarray]:
    """Ordered chains (x, y) of a wire skeleton with a zero border (``stent_mask``: the
    stent pixels on the same grid, for bridging through stents)."""
    edges, pixel_degree, _ = _skeleton_edges(skeleton)
    if not edges:
        return []
    nodes = _simplify_graph(edges, pixel_degree, config)
    partner = _pair_at_junctions(edges, nodes, config)
    active = [not edge.removed for edge in edges]
    chains = _join_sequences([edge.points for edge in edges], partner, active, config)
    return _bridge_gaps(chains, config, stent_mask)


def _fork_wire(branch: np.ndarray, trunk: np.ndarray, config: GeometryConfig) -> np.ndarray | None:
    """The second wire of a fork, tip first, or None.

    ``trunk`` is a wire's centerline, tip first; ``branch`` a piece with one end on the
    trunk's interior (within ``junction_trim_px + 2`` px, at least
    ``direction_sample_px`` from either trunk end) and the other end free: in dual-wire
    PCI both wires leave the guide catheter together and overlap until they part, so the
    mask is a Y whose junction pairing continued only one of them. The second wire is the
    branch (free end first) followed by the trunk from the junction to its proximal end.
    """
    attachment = _fork_attachment(branch, trunk, config)
    if attachment is None:
        return None
    ordered, k = attachment
    return _smooth_centerline(np.concatenate([ordered, trunk[k:]]), config)


def _fork_attachment(
    branch: np.ndarray, trunk: np.ndarray, config: GeometryConfig
) -> tuple[np.ndarray, int] | None:
    """How ``branch`` attaches to ``trunk`` for :func:`_fork_wire`: the branch ordered
    free end first and the trunk index it joins, or None. Whether it attaches, and the
    ordering, do not depend on which end of the trunk is its tip."""
    attach_px = config.junction_trim_px + 2.0
    sample = config.direction_sample_px
    if len(trunk) <= 2 * sample:
        return None
    for ordered in (branch, branch[::-1]):  # ordered[-1]: the end tried as the junction
        distances = np.hypot(*(trunk - ordered[-1]).T)
        k = int(np.argmin(distances))
        if distances[k] > attach_px or not sample <= k < len(trunk) - sample:
            continue
        if np.hypot(*(trunk - ordered[0]).T).min() <= 2 * attach_px:
            return None  # both ends on the trunk: a parallel piece, not a branch
        return ordered, k
    return None


def _join_through_junction(
    before: np.ndarray, after: np.ndarray, config: GeometryConfig
) -> np.ndarray:
    """Continue a chain through a junction or across a bridged gap (cubic Hermite).

    Near a junction the skeleton bends towards the other branches (and at a gap along
    the edge where the mask was cut), so both sides are trimmed by ``junction_trim_px``
    and joined by a Hermite curve whose end tangents are the branch directions measured
    further away; at a crossing this restores the wire's own course through the shared
    skeleton piece.
    """
    before = _trim(before, config.junction_trim_px, at_start=False)
    after = _trim(after, config.junction_trim_px, at_start=True)
    (x0, y0), (x1, y1) = before[-1].tolist(), after[0].tolist()
    gap = math.hypot(x1 - x0, y1 - y0)
    # ``before`` and ``after`` have no zero-length steps of their own (skeleton pixels,
    # or chains joined here): only the seam between them, or the bridge and its two
    # seams, need the check
    if gap < 1.5:
        return np.concatenate([before, after] if gap > 1e-9 else [before, after[1:]])
    controls = np.empty((4, 2))  # (start, start tangent, end, end tangent)
    controls[0] = before[-1]
    controls[1] = _end_direction(before, False, config.direction_sample_px)
    controls[1] *= -gap
    controls[2] = after[0]
    controls[3] = _end_direction(after, True, config.direction_sample_px)
    controls[3] *= gap
    bridge = _hermite_basis(int(math.ceil(gap))) @ controls
    seam = _concatenate([before[-1:], bridge, after[:1]])
    return np.concatenate([before[:-1], seam, after[1:]])


@functools.lru_cache(maxsize=256)
def _hermite_basis(segments: int) -> np.ndarray:
    """``(segments - 1, 4)`` cubic Hermite basis (h00, h10, h01, h11) at the interior
    samples ``t = k / segments`` (read-only, cached)."""
    t = np.linspace(0.0, 1.0, segments + 1)[1:-1, None]
    basis = np.hstack(
        [2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2]
    )
    basis.flags.writeable = False
    return basis
