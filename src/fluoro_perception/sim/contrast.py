"""Contrast injections: the per-sequence injection (or residual) schedule, the bolus
state at a time, and the opacified vessel tree of one frame.

A sequence either gets an injection schedule (the bolus front runs along the vessel
tree's path length from the ostium, fills it in 0.5-1 s, holds, washes out and repeats),
a static faint residual opacification, or no contrast at all (:func:`draw_contrast`).
Each frame then turns the schedule into an opacified vessel layer, a factor on wire
attenuation inside filled lumens and the mask of the visibly opacified vessels, the
vessel ground truth (:func:`opacify`, rule :data:`VESSEL_MASK_MIN_LINE_INTEGRAL`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fluoro_perception.sim.anatomy import AnatomyLayers
from fluoro_perception.sim.config import SimConfig
from fluoro_perception.sim.instruments import arc_length

#: Contrast injection timing ranges [s] (documented in docs/simulator.md): the first
#: injection starts within START, the tree fills over FILL, stays opacified for HOLD,
#: washes out over WASHOUT to a residual of 0-10 %, and injections repeat every PERIOD.
BOLUS_START_S = (0.07, 0.4)
BOLUS_FILL_S = (0.5, 1.0)
BOLUS_HOLD_S = (1.0, 3.0)
BOLUS_WASHOUT_S = (1.5, 4.0)
BOLUS_PERIOD_S = (6.0, 10.0)
#: Vessel ground truth: a pixel is contrast vessel when the frame's iodine line integral
#: there (the opacified tree, warped by the motion like the image) is at least this
#: (dimensionless, the attenuation units of the canvas). 0.05 is the faintest regular
#: guidewire body (``sample_wire_spec`` draws 0.05-0.45 per px), so the mask holds the
#: opacified vessel pixels at least as dark as a wire the segmenter must find: those
#: it could mistake for a wire. Frame-independent (no wire needed, hard negatives
#: included) and taken before noise and display mapping, so it depends on no draw.
VESSEL_MASK_MIN_LINE_INTEGRAL = 0.05


def bolus_schedule(rng: np.random.Generator, mm_per_px: float, tree_length_px: float) -> dict:
    """An injection schedule: the front reaches the end of the tree (``tree_length_px``,
    path length from the ostium) after the fill time, so the whole tree fills in
    0.5-1 s whatever its size."""
    fill_s = rng.uniform(*BOLUS_FILL_S)
    return {
        "mode": "injection",
        "period_s": rng.uniform(*BOLUS_PERIOD_S),
        "start_s": rng.uniform(*BOLUS_START_S),
        "fill_s": fill_s,
        "front_speed_px_s": max(tree_length_px, 1.0) / fill_s,
        "hold_s": rng.uniform(*BOLUS_HOLD_S),
        "fade_s": rng.uniform(*BOLUS_WASHOUT_S),
        "residual": rng.uniform(0.0, 0.1),
        "soft_px": 6.0 / max(mm_per_px / 0.15, 0.3),
    }


def residual_schedule(rng: np.random.Generator, mm_per_px: float) -> dict:
    """Static faint opacification of the whole tree (contrast left from an earlier run)."""
    return {
        "mode": "residual",
        "residual": rng.uniform(0.05, 0.2),
        "soft_px": 6.0 / max(mm_per_px / 0.15, 0.3),
    }


def bolus_at(schedule: dict, t_s: float) -> tuple[float, float, float]:
    """Contrast state at ``t_s`` [s]: front position [px of vessel path from the ostium],
    opacity of the opacified part (0-1) and the base opacity of the rest of the tree
    (residual contrast of earlier injections, 0-1).

    Opacity rises over the first 60 % of the fill time (iodine concentration builds up
    while the front advances), holds, then falls linearly over the washout time to the
    residual level.
    """
    if schedule["mode"] == "residual":
        return 0.0, 0.0, float(schedule["residual"])
    if t_s < schedule["start_s"]:
        return 0.0, 0.0, 0.0
    since_first = t_s - schedule["start_s"]
    local = since_first % schedule["period_s"]
    base = schedule["residual"] if since_first >= schedule["period_s"] else 0.0
    front = local * schedule["front_speed_px_s"]
    rise = min(1.0, local / (0.6 * schedule["fill_s"]))
    fade_start = schedule["fill_s"] + schedule["hold_s"]
    if local < fade_start:
        opacity = rise
    else:
        washed = min(1.0, (local - fade_start) / schedule["fade_s"])
        opacity = 1.0 - (1.0 - schedule["residual"]) * washed
    return front, max(opacity, base), base


@dataclass
class ContrastPlan:
    """The contrast of one sequence.

    Attributes
    ----------
    schedule : dict or None
        :func:`bolus_schedule` or :func:`residual_schedule`; None: no contrast.
    vessel_box : tuple or None
        ``(y0, y1, x0, x1)`` canvas box of the vessel tree (set with a schedule).
    iodine_per_px : float
        Iodine line integral per px of filled-lumen chord.
    wire_hidden_in_contrast : float
        Fraction of a wire's contrast lost inside a fully opacified lumen.
    """

    schedule: dict | None
    vessel_box: tuple | None
    iodine_per_px: float
    wire_hidden_in_contrast: float

    @property
    def mode(self) -> str | None:
        """``"injection"``, ``"residual"`` or None."""
        return None if self.schedule is None else self.schedule["mode"]


def draw_contrast(
    rng: np.random.Generator,
    config: SimConfig,
    scenario: str,
    mm_per_px: float,
    anatomy: AnatomyLayers,
    iodine_per_px: float,
) -> ContrastPlan:
    """Draw whether the sequence has an injection, a residual opacification or none."""
    stiff = scenario == "stiff"
    contrast = scenario == "contrast" or (not stiff and rng.random() < config.contrast_probability)
    residual = not contrast and not stiff and rng.random() < config.residual_contrast_probability
    tree_length = max(
        (b.root_distance_px + arc_length(b.points_px)[-1] for b in anatomy.branches),
        default=1.0,
    )
    schedule = (
        bolus_schedule(rng, mm_per_px, tree_length)
        if contrast
        else residual_schedule(rng, mm_per_px)
        if residual
        else None
    )
    # a wire inside an opacified lumen displaces iodine: it keeps only 10-40 % of its
    # contrast there, so it nearly vanishes in a filled vessel (real-fluoroscopy.md)
    wire_hidden = float(rng.uniform(0.6, 0.9))
    vessel_box = None
    if schedule is not None:
        ys_v, xs_v = np.nonzero(anatomy.vessel > 1e-4)
        if len(ys_v) == 0:
            schedule = None
        else:
            vessel_box = (ys_v.min(), ys_v.max() + 1, xs_v.min(), xs_v.max() + 1)
    return ContrastPlan(schedule, vessel_box, float(iodine_per_px), wire_hidden)


@dataclass
class ContrastFrame:
    """Contrast of one frame.

    Attributes
    ----------
    moving : np.ndarray
        Canvas attenuation (line integral) with the opacified tree, before the motion warp.
    wire_weight : np.ndarray or None
        ``(H, W)`` float32 factor on wire attenuation in filled lumens (None: no contrast).
    front, opacity, base : float
        Bolus front [px of vessel path from the ostium], opacity and base opacity (0-1).
    vessel_mask : np.ndarray or None
        ``(H, W)`` bool frame pixels where the warped iodine line integral is at least
        :data:`VESSEL_MASK_MIN_LINE_INTEGRAL` (the field is not applied here); None: no
        contrast in this frame.
    """

    moving: np.ndarray
    wire_weight: np.ndarray | None
    front: float
    opacity: float
    base: float
    vessel_mask: np.ndarray | None = None


def opacify(
    plan: ContrastPlan,
    anatomy: AnatomyLayers,
    t_s: float,
    map_x: np.ndarray,
    map_y: np.ndarray,
) -> ContrastFrame:
    """The contrast state of the frame at ``t_s`` (motion maps ``map_x``/``map_y``)."""
    moving = anatomy.body
    bolus_front, bolus_opacity, bolus_base = 0.0, 0.0, 0.0
    wire_weight = None  # (H, W) factor on wire attenuation where contrast fills a lumen
    vessel_mask = None  # (H, W) bool visibly opacified vessel (ground truth)
    if plan.schedule is not None:
        bolus_front, bolus_opacity, bolus_base = bolus_at(plan.schedule, t_s)
        if bolus_opacity > 0 or bolus_base > 0:
            y0, y1, x0, x1 = plan.vessel_box
            # opacity behind the front, the residual base level ahead of it
            fill = (np.float32(bolus_front) - anatomy.vessel_root_distance_px[y0:y1, x0:x1]) * (
                np.float32(1.0 / plan.schedule["soft_px"])
            )
            np.clip(fill, 0.0, 1.0, out=fill)
            level = np.float32(bolus_base) + np.float32(bolus_opacity - bolus_base) * fill
            opacified = np.zeros_like(anatomy.body)
            opacified[y0:y1, x0:x1] = anatomy.vessel[y0:y1, x0:x1] * level
            moving = anatomy.body + opacified
            opacified_frame = cv2.remap(
                opacified, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            # 1 inside a lumen filled to at least a 1.5 px chord of full-strength iodine
            filled = opacified_frame * np.float32(1.0 / (1.5 * plan.iodine_per_px))
            np.clip(filled, 0.0, 1.0, out=filled)
            wire_weight = 1.0 - np.float32(plan.wire_hidden_in_contrast) * filled
            vessel_mask = opacified_frame >= np.float32(VESSEL_MASK_MIN_LINE_INTEGRAL)
    return ContrastFrame(moving, wire_weight, bolus_front, bolus_opacity, bolus_base, vessel_mask)


__all__ = [
    "BOLUS_FILL_S",
    "BOLUS_HOLD_S",
    "BOLUS_PERIOD_S",
    "BOLUS_START_S",
    "BOLUS_WASHOUT_S",
    "VESSEL_MASK_MIN_LINE_INTEGRAL",
    "ContrastFrame",
    "ContrastPlan",
    "bolus_at",
    "bolus_schedule",
    "draw_contrast",
    "opacify",
    "residual_schedule",
]
