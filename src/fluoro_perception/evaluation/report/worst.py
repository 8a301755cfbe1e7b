"""Worst-frame collection (a bounded heap) and their thumbnails with the ground truth."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from fluoro_perception.core.overlay import render_overlay
from fluoro_perception.core.types import FrameResult
from fluoro_perception.evaluation.frame_metrics import TIP_GATE_PX, FrameMetrics
from fluoro_perception.sim.types import SimFrame

#: Ground truth colour in the worst-frame thumbnails (RGB): magenta, unused by the overlay.
TRUTH_RGB = (255, 0, 255)
#: Longest side of a worst-frame thumbnail [px].
THUMBNAIL_SIDE_PX = 384


@dataclass(frozen=True)
class WorstFrame:
    """A frame kept for the report's worst-frame thumbnails."""

    score: float
    sequence_id: str
    frame_index: int
    values: dict[str, float]
    image: np.ndarray
    encoding: str
    result: FrameResult
    truth: SimFrame


def frame_badness(metrics: FrameMetrics) -> float | None:
    """How bad a frame is for the worst-frame list (higher = worse), None if perfect/empty.

    ``(1 - guidewire Dice) + min(tip error, gate) / gate + missed tips``: segmentation
    failures, displaced tips and lost wires all rank a frame up.
    """
    values = metrics.values
    if "guidewire_dice" not in values and not metrics.tip_match.num_missed:
        return None
    badness = 1.0 - values.get("guidewire_dice", 1.0)
    badness += min(values.get("tip_error_px", 0.0), TIP_GATE_PX) / TIP_GATE_PX
    badness += float(metrics.tip_match.num_missed)
    return badness if badness > 0.0 else None


class WorstFrames:
    """Keep the ``capacity`` worst frames seen (a bounded heap; O(log k) per frame)."""

    def __init__(self, capacity: int = 6) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity={capacity!r}; expected an int >= 0 (frames to keep)")
        self.capacity = capacity
        self._heap: list[tuple[float, int, WorstFrame]] = []
        self._counter = itertools.count()

    def offer(
        self,
        metrics: FrameMetrics,
        image: np.ndarray,
        encoding: str,
        result: FrameResult,
        truth: SimFrame,
    ) -> None:
        """Consider one frame (kept only if it is among the worst so far)."""
        badness = frame_badness(metrics)
        if badness is None or self.capacity == 0:
            return
        entry = (badness, next(self._counter))
        if len(self._heap) >= self.capacity and entry <= self._heap[0][:2]:
            return
        frame = WorstFrame(
            badness,
            metrics.sequence_id,
            metrics.frame_index,
            dict(metrics.values),
            image,
            encoding,
            result,
            truth,
        )
        if len(self._heap) >= self.capacity:
            heapq.heapreplace(self._heap, (*entry, frame))
        else:
            heapq.heappush(self._heap, (*entry, frame))

    def frames(self) -> list[WorstFrame]:
        """Kept frames, worst first."""
        return [item[2] for item in sorted(self._heap, key=lambda item: item[:2], reverse=True)]


def _fixed(points: np.ndarray) -> np.ndarray:
    # 4 fractional bits, as the overlay draws sub-pixel geometry
    return np.round(np.asarray(points, dtype=np.float64).reshape(-1, 1, 2) * 16).astype(np.int32)


def render_comparison(
    image: np.ndarray, encoding: str, result: FrameResult, truth: SimFrame
) -> np.ndarray:
    """The result's overlay with the ground truth drawn on top in magenta.

    GT wire centerlines as thin lines, visible GT tips as hollow circles, GT stent
    outlines as closed polygons. Returns ``(H, W, 3)`` uint8 RGB.
    """
    canvas = render_overlay(image, result, encoding)
    thickness = max(1, round(min(canvas.shape[:2]) / 384))
    radius = max(4, round(min(canvas.shape[:2]) / 60))
    for wire in truth.wires:
        if len(wire.centerline_px) >= 2:
            cv2.polylines(
                canvas, [_fixed(wire.centerline_px)], False, TRUTH_RGB, thickness, cv2.LINE_AA, 4
            )
        if wire.tip_visible:
            centre = tuple(int(v) for v in _fixed(wire.tip_px)[0, 0])
            cv2.circle(canvas, centre, radius * 16, TRUTH_RGB, thickness, cv2.LINE_AA, 4)
    for stent in truth.stents:
        cv2.polylines(
            canvas, [_fixed(stent.outline_px)], True, TRUTH_RGB, thickness, cv2.LINE_AA, 4
        )
    return canvas


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = THUMBNAIL_SIDE_PX / max(height, width)
    if scale >= 1.0:
        # small frames are enlarged by whole pixels (nearest) so they stay legible and exact
        factor = int(scale)
        if factor <= 1:
            return rgb
        return cv2.resize(rgb, (width * factor, height * factor), interpolation=cv2.INTER_NEAREST)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
