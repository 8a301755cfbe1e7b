"""Contact sheets of simulated frames: the raw frame beside its ground-truth overlay.

Each tile shows, left, the frame as a detector would deliver it (so a person can judge
realism) and, right, the same frame with the ground truth drawn on it: wire centerlines
coloured per instance, a tip marker with a direction arrow (filled disc = tip visible,
cross = tip outside the field), stent outlines, a light tint of the catheter and stent
labels, and the boundary of the exposed (collimated) field. OpenCV only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fluoro_perception.core.types import CATHETER, STENT
from fluoro_perception.sim.types import SimFrame

#: BGR colours per wire instance id (cycled): red, blue, yellow, magenta.
WIRE_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (40, 40, 255),
    (255, 150, 40),
    (30, 220, 255),
    (255, 60, 200),
)
STENT_COLOR_BGR = (80, 255, 80)
FIELD_COLOR_BGR = (255, 255, 0)
CATHETER_TINT_BGR = (200, 120, 255)
_CAPTION_HEIGHT = 22
_GAP = 4


def to_display_u8(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Scale a detector image to uint8 for display.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W)`` uint8 (``bit_depth`` 8) or uint16 (``bit_depth`` 12 or 16).
    bit_depth : int
        Significant bits; the full scale ``2**bit_depth - 1`` maps to 255.

    Returns
    -------
    np.ndarray
        ``(H, W)`` uint8.
    """
    if bit_depth not in (8, 12, 16):
        raise ValueError(f"bit_depth={bit_depth!r}; expected 8, 12 or 16")
    if image.ndim != 2:
        raise ValueError(f"image has shape {image.shape}; expected a grey (H, W) image")
    if bit_depth == 8:
        return np.asarray(image, dtype=np.uint8)
    scale = 255.0 / float((1 << bit_depth) - 1)
    return cv2.convertScaleAbs(image, alpha=scale)  # saturating uint8 conversion


def _scale_points(points: np.ndarray, scale: float) -> np.ndarray:
    """Map ``(N, 2)`` source pixel coordinates into an image resized by ``scale``.

    With pixel centres at integers, resizing maps ``x`` to ``(x + 0.5) * scale - 0.5``.
    """
    return (np.asarray(points, dtype=np.float64).reshape(-1, 2) + 0.5) * scale - 0.5


def _px(points: np.ndarray, scale: float) -> np.ndarray:
    """(N, 2) float source pixel coordinates -> (N, 1, 2) int32 for OpenCV drawing."""
    return np.round(_scale_points(points, scale)).astype(np.int32).reshape(-1, 1, 2)


def draw_ground_truth(frame: SimFrame, panel_size: int | None = None) -> np.ndarray:
    """Draw the ground truth of ``frame`` on its display image.

    Parameters
    ----------
    frame : SimFrame
        Frame with ground truth.
    panel_size : int or None
        Output height [px] (width follows the aspect ratio); None = native size.

    Returns
    -------
    np.ndarray
        ``(h, w, 3)`` uint8 BGR overlay.
    """
    grey = to_display_u8(frame.image, frame.bit_depth)
    height, width = grey.shape
    scale = 1.0 if panel_size is None else panel_size / float(height)
    out_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = cv2.resize(grey, out_size, interpolation=cv2.INTER_AREA) if scale != 1.0 else grey
    canvas = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)  # (h, w, 3)

    def resized_mask(mask: np.ndarray) -> np.ndarray:
        mask_u8 = np.asarray(mask, dtype=np.uint8)
        if scale == 1.0:
            return mask_u8 > 0
        return cv2.resize(mask_u8, out_size, interpolation=cv2.INTER_NEAREST) > 0

    labels = np.asarray(frame.labels)
    for class_index, tint in ((CATHETER, CATHETER_TINT_BGR), (STENT, STENT_COLOR_BGR)):
        region = resized_mask(labels == class_index)
        if region.any():
            tinted = canvas[region].astype(np.float32) * 0.6 + np.array(tint, np.float32) * 0.4
            canvas[region] = tinted.astype(np.uint8)

    field = resized_mask(np.asarray(frame.field_mask, dtype=bool)).astype(np.uint8)
    if not field.all():
        contours, _ = cv2.findContours(field, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, FIELD_COLOR_BGR, 1, cv2.LINE_AA)

    for stent in frame.stents:
        outline = _px(stent.outline_px, scale)
        if outline.shape[0] >= 2:
            cv2.polylines(canvas, [outline], True, STENT_COLOR_BGR, 1, cv2.LINE_AA)

    arrow_length = max(12.0, 0.08 * min(out_size))
    for wire in frame.wires:
        color = WIRE_COLORS_BGR[(int(wire.instance_id) - 1) % len(WIRE_COLORS_BGR)]
        centerline = _px(wire.centerline_px, scale)
        if centerline.shape[0] >= 2:
            cv2.polylines(canvas, [centerline], False, color, 1, cv2.LINE_AA)
        tip = _scale_points(wire.tip_px, scale)[0]
        tip_int = (round(tip[0]), round(tip[1]))
        head = tip + arrow_length * np.array(
            [math.cos(wire.tip_direction_rad), math.sin(wire.tip_direction_rad)]
        )
        cv2.arrowedLine(
            canvas, tip_int, (round(head[0]), round(head[1])), color, 1, cv2.LINE_AA, 0, 0.3
        )
        if wire.tip_visible:
            cv2.circle(canvas, tip_int, 3, color, -1, cv2.LINE_AA)
        else:
            cv2.drawMarker(canvas, tip_int, color, cv2.MARKER_TILTED_CROSS, 8, 1, cv2.LINE_AA)
    return canvas


def render_tile(frame: SimFrame, panel_size: int = 256) -> np.ndarray:
    """Raw frame | ground-truth overlay side by side, with a caption band on top.

    Returns
    -------
    np.ndarray
        ``(caption + panel_size, 2 * panel_width + gap, 3)`` uint8 BGR.
    """
    if panel_size < 32:
        raise ValueError(f"panel_size={panel_size}; expected >= 32 [px]")
    overlay = draw_ground_truth(frame, panel_size)
    grey = to_display_u8(frame.image, frame.bit_depth)
    raw = cv2.resize(grey, overlay.shape[1::-1], interpolation=cv2.INTER_AREA)
    raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    panel_height, panel_width = overlay.shape[:2]
    tile = np.zeros((_CAPTION_HEIGHT + panel_height, 2 * panel_width + _GAP, 3), np.uint8)
    tile[_CAPTION_HEIGHT:, :panel_width] = raw
    tile[_CAPTION_HEIGHT:, panel_width + _GAP :] = overlay
    caption = (
        f"{frame.scenario} | {frame.sequence_id} #{frame.frame_index} | "
        f"{frame.image.shape[1]}x{frame.image.shape[0]} {frame.bit_depth}-bit | "
        f"{len(frame.wires)} wire {len(frame.stents)} stent"
    )
    font_scale = 0.4 if panel_width >= 200 else 0.3
    cv2.putText(
        tile,
        caption,
        (4, 15),
        cv2.FONT_HERSHEY_SIMPLEX,
        font_scale,
        (230, 230, 230),
        1,
        cv2.LINE_AA,
    )
    return tile


LEGEND = (
    "left: raw frame | right: ground truth - wires red/blue/yellow/magenta per instance, "
    "dot = tip, arrow = tip direction, x = tip outside field | green: stent | "
    "cyan: field edge | pink tint: catheter"
)


def contact_sheet(
    frames: Sequence[SimFrame], cols: int, panel_size: int = 256, legend: bool = False
) -> np.ndarray:
    """Grid of :func:`render_tile` tiles, row-major, ``cols`` per row.

    Returns
    -------
    np.ndarray
        ``(rows * tile_h + (rows - 1) * 8, cols * tile_w + (cols - 1) * 8, 3)`` uint8 BGR
        (plus a 22 px legend band at the bottom when ``legend``); empty cells grey.
    """
    if not frames:
        raise ValueError("frames is empty; expected at least one SimFrame")
    if cols < 1:
        raise ValueError(f"cols={cols}; expected >= 1")
    tiles = [render_tile(frame, panel_size) for frame in frames]
    tile_height = max(t.shape[0] for t in tiles)
    tile_width = max(t.shape[1] for t in tiles)
    rows = math.ceil(len(tiles) / cols)
    gap = 2 * _GAP
    sheet = np.full(
        (rows * tile_height + (rows - 1) * gap, cols * tile_width + (cols - 1) * gap, 3),
        48,
        dtype=np.uint8,
    )
    for index, tile in enumerate(tiles):
        row, col = divmod(index, cols)
        top, left = row * (tile_height + gap), col * (tile_width + gap)
        sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    if legend:
        band = np.zeros((_CAPTION_HEIGHT, sheet.shape[1], 3), np.uint8)
        font_scale = 0.4 if sheet.shape[1] >= 900 else 0.3
        cv2.putText(
            band,
            LEGEND,
            (4, 15),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
        sheet = np.concatenate([sheet, band], axis=0)
    return sheet


def simulate_preview_frames(
    seed: int = 0,
    count: int = 6,
    size: tuple[int, int] = (512, 512),
    frames_per_sequence: int = 16,
    scenarios: Sequence[str] | None = None,
) -> list[SimFrame]:
    """Simulate one short sequence per tile and return its last frame.

    Tile ``i`` uses scenario ``scenarios[i % len(scenarios)]`` (default: every scenario
    the simulator defines) and seed ``seed + i``; the last of ``frames_per_sequence``
    frames is shown so that motion and deployment have progressed (16 frames = about 1 s
    at 15 fps: a contrast run has filled its vessel tree by then).
    """
    # imported here so that the drawing functions work without the simulator
    from fluoro_perception.sim import SCENARIOS, SequenceSimulator, SimConfig

    if count < 1 or frames_per_sequence < 1:
        raise ValueError(
            f"count={count}, frames_per_sequence={frames_per_sequence}; expected both >= 1"
        )
    names = list(scenarios) if scenarios is not None else list(SCENARIOS)
    if not names:
        raise ValueError("no scenarios to preview; pass scenario names")
    frames = []
    for index in range(count):
        config = SimConfig(height=size[0], width=size[1], scenario=names[index % len(names)])
        simulator = SequenceSimulator(seed + index, config)
        frames.append(simulator.frames(frames_per_sequence)[-1])
    return frames


def write_preview(
    path: str | Path,
    seed: int = 0,
    rows: int = 3,
    cols: int = 2,
    size: tuple[int, int] = (512, 512),
    panel_size: int = 256,
) -> np.ndarray:
    """Simulate ``rows * cols`` frames, render a contact sheet and write it as PNG.

    Returns
    -------
    np.ndarray
        The sheet (BGR uint8) that was written.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"preview output {path} has suffix {path.suffix!r}; expected .png")
    if rows < 1 or cols < 1:
        raise ValueError(f"rows={rows}, cols={cols}; expected both >= 1")
    frames = simulate_preview_frames(seed=seed, count=rows * cols, size=size)
    sheet = contact_sheet(frames, cols=cols, panel_size=panel_size, legend=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}; check that the folder is writable")
    return sheet


__all__ = [
    "contact_sheet",
    "draw_ground_truth",
    "render_tile",
    "simulate_preview_frames",
    "to_display_u8",
    "write_preview",
]
