"""One frame of a sequence: move the scene, draw the instruments, form the X-ray image
and rasterize the ground truth (:func:`render_frame`).

Per frame: the static anatomy canvas (with the contrast of that time) is warped by the
patient motion, catheters, wires (with motion blur when they move fast) and stents are
accumulated as attenuation strokes, and :class:`~fluoro_perception.sim.physics.ImageFormation`
turns the attenuation into the image with the frame's noise. Ground truth follows the
rules in ``docs/simulator.md``: wires are labelled outside the catheter only, stents by
their struts, everything outside the exposed field is background. The contrast-vessel
mask is the opacified tree of the frame, warped with the image, where its iodine line
integral reaches :data:`~fluoro_perception.sim.contrast.VESSEL_MASK_MIN_LINE_INTEGRAL`
(inside the field; all False without contrast).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from fluoro_perception.sim.config import SimConfig
from fluoro_perception.sim.contrast import ContrastFrame, opacify
from fluoro_perception.sim.instruments import (
    accumulate_strokes,
    arc_length,
    catheter_strokes,
    gt_wire_thickness_px,
    rasterize_polyline,
    resample_polyline,
    shaped_wire,
    sub_polyline,
    wire_strokes,
)
from fluoro_perception.sim.scene import Dropout, Scene
from fluoro_perception.sim.stents import (
    stent_geometry,
    stent_gt_thickness_px,
    stent_outline_metrics,
    stent_strokes,
)
from fluoro_perception.sim.tracks import PlacedStent, PlacedWire
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

_GUIDEWIRE, _STENT, _CATHETER = 1, 2, 3
#: Wire positions integrated per frame when the wire moves fast (motion blur).
BLUR_SAMPLES = 4


def wire_visibility(dropouts: list[Dropout], points_canvas_px: np.ndarray) -> np.ndarray | None:
    """Per-point visibility ``(N,)`` (0-1) of a wire from the sequence's low-dose
    drop-out patches (fixed to the patient, so the gap stays where the anatomy is
    while the wire slides through it); None without patches."""
    if not dropouts:
        return None
    visibility = np.ones(len(points_canvas_px))
    for centre, radius, kept in dropouts:
        distance = np.hypot(*(points_canvas_px - centre).T) / radius
        # smooth edge: full drop inside 0.7 r, none beyond r
        depth = np.clip((1.0 - distance) / 0.3, 0.0, 1.0)
        visibility = np.minimum(visibility, 1.0 - (1.0 - kept) * depth)
    return visibility


class _FrameCanvas:
    """The per-frame buffers (attenuation, class labels, instance map) and the motion
    displacement ``dx``/``dy`` that maps canvas points into the frame."""

    def __init__(self, scene: Scene, attenuation: np.ndarray, dx: np.ndarray, dy: np.ndarray):
        height, width = scene.view.mask.shape
        self.scene = scene
        self.attenuation = attenuation
        self.labels = np.zeros((height, width), dtype=np.uint8)
        self.instances = np.zeros((height, width), dtype=np.uint8)
        self.dx, self.dy = dx, dy

    def to_frame(self, points_canvas: np.ndarray) -> np.ndarray:
        return self.scene.motion.canvas_to_frame(points_canvas, self.dx, self.dy)


def _draw_catheters(canvas: _FrameCanvas, contrast: ContrastFrame) -> None:
    """Catheters (attenuation + catheter label); the guide catheter's lumen darkens while
    contrast is injected through it."""
    scene = canvas.scene
    for k, catheter in enumerate(scene.catheters):
        path = canvas.to_frame(catheter.path_tip_first_px)
        spec = catheter.spec
        if (
            k == 0
            and scene.guide_catheter
            and contrast.opacity > contrast.base
            and contrast.front > 0
        ):
            # contrast is injected through the guide catheter: its lumen turns dark
            lumen = spec.lumen_fraction + (1.5 - spec.lumen_fraction) * contrast.opacity
            spec = replace(spec, lumen_fraction=lumen)
        strokes, per_level = catheter_strokes(path, spec)
        accumulate_strokes(canvas.attenuation, strokes, per_level)
        rasterize_polyline(
            canvas.labels, path, _CATHETER, max(3, int(round(catheter.spec.width_px)))
        )


def _draw_wire_attenuation(
    canvas: _FrameCanvas,
    wire: PlacedWire,
    index: int,
    t: float,
    depth: float,
    shape_canvas: np.ndarray,
    shape: np.ndarray,
    wire_weight: np.ndarray | None,
) -> None:
    """Accumulate one wire's attenuation, integrated over BLUR_SAMPLES positions when it
    moved fast during the exposure window (pulse width plus detector lag)."""
    scene = canvas.scene
    previous_depth = wire.profile.at(index - 1) if index > 0 else depth
    travel = depth - previous_depth
    if abs(travel) <= scene.blur_min_travel_px:
        strokes, per_level = wire_strokes(
            shape, wire.spec, wire_visibility(scene.dropouts, shape_canvas)
        )
        accumulate_strokes(canvas.attenuation, strokes, per_level, wire_weight)
        return
    # motion blur: positions along the last ``exposure`` fraction of the inter-frame
    # travel. The GT stays at the end position (the frame's time).
    for j in range(BLUR_SAMPLES):
        lag = travel * scene.blur_exposure * j / (BLUR_SAMPLES - 1)
        sample_canvas = (
            shape_canvas
            if j == 0
            else shaped_wire(
                wire.track_px, wire.track_arc_px, depth - lag, wire.spec, wire.rotation(t)
            )
        )
        strokes, per_level = wire_strokes(
            canvas.to_frame(sample_canvas),
            wire.spec,
            wire_visibility(scene.dropouts, sample_canvas),
        )
        accumulate_strokes(canvas.attenuation, strokes, per_level / BLUR_SAMPLES, wire_weight)


def _draw_wires(
    canvas: _FrameCanvas, index: int, t: float, wire_weight: np.ndarray | None
) -> tuple[list[WireTruth], list[float]]:
    """Guidewires: attenuation, guidewire label and instance map (outside the catheter,
    inside the field), their :class:`WireTruth` and insertion depths [px]."""
    scene = canvas.scene
    wire_truths: list[WireTruth] = []
    insertion: list[float] = []
    instance_lines: list[tuple[int, int, np.ndarray, int]] = []
    for wire in () if scene.wire_absent else scene.wires:
        depth = wire.profile.at(index)
        insertion.append(float(depth))
        shape_canvas = shaped_wire(
            wire.track_px, wire.track_arc_px, depth, wire.spec, wire.rotation(t)
        )
        shape = canvas.to_frame(shape_canvas)
        _draw_wire_attenuation(canvas, wire, index, t, depth, shape_canvas, shape, wire_weight)
        # GT: the part outside the catheter (tip -> catheter tip), inside the field
        canvas_arc = arc_length(shape_canvas)
        outside_catheter = sub_polyline(shape, canvas_arc, 0.0, depth - wire.catheter_arc_px)
        gt_line = resample_polyline(outside_catheter, 1.0)
        thickness = gt_wire_thickness_px(wire.spec.width_px)
        rasterize_polyline(canvas.labels, gt_line, _GUIDEWIRE, thickness)
        inside = scene.view.in_field(gt_line)
        centerline = gt_line[inside]
        instance_lines.append((len(centerline), wire.instance_id, gt_line, thickness))
        if len(centerline) == 0:
            continue
        tip = shape[0].astype(np.float32)
        behind = sub_polyline(shape, arc_length(shape), 5.0, 5.0)[0]
        wire_truths.append(
            WireTruth(
                instance_id=wire.instance_id,
                kind=wire.spec.kind,
                centerline_px=centerline.astype(np.float32),
                tip_px=tip,
                tip_direction_rad=float(np.arctan2(tip[1] - behind[1], tip[0] - behind[0])),
                tip_visible=bool(inside[0]),
                width_px=float(wire.spec.width_px),
            )
        )
    # where wires overlap the one with the shorter visible part wins, so that a short
    # wire lying along a longer one never vanishes from the instance map
    for _, instance_id, gt_line, thickness in sorted(instance_lines, key=lambda e: (-e[0], e[1])):
        rasterize_polyline(canvas.instances, gt_line, instance_id, thickness)
    return wire_truths, insertion


def _draw_stent(canvas: _FrameCanvas, stent: PlacedStent, t: float) -> StentTruth | None:
    """One stent: attenuation, stent label by its struts and its :class:`StentTruth`
    (None when no strut is inside the field)."""
    scene = canvas.scene
    geometry = stent_geometry(stent.spec, stent.track_px, stent.track_arc_px, t)
    pieces = geometry.strut_polylines + geometry.markers_px + [
        geometry.outline_px, geometry.axis_px, geometry.crimped_axis_px
    ]  # fmt: skip
    lengths = [len(p) for p in pieces]
    mapped = canvas.to_frame(np.concatenate(pieces, axis=0))
    split = np.split(mapped, np.cumsum(lengths)[:-1])
    n_struts, n_markers = len(geometry.strut_polylines), len(geometry.markers_px)
    geometry.strut_polylines = split[:n_struts]
    geometry.markers_px = split[n_struts : n_struts + n_markers]
    geometry.outline_px, geometry.axis_px, geometry.crimped_axis_px = split[-3:]
    strokes, per_level = stent_strokes(geometry, stent.spec)
    accumulate_strokes(canvas.attenuation, strokes, per_level)
    stent_mask = np.zeros(canvas.labels.shape, dtype=np.uint8)
    for strut in geometry.strut_polylines:
        rasterize_polyline(stent_mask, strut, 1, stent_gt_thickness_px(stent.spec))
    stent_mask &= scene.view.mask
    if not stent_mask.any():
        return None
    canvas.labels[stent_mask > 0] = _STENT
    centroid, axis_rad, length = stent_outline_metrics(geometry.outline_px, geometry.axis_px)
    return StentTruth(
        instance_id=stent.instance_id,
        kind=stent.spec.kind,
        outline_px=geometry.outline_px.astype(np.float32),
        centroid_px=centroid.astype(np.float32),
        axis_rad=axis_rad,
        length_px=length,
        diameter_px=geometry.diameter_px,
        deployed_fraction=geometry.deployed_fraction,
    )


def render_frame(
    scene: Scene,
    config: SimConfig,
    index: int,
    noise_rng: np.random.Generator,
    sequence_id: str,
) -> SimFrame:
    """Frame ``index`` of the sequence ``scene`` (``noise_rng``: the per-frame noise
    stream, advanced by exactly one frame)."""
    t = index / config.fps
    map_x, map_y, dx, dy = scene.motion.maps(t)
    contrast = opacify(scene.contrast, scene.anatomy, t, map_x, map_y)
    attenuation = cv2.remap(
        contrast.moving, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    canvas = _FrameCanvas(scene, attenuation, dx, dy)
    _draw_catheters(canvas, contrast)
    wire_truths, insertion = _draw_wires(canvas, index, t, contrast.wire_weight)
    stent_truths = []
    for stent in () if scene.wire_absent else scene.stents:
        truth = _draw_stent(canvas, stent, t)
        if truth is not None:
            stent_truths.append(truth)
    outside = ~scene.view.mask
    canvas.labels[outside] = 0
    canvas.instances[outside] = 0
    if contrast.vessel_mask is None:
        vessel_mask = np.zeros(canvas.labels.shape, dtype=bool)
    else:
        vessel_mask = contrast.vessel_mask & scene.view.mask
    image = scene.formation.render(attenuation, noise_rng)
    params = dict(scene.params)
    params.update(scene.motion.components(t))
    params.update(
        {
            "bolus_front_px": float(contrast.front),
            "bolus_opacity": float(contrast.opacity),
            "bolus_base_opacity": float(contrast.base),
            "insertion_px": insertion,
        }
    )
    return SimFrame(
        image=image,
        bit_depth=config.bit_depth,
        labels=canvas.labels,
        wire_instances=canvas.instances,
        field_mask=scene.view.mask.copy(),
        wires=wire_truths,
        stents=stent_truths,
        pixel_spacing_m=scene.pixel_spacing_m,
        sequence_id=sequence_id,
        frame_index=index,
        timestamp_s=float(t),
        scenario=scene.scenario,
        params=params,
        vessel_mask=vessel_mask,
    )


__all__ = ["BLUR_SAMPLES", "render_frame", "wire_visibility"]
