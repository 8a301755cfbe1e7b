"""Guidewires, catheters and wire-like distractors for the fluoroscopy simulator.

Everything here works on polylines in pixel coordinates ``(x, y)`` (x right, y down,
pixel centres at integers, see :mod:`fluoro_perception.core.types`). Curves are drawn
with OpenCV anti-aliased polylines at 1/16 px precision (``shift=4``) so that 1 px wires
are smooth, not jagged. Attenuation values are dimensionless line integrals
``sum(mu * thickness)`` that :mod:`fluoro_perception.sim.physics` turns into intensity.

The ground-truth width rule follows how FRA-Net annotated its data
(``/work/shared/seeds/001_d0d03ac8067c31fe.txt``, Fig. 6: points along the wire, a spline
fitted through them, the mask drawn from the spline): the GT guidewire mask is the
centerline polyline rasterized with a fixed thickness :func:`gt_wire_thickness_px`,
never thresholded from the noisy image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: OpenCV sub-pixel precision for drawing: coordinates are multiplied by 2**4.
DRAW_SHIFT_BITS = 4
_DRAW_SCALE = float(1 << DRAW_SHIFT_BITS)


def gt_wire_thickness_px(width_px: float) -> int:
    """Thickness of the rasterized ground-truth wire mask.

    Parameters
    ----------
    width_px : float
        Rendered wire diameter [px].

    Returns
    -------
    int
        ``max(3, round(width_px))`` [px]: thin wires get a 3 px band, as annotators draw
        a spline with a fixed brush (seed 001, Fig. 6).
    """
    return max(3, int(round(width_px)))


def resample_polyline(points_px: np.ndarray, spacing_px: float = 1.0) -> np.ndarray:
    """Resample a polyline at (nearly) constant arc-length spacing.

    Parameters
    ----------
    points_px : np.ndarray
        ``(N, 2)`` points [px], N >= 1.
    spacing_px : float
        Target distance between consecutive output points [px].

    Returns
    -------
    np.ndarray
        ``(M, 2)`` float32, first and last input points kept.
    """
    points = np.asarray(points_px, dtype=np.float64)
    if len(points) < 2:
        return points.astype(np.float32)
    seg = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = arc[-1]
    if total <= 0:
        return points[:1].astype(np.float32)
    n_out = max(2, int(np.ceil(total / spacing_px)) + 1)
    s = np.linspace(0.0, total, n_out)
    out = np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=1)
    return out.astype(np.float32)


def arc_length(points_px: np.ndarray) -> np.ndarray:
    """Cumulative arc length ``(N,)`` [px] of a ``(N, 2)`` polyline, starting at 0."""
    points = np.asarray(points_px, dtype=np.float64)
    if len(points) < 2:
        return np.zeros(len(points))
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])


def point_at_arc(points_px: np.ndarray, arc_px: np.ndarray, s_px: np.ndarray) -> np.ndarray:
    """Interpolate polyline positions ``(K, 2)`` at arc lengths ``s_px`` ``(K,)`` [px]."""
    s = np.asarray(s_px, dtype=np.float64)
    return np.stack(
        [np.interp(s, arc_px, points_px[:, 0]), np.interp(s, arc_px, points_px[:, 1])], axis=-1
    )


def sub_polyline(points_px: np.ndarray, arc_px: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """The part of a polyline between arc lengths ``s0 <= s1`` [px], ends interpolated."""
    s0, s1 = float(max(s0, arc_px[0])), float(min(s1, arc_px[-1]))
    if s1 <= s0:
        return point_at_arc(points_px, arc_px, np.array([s0]))
    inner = (arc_px > s0) & (arc_px < s1)
    ends = point_at_arc(points_px, arc_px, np.array([s0, s1]))
    return np.concatenate([ends[:1], points_px[inner], ends[1:]], axis=0)


def tangent_normal(points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangents and left normals ``(N, 2)`` of a polyline (central differences)."""
    grad = np.gradient(np.asarray(points_px, dtype=np.float64), axis=0)
    norm = np.maximum(np.hypot(grad[:, 0], grad[:, 1]), 1e-9)[:, None]
    tangent = grad / norm
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return tangent, normal


def random_walk_curve(
    rng: np.random.Generator,
    start_px: tuple[float, float],
    heading_rad: float,
    length_px: float,
    step_px: float = 2.0,
    curvature_std_per_px: float = 0.01,
    max_curvature_per_px: float = 0.05,
    curvature_correlation: float = 0.9,
    attractor_px: tuple[float, float] | None = None,
    attract_gain: float = 0.0,
) -> np.ndarray:
    """A smooth random curve: heading driven by a correlated, clipped curvature process.

    The curvature ``k`` [1/px] follows an AR(1) process (smoothness) clipped to
    ``max_curvature_per_px`` (bending-stiffness limit of wires and vessels); the heading
    integrates ``k * step``. An optional attractor bends the heading towards a point so
    that curves stay inside the field of view.

    Returns
    -------
    np.ndarray
        ``(N, 2)`` float64 points [px], about ``length_px / step_px + 1`` of them.
    """
    n_steps = max(2, int(np.ceil(length_px / step_px)))
    shocks = rng.standard_normal(n_steps)
    points = np.empty((n_steps + 1, 2))
    points[0] = start_px
    heading = float(heading_rad)
    curvature = 0.0
    innovation = np.sqrt(max(1.0 - curvature_correlation**2, 0.0)) * curvature_std_per_px
    for i in range(n_steps):
        curvature = curvature_correlation * curvature + innovation * shocks[i]
        curvature = float(np.clip(curvature, -max_curvature_per_px, max_curvature_per_px))
        turn = curvature * step_px
        if attractor_px is not None and attract_gain > 0:
            to_target = np.arctan2(attractor_px[1] - points[i, 1], attractor_px[0] - points[i, 0])
            error = np.angle(np.exp(1j * (to_target - heading)))
            turn += float(
                np.clip(attract_gain * error, -max_curvature_per_px, max_curvature_per_px)
            )
        heading += turn
        points[i + 1] = points[i] + step_px * np.array([np.cos(heading), np.sin(heading)])
    return points


def _to_cv_points(points_px: np.ndarray, offset_xy: tuple[int, int] = (0, 0)) -> np.ndarray:
    shifted = np.asarray(points_px, dtype=np.float64) - np.asarray(offset_xy, dtype=np.float64)
    return np.round(shifted * _DRAW_SCALE).astype(np.int32).reshape(-1, 1, 2)


@dataclass(frozen=True)
class Stroke:
    """One polyline to draw: ``points_px`` ``(N, 2)``, grey ``level`` 0-255 on the uint8
    stroke canvas, integer ``thickness_px``; ``closed`` draws a loop."""

    points_px: np.ndarray
    level: int
    thickness_px: int
    closed: bool = False


def accumulate_strokes(
    attenuation: np.ndarray,
    strokes: list[Stroke],
    attenuation_per_level: float,
    weight: np.ndarray | None = None,
) -> None:
    """Draw anti-aliased strokes and add them to a float32 attenuation map in place.

    OpenCV only anti-aliases 8-bit images, so strokes are drawn on a uint8 canvas cropped
    to their bounding box (later strokes blend over earlier ones, which is how a denser
    tip segment overrides the wire body) and added as ``level * attenuation_per_level``.

    Parameters
    ----------
    attenuation : np.ndarray
        ``(H, W)`` float32 line-integral map, modified in place.
    strokes : list[Stroke]
        Polylines in the map's pixel coordinates [px].
    attenuation_per_level : float
        Line integral added per canvas grey level (dimensionless).
    weight : np.ndarray or None
        Optional ``(H, W)`` float32 factor (same shape as ``attenuation``) applied to the
        drawn strokes before adding, e.g. to thin a wire out where it displaces contrast.
    """
    strokes = [s for s in strokes if len(s.points_px) >= 1]
    if not strokes:
        return
    height, width = attenuation.shape
    all_points = np.concatenate([s.points_px for s in strokes], axis=0)
    margin = max(s.thickness_px for s in strokes) + 3
    x0 = int(max(0, np.floor(all_points[:, 0].min()) - margin))
    y0 = int(max(0, np.floor(all_points[:, 1].min()) - margin))
    x1 = int(min(width, np.ceil(all_points[:, 0].max()) + margin + 1))
    y1 = int(min(height, np.ceil(all_points[:, 1].max()) + margin + 1))
    if x1 <= x0 or y1 <= y0:
        return
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    for stroke in strokes:
        pts = _to_cv_points(stroke.points_px, (x0, y0))
        if len(pts) == 1:
            pts = np.concatenate([pts, pts], axis=0)
        cv2.polylines(
            canvas,
            [pts],
            stroke.closed,
            int(stroke.level),
            int(max(1, stroke.thickness_px)),
            cv2.LINE_AA,
            DRAW_SHIFT_BITS,
        )
    view = attenuation[y0:y1, x0:x1]
    drawn = canvas.astype(np.float32) * np.float32(attenuation_per_level)
    if weight is not None:
        drawn *= weight[y0:y1, x0:x1]
    view += drawn


def rasterize_polyline(
    mask: np.ndarray, points_px: np.ndarray, value: int, thickness_px: int, closed: bool = False
) -> None:
    """Draw a hard-edged (``LINE_8``) polyline into an integer label map in place [px]."""
    if len(points_px) == 0:
        return
    pts = _to_cv_points(points_px)
    if len(pts) == 1:
        pts = np.concatenate([pts, pts], axis=0)
    cv2.polylines(mask, [pts], closed, int(value), int(max(1, thickness_px)), cv2.LINE_8, 4)


# ----------------------------------------------------------------------------------------
# Guidewire model
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireSpec:
    """Per-sequence physical description of one guidewire.

    Attributes
    ----------
    kind : str
        ``"guidewire"`` or ``"stiff_guidewire"``.
    width_px : float
        Rendered diameter [px] (1-3 coronary, 2.5-4 stiff).
    body_attenuation : float
        Line integral through the centre of the wire body (dimensionless).
    tip_attenuation : float
        Line integral of the radio-opaque distal coil (denser than the body).
    tip_dense_length_px : float
        Length of the radio-opaque distal segment [px].
    tip_shape : str
        ``"straight"``, ``"angled"`` or ``"j"``.
    tip_bend_rad : float
        Bend of an angled tip / sweep of a J tip [rad].
    tip_bend_length_px : float
        Length of the shaped part of the tip [px].
    """

    kind: str
    width_px: float
    body_attenuation: float
    tip_attenuation: float
    tip_dense_length_px: float
    tip_shape: str
    tip_bend_rad: float
    tip_bend_length_px: float


def shaped_wire(
    track_px: np.ndarray,
    track_arc_px: np.ndarray,
    insertion_px: float,
    spec: WireSpec,
    rotation_rad: float,
) -> np.ndarray:
    """Wire polyline ``(N, 2)`` ordered **tip first**, following ``track_px`` up to
    ``insertion_px`` with a shaped distal tip.

    The shaped tip is a planar curve (angled: a straight segment rotated by the bend
    angle; J: a circular arc) attached at ``insertion_px - tip_bend_length_px``. Turning
    the wire about its axis by ``rotation_rad`` rotates that plane, so its projection on
    the detector scales the lateral offsets by ``cos(rotation_rad)`` [rad].
    """
    bend_length = float(min(spec.tip_bend_length_px, max(insertion_px - 2.0, 0.0)))
    s_bend = insertion_px - bend_length if spec.tip_shape != "straight" else insertion_px
    body = sub_polyline(track_px, track_arc_px, 0.0, s_bend)
    if spec.tip_shape == "straight" or bend_length < 2.0:
        return body[::-1].copy()
    # tangent at the bend point, from the last two body points
    direction = body[-1] - body[-2] if len(body) >= 2 else np.array([1.0, 0.0])
    direction = direction / max(float(np.hypot(*direction)), 1e-9)
    normal = np.array([-direction[1], direction[0]])
    n_tip = max(3, int(np.ceil(bend_length)))
    s = np.linspace(0.0, bend_length, n_tip + 1)[1:]
    if spec.tip_shape == "angled":
        # the first third stays straight, then a sharp bend of tip_bend_rad
        knee = bend_length / 3.0
        along = np.where(
            s <= knee, s, knee + (s - knee) * np.cos(spec.tip_bend_rad)
        )  # in-plane coordinates of the bent segment
        lateral = np.where(s <= knee, 0.0, (s - knee) * np.sin(spec.tip_bend_rad))
    else:  # "j": circular arc sweeping tip_bend_rad over the bend length
        radius = bend_length / max(spec.tip_bend_rad, 1e-3)
        phi = s / radius
        along = radius * np.sin(phi)
        lateral = radius * (1.0 - np.cos(phi))
    lateral = lateral * np.cos(rotation_rad)  # out-of-plane rotation foreshortens the bend
    tip = body[-1] + along[:, None] * direction + lateral[:, None] * normal
    return np.concatenate([body, tip], axis=0)[::-1].copy()


def _visibility_runs(
    points_px: np.ndarray, visibility: np.ndarray | None, level: int, thickness: int
) -> list[Stroke]:
    """Strokes of one polyline whose level is scaled by a per-point ``visibility`` (0-1),
    quantized to tenths so that a wire splits into a few runs, not one stroke per point."""
    if visibility is None or len(points_px) < 2:
        return [Stroke(points_px, level, thickness)]
    steps = np.round(np.clip(visibility, 0.0, 1.0) * 10.0).astype(np.int64)
    cuts = np.flatnonzero(np.diff(steps)) + 1
    strokes = []
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(points_px)], strict=True):
        run_level = int(round(level * steps[start] / 10.0))
        if run_level > 0:
            # runs share their end points so that no hole opens between them
            strokes.append(
                Stroke(points_px[start : min(stop + 1, len(points_px))], run_level, thickness)
            )
    return strokes


def wire_strokes(
    wire_tip_first_px: np.ndarray, spec: WireSpec, visibility: np.ndarray | None = None
) -> tuple[list[Stroke], float]:
    """Strokes (body, then denser tip) of a wire and the attenuation per canvas level.

    A cylinder's projected line integral is proportional to its diameter; when the
    drawn thickness is rounded to an integer the level is rescaled by
    ``width_px / thickness`` so the integrated attenuation across the wire is right.

    Parameters
    ----------
    wire_tip_first_px : np.ndarray
        ``(N, 2)`` wire polyline, tip first [px].
    spec : WireSpec
        Wire description.
    visibility : np.ndarray or None
        Optional ``(N,)`` factor 0-1 per point (low-dose drop-outs: stretches where the
        wire nearly vanishes); None = fully visible.
    """
    thickness = max(1, int(round(spec.width_px)))
    width_scale = spec.width_px / thickness
    per_level = spec.tip_attenuation * width_scale / 255.0
    body_level = int(np.clip(round(255.0 * spec.body_attenuation / spec.tip_attenuation), 1, 255))
    arc = arc_length(wire_tip_first_px)
    n_tip = int(np.searchsorted(arc, spec.tip_dense_length_px, side="right"))
    tip_part = sub_polyline(wire_tip_first_px, arc, 0.0, spec.tip_dense_length_px)
    tip_visibility = None
    if visibility is not None:
        tip_visibility = np.r_[visibility[: max(n_tip, 1)], visibility[max(n_tip - 1, 0)]][
            : len(tip_part)
        ]
        if len(tip_visibility) < len(tip_part):
            tip_visibility = np.resize(tip_visibility, len(tip_part))
    strokes = _visibility_runs(wire_tip_first_px, visibility, body_level, thickness)
    strokes += _visibility_runs(tip_part, tip_visibility, 255, thickness)
    return strokes, per_level


# ----------------------------------------------------------------------------------------
# Catheter model
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatheterSpec:
    """Per-sequence description of a guide catheter / sheath.

    Attributes
    ----------
    width_px : float
        Outer diameter [px] (5-9).
    wall_attenuation : float
        Line integral through one wall, seen tangentially (dimensionless).
    lumen_fraction : float
        Lumen attenuation relative to the walls (below 1 = lighter lumen; above 1 when
        the lumen is filled with contrast).
    tip_marker_attenuation : float
        Line integral of the radio-opaque tip marker band.
    tip_marker_length_px : float
        Length of the tip marker band [px].
    """

    width_px: float
    wall_attenuation: float
    lumen_fraction: float
    tip_marker_attenuation: float
    tip_marker_length_px: float


def catheter_strokes(
    catheter_tip_first_px: np.ndarray, spec: CatheterSpec
) -> tuple[list[Stroke], float]:
    """Strokes of a hollow tube: dark walls, a lighter lumen and a dense tip marker."""
    outer = max(3, int(round(spec.width_px)))
    inner = max(1, outer - 2 * max(1, int(round(outer / 4.0))))
    per_level = spec.tip_marker_attenuation / 255.0
    wall_level = int(
        np.clip(round(255.0 * spec.wall_attenuation / spec.tip_marker_attenuation), 1, 255)
    )
    lumen_level = int(np.clip(round(wall_level * spec.lumen_fraction), 1, 255))
    arc = arc_length(catheter_tip_first_px)
    marker = sub_polyline(catheter_tip_first_px, arc, 0.0, spec.tip_marker_length_px)
    strokes = [
        Stroke(catheter_tip_first_px, wall_level, outer),
        Stroke(catheter_tip_first_px, lumen_level, inner),
        Stroke(marker, 255, outer),
    ]
    return strokes, per_level


# ----------------------------------------------------------------------------------------
# Wire-like distractors (static relative to the patient)
# ----------------------------------------------------------------------------------------


def _twisted_pair(points_px: np.ndarray, separation_px: float, twist_period_px: float) -> list:
    arc = arc_length(points_px)
    _, normal = tangent_normal(points_px)
    offset = 0.5 * separation_px * np.sin(2.0 * np.pi * arc / twist_period_px)
    return [points_px + offset[:, None] * normal, points_px - offset[:, None] * normal]


def render_wire_like_distractors(
    attenuation: np.ndarray,
    rng: np.random.Generator,
    counts: dict[str, int],
    mm_per_px: float,
    centre_px: tuple[float, float],
) -> list[str]:
    """Draw wire-like structures that are NOT guidewires into an attenuation map.

    Parameters
    ----------
    attenuation : np.ndarray
        ``(H, W)`` float32 map, modified in place.
    rng : np.random.Generator
        Scene generator.
    counts : dict[str, int]
        How many of each kind: ``"sternal_wire"`` (closed loops with twisted ends in a
        column along the sternum), ``"ecg_lead"`` (long thin gently curved leads with an electrode),
        ``"pacemaker_lead"`` (thick lead with a dense tip electrode, half of them with a
        ribbed ICD shock coil),
        ``"line"`` (tubing, cables: long straight lines), ``"table_edge"`` (a straight
        step in attenuation with a thin dense rim: table / detector edge).
    mm_per_px : float
        Pixel spacing [mm/px], to size the objects physically.
    centre_px : tuple[float, float]
        Centre of the body (midline) [px].

    Returns
    -------
    list[str]
        Kinds drawn, one entry per object (for the frame parameters).
    """
    height, width = attenuation.shape
    diag = float(np.hypot(height, width))
    drawn: list[str] = []
    n_sternal = counts.get("sternal_wire", 0)
    # cerclage wires sit in a vertical column along the sternum, 15-30 mm apart
    sternum_x = centre_px[0] + rng.normal(0, 10.0 / mm_per_px)
    sternum_tilt = rng.normal(0.0, 0.1)
    pitch = rng.uniform(15.0, 30.0) / mm_per_px
    top = rng.uniform(0.0, 0.5) * height
    for k in range(n_sternal):
        # a closed loop seen edge-on (flat ellipse) whose ends form a short twisted pair
        cy = top + k * pitch * rng.uniform(0.85, 1.15)
        cx = sternum_x + (cy - height / 2) * np.tan(sternum_tilt) + rng.normal(0, 2.0 / mm_per_px)
        half = rng.uniform(4.0, 9.0) / mm_per_px
        tilt = rng.normal(0.0, 0.25)
        loop_x = half * np.cos(np.linspace(0, 2 * np.pi, 40))
        loop_y = rng.uniform(0.15, 0.45) * half * np.sin(np.linspace(0, 2 * np.pi, 40))
        rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
        loop = np.stack([loop_x, loop_y], axis=1) @ rot.T + [cx, cy]
        # the twisted ends: a short (2-6 mm) stub leaving one end of the loop, bent flat
        # at a random angle (the surgeon cuts and folds the twist onto the sternum)
        twist_len = rng.uniform(2.0, 6.0) / mm_per_px
        end = loop[0] if rng.random() < 0.5 else loop[20]
        stub_angle = tilt + rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.6)
        twist_axis = end + np.linspace(0.0, twist_len, 12)[:, None] * [
            np.cos(stub_angle),
            np.sin(stub_angle),
        ]
        level_att = rng.uniform(0.5, 1.4)
        thickness = max(1, int(round(rng.uniform(0.8, 1.5) / mm_per_px / 4.0)) + 1)
        strokes = [Stroke(loop.astype(np.float32), 255, thickness, closed=True)]
        strokes += [
            Stroke(p, 255, thickness) for p in _twisted_pair(twist_axis, 2.0, twist_len / 2.5)
        ]
        accumulate_strokes(attenuation, strokes, level_att / 255.0)
        drawn.append("sternal_wire")
    for _ in range(counts.get("ecg_lead", 0)):
        start = (rng.uniform(0, width), rng.uniform(0, height))
        heading = rng.uniform(-np.pi, np.pi)
        curve = random_walk_curve(
            rng, start, heading, rng.uniform(0.5, 1.2) * diag, 3.0, 0.004, 0.01, 0.97
        )
        thickness = int(rng.integers(1, 3))
        att = rng.uniform(0.08, 0.35)
        strokes = [Stroke(curve, 160, thickness)]
        # the electrode: a ring with a dense snap in the middle
        radius = rng.uniform(4.0, 8.0) / mm_per_px
        ring = np.stack(
            [
                start[0] + radius * np.cos(np.linspace(0, 2 * np.pi, 48)),
                start[1] + radius * np.sin(np.linspace(0, 2 * np.pi, 48)),
            ],
            axis=1,
        )
        # the snap: a small dense ring (2-4 mm) in the middle of the electrode pad
        snap_radius = max(1.5, rng.uniform(1.0, 2.0) / mm_per_px)
        snap = np.stack(
            [
                start[0] + snap_radius * np.cos(np.linspace(0, 2 * np.pi, 24)),
                start[1] + snap_radius * np.sin(np.linspace(0, 2 * np.pi, 24)),
            ],
            axis=1,
        )
        strokes += [
            Stroke(ring, 90, 2, closed=True),
            Stroke(snap, 255, max(2, int(round(snap_radius / 2.0))), closed=True),
        ]
        accumulate_strokes(attenuation, strokes, att / 160.0)
        drawn.append("ecg_lead")
    for _ in range(counts.get("pacemaker_lead", 0)):
        start = (rng.uniform(0.0, 0.3) * width, rng.uniform(-0.1, 0.2) * height)
        curve = random_walk_curve(
            rng,
            start,
            rng.uniform(0.2, 1.3),
            rng.uniform(0.6, 1.1) * diag,
            3.0,
            0.006,
            0.02,
            0.95,
            attractor_px=centre_px,
            attract_gain=0.01,
        )
        thickness = max(2, int(round(rng.uniform(1.5, 2.5) / mm_per_px / 3.0)))
        coil_att = rng.uniform(0.25, 0.7)
        arc = arc_length(curve)
        electrode = sub_polyline(curve, arc, arc[-1] - 8.0 / mm_per_px, 1e9)
        strokes = [Stroke(curve, 150, thickness), Stroke(electrode, 255, thickness + 1)]
        if rng.random() < 0.5:  # ICD lead: a 4-6 cm shock coil, thicker and ribbed
            coil_end = arc[-1] - rng.uniform(10.0, 20.0) / mm_per_px
            coil = sub_polyline(
                curve, arc, coil_end - rng.uniform(40.0, 60.0) / mm_per_px, coil_end
            )
            coil = resample_polyline(coil, 1.0).astype(np.float64)
            _, coil_normal = tangent_normal(coil)
            turn_px = max(2.0, rng.uniform(0.6, 1.0) / mm_per_px)
            ribs = [
                Stroke(
                    np.stack([c - 0.5 * (thickness + 2) * n, c + 0.5 * (thickness + 2) * n]),
                    255,
                    1,
                )
                for c, n in zip(coil[:: int(turn_px)], coil_normal[:: int(turn_px)], strict=True)
            ]
            strokes += [Stroke(coil, 210, thickness + 2), *ribs]
        accumulate_strokes(attenuation, strokes, coil_att / 150.0)
        drawn.append("pacemaker_lead")
    for _ in range(counts.get("table_edge", 0)):
        # table / detector edge: a straight step in attenuation across the whole canvas
        angle = rng.uniform(-np.pi, np.pi)
        through = np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height])
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        side = np.cos(angle) * (xx - through[0]) + np.sin(angle) * (yy - through[1])
        step = np.clip(side / rng.uniform(0.7, 2.0) + 0.5, 0.0, 1.0)
        attenuation += np.float32(rng.uniform(0.04, 0.2)) * step
        direction = np.array([-np.sin(angle), np.cos(angle)])
        rim = np.stack([through - diag * direction, through + diag * direction], axis=0)
        accumulate_strokes(attenuation, [Stroke(rim, 255, 2)], rng.uniform(0.0, 0.1) / 255)
        drawn.append("table_edge")
    for _ in range(counts.get("line", 0)):
        angle = rng.uniform(-np.pi, np.pi)
        through = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        direction = np.array([np.cos(angle), np.sin(angle)])
        line = np.stack([through - diag * direction, through + diag * direction], axis=0)
        accumulate_strokes(
            attenuation, [Stroke(line, 255, int(rng.integers(1, 4)))], rng.uniform(0.05, 0.25) / 255
        )
        drawn.append("line")
    return drawn
