"""Stents as projected wire meshes laid along a (curved) vessel / wire track.

A stent is a cylinder of radius ``r(u)`` around a centre line ``c(u)``, ``u`` the arc
length [px] from its distal end. Its rings are zig-zags of ``2 * n_crowns`` struts around
the circumference; a strut point at angle ``theta`` projects to
``c(u) + r(u) * cos(theta + roll) * n(u)`` (n the in-image normal), so front and back
struts cross and form the diamond pattern seen on fluoroscopy. Connectors join
neighbouring rings. Looks (after ``real-fluoroscopy.md`` and LDA-Net's data, seed
``000_a7406d7b89063154.txt``, Sec. 3.1): crimped balloon-expandable stent on a balloon
with two marker bands, deployed balloon-expandable, self-expanding (more crowns, flared
ends, possibly partially released), and large aortic stent-grafts (few Z rings, thick
struts, markers) for EVAR.

Ground truth (seed 000, Eq. 2: "1 for stent wire"): label 2 is the strut mesh rasterized
with ``max(2, round(strut_width_px))`` px; marker bands belong to the delivery balloon
and are NOT labelled stent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluoro_perception.sim.instruments import Stroke, arc_length, point_at_arc

STENT_KINDS = ("balloon_expandable", "self_expanding", "aortic")


@dataclass(frozen=True)
class StentSpec:
    """Per-sequence description of one stent.

    Attributes
    ----------
    kind : str
        One of :data:`STENT_KINDS`.
    centre_arc_px : float
        Arc length of the stent centre along its track [px].
    length_px : float
        Stent length [px].
    diameter_px : float
        Expanded diameter [px].
    crimped_fraction : float
        Crimped / expanded diameter ratio (0-1).
    n_rings : int
        Number of zig-zag rings.
    n_crowns : int
        Crowns (zig-zag periods) per ring.
    strut_width_px : float
        Strut width [px] (coronary struts are often sub-pixel).
    strut_attenuation : float
        Line integral of one strut seen side-on (dimensionless).
    deployed_fraction : float
        Expanded fraction at t = 0, from the distal end (0 crimped, 1 fully deployed).
    deploy_rate_per_s : float
        Deployment speed [1/s] (0 = static).
    roll_rad : float
        Rotation of the mesh about its axis [rad].
    marker_bands : bool
        Draw the two balloon marker bands.
    marker_attenuation : float
        Line integral of a marker band.
    """

    kind: str
    centre_arc_px: float
    length_px: float
    diameter_px: float
    crimped_fraction: float
    n_rings: int
    n_crowns: int
    strut_width_px: float
    strut_attenuation: float
    deployed_fraction: float
    deploy_rate_per_s: float
    roll_rad: float
    marker_bands: bool
    marker_attenuation: float

    def deployed_at(self, t_s: float) -> float:
        """Deployed fraction (0-1) at time ``t_s`` [s]."""
        return float(min(1.0, self.deployed_fraction + self.deploy_rate_per_s * t_s))


def sample_stent_spec(
    rng: np.random.Generator, kind: str, centre_arc_px: float, mm_per_px: float
) -> StentSpec:
    """Draw a stent of ``kind`` from physical ranges: coronary length 8-40 mm, diameter
    2-4 mm; aortic diameter 20-35 mm (``real-fluoroscopy.md``)."""
    if kind not in STENT_KINDS:
        raise ValueError(f"stent kind {kind!r} is not known; expected one of {STENT_KINDS}")
    if kind == "aortic":
        length = rng.uniform(60.0, 120.0) / mm_per_px
        diameter = rng.uniform(20.0, 35.0) / mm_per_px
        rings = int(max(3, round(length / (diameter * rng.uniform(0.5, 0.8)))))
        return StentSpec(
            kind, centre_arc_px, length, diameter, rng.uniform(0.2, 0.35), rings,
            int(rng.integers(5, 9)), rng.uniform(1.6, 3.0), rng.uniform(0.5, 1.2),
            rng.choice([1.0, rng.uniform(0.4, 0.95)], p=[0.7, 0.3]),
            rng.choice([0.0, rng.uniform(0.05, 0.2)], p=[0.7, 0.3]),
            rng.uniform(0, np.pi), bool(rng.random() < 0.8), rng.uniform(0.8, 1.6),
        )  # fmt: skip
    length = rng.uniform(8.0, 40.0) / mm_per_px
    diameter = rng.uniform(2.0, 4.0) / mm_per_px
    # coronary struts are 60-120 um thick: usually narrower than a pixel
    strut_width = rng.uniform(0.06, 0.12) / mm_per_px
    ring_pitch = rng.uniform(1.0, 1.8) / mm_per_px
    rings = int(max(3, round(length / ring_pitch)))
    if kind == "balloon_expandable":
        deployed = float(rng.choice([0.0, 1.0, rng.uniform(0.2, 0.9)], p=[0.35, 0.5, 0.15]))
        return StentSpec(
            kind, centre_arc_px, length, diameter, rng.uniform(0.3, 0.45), rings,
            int(rng.integers(6, 10)), strut_width, rng.uniform(0.15, 0.5),
            deployed, rng.choice([0.0, rng.uniform(0.2, 0.6)], p=[0.8, 0.2]),
            rng.uniform(0, np.pi), bool(deployed < 1.0 or rng.random() < 0.5), rng.uniform(0.4, 1.0),
        )  # fmt: skip
    deployed = float(rng.choice([1.0, rng.uniform(0.2, 0.9)], p=[0.6, 0.4]))
    return StentSpec(
        kind, centre_arc_px, length, diameter, rng.uniform(0.25, 0.4), rings,
        int(rng.integers(8, 13)), strut_width, rng.uniform(0.1, 0.35),
        deployed, rng.choice([0.0, rng.uniform(0.1, 0.4)], p=[0.6, 0.4]),
        rng.uniform(0, np.pi), False, 0.0,
    )  # fmt: skip


def _radius_profile(spec: StentSpec, u: np.ndarray, deployed: float) -> np.ndarray:
    """Radius [px] along the stent, ``u`` from the distal end: expanded over the distal
    ``deployed`` fraction, crimped beyond with a short taper; self-expanding stents flare
    slightly at their ends."""
    r_full = 0.5 * spec.diameter_px
    r_crimp = r_full * spec.crimped_fraction
    front = deployed * spec.length_px
    taper = max(0.08 * spec.length_px, 2.0)
    expanded = np.clip((front - u) / taper + 0.5, 0.0, 1.0) if deployed < 1.0 else np.ones_like(u)
    radius = r_crimp + (r_full - r_crimp) * expanded
    if spec.kind == "self_expanding":
        ends = np.exp(-u / (0.06 * spec.length_px)) + np.exp(
            -(spec.length_px - u) / (0.06 * spec.length_px)
        )
        radius = radius * (1.0 + 0.15 * ends * expanded)
    return radius


@dataclass
class StentGeometry:
    """Projected geometry of one stent in one frame (canvas or frame coordinates).

    ``strut_polylines`` are polylines [px]; ``outline_px`` the closed envelope ``(M, 2)``;
    ``axis_px`` the centre line ``(K, 2)`` distal end first; ``markers_px`` short polylines
    of the marker bands; ``diameter_px`` the maximum projected diameter.
    """

    strut_polylines: list[np.ndarray]
    outline_px: np.ndarray
    axis_px: np.ndarray
    markers_px: list[np.ndarray]
    diameter_px: float
    deployed_fraction: float
    crimped_axis_px: np.ndarray
    crimped_diameter_px: float


def stent_geometry(
    spec: StentSpec, track_px: np.ndarray, track_arc_px: np.ndarray, t_s: float
) -> StentGeometry:
    """Mesh, outline and axis of a stent laid along ``track_px`` ``(N, 2)`` at time ``t_s``.

    The track is traversed towards increasing arc length = distal; ``u = 0`` is the
    distal end at ``centre_arc_px + length_px / 2``.
    """
    deployed = spec.deployed_at(t_s)
    s_distal = spec.centre_arc_px + 0.5 * spec.length_px

    def frame_at(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = s_distal - u
        centre = point_at_arc(track_px, track_arc_px, s)
        ahead = point_at_arc(track_px, track_arc_px, s + 1.0)
        behind = point_at_arc(track_px, track_arc_px, s - 1.0)
        tangent = ahead - behind
        tangent /= np.maximum(np.hypot(tangent[..., 0], tangent[..., 1]), 1e-9)[..., None]
        normal = np.stack([-tangent[..., 1], tangent[..., 0]], axis=-1)
        return centre, normal

    def project(u: np.ndarray, theta: np.ndarray) -> np.ndarray:
        centre, normal = frame_at(u)
        radius = _radius_profile(spec, u, deployed)
        return centre + (radius * np.cos(theta + spec.roll_rad))[..., None] * normal

    ring_pitch = spec.length_px / spec.n_rings
    amplitude = 0.42 * ring_pitch  # axial half-height of a zig-zag
    n_points = 2 * spec.n_crowns
    theta = np.linspace(0.0, 2.0 * np.pi, n_points + 1)
    zig = np.where(np.arange(n_points + 1) % 2 == 0, -amplitude, amplitude)
    struts: list[np.ndarray] = []
    for k in range(spec.n_rings):
        u_ring = (k + 0.5) * ring_pitch
        # subdivide each strut so the cos projection of the cylinder stays curved
        th = np.interp(np.linspace(0, n_points, 4 * n_points + 1), np.arange(n_points + 1), theta)
        uu = u_ring + np.interp(
            np.linspace(0, n_points, 4 * n_points + 1), np.arange(n_points + 1), zig
        )
        struts.append(project(uu, th))
        if k + 1 < spec.n_rings and spec.kind != "aortic":
            # connectors at every other crown between ring k (peak) and ring k+1 (valley)
            for j in range(1, n_points, 4):
                u_pair = np.array([u_ring + amplitude, u_ring + ring_pitch - amplitude])
                struts.append(project(u_pair, np.full(2, theta[j])))
    u_axis = np.linspace(0.0, spec.length_px, max(3, int(spec.length_px // 2) + 1))
    axis, normal = frame_at(u_axis)
    radius = _radius_profile(spec, u_axis, deployed)
    left = axis + radius[:, None] * normal
    right = axis - radius[:, None] * normal
    outline = np.concatenate([left, right[::-1]], axis=0)
    markers: list[np.ndarray] = []
    if spec.marker_bands:
        r_crimp = 0.5 * spec.diameter_px * spec.crimped_fraction
        for u_mark in (-0.6 * ring_pitch, spec.length_px + 0.6 * ring_pitch):
            c, n = frame_at(np.array([u_mark]))
            markers.append(np.concatenate([c + r_crimp * n, c - r_crimp * n], axis=0))
    return StentGeometry(
        strut_polylines=struts,
        outline_px=outline,
        axis_px=axis,
        markers_px=markers,
        diameter_px=float(2.0 * radius.max()),
        deployed_fraction=deployed,
        crimped_axis_px=axis[u_axis >= deployed * spec.length_px],
        crimped_diameter_px=float(spec.diameter_px * spec.crimped_fraction),
    )


def stent_strokes(geometry: StentGeometry, spec: StentSpec) -> tuple[list[Stroke], float]:
    """Anti-aliased strokes of the mesh (and markers) plus attenuation per canvas level.

    Crimped struts are packed closer than a pixel, so the mesh is also laid as a faint
    filled core whose density grows as the stent is compressed (more metal per area).
    """
    thickness = max(1, int(round(spec.strut_width_px)))
    # a sub-pixel strut drawn 1 px wide carries its true integrated attenuation
    strut_attenuation = spec.strut_attenuation * min(1.0, spec.strut_width_px / thickness)
    per_level = max(strut_attenuation, spec.marker_attenuation) / 255.0
    strut_level = int(np.clip(round(strut_attenuation / per_level), 1, 255))
    strokes = []
    if len(geometry.crimped_axis_px) >= 2:
        core_level = max(1, strut_level // 2)
        strokes.append(
            Stroke(geometry.crimped_axis_px, core_level, max(1, int(geometry.crimped_diameter_px)))
        )
    strokes += [Stroke(p, strut_level, thickness) for p in geometry.strut_polylines]
    for marker in geometry.markers_px:
        strokes.append(
            # a marker band is about 1 mm wide along the axis: 2-4 px
            Stroke(
                marker,
                255,
                int(np.clip(round(0.12 * spec.diameter_px * spec.crimped_fraction), 2, 4)),
            )
        )
    return strokes, per_level


def stent_gt_thickness_px(spec: StentSpec) -> int:
    """GT strut thickness ``max(2, round(strut_width_px))`` [px] (see module docstring)."""
    return max(2, int(round(spec.strut_width_px)))


def stent_outline_metrics(
    outline_px: np.ndarray, axis_px: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Centroid ``(2,)`` [px] (polygon area centroid), axis angle [rad] from the distal
    to the proximal end, and projected length [px] of a stent outline / axis."""
    x, y = outline_px[:, 0], outline_px[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = 0.5 * cross.sum()
    if abs(area) < 1e-6:
        centroid = outline_px.mean(axis=0)
    else:
        centroid = np.array(
            [((x + x1) * cross).sum() / (6 * area), ((y + y1) * cross).sum() / (6 * area)]
        )
    delta = axis_px[-1] - axis_px[0]
    return centroid, float(np.arctan2(delta[1], delta[0])), float(arc_length(axis_px)[-1])
