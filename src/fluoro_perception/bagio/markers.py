"""The RViz markers (``/fluoro/ground_truth/markers``) of one simulated frame."""

from __future__ import annotations

import math

import numpy as np

from fluoro_perception.bagio.coordinates import points_px_to_m
from fluoro_perception.bagio.messages import MarkerSpec
from fluoro_perception.sim.types import SimFrame

# Marker colours (RGBA in [0, 1]) per wire instance id, cycled; stents in one colour.
_WIRE_COLORS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 0.2, 0.2, 1.0),
    (0.2, 0.6, 1.0, 1.0),
    (1.0, 0.8, 0.1, 1.0),
    (0.7, 0.3, 1.0, 1.0),
)
_STENT_COLOR = (0.1, 1.0, 0.4, 1.0)


def frame_markers(frame: SimFrame, spacing: float) -> list[MarkerSpec]:
    """Markers for all wires (centerline + tip arrow) and stent outlines of a frame."""
    markers: list[MarkerSpec] = []
    for wire in frame.wires:
        color = _WIRE_COLORS[(wire.instance_id - 1) % len(_WIRE_COLORS)]
        centerline = np.reshape(wire.centerline_px, (-1, 2))
        width_m = max(float(wire.width_px), 1.0) * spacing
        if centerline.shape[0] >= 2:
            markers.append(
                MarkerSpec(
                    "guidewire",
                    wire.instance_id,
                    "line_strip",
                    points_px_to_m(centerline, spacing),
                    color,
                    width_m,
                )
            )
        tip = np.asarray(wire.tip_px, dtype=np.float64)
        arrow_length_px = 20.0
        head = tip + arrow_length_px * np.array(
            [math.cos(wire.tip_direction_rad), math.sin(wire.tip_direction_rad)]
        )
        markers.append(
            MarkerSpec(
                "tip",
                wire.instance_id,
                "arrow",
                points_px_to_m(np.stack([tip, head]), spacing),
                color,
                width_m,
            )
        )
    for stent in frame.stents:
        outline = np.reshape(stent.outline_px, (-1, 2))
        if outline.shape[0] >= 2:
            closed = np.concatenate([outline, outline[:1]], axis=0)  # close the polygon
            markers.append(
                MarkerSpec(
                    "stent",
                    stent.instance_id,
                    "line_strip",
                    points_px_to_m(closed, spacing),
                    _STENT_COLOR,
                    spacing,
                )
            )
    return markers
