"""The exposed field of one sequence and the padded canvas around the frame.

Static scene content (anatomy, instrument tracks) lives on a canvas that is the frame
plus a margin of ``pad`` px on every side, so that motion can shift it without showing
an edge; :class:`FieldView` holds the drawn field mask and answers the geometric
questions the scene draws ask about it (inside the field? where does a track leave it?).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluoro_perception.sim.config import FIELD_KINDS, SimConfig
from fluoro_perception.sim.physics import make_field_mask


@dataclass(frozen=True)
class FieldView:
    """Field of view of one sequence.

    Attributes
    ----------
    kind : str
        ``"full"``, ``"shutters"`` or ``"circle"``.
    mask : np.ndarray
        ``(H, W)`` bool exposed field of the frame.
    pad : int
        Canvas margin around the frame [px]; canvas = frame + ``pad``.
    box : tuple
        ``(x0, x1, y0, y1)`` bounding box of the field [frame px, inclusive].
    centre_px : tuple of float
        Centre of mass of the field in canvas coordinates ``(x, y)``.
    """

    kind: str
    mask: np.ndarray
    pad: int
    box: tuple
    centre_px: tuple[float, float]

    @property
    def canvas_shape(self) -> tuple[int, int]:
        height, width = self.mask.shape
        return (height + 2 * self.pad, width + 2 * self.pad)

    def in_field(self, points_frame_px: np.ndarray) -> np.ndarray:
        """Boolean ``(N,)``: rounded point inside the frame and the exposed field."""
        height, width = self.mask.shape
        ix = np.round(points_frame_px[:, 0]).astype(np.int64)
        iy = np.round(points_frame_px[:, 1]).astype(np.int64)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        result = np.zeros(len(points_frame_px), dtype=bool)
        result[inside] = self.mask[iy[inside], ix[inside]]
        return result

    def exit_arc(self, track: np.ndarray, arc: np.ndarray, after_arc: float) -> float | None:
        """First arc length beyond ``after_arc`` where the (static, canvas) track leaves
        the field after being inside it, or None."""
        inside = self.in_field(track - self.pad)
        beyond = arc > after_arc
        was_inside = False
        for i in np.flatnonzero(beyond):
            if inside[i]:
                was_inside = True
            elif was_inside:
                return float(arc[i])
        return None

    def straighten_after_exit(self, path: np.ndarray) -> np.ndarray:
        """Replace a canvas path after it first leaves the frame (plus a 10 % margin for
        motion) by a straight continuation of the same length, so it cannot re-enter."""
        height, width = self.mask.shape
        margin = 0.1 * max(height, width)
        x = path[:, 0] - self.pad
        y = path[:, 1] - self.pad
        outside = (x < -margin) | (x > width + margin) | (y < -margin) | (y > height + margin)
        exits = np.flatnonzero(outside)
        if len(exits) == 0 or exits[0] < 2:
            return path
        first = int(exits[0])
        direction = path[first] - path[first - 1]
        direction = direction / max(float(np.hypot(*direction)), 1e-9)
        remaining = len(path) - 1 - first
        steps = np.hypot(*np.diff(path[: first + 1], axis=0).T)
        step = float(np.mean(steps)) if len(steps) else 3.0
        extension = path[first] + step * np.arange(1, remaining + 1)[:, None] * direction
        return np.concatenate([path[: first + 1], extension], axis=0)

    def extend_out_of_field(self, track: np.ndarray) -> np.ndarray:
        """Continue a track straight along its last heading until it leaves the field."""
        direction = track[-1] - track[-4]
        direction = direction / max(float(np.hypot(*direction)), 1e-9)
        reach = np.arange(1, int(2 * max(self.mask.shape)), 3.0)
        extension = track[-1] + reach[:, None] * direction
        return np.concatenate([track, extension], axis=0)


def draw_field(rng: np.random.Generator, config: SimConfig, scenario: str) -> FieldView:
    """Draw the field of one sequence: ``collimation`` always collimates to a clearly
    partial field (at most 75 % of the frame), other scenarios draw full / shuttered /
    circular with ``config.field_kind_weights``."""
    height, width = config.height, config.width
    pad = int(round(0.22 * max(height, width))) + 8
    if scenario == "collimation":
        field_kind = str(rng.choice(["shutters", "circle"], p=[0.55, 0.45]))
        field_mask = make_field_mask(rng, height, width, field_kind, 0.2)
        for _ in range(10):  # "variable effective content": keep it clearly partial
            if field_mask.mean() <= 0.75:
                break
            field_mask = make_field_mask(rng, height, width, field_kind, 0.2)
    else:
        fw = np.asarray(config.field_kind_weights, dtype=np.float64)
        field_kind = str(rng.choice(FIELD_KINDS, p=fw / fw.sum()))
        field_mask = make_field_mask(rng, height, width, field_kind, 0.45)
    ys, xs = np.nonzero(field_mask)
    centre = (float(xs.mean()) + pad, float(ys.mean()) + pad)
    return FieldView(field_kind, field_mask, pad, (xs.min(), xs.max(), ys.min(), ys.max()), centre)


__all__ = ["FieldView", "draw_field"]
