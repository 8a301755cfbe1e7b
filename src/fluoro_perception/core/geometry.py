"""Geometry of segmented instruments: guidewire centerlines, distal tips and stents.

Stage 4 of the pipeline (preprocess -> infer -> decode -> **geometry** -> tracking). The
functions take per-pixel probabilities on one pixel grid (usually the model grid) and
return :class:`~fluoro_perception.core.types.WireDetection` /
:class:`~fluoro_perception.core.types.StentDetection` in the **same** grid; the caller
maps points to the input image with ``FrameTransform.points_to_input``.

Guidewire centerlines (seed 001_d0d03ac8067c31fe.txt, FRA-Net: mono- and dual-guidewire
segmentation and tracking; the paper segments the wires and leaves the centerline to
post-processing, which is what this module does):

1. threshold the guidewire probability, remove small components, fill pin holes;
2. skeletonize (scikit-image) and turn the skeleton into a graph whose nodes are end
   points and junction clusters and whose edges are ordered pixel paths;
3. prune short spurs, merge junctions joined by very short edges (the skeleton of two
   wires crossing at a shallow angle has two junctions a few pixels apart);
4. at every junction pair the incident edges by straightness (smallest turn first), so a
   wire continues straight through a crossing and two crossing wires stay two instances;
5. bridge gaps between collinear, direction-consistent chain ends (low contrast);
6. smooth (Savitzky-Golay) and resample at about 1 px;
7. choose the distal end (tip) from the tip heatmap, the image/field border, a catheter
   around the end, curvature and radio-opacity; order the centerline tip first.

The graph code is written here rather than taken from a library: networkx is not a
declared dependency, and the straightness pairing at junctions is specific to wires.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import map_coordinates
from scipy.signal import savgol_coeffs
from skimage.morphology import skeletonize

from fluoro_perception.core.types import StentDetection, WireDetection

__all__ = [
    "GeometryConfig",
    "clean_mask",
    "extract_stents",
    "extract_wires",
]

# Weights of the distal-end score (see ``_end_score``). The tip heatmap is the network's
# own opinion and dominates when present; an end at the image/field border or inside a
# catheter is almost surely proximal; curvature and radio-opacity only break near-ties.
_TIP_WEIGHT_HEATMAP = 3.0
_TIP_WEIGHT_BORDER = 3.0
_TIP_WEIGHT_CATHETER = 2.5
_TIP_WEIGHT_CURVATURE = 0.5
_TIP_WEIGHT_OPACITY = 0.5
# Share of the tip-heatmap response in the wire confidence when a heatmap is given.
_CONFIDENCE_TIP_SHARE = 0.3
#: A fork's confidence is at most this share of the wire it branches from.
_FORK_RANK = 0.95

# 8-neighbourhood offsets (dy, dx).
_NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class GeometryConfig:
    """Parameters of wire and stent geometry extraction (all lengths on the input grid).

    Attributes
    ----------
    wire_threshold : float
        Guidewire probability at or above which a pixel is wire, in ``(0, 1)``.
    stent_threshold : float
        Stent probability at or above which a pixel is stent, in ``(0, 1)``.
    min_component_px : int
        Connected components (8-connectivity) smaller than this are removed [px^2].
    hole_fill_px : int
        Holes in the wire mask up to this area are filled before skeletonizing [px^2];
        0 (default) leaves them to the graph step, which removes the small skeleton
        loops they cause, and saves a labelling pass.
    spur_length_px : float
        Skeleton branches ending free and shorter than this are pruned [px].
    junction_merge_px : float
        Junctions joined by a skeleton edge at most this long become one node [px]; two
        3 px wires crossing at 25 deg share about 20 px of skeleton.
    junction_trim_px : float
        Skeleton length cut from each branch at a junction or bridged gap before the
        pieces are joined by a smooth curve (the skeleton bends there) [px].
    max_junction_turn_rad : float
        Largest turn allowed when continuing through a junction with 3+ branches [rad].
    direction_sample_px : int
        Path length used to estimate the direction of a branch at its end [px].
    gap_bridge_px : float
        Largest gap between two collinear chain ends that is bridged [px]; 0 disables.
    gap_max_angle_rad : float
        Largest angle between the two ends' directions, and between their mean direction
        and the gap vector, for bridging [rad].
    gap_lateral_px : float
        Sideways offset between two facing ends that is bridged whatever the gap's
        angle [px]: where struts or noise cut a wire every few pixels, the skeleton ends
        bend by up to about the wire's width, so short gaps look steep.
    stent_bridge_px : float
        Largest gap bridged where the wire runs through a stent [px]; 0 disables. A stent
        is delivered over the wire, so the wire continues under its struts, but pixels
        there are labelled stent and the wire mask breaks for the stent's length
        (8-40 mm, up to ~400 px at 0.1 mm/px).
        Both ends must touch the same stent (within ``stent_touch_px``) and each must
        point at the other end within twice ``gap_max_angle_rad`` (a stent on a curved
        vessel bends the wire inside it).
    stent_touch_px : int
        Distance from a chain end within which it touches a stent [px].
    fork_min_branch_px : float
        Dual-wire PCI: both wires leave the guide catheter together and overlap until they
        part, so the mask is a Y. A branch at least this long that ends on a wire's
        skeleton is returned as a second wire (branch + shared trunk), ranked below the
        wire it leaves [px]; 0 disables (only with ``max_wires`` >= 2).
    max_wires : int
        Most wire instances returned (2 for dual-guidewire PCI).
    min_wire_length_px : float
        Wires shorter than this (after bridging) are dropped [px].
    smoothing_window_px : int
        Savitzky-Golay window along the centerline (odd, >= 5), or 0 for no smoothing [px].
    resample_step_px : float
        Spacing of the returned centerline points [px].
    tip_direction_length_px : float
        Centerline length behind the tip used for the tip direction [px].
    tip_search_radius_px : int
        Half size of the window around an end where the tip heatmap is read [px].
    border_margin_px : int
        An end closer than this to the image border or outside the field is proximal [px].
    tip_curvature_length_px : float
        Length at each end over which curvature and radio-opacity are compared [px].
    confidence_full_length_px : float
        Wires shorter than this get a proportionally reduced confidence [px].
    catheter_threshold : float
        Catheter probability at or above which an end counts as inside a catheter.
    catheter_contrast : float
        Dark-tube contrast around an end, as a fraction of the wire's own contrast
        against the background, at or above which the end counts as inside a catheter
        when only the image is given.
    stent_close_px : int
        Diameter of the closing kernel that joins the strut mesh of a stent [px]; 0 off.
    stent_min_area_px : int
        Stent instances smaller than this after closing are dropped [px^2].
    stent_outline_epsilon_px : float
        Douglas-Peucker tolerance of the stent outline polygon [px].
    """

    wire_threshold: float = 0.5
    stent_threshold: float = 0.5
    min_component_px: int = 20
    hole_fill_px: int = 0
    spur_length_px: float = 8.0
    junction_merge_px: float = 25.0
    junction_trim_px: float = 4.0
    max_junction_turn_rad: float = 1.05
    direction_sample_px: int = 10
    gap_bridge_px: float = 15.0
    gap_max_angle_rad: float = 0.6
    gap_lateral_px: float = 4.0
    stent_bridge_px: float = 300.0
    stent_touch_px: int = 3
    fork_min_branch_px: float = 15.0
    max_wires: int = 2
    min_wire_length_px: float = 20.0
    smoothing_window_px: int = 9
    resample_step_px: float = 1.0
    tip_direction_length_px: float = 15.0
    tip_search_radius_px: int = 5
    border_margin_px: int = 3
    tip_curvature_length_px: float = 30.0
    confidence_full_length_px: float = 60.0
    catheter_threshold: float = 0.5
    catheter_contrast: float = 0.3
    stent_close_px: int = 5
    stent_min_area_px: int = 30
    stent_outline_epsilon_px: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "wire_threshold",
            "stent_threshold",
            "catheter_threshold",
        ):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a probability in (0, 1); "
                    "use e.g. 0.5."
                )
        positive = (
            "spur_length_px",
            "junction_merge_px",
            "junction_trim_px",
            "max_junction_turn_rad",
            "gap_max_angle_rad",
            "resample_step_px",
            "tip_direction_length_px",
            "tip_curvature_length_px",
            "confidence_full_length_px",
            "catheter_contrast",
            "stent_outline_epsilon_px",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a finite number > 0; "
                    "use the default or a positive value."
                )
        non_negative = (
            "gap_bridge_px",
            "min_wire_length_px",
            "stent_bridge_px",
            "gap_lateral_px",
            "fork_min_branch_px",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected a finite number >= 0; "
                    "use 0 to disable."
                )
        integers_min = {
            "min_component_px": 0,
            "hole_fill_px": 0,
            "direction_sample_px": 2,
            "max_wires": 1,
            "tip_search_radius_px": 0,
            "border_margin_px": 0,
            "stent_close_px": 0,
            "stent_touch_px": 0,
            "stent_min_area_px": 0,
        }
        for name, minimum in integers_min.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"GeometryConfig.{name}={value!r}: expected an int >= {minimum}; "
                    "pass a whole number."
                )
        window = self.smoothing_window_px
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or (window != 0 and (window < 5 or window % 2 == 0))
        ):
            raise ValueError(
                f"GeometryConfig.smoothing_window_px={window!r}: expected 0 (off) or an odd "
                "int >= 5; use e.g. 9."
            )
        if self.max_junction_turn_rad > math.pi or self.gap_max_angle_rad > math.pi:
            raise ValueError(
                f"GeometryConfig angles max_junction_turn_rad={self.max_junction_turn_rad!r}, "
                f"gap_max_angle_rad={self.gap_max_angle_rad!r}: expected values <= pi [rad]."
            )


# --------------------------------------------------------------------------------------
# Input checks and masks
# --------------------------------------------------------------------------------------


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
    # 16-bit labels are faster; an 8-connected image holds at most size/4 components.
    label_type = cv2.CV_16U if mask_u8.size // 4 < 65535 else cv2.CV_32S
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask_u8, connectivity=8, ltype=label_type
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= min_component_px
    keep[0] = False
    return keep[labels]


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


# --------------------------------------------------------------------------------------
# Skeleton graph
# --------------------------------------------------------------------------------------


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


def _path_length(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    return float(np.hypot(*np.diff(points, axis=0).T).sum())


def _end_direction(points: np.ndarray, at_start: bool, sample_px: int) -> np.ndarray:
    """Unit vector at one end of a path pointing *into* the path (away from that end)."""
    count = len(points)
    if count < 2:
        return np.zeros(2)
    k = min(sample_px, count - 1)
    vector = points[k] - points[0] if at_start else points[-1 - k] - points[-1]
    norm = math.hypot(vector[0], vector[1])
    return vector / norm if norm > 0 else np.zeros(2)


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
    ys, xs = np.nonzero(skeleton)
    count = len(ys)
    index = np.full(skeleton.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(count)
    # (n, 8) neighbour indices (-1 = none); the zero border keeps indexing in range.
    neighbours = np.stack([index[ys + dy, xs + dx] for dy, dx in _NEIGHBOUR_OFFSETS], axis=1)
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
    edges: list[_Edge] = []
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
            points = pixel_xy[path]
            edges.append(_Edge(points, path[0], path[-1], _path_length(points)))
    return edges, degree, pixel_xy


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
    for _ in range(3):
        degrees = _node_degrees(edges, nodes)
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
    # Two wires crossing at a shallow angle give two junctions joined by a short edge:
    # merge them so the crossing is one node with four branches.
    degrees = _node_degrees(edges, nodes)
    for edge in edges:
        if edge.removed or edge.length > config.junction_merge_px:
            continue
        root_a, root_b = nodes.find(edge.start), nodes.find(edge.end)
        if root_a == root_b:
            edge.removed = True  # a pin-hole loop
        elif degrees.get(root_a, 0) >= 3 and degrees.get(root_b, 0) >= 3:
            nodes.union(root_a, root_b)
            edge.removed = True
            degrees = _node_degrees(edges, nodes)
    return nodes


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


def _concatenate(pieces: list[np.ndarray]) -> np.ndarray:
    points = np.concatenate(pieces, axis=0)
    # Consecutive pieces share their node pixel; drop zero-length steps.
    step = np.hypot(*np.diff(points, axis=0).T)
    keep = np.concatenate([[True], step > 1e-9])
    return points[keep]


def _touched_labels(labels: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Largest component label within ``radius`` px of each ``(x, y)`` point (0: none)."""
    height, width = labels.shape
    touched = np.zeros(len(points), np.int32)
    for k, (x, y) in enumerate(np.rint(points).astype(np.intp)):
        window = labels[
            max(y - radius, 0) : min(y + radius + 1, height),
            max(x - radius, 0) : min(x + radius + 1, width),
        ]
        touched[k] = int(window.max()) if window.size else 0
    return touched


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
    positions = np.array([end[2] for end in ends])
    straight_positions = np.array(straight_ends, np.float64)
    stent_of_end = np.zeros(len(ends), np.int32)
    if stent_mask is not None:
        _, stent_labels = cv2.connectedComponents(stent_mask.astype(np.uint8), connectivity=8)
        stent_of_end = _touched_labels(stent_labels, positions, config.stent_touch_px)
    stent_cos_limit = math.cos(min(2.0 * config.gap_max_angle_rad, math.pi / 2))
    cos_limit = math.cos(config.gap_max_angle_rad)
    candidates = []
    for i in range(len(ends)):
        gaps = positions - positions[i]
        distances = np.hypot(gaps[:, 0], gaps[:, 1])
        for j in np.flatnonzero((distances <= reach) & (distances > 0)).tolist():
            if j <= i or ends[i][0] == ends[j][0]:
                continue
            unit_gap = gaps[j] / distances[j]
            through_stent = bool(stent_of_end[i]) and stent_of_end[i] == stent_of_end[j]
            if distances[j] > config.gap_bridge_px:
                # a long gap only through one stent, each end pointing into the gap
                if not (
                    through_stent
                    and float(ends[i][3] @ unit_gap) >= stent_cos_limit
                    and float(ends[j][3] @ -unit_gap) >= stent_cos_limit
                ):
                    continue
                candidates.append((distances[j] * 3.0, i, j))
                continue
            # The two ends must face each other (anti-parallel directions) and the gap
            # must run along their mean direction; using the mean of both estimates
            # tolerates one end whose last pixels are bent.
            facing = float(ends[i][3] @ -ends[j][3])
            mean_direction = ends[i][3] - ends[j][3]
            norm = math.hypot(mean_direction[0], mean_direction[1])
            if norm < 1e-9:
                continue
            along = float(mean_direction @ unit_gap) / norm
            # sideways offset of the gap from the ends' mean direction [px], between the
            # ends behind their bent last pixels
            offset = straight_positions[j] - straight_positions[i]
            lateral = abs(mean_direction[0] * offset[1] - mean_direction[1] * offset[0]) / norm
            straight = along >= cos_limit or (along > 0.0 and lateral <= config.gap_lateral_px)
            if facing >= cos_limit and straight:
                # Prefer short gaps that both ends point straight at.
                cost = distances[j] * (3.0 - facing - along)
                candidates.append((cost, i, j))
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
    joined = []
    for sequence in _link_sequences(len(chains), partner, [True] * len(chains)):
        chain = None
        for c, side in sequence:
            points = chains[c] if side == 0 else chains[c][::-1]
            chain = points if chain is None else _join_through_junction(chain, points, config)
        joined.append(chain)
    return joined


def _resample(points: np.ndarray, step_px: float) -> np.ndarray:
    """Resample a polyline at constant arc-length spacing (last point kept)."""
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    total = arc[-1]
    if total <= 0:
        return points[:1].copy()
    count = max(int(math.ceil(total / step_px)), 1)
    samples = np.linspace(0.0, total, count + 1)
    return np.stack(
        [np.interp(samples, arc, points[:, 0]), np.interp(samples, arc, points[:, 1])], 1
    )


@functools.lru_cache(maxsize=16)
def _savgol_kernel(window: int) -> np.ndarray:
    # Cubic fits keep J-tip curvature.
    return savgol_coeffs(window, min(3, window - 2))


def _smooth_centerline(points: np.ndarray, config: GeometryConfig) -> np.ndarray:
    """Sub-pixel centerline: 1 px resampling, Savitzky-Golay smoothing, final resampling.

    The ends are extended by point reflection (``2 p_0 - p_k``) before filtering, which
    keeps the end points in place and straight ends straight; scipy's ``mode="interp"``
    does the same with a polynomial fit per end but costs ~1 ms per call.
    """
    uniform = _resample(points, 1.0)
    window = config.smoothing_window_px
    if window and len(uniform) >= 5:
        window = min(window, len(uniform) if len(uniform) % 2 else len(uniform) - 1)
        half = window // 2
        head = 2 * uniform[0] - uniform[half:0:-1]
        tail = 2 * uniform[-1] - uniform[-2 : -half - 2 : -1]
        extended = np.concatenate([head, uniform, tail])  # (n + 2 half, 2)
        kernel = _savgol_kernel(window)
        uniform = np.stack(
            [np.convolve(extended[:, axis], kernel, mode="valid") for axis in (0, 1)], axis=1
        )
    return _resample(uniform, config.resample_step_px)


def _wire_chains(
    mask: np.ndarray, config: GeometryConfig, stent_mask: np.ndarray | None = None
) -> list[np.ndarray]:
    """Ordered skeleton chains (x, y) of a cleaned, padded wire mask (``stent_mask``: the
    stent pixels on the same padded grid, for bridging through stents)."""
    skeleton = skeletonize(mask)
    skeleton[0, :] = skeleton[-1, :] = skeleton[:, 0] = skeleton[:, -1] = False
    edges, pixel_degree, _ = _skeleton_edges(skeleton)
    if not edges:
        return []
    nodes = _simplify_graph(edges, pixel_degree, config)
    partner = _pair_at_junctions(edges, nodes, config)
    active = [not edge.removed for edge in edges]
    chains = []
    for sequence in _link_sequences(len(edges), partner, active):
        chain = None
        for e, side in sequence:
            points = edges[e].points if side == 0 else edges[e].points[::-1]
            chain = points if chain is None else _join_through_junction(chain, points, config)
        chains.append(chain)
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
        return _smooth_centerline(np.concatenate([ordered, trunk[k:]]), config)
    return None


def _trim(points: np.ndarray, length_px: float, at_start: bool) -> np.ndarray:
    """Drop up to ``length_px`` of arc length from one end (keep at least half)."""
    ordered = points if at_start else points[::-1]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(ordered, axis=0).T))])
    limit = min(length_px, 0.5 * arc[-1])
    first = int(np.searchsorted(arc, limit, side="left"))
    first = min(first, len(ordered) - 1)
    kept = ordered[first:]
    return kept if at_start else kept[::-1]


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
    start, end = before[-1], after[0]
    gap = float(math.hypot(*(end - start)))
    if gap < 1.5:
        return _concatenate([before, after])
    tangent_start = -_end_direction(before, False, config.direction_sample_px) * gap
    tangent_end = _end_direction(after, True, config.direction_sample_px) * gap
    t = np.linspace(0.0, 1.0, int(math.ceil(gap)) + 1)[1:-1, None]  # interior samples
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    bridge = h00 * start + h10 * tangent_start + h01 * end + h11 * tangent_end
    return _concatenate([before, bridge, after])


# --------------------------------------------------------------------------------------
# Distal tip choice
# --------------------------------------------------------------------------------------


def _window(array: np.ndarray, point: np.ndarray, radius: int) -> np.ndarray:
    height, width = array.shape
    x, y = int(round(float(point[0]))), int(round(float(point[1])))
    x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    return array[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]


def _sample_nearest(array: np.ndarray, points: np.ndarray) -> np.ndarray:
    height, width = array.shape
    xs = np.clip(np.rint(points[:, 0]).astype(np.intp), 0, width - 1)
    ys = np.clip(np.rint(points[:, 1]).astype(np.intp), 0, height - 1)
    return array[ys, xs]


def _turning_angle(points: np.ndarray) -> float:
    """Total absolute turning of a polyline [rad]."""
    if len(points) < 3:
        return 0.0
    steps = np.diff(points, axis=0)
    headings = np.unwrap(np.arctan2(steps[:, 1], steps[:, 0]))
    return float(np.abs(np.diff(headings)).sum())


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
    inner_level = map_coordinates(context.image, inner_points[:, ::-1].T, order=1, mode="nearest")
    outer_level = map_coordinates(context.image, outer_points[:, ::-1].T, order=1, mode="nearest")
    background = float(np.median(outer_level))
    wire_rows_cols = end_part[:, ::-1].T
    wire_level = float(np.median(map_coordinates(context.image, wire_rows_cols, order=1)))
    wire_contrast = background - wire_level
    if wire_contrast <= 1e-6:
        return False  # the wire is not darker than its surroundings: no reference
    contrast = (background - float(np.median(inner_level))) / wire_contrast
    return bool(contrast >= config.catheter_contrast)


def _tip_heat(end: np.ndarray, context: _TipContext, config: GeometryConfig) -> float:
    """Largest tip-heatmap response within ``tip_search_radius_px`` of ``end`` (0 without
    a heatmap)."""
    if context.tip_prob is None:
        return 0.0
    return float(_window(context.tip_prob, end, config.tip_search_radius_px).max())


def _end_score(
    centerline: np.ndarray, at_start: bool, context: _TipContext, config: GeometryConfig
) -> tuple[float, float]:
    """Distal-end score of one end of a centerline and its tip-heatmap response.

    score = 3.0 * heatmap - 3.0 * border - 2.5 * catheter + 0.5 * curvature
    + 0.5 * opacity, with curvature the turning over the last
    ``tip_curvature_length_px`` divided by pi (clipped to 1) and opacity the mean wire
    probability there (the distal 2-3 cm are more radio-opaque).
    """
    ordered = centerline if at_start else centerline[::-1]
    end = ordered[0]
    count = max(2, int(round(config.tip_curvature_length_px / config.resample_step_px)) + 1)
    end_part = ordered[:count]
    heat = _tip_heat(end, context, config)
    border = _touches_border(end, context, config.border_margin_px)
    outward = -_end_direction(ordered, True, config.direction_sample_px)
    catheter = _in_dark_tube(end, outward, end_part, context, config)
    curvature = min(1.0, _turning_angle(end_part) / math.pi)
    opacity = float(_sample_nearest(context.wire_prob, end_part).mean())
    score = (
        _TIP_WEIGHT_HEATMAP * heat
        - _TIP_WEIGHT_BORDER * border
        - _TIP_WEIGHT_CATHETER * catheter
        + _TIP_WEIGHT_CURVATURE * curvature
        + _TIP_WEIGHT_OPACITY * opacity
    )
    return score, heat


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


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def extract_wires(
    wire_prob: np.ndarray,
    tip_prob: np.ndarray | None,
    config: GeometryConfig,
    field_mask: np.ndarray | None = None,
    *,
    catheter_prob: np.ndarray | None = None,
    image: np.ndarray | None = None,
    stent_prob: np.ndarray | None = None,
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

    Returns
    -------
    list[WireDetection]
        At most ``config.max_wires`` wires sorted by confidence (``wire_id`` 0 first);
        centerlines tip first, resampled every ``config.resample_step_px`` [px], in the
        grid of ``wire_prob``.
    """
    if not isinstance(config, GeometryConfig):
        raise TypeError(
            f"config is a {type(config).__name__}: expected GeometryConfig; "
            "build one with GeometryConfig(...)."
        )
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
    if stent_prob is not None:
        stent_prob = _check_map("stent_prob", stent_prob, shape)

    mask = wire_prob >= config.wire_threshold
    if field_mask is not None:
        mask &= field_mask
    box = _bounding_box(mask, margin=1)
    if box is None:
        return []
    x0, y0, x1, y1 = box
    roi = clean_mask(mask[y0:y1, x0:x1], config.min_component_px)
    roi = _fill_small_holes(roi, config.hole_fill_px)
    # Zero border of 1 px so 8-neighbour lookups never leave the array.
    padded = np.pad(roi, 1)
    offset = np.array([x0 - 1.0, y0 - 1.0])
    stent_roi = None
    if stent_prob is not None and config.stent_bridge_px > 0:
        stent_roi = np.pad(stent_prob[y0:y1, x0:x1] >= config.stent_threshold, 1)
    chains = _wire_chains(padded, config, stent_roi)

    context = _TipContext(
        wire_prob=wire_prob,
        tip_prob=tip_prob,
        field_mask=field_mask,
        catheter_prob=catheter_prob,
        image=image,
    )

    def confidence_of(centerline: np.ndarray, tip_heat: float, length: float) -> float:
        mean_prob = float(_sample_nearest(wire_prob, centerline).mean())
        confidence = mean_prob
        if tip_prob is not None:
            confidence = (1 - _CONFIDENCE_TIP_SHARE) * mean_prob + _CONFIDENCE_TIP_SHARE * tip_heat
        # Short fragments are less likely to be a whole wire.
        confidence *= min(1.0, length / config.confidence_full_length_px)
        return float(np.clip(confidence, 0.0, 1.0))

    shortest = min(config.min_wire_length_px, config.fork_min_branch_px or math.inf)
    candidates = []  # (confidence, tip-first centerline, length)
    branches = []  # smoothed pieces long enough to be a fork's branch
    for chain in chains:
        if _path_length(chain) < max(shortest, 2.0):
            continue
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
        score_start, heat_start = _end_score(centerline, True, context, config)
        score_end, heat_end = _end_score(centerline, False, context, config)
        tip_heat = heat_start
        if score_end > score_start:
            centerline = centerline[::-1]
            tip_heat = heat_end
        candidates.append((confidence_of(centerline, tip_heat, length), centerline, length))

    if config.max_wires >= 2 and branches and candidates:
        forks = []
        for confidence, trunk, _ in candidates:
            for branch in branches:
                fork = _fork_wire(branch, trunk, config)
                if fork is None:
                    continue
                np.clip(fork, 0.0, (shape[1] - 1, shape[0] - 1), out=fork)
                length = _path_length(fork)
                # a fork never outranks the wire it leaves: the primary tip stays put
                fork_confidence = confidence_of(fork, _tip_heat(fork[0], context, config), length)
                rank = min(fork_confidence, _FORK_RANK * confidence)
                forks.append((rank, fork, length))
        # a branch that became a fork is not also a wire of its own
        used = [fork[1][0] for fork in forks]
        candidates = [
            c
            for c in candidates
            if not any(np.hypot(*(c[1][[0, -1]] - tip).T).min() < 1.0 for tip in used)
        ]
        candidates += forks

    candidates.sort(key=lambda item: -item[0])
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


def extract_stents(stent_prob: np.ndarray, config: GeometryConfig) -> list[StentDetection]:
    """Stent instances with outline, centroid, principal axis, length and diameter.

    The strut mesh of a deployed stent segments as many small pieces, so the mask is
    closed with a ``stent_close_px`` disc and its holes filled before instances are
    taken as external contours.

    Parameters
    ----------
    stent_prob : np.ndarray
        ``(H, W)`` float probability of the stent class in ``[0, 1]``.
    config : GeometryConfig
        ``stent_threshold``, ``stent_close_px``, ``stent_min_area_px``,
        ``stent_outline_epsilon_px``.

    Returns
    -------
    list[StentDetection]
        Sorted by confidence (mean probability over the instance's thresholded pixels);
        axis in ``[-pi/2, pi/2)`` [rad]; length along / diameter across the axis as the
        extent of the instance's pixels (+1 px for the pixel size) [px].
    """
    if not isinstance(config, GeometryConfig):
        raise TypeError(
            f"config is a {type(config).__name__}: expected GeometryConfig; "
            "build one with GeometryConfig(...)."
        )
    stent_prob = _check_map("stent_prob", stent_prob, None)
    mask = stent_prob >= config.stent_threshold
    margin = config.stent_close_px + 1
    box = _bounding_box(mask, margin=margin)
    if box is None:
        return []
    x0, y0, x1, y1 = box
    roi_mask = mask[y0:y1, x0:x1]
    # Pad so closing near the array border behaves as inside.
    closed = np.pad(roi_mask, margin).view(np.uint8)
    if config.stent_close_px > 0:
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (config.stent_close_px, config.stent_close_px)
        )
        closed = cv2.morphologyEx(closed, cv2.MORPH_CLOSE, kernel)
    closed = closed[margin:-margin, margin:-margin]
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    roi_prob = stent_prob[y0:y1, x0:x1]
    instances = []
    min_area = max(config.stent_min_area_px, 3)
    for contour in contours:
        # A filled contour covers at most its area plus its boundary pixels: skip small
        # blobs before rasterizing (noisy maps have thousands of them), and rasterize the
        # rest in their own bounding box, not the whole ROI.
        if cv2.contourArea(contour) + len(contour) + 1 < min_area:
            continue
        bx, by, bw, bh = cv2.boundingRect(contour)
        filled = np.zeros((bh, bw), dtype=np.uint8)
        cv2.drawContours(filled, [contour - np.array([bx, by])], -1, 1, thickness=cv2.FILLED)
        ys, xs = np.nonzero(filled)
        ys += by
        xs += bx
        if len(xs) < min_area:
            continue
        segmented = roi_mask[ys, xs]
        if not segmented.any():
            continue
        confidence = float(roi_prob[ys, xs][segmented].mean())
        points = np.stack([xs + x0, ys + y0], axis=1).astype(np.float64)  # (n, 2) x, y
        centroid = points.mean(axis=0)
        centred = points - centroid
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(points))
        major = eigenvectors[:, int(np.argmax(eigenvalues))]
        axis_rad = math.atan2(major[1], major[0])
        # Fold into [-pi/2, pi/2): an axis has no sense of direction.
        if axis_rad >= math.pi / 2:
            axis_rad -= math.pi
        elif axis_rad < -math.pi / 2:
            axis_rad += math.pi
        minor = np.array([-major[1], major[0]])
        along = centred @ major
        across = centred @ minor
        outline = cv2.approxPolyDP(contour, config.stent_outline_epsilon_px, closed=True)
        outline_px = outline.reshape(-1, 2).astype(np.float32) + np.array([x0, y0], np.float32)
        instances.append(
            (
                float(np.clip(confidence, 0.0, 1.0)),
                outline_px,
                centroid.astype(np.float32),
                float(axis_rad),
                float(along.max() - along.min() + 1.0),
                float(across.max() - across.min() + 1.0),
            )
        )
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
