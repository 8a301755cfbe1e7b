"""Where the instruments of one sequence lie: the canvas tracks the wires follow and the
catheters drawn along them (or on their own).

* :func:`stiff_track`: EVAR, a straight-ish stiff-wire track from a femoral sheath below
  the frame up the aorta.
* :func:`vessel_tracks`: coronary work, a guide catheter leaving the ostium towards the
  outside of the field, continued by the main vessel (plus a second PCI wire's track,
  :func:`second_track`).
* :func:`guide_catheter`, :func:`pigtail_catheter`, :func:`wireless_catheter`: the
  catheters of a sequence.

The placed instruments (:class:`PlacedWire`, :class:`PlacedCatheter`,
:class:`PlacedStent`) hold static canvas geometry; frames move and draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from fluoro_perception.sim.anatomy import VesselBranch
from fluoro_perception.sim.field import FieldView
from fluoro_perception.sim.instruments import (
    CatheterSpec,
    WireSpec,
    arc_length,
    random_walk_curve,
    sub_polyline,
    tangent_normal,
)
from fluoro_perception.sim.motion import InsertionProfile
from fluoro_perception.sim.stents import StentSpec


@dataclass
class PlacedWire:
    """A guidewire of the sequence on its canvas track, with its insertion and rotation."""

    instance_id: int
    spec: WireSpec
    track_px: np.ndarray  # canvas coordinates, proximal (entry) first
    track_arc_px: np.ndarray
    catheter_arc_px: float  # wire arc length hidden inside the catheter [px]
    access_arc_px: float  # arc length of the ostium / sheath tip, drawn catheter or not [px]
    profile: InsertionProfile
    rotation0_rad: float
    rotation_amp_rad: float
    rotation_hz: float
    rotation_drift_rad_s: float

    def rotation(self, t_s: float) -> float:
        return (
            self.rotation0_rad
            + self.rotation_amp_rad * np.sin(2 * np.pi * self.rotation_hz * t_s)
            + self.rotation_drift_rad_s * t_s
        )


@dataclass
class PlacedCatheter:
    """A catheter of the sequence: its spec and canvas path, tip first."""

    spec: CatheterSpec
    path_tip_first_px: np.ndarray  # canvas coordinates


@dataclass
class PlacedStent:
    """A stent of the sequence on the track it sits on."""

    instance_id: int
    spec: StentSpec
    track_px: np.ndarray
    track_arc_px: np.ndarray


class Track(NamedTuple):
    """A wire track (canvas, entry first), the arc length of it inside a drawn catheter
    (0: none) and the arc length of the ostium / sheath tip [px]."""

    points_px: np.ndarray
    catheter_arc_px: float
    access_arc_px: float


def stiff_track(
    rng: np.random.Generator, view: FieldView, size_scale: float
) -> tuple[list[Track], float]:
    """EVAR: the stiff wire's track from a femoral sheath below the frame (drawn as a
    catheter 70 % of the time) and the sheath width [px]."""
    height = view.mask.shape[0]
    pad = view.pad
    fx0, fx1, _, _ = view.box
    entry = np.array(
        [pad + fx0 + (fx1 - fx0) * rng.uniform(0.3, 0.7), pad + height + 0.15 * height]
    )
    track = random_walk_curve(
        rng, tuple(entry), -np.pi / 2 + rng.normal(0, 0.15), 2.2 * height + 2 * pad,
        3.0, 0.0015, 0.004, 0.97, attractor_px=view.centre_px, attract_gain=0.001,
    )  # fmt: skip
    sheath_len = float(
        np.clip(0.15 * height + rng.uniform(0.0, 0.4) * height, 0.0, arc_length(track)[-1])
    )
    catheter_arc = sheath_len if rng.random() < 0.7 else 0.0
    catheter_width = rng.uniform(7.0, 9.0) * max(size_scale, 0.5)
    return [Track(track, catheter_arc, sheath_len)], catheter_width


def vessel_tracks(
    rng: np.random.Generator,
    view: FieldView,
    scenario: str,
    branches: list[VesselBranch],
    excursion: bool,
    size_scale: float,
) -> tuple[list[Track], float]:
    """Coronary work: the main wire's track (guide catheter, then the main vessel; pushed
    out of the field for a tip excursion), a second wire's track in ``dual`` (and 20 %
    of ``stent`` / ``contrast``), and the guide catheter width [px]."""
    height, width = view.mask.shape
    main = branches[0].points_px
    main_heading = float(np.arctan2(*(main[1] - main[0])[::-1]))
    # the guide catheter leaves the ostium away from the vessel, towards the
    # outside of the field, and never comes back into view
    away = main[0] - np.asarray(view.centre_px)
    away_heading = float(np.arctan2(away[1], away[0]))
    heading = np.angle(
        np.exp(1j * (main_heading + np.pi)) + 0.8 * np.exp(1j * away_heading)
    ) + rng.normal(0.0, 0.4)
    back = random_walk_curve(
        rng, tuple(main[0]), float(heading), 2.5 * max(height, width), 3.0, 0.004,
        0.012, 0.95,
    )  # fmt: skip
    back = view.straighten_after_exit(back)
    catheter_path = back[::-1]  # entry (far outside the frame) -> ostium
    # 15 %: no guide catheter drawn (e.g. only a wire through a faint microcatheter),
    # the wire then enters the field from the border
    has_catheter = rng.random() < 0.85
    catheter_arc = float(arc_length(catheter_path)[-1]) if has_catheter else 0.0
    main_track = np.concatenate([catheter_path, main[1:]], axis=0)
    if excursion:
        main_track = view.extend_out_of_field(main_track)
    access_arc = float(arc_length(catheter_path)[-1])
    tracks = [Track(main_track, catheter_arc, access_arc)]
    if scenario == "dual" or (scenario in ("stent", "contrast") and rng.random() < 0.2):
        side = second_track(rng, catheter_path, branches, size_scale)
        tracks.append(Track(side, catheter_arc, access_arc))
    catheter_width = rng.uniform(5.0, 9.0) * max(size_scale, 0.5)
    return tracks, catheter_width


def second_track(
    rng: np.random.Generator,
    catheter_path: np.ndarray,
    branches: list[VesselBranch],
    size_scale: float,
) -> np.ndarray:
    """Track of the second PCI wire: side by side with the main wire (smoothly varying
    lateral offset whose zero crossings make the wires cross), then into a side branch."""
    main = branches[0].points_px
    children = [b for b in branches[1:] if b.parent == 0]
    if children:
        child = children[int(rng.integers(0, len(children)))]
        fork = int(np.argmin(np.hypot(*(main - child.points_px[0]).T)))
        side = child.points_px
    else:
        fork = int(len(main) * rng.uniform(0.3, 0.6))
        step = main[min(fork + 1, len(main) - 1)] - main[max(fork - 1, 0)]
        heading = float(np.arctan2(step[1], step[0])) + rng.choice([-1, 1]) * rng.uniform(0.4, 1.0)
        side = random_walk_curve(
            rng, tuple(main[fork]), heading, 0.5 * len(main) * 2.0, 2.0, 0.02, 0.06
        )
    shared = main[: fork + 1]
    s = arc_length(shared)
    _, normal = tangent_normal(shared) if len(shared) >= 2 else (None, np.zeros_like(shared))
    # PCI wires share a 2.5-4 mm vessel: side by side a few px apart, crossing at the
    # zero crossings of the offset
    # 35 %: very close (1-2.5 px apart, touching where they cross) but separate in GT
    close = rng.random() < 0.35
    amplitude = max(
        1.0 if close else 1.5,
        (rng.uniform(1.0, 2.5) if close else rng.uniform(3.0, 8.0)) * size_scale,
    )
    wavelength = rng.uniform(40.0, 120.0) * size_scale
    ramp = np.clip(s / (10.0 * size_scale), 0.0, 1.0)
    offset = amplitude * ramp * np.sin(2 * np.pi * s / wavelength + rng.uniform(0, np.pi))
    shared = shared + offset[:, None] * normal
    return np.concatenate([catheter_path, shared[1:], side[1:]], axis=0)


def guide_catheter(
    rng: np.random.Generator, track: Track, width_px: float, mm: float
) -> PlacedCatheter:
    """The catheter (guide catheter or sheath) around the first ``catheter_arc_px`` of
    the main wire's track."""
    points = track.points_px
    path = sub_polyline(points, arc_length(points), 0.0, track.catheter_arc_px)
    spec = CatheterSpec(
        width_px=float(np.clip(width_px, 3.0, 10.0)),
        wall_attenuation=rng.uniform(0.15, 0.45),
        lumen_fraction=rng.uniform(0.3, 0.7),
        tip_marker_attenuation=rng.uniform(0.6, 1.5),
        tip_marker_length_px=rng.uniform(1.5, 3.0) / mm,
    )
    return PlacedCatheter(spec, path[::-1].copy())


def pigtail_catheter(
    rng: np.random.Generator, view: FieldView, mm: float, size_scale: float
) -> PlacedCatheter:
    """EVAR flush catheter: a shaft from the other femoral side up the aorta ending in
    a 1-1.6 turn pigtail loop of 6-12 mm radius (labelled catheter)."""
    height = view.mask.shape[0]
    pad = view.pad
    fx0, fx1, _, _ = view.box
    start = (pad + fx0 + (fx1 - fx0) * rng.uniform(0.2, 0.8), pad + 1.15 * height)
    shaft = random_walk_curve(
        rng, start, -np.pi / 2 + rng.normal(0.0, 0.2),
        rng.uniform(0.5, 1.0) * height + 0.15 * height, 3.0, 0.002, 0.005, 0.97,
    )  # fmt: skip
    step = shaft[-1] - shaft[-2]
    heading = float(np.arctan2(step[1], step[0]))
    side = float(rng.choice([-1.0, 1.0]))
    radius = rng.uniform(6.0, 12.0) / mm
    normal = np.array([np.cos(heading + side * np.pi / 2), np.sin(heading + side * np.pi / 2)])
    centre = shaft[-1] + radius * normal
    sweep = 2.0 * np.pi * rng.uniform(1.0, 1.6)
    phi = np.linspace(0.0, sweep, 120)[1:]
    start_angle = float(np.arctan2(*(shaft[-1] - centre)[::-1]))
    loop_radius = radius * (1.0 - 0.35 * phi / sweep)
    loop = centre + loop_radius[:, None] * np.stack(
        [np.cos(start_angle + side * phi), np.sin(start_angle + side * phi)], axis=1
    )
    path = np.concatenate([shaft, loop], axis=0)
    spec = CatheterSpec(
        width_px=float(np.clip(rng.uniform(4.0, 6.0) * max(size_scale, 0.5), 3.0, 10.0)),
        wall_attenuation=rng.uniform(0.12, 0.35),
        lumen_fraction=rng.uniform(0.3, 0.7),
        tip_marker_attenuation=rng.uniform(0.4, 1.0),
        tip_marker_length_px=rng.uniform(1.0, 2.0) / mm,
    )
    return PlacedCatheter(spec, path[::-1].copy())


def wireless_catheter(
    rng: np.random.Generator, view: FieldView, mm: float, size_scale: float
) -> PlacedCatheter:
    """A catheter with NO wire in it (diagnostic catheter left in place, temporary
    pacing catheter, second guide): enters from a border and ends inside the field
    with a tip marker; labelled catheter, never guidewire (a wire-like distractor)."""
    height, width = view.mask.shape
    pad = view.pad
    fx0, fx1, fy0, fy1 = view.box
    side = int(rng.integers(0, 4))
    along = rng.uniform(0.15, 0.85)
    start = [
        (pad - 0.1 * width, pad + fy0 + along * (fy1 - fy0)),
        (pad + 1.1 * width, pad + fy0 + along * (fy1 - fy0)),
        (pad + fx0 + along * (fx1 - fx0), pad - 0.1 * height),
        (pad + fx0 + along * (fx1 - fx0), pad + 1.1 * height),
    ][side]
    heading = [0.0, np.pi, np.pi / 2, -np.pi / 2][side] + rng.normal(0.0, 0.3)
    path = random_walk_curve(
        rng, start, heading, (0.1 + rng.uniform(0.3, 0.8)) * max(height, width), 3.0,
        0.004, 0.015, 0.95,
    )  # fmt: skip
    spec = CatheterSpec(
        width_px=float(np.clip(rng.uniform(3.0, 7.0) * max(size_scale, 0.5), 3.0, 10.0)),
        wall_attenuation=rng.uniform(0.1, 0.4),
        lumen_fraction=rng.uniform(0.3, 0.8),
        tip_marker_attenuation=rng.uniform(0.3, 1.2),
        tip_marker_length_px=rng.uniform(1.0, 3.0) / mm,
    )
    return PlacedCatheter(spec, path[::-1].copy())


__all__ = [
    "PlacedCatheter",
    "PlacedStent",
    "PlacedWire",
    "Track",
    "guide_catheter",
    "pigtail_catheter",
    "second_track",
    "stiff_track",
    "vessel_tracks",
    "wireless_catheter",
]
