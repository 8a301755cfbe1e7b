"""Skeleton pixel graph: split a skeleton into edges between end/junction pixels,
simplify the graph (junction clusters, spurs, close junctions) and pair edge ends at
every junction by straightness.

Written here rather than taken from a library; measured 2026-12-02 03:06 UTC on the
2-core AMD EPYC development machine with a training running on both cores (wall time,
best of 3 per skeleton, median over the 48 wire skeletons of 24 simulator + 24
distractor-dense frames through the shipped model, median 832 skeleton px;
"adversarial" is one skeleton of 40 crossing 3 px lines, 6,646 px; two runs each):

================================  ===============  ===============  ====================
skeleton -> edges                 sim frames       adversarial      cost of the library
================================  ===============  ===============  ====================
``_skeleton_edges`` (here)        0.61-0.65 ms     4.1-5.3 ms       none
skan 0.13.1 ``Skeleton`` + paths  2.6-3.5 ms       13.8-17.1 ms     new dependency: skan
                                                                    + numba + llvmlite +
                                                                    pandas, ~300 MB
                                                                    installed; import
                                                                    0.8-5.1 s, first
                                                                    call (JIT) 4.1-5.5 s
networkx 3.6 pixel graph and      1.7-2.1 ms       19.5-20.3 ms     not a runtime
degrees only (no paths yet)                                         dependency (19 MB,
                                                                    in the lock through
                                                                    torch); import
                                                                    0.22-1.4 s
================================  ===============  ===============  ====================

Union-find: ``_UnionFind`` (here) against ``scipy.cluster.hierarchy.DisjointSet``
(scipy is already a dependency) inside :func:`_simplify_graph`: 0.82-0.92 ms against
1.2-1.7 ms per sim skeleton (5.7-10.1 against 15.1-16.0 ms adversarial); building it for
832 pixels 0.02 ms against 0.26-0.60 ms (DisjointSet keeps dicts of Python objects).

Decision: no new dependency and no library swap; neither is faster, skan would add
~300 MB and seconds of start-up to the node, and the junction pairing by straightness
is wire-specific in any case.

Re-measured 2026-12-02 16:04 UTC (same machine, training running, same protocol; this
session's 48 skeletons, median 807 px, and the 8,664 px skeleton of the ``crossing_lines``
map of :mod:`fluoro_perception.bench.geometry_maps`, seed 0) after ``_skeleton_edges``
traced its paths in array operations instead of walking them pixel by pixel: 0.58-0.67
ms before, 0.39-0.46 ms after (5.3-6.2 ms and 3.4-3.9 ms adversarial; four runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from skimage.morphology import skeletonize

from fluoro_perception.core.geometry.config import GeometryConfig
from fluoro_perception.core.geometry.polyline import _cumulative_arc, _end_direction


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a


@dataclass
class _Edge:
    points: np.ndarray  # (m, 2) float64 (x, y) ordered from node ``start`` to node ``end``
    start: int  # node pixel index (before union-find)
    end: int
    length: float
    removed: bool = False


def _skeletonize(mask: np.ndarray) -> np.ndarray:
    """Skeleton (scikit-image thinning) of a bool mask, its 1 px array border cleared so
    8-neighbour lookups never leave the array."""
    skeleton = skeletonize(mask)
    skeleton[0, :] = skeleton[-1, :] = skeleton[:, 0] = skeleton[:, -1] = False
    return skeleton


def _skeletonize_parts(labels: np.ndarray, parts: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The skeleton of the components ``parts`` of ``labels`` (zero border), each thinned
    inside its own bounding box (``boxes``: x, y, width, height): the same pixels as
    :func:`_skeletonize` of their union (thinning is local and separate 8-connected
    components never touch), at the cost of the boxes instead of the whole array."""
    skeleton = np.zeros(labels.shape, dtype=bool)
    for label, (x, y, width, height) in zip(parts.tolist(), boxes.tolist(), strict=True):
        window = (slice(y - 1, y + height + 1), slice(x - 1, x + width + 1))
        skeleton[window] |= skeletonize(labels[window] == label)
    skeleton[0, :] = skeleton[-1, :] = skeleton[:, 0] = skeleton[:, -1] = False
    return skeleton


def _neighbour_presence(skeleton: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which 8-neighbours of the pixels at the flat indices ``flat`` of a skeleton with a
    zero border are skeleton pixels.

    Returns
    -------
    present, targets
        ``(n, 8)`` bool and the ``(n, 8)`` flat indices of the neighbours, each row in
        descending index order (the order in which :func:`_skeleton_edges` walks them).
    """
    width = skeleton.shape[1]
    steps = np.array([width + 1, width, width - 1, 1, -1, 1 - width, -width, -1 - width])
    targets = flat[:, None] + steps  # the zero border keeps indexing in range
    return skeleton.ravel()[targets], targets


def _neighbour_counts(skeleton: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Skeleton 8-neighbours ``(n,)`` of the pixels at the flat indices ``flat`` of a
    skeleton with a zero border (1 = end, 2 = path, 3+ = junction; the node degree of
    :func:`_skeleton_edges`)."""
    return _neighbour_presence(skeleton, flat)[0].sum(axis=1)


def _skeleton_edges(skeleton: np.ndarray) -> tuple[list[_Edge], np.ndarray, np.ndarray]:
    """Split a padded (zero border) skeleton into edges between node pixels.

    Node pixels have 1 or >= 3 skeleton neighbours (ends, junctions); edges are the
    maximal paths through 2-neighbour pixels between them. Closed rings without any node
    pixel are dropped: a guidewire always has two ends.

    The paths are traced in array operations rather than walked pixel by pixel: every
    ordered pair of neighbouring pixels (an arc) points to the arc that continues it
    through a 2-neighbour pixel, and pointer jumping (about log2 of the longest path in
    rounds) gives every arc the last arc of its path and the number of arcs to it. The
    result is that of a walk from every node in turn (nodes by flat index, a node's
    neighbours by descending flat index): each path starts at the end met first and the
    paths are listed in that order.

    Returns
    -------
    edges, node_degree_pixels, pixel_xy
        The edges; the neighbour count of every skeleton pixel ``(n,)``; the pixel
        coordinates ``(n, 2)`` (x, y) in the padded array.
    """
    # flat indices (row-major, as np.nonzero orders them, several times faster)
    flat = np.flatnonzero(skeleton)
    ys, xs = np.divmod(flat, skeleton.shape[1])
    pixel_xy = np.stack([xs, ys], axis=1).astype(np.float64)
    present, targets = _neighbour_presence(skeleton, flat)
    degree = present.sum(axis=1)
    is_node = degree != 2
    # Arcs (source -> target pixel), by source, then by descending target index; the
    # targets' indices by binary search in ``flat`` (in a frame, cheaper than an index
    # image of the whole array, whose fresh pages cost more than the search)
    target = np.searchsorted(flat, targets[present])
    source = np.repeat(np.arange(len(flat)), degree)
    arcs = np.arange(len(target))
    # Into a 2-neighbour pixel, an arc continues out of it to its other neighbour (its
    # two arcs are consecutive); into a node it is the last arc of its path.
    first_out = (np.cumsum(degree) - degree)[target]
    following = np.where(is_node[target], arcs, first_out + (target[first_out] == source))
    hops = (following != arcs).astype(np.intp)  # arcs from each arc to ``last`` below
    starts = arcs[is_node[source]]  # arcs out of a node begin a path
    # Pointer jumping until every path from a node is resolved (arcs of rings without a
    # node never are and are not needed).
    last = following
    while len(starts) and not np.array_equal(last[last[starts]], last[starts]):
        hops += hops[last]
        last = last[last]
    # Every path is found from both of its ends: keep the walk's direction, from the node
    # with the lower index (from the neighbour with the higher index where the path
    # returns to its own node).
    end_arcs = last[starts]
    end_node, before_end = target[end_arcs], source[end_arcs]
    begin = source[starts]
    kept = (begin < end_node) | ((begin == end_node) & (target[starts] > before_end))
    starts = starts[kept]
    sizes = hops[starts] + 2
    offsets = np.cumsum(sizes) - sizes
    # place each arc's target pixel in its path, behind the path's start node
    path_of = np.full(len(arcs), -1)
    path_of[last[starts]] = np.arange(len(starts))
    path = path_of[last]
    member = path >= 0
    path = path[member]
    paths = np.empty(int(sizes.sum()), dtype=np.intp)
    paths[offsets] = begin[kept]
    paths[offsets[path] + 1 + hops[starts][path] - hops[member]] = target[member]
    return _edges_of_paths(paths, sizes, pixel_xy), degree, pixel_xy


def _edges_of_paths(paths: np.ndarray, sizes: np.ndarray, pixel_xy: np.ndarray) -> list[_Edge]:
    """Edges of pixel-index paths (``paths``: all of them concatenated, ``sizes``: the
    pixels of each), their points and lengths computed in one pass."""
    if not len(sizes):
        return []
    points = pixel_xy[paths]
    arc = _cumulative_arc(points)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    lengths = (arc[ends - 1] - arc[starts]).tolist()
    return [
        _Edge(points[start:end], first, last, length)
        for start, end, first, last, length in zip(
            starts.tolist(),
            ends.tolist(),
            paths[starts].tolist(),
            paths[ends - 1].tolist(),
            lengths,
            strict=True,
        )
    ]


def _node_degrees(edges: list[_Edge], nodes: _UnionFind) -> dict[int, int]:
    degrees: dict[int, int] = {}
    for edge in edges:
        if edge.removed:
            continue
        for pixel in (edge.start, edge.end):
            root = nodes.find(pixel)
            degrees[root] = degrees.get(root, 0) + 1
    return degrees


def _simplify_graph(
    edges: list[_Edge], pixel_degree: np.ndarray, config: GeometryConfig
) -> _UnionFind:
    """Merge junction clusters, prune spurs and merge close junctions (in place)."""
    nodes = _UnionFind(len(pixel_degree))
    # Adjacent junction pixels form one junction cluster.
    for edge in edges:
        if len(edge.points) == 2 and pixel_degree[edge.start] >= 3 and pixel_degree[edge.end] >= 3:
            nodes.union(edge.start, edge.end)
            edge.removed = True
    # Spur pruning: a short branch from a junction to a free end is a skeleton artefact.
    # Degrees are counted once and then updated as spurs go (no union happens here).
    degrees = _node_degrees(edges, nodes)
    for _ in range(3):
        spurs_at: dict[int, list[_Edge]] = {}
        for edge in edges:
            if edge.removed or edge.length >= config.spur_length_px:
                continue
            root_a, root_b = nodes.find(edge.start), nodes.find(edge.end)
            if degrees[root_a] == 1 and degrees[root_b] >= 3:
                spurs_at.setdefault(root_b, []).append(edge)
            elif degrees[root_b] == 1 and degrees[root_a] >= 3:
                spurs_at.setdefault(root_a, []).append(edge)
        if not spurs_at:
            break
        for junction, spurs in spurs_at.items():
            # Keep the junction connected to at least two branches: of a forked end keep
            # the longest prong, which continues the wire.
            removable = degrees[junction] - 2
            for edge in sorted(spurs, key=lambda e: e.length)[: max(removable, 0)]:
                edge.removed = True
                degrees[nodes.find(edge.start)] -= 1
                degrees[nodes.find(edge.end)] -= 1
    # Two wires crossing at a shallow angle give two junctions joined by a short edge:
    # merge them so the crossing is one node with four branches.
    # Degrees are updated per merge instead of recounted over all edges (quadratic on
    # skeletons of noise); a removed pin-hole loop takes effect at the next merge.
    pending: dict[int, int] = {}
    for edge in edges:
        if edge.removed or edge.length > config.junction_merge_px:
            continue
        root_a, root_b = nodes.find(edge.start), nodes.find(edge.end)
        if root_a == root_b:
            edge.removed = True  # a pin-hole loop
            pending[root_a] = pending.get(root_a, 0) + 2
        elif degrees.get(root_a, 0) >= 3 and degrees.get(root_b, 0) >= 3:
            nodes.union(root_a, root_b)
            edge.removed = True
            for root, count in pending.items():
                degrees[root] -= count
            pending.clear()
            merged = degrees.pop(root_a) + degrees.pop(root_b) - 2
            degrees[nodes.find(root_a)] = merged
    return nodes


def _pair_at_junctions(
    edges: list[_Edge], nodes: _UnionFind, config: GeometryConfig
) -> dict[tuple[int, int], tuple[int, int]]:
    """Pair edge ends at every node, straightest continuation first."""
    ends_at: dict[int, list[tuple[int, int]]] = {}
    for edge_index, edge in enumerate(edges):
        if edge.removed:
            continue
        ends_at.setdefault(nodes.find(edge.start), []).append((edge_index, 0))
        ends_at.setdefault(nodes.find(edge.end), []).append((edge_index, 1))
    partner: dict[tuple[int, int], tuple[int, int]] = {}
    for ends in ends_at.values():
        if len(ends) < 2:
            continue
        if len(ends) == 2:
            # One way through: the same wire, however sharp the bend (J-tip).
            partner[ends[0]] = ends[1]
            partner[ends[1]] = ends[0]
            continue
        directions = [
            _end_direction(edges[e].points, side == 0, config.direction_sample_px)
            for e, side in ends
        ]
        candidates = []
        for i in range(len(ends)):
            for j in range(i + 1, len(ends)):
                # Travel arrives along -d_i and leaves along d_j: straight when d_i = -d_j.
                cosine = -float(directions[i] @ directions[j])
                turn = math.acos(max(-1.0, min(1.0, cosine)))
                if turn <= config.max_junction_turn_rad:
                    candidates.append((turn, i, j))
        taken = [False] * len(ends)
        for _, i, j in sorted(candidates):
            if taken[i] or taken[j]:
                continue
            taken[i] = taken[j] = True
            partner[ends[i]] = ends[j]
            partner[ends[j]] = ends[i]
    return partner
