"""Human-readable overlay of a :class:`FrameResult` (the pipeline's *overlay* stage).

For people only (debug view, recordings): nothing downstream parses it. Colours (RGB):
guidewire mask green, stent mask orange, centerline yellow, tip red with a direction
arrow, stent outlines orange, tracks cyan with id and velocity vector (grey while
coasting), latency text at the top left. Line widths and text size scale with the
frame so a 512x512 frame is readable.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fluoro_perception.core.decode import normalize_encoding, to_mono_float
from fluoro_perception.core.types import FrameResult

GUIDEWIRE_RGB = (40, 220, 60)
STENT_RGB = (255, 150, 20)
CENTERLINE_RGB = (255, 235, 0)
TIP_RGB = (255, 40, 40)
TRACK_RGB = (0, 220, 255)
COASTING_RGB = (150, 150, 150)
TEXT_RGB = (255, 255, 255)
MASK_ALPHA = 0.45
#: Velocity arrows show where the tip will be this far ahead [s].
VELOCITY_HORIZON_S = 0.25
#: Fixed-point bits for sub-pixel drawing with OpenCV's ``shift`` argument.
_SHIFT_BITS = 4
_SHIFT_SCALE = 1 << _SHIFT_BITS


def _fixed_point(points_px: np.ndarray) -> np.ndarray:
    """``(N, 2)`` float [px] -> int32 fixed point for cv2 drawing with ``shift``."""
    return np.round(np.asarray(points_px, dtype=np.float64) * _SHIFT_SCALE).astype(np.int32)


def _base_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    canonical = normalize_encoding(encoding)
    if canonical == "rgb8":
        return np.array(image, dtype=np.uint8, copy=True)
    if canonical == "bgr8":
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
    grey = to_mono_float(image, canonical)  # (H, W) float32 in [0, 1]
    grey_u8 = np.round(grey * 255.0).astype(np.uint8)
    return cv2.cvtColor(grey_u8, cv2.COLOR_GRAY2RGB)  # (H, W, 3)


def _tint(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    selected = mask > 0
    if selected.any():
        pixels = canvas[selected].astype(np.float32)
        blended = (1.0 - MASK_ALPHA) * pixels + MASK_ALPHA * np.array(colour, np.float32)
        canvas[selected] = np.round(blended).astype(np.uint8)


def _label(
    canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float, thickness: int
) -> None:
    """Text with a dark box behind it so it reads on any background."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = origin
    cv2.rectangle(canvas, (x - 2, y - height - 2), (x + width + 2, y + baseline), (0, 0, 0), -1)
    cv2.putText(canvas, text, (x, y), font, scale, TEXT_RGB, thickness, cv2.LINE_AA)


def render_overlay(image: np.ndarray, result: FrameResult, encoding: str = "mono8") -> np.ndarray:
    """Draw masks, centerlines, tips, stents, tracks and latency on a copy of the frame.

    Parameters
    ----------
    image : np.ndarray
        The decoded frame the result was computed from (``(H, W)`` or ``(H, W, 3)``).
    result : FrameResult
        Output of :meth:`PerceptionPipeline.process` for that frame (input-grid [px]).
    encoding : str
        Encoding of ``image``.

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    if not isinstance(result, FrameResult):
        raise TypeError(f"result is {type(result).__name__}; expected a FrameResult")
    canvas = _base_rgb(image, encoding)
    height, width = canvas.shape[:2]
    for name in ("guidewire_mask", "stent_mask"):
        mask = getattr(result, name)
        if mask.shape != (height, width):
            raise ValueError(
                f"result.{name} has shape {mask.shape}; expected the image's {(height, width)} "
                "(render the frame the result was computed from)"
            )
    size = min(height, width)
    thickness = max(1, round(size / 256))
    marker_radius = max(3, round(size / 100))
    arrow_length = max(12.0, size / 16)
    font_scale = max(0.35, size / 1024)

    _tint(canvas, result.stent_mask, STENT_RGB)
    _tint(canvas, result.guidewire_mask, GUIDEWIRE_RGB)
    for stent in result.stents:
        outline = _fixed_point(stent.outline_px).reshape(-1, 1, 2)
        cv2.polylines(canvas, [outline], True, STENT_RGB, thickness, cv2.LINE_AA, _SHIFT_BITS)

    for wire in result.wires:
        if len(wire.centerline_px) >= 2:
            line = _fixed_point(wire.centerline_px).reshape(-1, 1, 2)
            cv2.polylines(
                canvas, [line], False, CENTERLINE_RGB, thickness, cv2.LINE_AA, _SHIFT_BITS
            )
        tip = np.asarray(wire.tip_px, dtype=np.float64)
        head = tip + arrow_length * np.array(
            [math.cos(wire.tip_direction_rad), math.sin(wire.tip_direction_rad)]
        )
        tip_fixed, head_fixed = _fixed_point(np.stack([tip, head]))
        cv2.arrowedLine(
            canvas,
            tuple(tip_fixed),
            tuple(head_fixed),
            TIP_RGB,
            thickness,
            cv2.LINE_AA,
            _SHIFT_BITS,
            0.3,
        )
        cv2.circle(
            canvas,
            tuple(tip_fixed),
            marker_radius * _SHIFT_SCALE,
            TIP_RGB,
            -1,
            cv2.LINE_AA,
            _SHIFT_BITS,
        )

    for track in result.tracks:
        colour = COASTING_RGB if track.coasting else TRACK_RGB
        position = np.asarray(track.position_px, dtype=np.float64)
        ahead = position + VELOCITY_HORIZON_S * np.asarray(track.velocity_px_s, dtype=np.float64)
        position_fixed, ahead_fixed = _fixed_point(np.stack([position, ahead]))
        cv2.circle(
            canvas,
            tuple(position_fixed),
            (marker_radius + 3) * _SHIFT_SCALE,
            colour,
            thickness,
            cv2.LINE_AA,
            _SHIFT_BITS,
        )
        if np.linalg.norm(ahead - position) >= 1.0:
            cv2.arrowedLine(
                canvas,
                tuple(position_fixed),
                tuple(ahead_fixed),
                colour,
                thickness,
                cv2.LINE_AA,
                _SHIFT_BITS,
                0.3,
            )
        text_origin = (int(position[0]) + marker_radius + 5, int(position[1]) - marker_radius - 5)
        _label(canvas, f"T{track.track_id}", text_origin, font_scale, 1)

    timings = result.timings_ms
    parts = []
    if "total" in timings:
        parts.append(f"total {timings['total']:.1f} ms")
    if "inference" in timings:
        parts.append(f"infer {timings['inference']:.1f} ms")
    parts.append(f"wires {len(result.wires)} stents {len(result.stents)}")
    line_height = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0][1]
    _label(canvas, " | ".join(parts), (4, 4 + line_height), font_scale, 1)
    return canvas
