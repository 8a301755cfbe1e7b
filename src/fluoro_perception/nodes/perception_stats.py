"""Counters behind ``segmentation_node``'s ``/diagnostics``: rates, latency, drops (no rclpy)."""

from __future__ import annotations

import collections
import threading
from typing import Any

import numpy as np

from fluoro_perception.core.geometry import GEOMETRY_CAPS

#: Drop reasons counted in the diagnostics (one counter each).
DROP_REASONS = (
    "superseded",  # a newer frame arrived before the worker took this one
    "duplicate_stamp",  # same stamp as the previous processed frame
    "out_of_order",  # older than the previous frame by less than time_jump_reset_s
    "stale",  # older than max_age_s when the worker took it
    "decode_error",  # wrong encoding, truncated data, bad step
    "processing_error",  # the pipeline raised (bad size, unexpected model output)
    "inactive",  # arrived while the node was being deactivated or cleaned up
)


class PerceptionStats:
    """Rates, latency percentiles and drop counts for ``/diagnostics`` (thread-safe).

    Rates are counted over the last ``window_s`` seconds of a monotonic clock; latency
    is receive -> published [ms] over the last ``latency_samples`` frames.
    """

    def __init__(self, window_s: float = 5.0, latency_samples: int = 200) -> None:
        self._lock = threading.Lock()
        self._window_s = window_s
        self._received: collections.deque[float] = collections.deque(maxlen=10_000)
        self._processed: collections.deque[float] = collections.deque(maxlen=10_000)
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=latency_samples)
        self._latency_samples = latency_samples
        self._stage_ms: dict[str, collections.deque[float]] = {}
        self.drops: collections.Counter[str] = collections.Counter()
        self.frames_received = 0
        self.frames_processed = 0
        self.tips_published = 0
        self.tips_withheld = 0
        self.tracking_resets = 0
        self.overlays_skipped = 0
        self.image_size_changes = 0
        self.last_image_size = ""
        self.last_drop = ""
        #: Detail of the last drop of each reason (a later drop of another reason, e.g. a
        #: superseded frame, must not hide why a frame failed)
        self.last_drop_detail: dict[str, str] = {}
        #: Frames in which each geometry cost cap left something out (GEOMETRY_CAPS keys).
        self.geometry_caps_hit: collections.Counter[str] = collections.Counter(
            dict.fromkeys(GEOMETRY_CAPS, 0)
        )

    def note_geometry_caps(self, caps_hit: dict[str, int]) -> None:
        """One processed frame's ``FrameResult.geometry_caps_hit``: count the caps that bit."""
        with self._lock:
            for name, left_out in caps_hit.items():
                if left_out:
                    self.geometry_caps_hit[name] += 1

    def note_received(self, now_s: float) -> None:
        with self._lock:
            self.frames_received += 1
            self._received.append(now_s)

    def note_processed(
        self, now_s: float, latency_ms: float, stage_ms: dict[str, float] | None = None
    ) -> None:
        """One published frame: receive -> published latency and per-stage times [ms]."""
        with self._lock:
            self.frames_processed += 1
            self._processed.append(now_s)
            self._latency_ms.append(latency_ms)
            for stage, value in (stage_ms or {}).items():
                samples = self._stage_ms.setdefault(
                    stage, collections.deque(maxlen=self._latency_samples)
                )
                samples.append(value)

    def note_tip(self, published: bool) -> None:
        with self._lock:
            if published:
                self.tips_published += 1
            else:
                self.tips_withheld += 1

    def note_overlay_skipped(self) -> None:
        with self._lock:
            self.overlays_skipped += 1

    def note_tracking_reset(self) -> None:
        with self._lock:
            self.tracking_resets += 1

    def note_size_change(self, new_size: str) -> None:
        """The input image size changed (``new_size`` as ``WxH``); the frame was processed."""
        with self._lock:
            self.image_size_changes += 1
            self.last_image_size = new_size

    def note_drop(self, reason: str, detail: str = "") -> None:
        with self._lock:
            self.drops[reason] += 1
            self.last_drop = f"{reason}: {detail}" if detail else reason
            if detail:
                self.last_drop_detail[reason] = detail

    def _rate(self, times: collections.deque[float], now_s: float) -> float:
        recent = [t for t in times if now_s - t <= self._window_s]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def snapshot(self, now_s: float) -> dict[str, Any]:
        """Key figures; latency percentiles are NaN before the first processed frame."""
        with self._lock:
            latencies = np.array(self._latency_ms, dtype=np.float64)
            values: dict[str, Any] = {
                "input_rate_hz": self._rate(self._received, now_s),
                "processing_rate_hz": self._rate(self._processed, now_s),
                "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else np.nan,
                "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies.size else np.nan,
                "latency_max_ms": float(latencies.max()) if latencies.size else np.nan,
                "frames_received": self.frames_received,
                "frames_processed": self.frames_processed,
                "frames_dropped": sum(self.drops.values()),
                "tips_published": self.tips_published,
                "tips_withheld": self.tips_withheld,
                "tracking_resets": self.tracking_resets,
                "overlays_skipped": self.overlays_skipped,
                "image_size_changes": self.image_size_changes,
                "last_image_size_change": self.last_image_size,
                "last_drop": self.last_drop,
            }
            for reason in DROP_REASONS:
                values[f"dropped.{reason}"] = self.drops.get(reason, 0)
            for reason, detail in self.last_drop_detail.items():
                values[f"last_drop.{reason}"] = detail
            for name, frames in self.geometry_caps_hit.items():
                values[f"geometry_caps_hit_{name}"] = frames
            for stage, samples in self._stage_ms.items():
                values[f"stage_p50_ms.{stage}"] = float(np.median(samples))
            return values
