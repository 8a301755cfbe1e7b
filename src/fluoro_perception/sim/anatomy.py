"""Background anatomy and non-instrument distractors as float32 attenuation layers.

All layers are dimensionless line integrals ``sum(mu * thickness)`` over a padded canvas
(the visible frame plus a motion margin) and are built ONCE per sequence; motion is
applied afterwards by warping (:mod:`fluoro_perception.sim.motion`). Sizes are drawn in
millimetres and converted with the sequence's pixel spacing so the same anatomy looks
right at every magnification. Appearance targets: ``/work/shared/docs/real-fluoroscopy.md``
(diaphragm arc, heart shadow, lung mottle, vertebrae with end plates and pedicles, ribs
with cortical edges, contrast-filled vessel trees 3-12 px tapering to 1-2 px).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from fluoro_perception.sim.instruments import (
    Stroke,
    accumulate_strokes,
    arc_length,
    random_walk_curve,
    render_wire_like_distractors,
)


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cells: int, octaves: int = 3
) -> np.ndarray:
    """Zero-mean, unit-std smooth random field ``(H, W)`` float32.

    Sum of ``octaves`` bicubically upsampled white-noise grids starting at ``cells``
    cells across, each octave twice as fine and half as strong (fractal-like tissue).
    """
    height, width = shape
    total = np.zeros(shape, dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = cells * (2**octave)
        grid = rng.standard_normal((n + 1, n + 1)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
    return (total - total.mean()) / max(float(total.std()), 1e-6)


def _soft_fill(shape: tuple[int, int], draw, blur_px: float) -> np.ndarray:
    """Fill a shape with ``draw(canvas)`` on uint8, return float32 0-1 with soft edges."""
    canvas = np.zeros(shape, dtype=np.uint8)
    draw(canvas)
    out = canvas.astype(np.float32) / 255.0
    if blur_px > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), blur_px)
    return out


@dataclass
class VesselBranch:
    """One vessel segment: centerline ``points_px`` ``(N, 2)``, diameters ``(N,)`` [px],
    arc length from the tree root at its first point [px], parent branch index."""

    points_px: np.ndarray
    diameters_px: np.ndarray
    root_distance_px: float
    parent: int


@dataclass
class AnatomyLayers:
    """Static attenuation layers of one sequence (padded canvas, float32).

    Attributes
    ----------
    body : np.ndarray
        Soft tissue, lungs, heart, diaphragm, bones, distractors.
    vessel : np.ndarray
        Contrast-filled vessel tree at full opacification (0 where no vessel).
    vessel_root_distance_px : np.ndarray
        Path distance from the tree root (ostium) of each vessel pixel [px]; drives the
        bolus front.
    branches : list[VesselBranch]
        The vessel tree (branch 0 = main vessel from the ostium).
    distractors : list[str]
        Distractor kinds drawn.
    region : str
        ``"thorax"`` or ``"abdomen"``.
    """

    body: np.ndarray
    vessel: np.ndarray
    vessel_root_distance_px: np.ndarray
    branches: list[VesselBranch]
    distractors: list[str] = field(default_factory=list)
    region: str = "thorax"


def _vertebra_outline(
    cx: float, cy: float, half_w: float, half_h: float, tilt: float
) -> np.ndarray:
    """Rounded-rectangle (superellipse, exponent 4) outline with slightly concave sides,
    ``(72, 2)`` [px]; index 0-17 / 36-53 run along the lower / upper end plate."""
    theta = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    x = half_w * np.sign(c) * np.abs(c) ** 0.5
    y = half_h * np.sign(s) * np.abs(s) ** 0.5
    x *= 1.0 - 0.08 * np.cos(np.pi * y / max(half_h, 1e-6)) ** 2 * (np.abs(c) > 0.5)
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    return np.stack([x, y], axis=1) @ rot.T + [cx, cy]


def _vertebral_column(
    layer: np.ndarray,
    rng: np.random.Generator,
    mm: float,
    centre_x: float,
    tilt_rad: float,
    lumbar: bool,
) -> None:
    """Vertebral bodies (rounded, waisted) with dense end plates, pedicle rings and
    spinous processes; soft edges because bone edges are blurred by magnification.
    Thoracic spines are weaker (x0.4-1 against x1.4 for lumbar: in oblique coronary
    views the spine is seen through the heart and lungs as a faint, low-contrast column)."""
    # lumbar bodies (EVAR, abdomen) stay strong: there they are the main structure
    strength = 1.4 if lumbar else float(rng.uniform(0.4, 1.0))
    height, width = layer.shape
    body_h = (rng.uniform(26.0, 34.0) if lumbar else rng.uniform(18.0, 26.0)) / mm
    body_w = (rng.uniform(40.0, 50.0) if lumbar else rng.uniform(28.0, 38.0)) / mm
    disc = rng.uniform(0.2, 0.35) * body_h
    pitch = body_h + disc
    bone = np.zeros_like(layer)
    cortex = np.zeros_like(layer)
    plates = np.zeros_like(layer)
    y = -rng.uniform(0.0, pitch)
    while y < height + pitch:
        cx = centre_x + (y - height / 2) * np.tan(tilt_rad)
        tilt = tilt_rad + rng.normal(0.0, 0.04)
        outline = _vertebra_outline(cx, y, 0.5 * body_w, 0.5 * body_h, tilt)
        cv2.fillPoly(bone, [np.round(outline * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        strokes = [Stroke(outline, 255, 2, closed=True)]
        # pedicles: oval rings at the upper lateral part of the body
        for side in (-1.0, 1.0):
            px = cx + side * 0.3 * body_w
            py = y - 0.15 * body_h
            a, b = 0.1 * body_w * rng.uniform(0.8, 1.2), 0.17 * body_h * rng.uniform(0.8, 1.2)
            theta = np.linspace(0, 2 * np.pi, 36)
            ring = np.stack([px + a * np.cos(theta), py + b * np.sin(theta)], axis=1)
            strokes.append(Stroke(ring, 200, 3, closed=True))
        # spinous process: a teardrop below the body centre
        theta = np.linspace(0, 2 * np.pi, 30)
        drop = np.stack(
            [cx + 0.06 * body_w * np.cos(theta), y + 0.3 * body_h + 0.2 * body_h * np.sin(theta)],
            axis=1,
        )
        strokes.append(Stroke(drop, 120, 2, closed=True))
        accumulate_strokes(cortex, strokes, 1.0 / 255.0)
        accumulate_strokes(
            plates, [Stroke(outline[4:15], 255, 3), Stroke(outline[40:51], 255, 3)], 1.0 / 255.0
        )
        y += pitch
    edge_blur = max(0.8, 0.25 / mm)
    bone = cv2.GaussianBlur(bone, (0, 0), 3.0 * edge_blur)
    trabecular = 1.0 + 0.2 * smooth_noise(rng, layer.shape, max(8, int(width * mm / 4.0)), 2)
    layer += strength * rng.uniform(0.06, 0.22) * bone * trabecular
    layer += strength * rng.uniform(0.02, 0.08) * cv2.GaussianBlur(cortex, (0, 0), edge_blur)
    layer += (
        strength
        * rng.uniform(0.03, 0.1)
        * cv2.GaussianBlur(np.minimum(plates, 1.0), (0, 0), edge_blur)
    )


def _ribs(layer: np.ndarray, rng: np.random.Generator, mm: float, centre_x: float) -> None:
    """Posterior/anterior rib pairs: long curved bands with dense cortical edges."""
    height, width = layer.shape
    spacing = rng.uniform(22.0, 32.0) / mm
    band_w = rng.uniform(8.0, 13.0) / mm
    y0 = -rng.uniform(0.0, spacing)
    fill = np.zeros_like(layer)
    edges = np.zeros_like(layer)
    droop = rng.uniform(0.5, 1.1)
    curvature = rng.uniform(0.6, 1.6)
    presence = rng.uniform(0.5, 1.0)  # some ribs hidden by overlying tissue / projection
    while y0 < height + spacing:
        for side in (-1.0, 1.0):
            if rng.random() > presence:
                continue
            u = np.linspace(0.0, 1.0, 60)
            x = centre_x + side * (0.04 * width + u * 0.7 * width)
            y = y0 + droop * width * (u**1.6) * 0.5 - curvature * 0.1 * width * np.sin(np.pi * u)
            centre = np.stack([x, y], axis=1)
            tang = np.gradient(centre, axis=0)
            tang /= np.maximum(np.hypot(tang[:, 0], tang[:, 1]), 1e-9)[:, None]
            normal = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
            upper, lower = centre + 0.5 * band_w * normal, centre - 0.5 * band_w * normal
            accumulate_strokes(fill, [Stroke(centre, 255, max(1, int(band_w)))], 1.0 / 255.0)
            accumulate_strokes(edges, [Stroke(upper, 255, 2), Stroke(lower, 255, 2)], 1.0 / 255.0)
        y0 += spacing * rng.uniform(0.85, 1.15)
    layer += rng.uniform(0.03, 0.12) * cv2.GaussianBlur(np.minimum(fill, 1.0), (0, 0), 1.2)
    layer += rng.uniform(0.03, 0.1) * cv2.GaussianBlur(np.minimum(edges, 1.0), (0, 0), 0.8)


def _lung_markings(
    rng: np.random.Generator, shape: tuple[int, int], mm: float, hilum_px: tuple[float, float]
) -> np.ndarray:
    """Pulmonary vessel markings: thin, faint, tapering lines radiating from the hilum
    (line-like structures that are not wires)."""
    height, width = shape
    markings = np.zeros(shape, dtype=np.float32)
    strokes = []
    for _ in range(int(rng.integers(25, 60))):
        angle = rng.uniform(-np.pi, np.pi)
        start = (
            hilum_px[0] + rng.uniform(0.05, 0.3) * width * np.cos(angle),
            hilum_px[1] + rng.uniform(0.05, 0.3) * height * np.sin(angle),
        )
        curve = random_walk_curve(
            rng, start, angle + rng.normal(0, 0.3), rng.uniform(15.0, 60.0) / mm, 2.0, 0.01, 0.03
        )
        strokes.append(Stroke(curve, int(rng.integers(60, 256)), 1 + int(rng.random() < 0.3)))
    accumulate_strokes(markings, strokes, 1.0 / 255.0)
    return rng.uniform(0.02, 0.06) * cv2.GaussianBlur(markings, (0, 0), 0.8)


def _clips_and_electrodes(
    layer: np.ndarray, rng: np.random.Generator, mm: float, n_clips: int
) -> list[str]:
    """Surgical clips (small dense U / V shapes)."""
    height, width = layer.shape
    drawn = []
    for _ in range(n_clips):
        c = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        size = rng.uniform(3.0, 7.0) / mm
        angle = rng.uniform(-np.pi, np.pi)
        spread = rng.uniform(0.1, 0.5)
        legs = np.array(
            [[-size, -spread * size], [0.0, 0.0], [-size, spread * size]], dtype=np.float64
        )
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        accumulate_strokes(layer, [Stroke(legs @ rot.T + c, 255, 2)], rng.uniform(0.4, 1.2) / 255.0)
        drawn.append("clip")
    return drawn


#: Cap on the number of branches of one vessel tree (bounds the setup time).
MAX_VESSEL_BRANCHES = 120


def _vessel_tree(
    rng: np.random.Generator,
    shape: tuple[int, int],
    mm: float,
    root_px: np.ndarray,
    heading_rad: float,
    attractor_px: tuple[float, float],
    root_diameter_px: float,
    main_length_px: float,
    depth: int,
) -> list[VesselBranch]:
    """Dense, branching, tortuous, tapering coronary-like tree (main vessel first).

    After ``real-fluoroscopy.md`` ("Contrast-filled vessels"): the main vessel leaves the
    ostium at 3-12 px and tapers to 1-2 px; with probability 0.6 a short left-main trunk
    splits into 2-3 large arteries (LAD / LCx / ramus-like, "left" tree), otherwise one
    long vessel runs on (RCA-like); every vessel carries 5-10 (main) or 2-5 (smaller) side
    branches at 25-80 deg whose diameters follow Murray's law
    (side 45-80 % of the parent diameter, the range Murray's law ``d_parent^3 = d_main^3 +
    d_side^3`` allows for a side branch), never below 1 px.
    Branch 0 is the vessel the guidewire follows; branches cross each other in projection
    (overlapping vessels). At most :data:`MAX_VESSEL_BRANCHES` branches.
    """
    branches: list[VesselBranch] = []
    # breadth first, so that the branch cap trims the finest level everywhere instead of
    # starving the vessels grown last
    queue: deque = deque()

    def grow(*branch_args) -> None:
        queue.append(branch_args)

    def build(start, heading, diameter, distal, length, root_distance, parent, level):
        if len(branches) >= MAX_VESSEL_BRANCHES or length < 6.0:
            return
        points = random_walk_curve(
            rng,
            tuple(start),
            heading,
            length,
            step_px=2.0,
            # smaller vessels are more tortuous (they wrap the beating heart surface)
            # (but never curl into loops: curvature radius >= 14 px)
            curvature_std_per_px=rng.uniform(0.006, 0.015) * (1.0 + 0.3 * level),
            max_curvature_per_px=0.04 + 0.01 * level,
            curvature_correlation=0.9,
            attractor_px=attractor_px if level == 0 else None,
            attract_gain=0.004,
        )
        arc = arc_length(points)
        diameters = diameter + (distal - diameter) * (arc / max(arc[-1], 1e-6)) ** 0.7
        index = len(branches)
        branches.append(VesselBranch(points, diameters, root_distance, parent))
        if level >= depth:
            return
        n_children = int(rng.integers(5, 11)) if level == 0 else int(rng.integers(2, 6))
        fractions = np.sort(rng.uniform(0.08, 0.85, n_children))
        sides = rng.choice([-1.0, 1.0], n_children)
        for frac, side in zip(fractions, sides, strict=True):
            k = int(frac * (len(points) - 1))
            # small parents keep branching with 1 px vessels (distal twigs are 1-2 px)
            d_child = max(1.0, diameters[k] * rng.uniform(0.45, 0.8))
            step = points[min(k + 1, len(points) - 1)] - points[max(k - 1, 0)]
            local_heading = float(np.arctan2(step[1], step[0]))
            angle = side * rng.uniform(np.radians(25), np.radians(80))
            child_length = main_length_px * rng.uniform(0.25, 0.7) * np.sqrt(d_child / diameter)
            grow(
                points[k],
                local_heading + angle,
                d_child,
                min(d_child, max(1.0, rng.uniform(0.8, 1.6))),
                child_length,
                root_distance + arc[k],
                index,
                level + 1,
            )

    distal = max(1.0, rng.uniform(1.0, 2.0))
    if rng.random() < 0.6:  # left tree: short trunk, then 2-3 large arteries
        trunk = rng.uniform(5.0, 12.0) / mm
        points = random_walk_curve(rng, tuple(root_px), heading_rad, trunk, 2.0, 0.01, 0.04)
        arc = arc_length(points)
        branches.append(
            VesselBranch(points, np.full(len(points), float(root_diameter_px)), 0.0, -1)
        )
        # branch 0 must be the wire's vessel: keep the trunk and its first daughter joined
        first = len(branches)
        n_arteries = int(rng.integers(2, 4))
        spread = rng.uniform(np.radians(40), np.radians(100))
        for j in range(n_arteries):
            offset = (j - 0.5 * (n_arteries - 1)) * spread / max(n_arteries - 1, 1)
            d_artery = root_diameter_px * (
                rng.uniform(0.7, 0.85) if j == 0 else rng.uniform(0.55, 0.8)
            )
            grow(
                points[-1],
                heading_rad + offset + rng.normal(0.0, 0.15),
                d_artery,
                distal,
                main_length_px * (1.0 if j == 0 else rng.uniform(0.6, 1.0)),
                float(arc[-1]),
                0,
                0,
            )
        while queue:
            build(*queue.popleft())
        if len(branches) > first:  # merge trunk + first artery into branch 0
            trunk_branch, artery = branches[0], branches[first]
            merged = VesselBranch(
                np.concatenate([trunk_branch.points_px, artery.points_px[1:]], axis=0),
                np.concatenate([trunk_branch.diameters_px, artery.diameters_px[1:]]),
                0.0,
                -1,
            )

            # drop the first artery (now part of branch 0) and re-point parent indices
            def reparent(parent: int) -> int:
                return 0 if parent == first else parent - (parent > first)

            branches[:] = [merged] + [
                VesselBranch(b.points_px, b.diameters_px, b.root_distance_px, reparent(b.parent))
                for i, b in enumerate(branches)
                if i not in (0, first)
            ]
    else:  # right tree: one long vessel with side branches
        grow(root_px, heading_rad, root_diameter_px, distal, main_length_px, 0.0, -1, 0)
        while queue:
            build(*queue.popleft())
    return branches


def _rasterize_vessels(
    shape: tuple[int, int], branches: list[VesselBranch], iodine_attenuation_per_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vessel line-integral map and root-distance map from a branch list.

    A filled tube of diameter d projects a mean chord of ``pi / 4 * d``; each branch is
    drawn in short pieces (4 centerline steps, about 8 px) with the piece's mean
    diameter, thin pieces first so that thick parent vessels win (overwrite) where
    branches meet or cross: adding would draw a dark blob at every junction of the
    planar tree.
    """
    vessel = np.zeros(shape, dtype=np.float32)
    distance = np.zeros(shape, dtype=np.float32)
    piece_steps = 4
    pieces = []
    for branch in branches:
        arc = arc_length(branch.points_px) + branch.root_distance_px
        for i in range(0, len(branch.points_px) - 1, piece_steps):
            j = min(i + piece_steps, len(branch.points_px) - 1)
            pieces.append(
                (float(branch.diameters_px[i : j + 1].mean()), branch.points_px[i : j + 1], arc[i])
            )
    pieces.sort(key=lambda p: p[0])
    for diameter, points, dist in pieces:
        pts = np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)
        thick = max(1, int(round(diameter)))
        value = iodine_attenuation_per_px * (np.pi / 4.0) * diameter
        cv2.polylines(vessel, [pts], False, float(value), thick, cv2.LINE_8, 4)
        cv2.polylines(distance, [pts], False, float(dist), thick, cv2.LINE_8, 4)
    vessel = cv2.GaussianBlur(vessel, (0, 0), 0.8)
    return vessel, distance


def build_anatomy(
    rng: np.random.Generator,
    shape: tuple[int, int],
    mm_per_px: float,
    region: str,
    distractor_scale: float,
    vessel_root_px: np.ndarray,
    vessel_heading_rad: float,
    vessel_root_diameter_px: float,
    vessel_length_px: float,
    iodine_attenuation_per_px: float,
    field_centre_px: tuple[float, float],
) -> AnatomyLayers:
    """Build the static anatomy of one sequence.

    Parameters
    ----------
    rng : np.random.Generator
        Scene generator (all choices drawn from it).
    shape : tuple[int, int]
        Padded canvas ``(H, W)`` [px].
    mm_per_px : float
        Pixel spacing [mm/px].
    region : str
        ``"thorax"`` (lungs, heart, diaphragm, thoracic spine, ribs, sternal wires, ECG
        leads, pacemaker) or ``"abdomen"`` (lumbar spine, bowel gas, liver edge).
    distractor_scale : float
        Multiplies the expected number of distractors (0 = none).
    vessel_root_px, vessel_heading_rad, vessel_root_diameter_px, vessel_length_px
        Vessel tree root (ostium) [px], initial direction [rad], root diameter [px] and
        main vessel length [px].
    iodine_attenuation_per_px : float
        Line integral per pixel of opacified lumen (dimensionless / px).
    field_centre_px : tuple[float, float]
        Centre of the exposed field on the canvas [px] (vessels bend towards it).
    """
    height, width = shape
    mm = mm_per_px
    body = np.full(shape, rng.uniform(3.2, 4.2), dtype=np.float32)
    body += rng.uniform(0.08, 0.25) * smooth_noise(rng, shape, 3, 3)
    # mid-frequency tissue texture (structures of a few mm): real frames are never smooth
    texture_cells = max(8, int(width * mm / rng.uniform(3.0, 8.0)))
    body += rng.uniform(0.01, 0.04) * smooth_noise(rng, shape, texture_cells, 2)
    # a broad gradient: the patient is thicker towards one side / the table
    gx, gy = np.meshgrid(
        np.linspace(-1, 1, width, dtype=np.float32), np.linspace(-1, 1, height, dtype=np.float32)
    )
    grad_angle = rng.uniform(-np.pi, np.pi)
    body += rng.uniform(0.0, 0.3) * (np.cos(grad_angle) * gx + np.sin(grad_angle) * gy)
    midline_x = width * rng.uniform(0.3, 0.7)
    spine_tilt = rng.normal(0.0, 0.08)
    distractors: list[str] = []

    def count(mean: float) -> int:
        return int(rng.poisson(mean * distractor_scale))

    if region == "thorax":
        # lungs: two large regions of low attenuation with fine mottled texture
        lung = _soft_fill(
            shape,
            lambda c: [
                cv2.ellipse(
                    c,
                    (
                        int(midline_x + s * rng.uniform(0.25, 0.4) * width),
                        int(height * rng.uniform(0.2, 0.45)),
                    ),
                    (int(rng.uniform(0.18, 0.3) * width), int(rng.uniform(0.35, 0.6) * height)),
                    float(rng.uniform(-15, 15)),
                    0,
                    360,
                    255,
                    -1,
                )
                for s in (-1.0, 1.0)
            ],
            0.04 * width,
        )
        mottle = smooth_noise(rng, shape, max(8, int(width * mm / 6.0)), 2)
        fine = cv2.GaussianBlur(
            rng.standard_normal(shape).astype(np.float32), (0, 0), 1.2 / max(mm / 0.15, 0.5)
        )
        fine /= max(float(fine.std()), 1e-6)
        body -= lung * (rng.uniform(0.5, 1.1) + rng.uniform(0.03, 0.08) * mottle + 0.03 * fine)
        body += lung * _lung_markings(rng, shape, mm, (midline_x, 0.45 * height))
        # heart shadow: a large soft ellipse left of the midline
        heart = _soft_fill(
            shape,
            lambda c: cv2.ellipse(
                c,
                (
                    int(midline_x + rng.uniform(0.0, 0.25) * width),
                    int(height * rng.uniform(0.5, 0.8)),
                ),
                (int(rng.uniform(0.25, 0.45) * width), int(rng.uniform(0.2, 0.4) * height)),
                float(rng.uniform(-30, 30)),
                0,
                360,
                255,
                -1,
            ),
            0.03 * width,
        )
        body += rng.uniform(0.25, 0.6) * heart
        # diaphragm: a broad arc, denser below, with a soft boundary
        cy = height * rng.uniform(0.6, 1.3)
        radius = rng.uniform(0.6, 1.4) * width
        cx = width * rng.uniform(0.2, 0.8)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        below = np.clip((np.hypot(xx - cx, yy - (cy + radius)) - radius) / -(0.02 * width), 0, 1)
        body += rng.uniform(0.3, 0.8) * cv2.GaussianBlur(below, (0, 0), rng.uniform(2.0, 8.0))
        _vertebral_column(body, rng, mm, midline_x, spine_tilt, lumbar=False)
        _ribs(body, rng, mm, midline_x)
        # post-sternotomy patients carry a column of 4-7 cerclage wires; device patients
        # one or two leads; nearly every patient has ECG leads on the chest
        wire_counts = {
            "sternal_wire": int(round(rng.integers(4, 8) * distractor_scale))
            if rng.random() < 0.35
            else 0,
            "ecg_lead": count(2.2),
            "pacemaker_lead": max(1, count(1.2)) if rng.random() < 0.25 and distractor_scale else 0,
            "line": count(0.5),
            "table_edge": count(0.35),
        }
    else:
        # abdomen: liver edge, bowel gas, lumbar spine
        liver = _soft_fill(
            shape,
            lambda c: cv2.ellipse(
                c,
                (int(width * rng.uniform(-0.1, 0.3)), int(height * rng.uniform(0.0, 0.4))),
                (int(rng.uniform(0.4, 0.6) * width), int(rng.uniform(0.3, 0.5) * height)),
                float(rng.uniform(-30, 30)),
                0,
                360,
                255,
                -1,
            ),
            0.05 * width,
        )
        body += rng.uniform(0.1, 0.35) * liver
        gas = np.clip(smooth_noise(rng, shape, max(6, int(width * mm / 25.0)), 2) - 0.8, 0, None)
        body -= rng.uniform(0.1, 0.35) * cv2.GaussianBlur(gas, (0, 0), 2.0)
        _vertebral_column(body, rng, mm, midline_x, spine_tilt, lumbar=True)
        wire_counts = {"ecg_lead": count(1.2), "line": count(0.7), "table_edge": count(0.4)}
    distractors += render_wire_like_distractors(body, rng, wire_counts, mm, (midline_x, height / 2))
    distractors += _clips_and_electrodes(body, rng, mm, count(1.0))
    branches = _vessel_tree(
        rng,
        shape,
        mm,
        np.asarray(vessel_root_px, dtype=np.float64),
        vessel_heading_rad,
        field_centre_px,
        vessel_root_diameter_px,
        vessel_length_px,
        depth=3,
    )
    vessel, distance = _rasterize_vessels(shape, branches, iodine_attenuation_per_px)
    return AnatomyLayers(
        body=body.astype(np.float32),
        vessel=vessel,
        vessel_root_distance_px=distance,
        branches=branches,
        distractors=distractors,
        region=region,
    )
