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
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from skimage.morphology import skeletonize

from fluoro_perception.core.geometry.config import GeometryConfig
from fluoro_perception.core.geometry.polyline import _end_direction

# 8-neighbourhood offsets (dy, dx).
_NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


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


def _skeleton_edges(skeleton: np.ndarray) -> tuple[list[_Edge], np.ndarray, np.ndarray]:
    """Split a padded (zero border) skeleton into edges between node pixels.

    Node pixels have 1 or >= 3 skeleton neighbours (ends, junctions); edges are the
    maximal paths through 2-neighbour pixels between them. Closed rings without any node
    pixel are dropped: a guidewire always has two ends.

    Returns
    -------
    edges, node_degree_pixels, pixel_xy
        The edges; the neighbour count of every skeleton pixel ``(n,)``; the pixel
        coordinates ``(n, 2)`` (x, y) in the padded array.
    """
    # flat indices (row-major, as np.nonzero orders them, several times faster)
    width = skeleton.shape[1]
    flat = np.flatnonzero(skeleton)
    ys, xs = np.divmod(flat, width)
    count = len(flat)
    index = np.full(skeleton.size, -1, dtype=np.int64)
    index[flat] = np.arange(count)
    # (n, 8) neighbour indices (-1 = none); the zero border keeps indexing in range.
    neighbours = np.stack(
        [index[flat + (dy * width + dx)] for dy, dx in _NEIGHBOUR_OFFSETS], axis=1
    )
    degree = (neighbours >= 0).sum(axis=1)
    pixel_xy = np.stack([xs, ys], axis=1).astype(np.float64)
    is_node = (degree != 2).tolist()
    # Descending sort puts the valid neighbours first: a 2-neighbour pixel's pair is
    # its first two entries, so only node pixels need their full list.
    neighbours = -np.sort(-neighbours, axis=1)
    neighbour_pairs = neighbours[:, :2].tolist()
    node_pixels = np.flatnonzero(degree != 2)
    node_neighbours = [
        row[:d]
        for row, d in zip(
            neighbours[node_pixels].tolist(), degree[node_pixels].tolist(), strict=True
        )
    ]
    visited = [False] * count
    paths: list[list[int]] = []
    # Walking the chains is sequential by nature; it runs over skeleton pixels only
    # (a few hundred per wire), not over the image.
    for start, start_neighbours in zip(node_pixels.tolist(), node_neighbours, strict=True):
        for first in start_neighbours:
            if is_node[first]:
                if start < first:
                    path = [start, first]
                else:
                    continue
            elif visited[first]:
                continue
            else:
                path = [start, first]
                visited[first] = True
                previous, current = start, first
                while True:
                    a, b = neighbour_pairs[current]
                    following = b if a == previous else a
                    path.append(following)
                    if is_node[following] or visited[following]:
                        break
                    visited[following] = True
                    previous, current = current, following
            paths.append(path)
    return _edges_of_paths(paths, pixel_xy), degree, pixel_xy


def _edges_of_paths(paths: list[list[int]], pixel_xy: np.ndarray) -> list[_Edge]:
    """Edges of pixel-index paths, their points and lengths computed in one pass."""
    if not paths:
        return []
    sizes = np.array([len(path) for path in paths])
    flat = np.fromiter(itertools.chain.from_iterable(paths), dtype=np.intp, count=sizes.sum())
    points = pixel_xy[flat]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    lengths = (arc[ends - 1] - arc[starts]).tolist()
    return [
        _Edge(points[start:end], path[0], path[-1], length)
        for path, start, end, length in zip(
            paths, starts.tolist(), ends.tolist(), lengths, strict=True
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
