"""Scoring recorded perception outputs: rebuild results from an output bag, evaluate them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fluoro_perception.bagio import open_bag, quaternion_to_yaw, stamp_to_ns
from fluoro_perception.core.decode import ImageDecodeError, decode_image
from fluoro_perception.core.types import GUIDEWIRE, STENT, FrameResult, WireDetection
from fluoro_perception.replay.truth import iter_bag_frames, truth_from_bag_frame
from fluoro_perception.topics import DEFAULT_NAMESPACE, perception_topics

#: ``skipped`` reason of :func:`evaluate_recorded` for frames whose scoring raised.
SCORING_FAILED = "scoring failed"


def _decode(message: Any) -> np.ndarray | None:
    try:
        return decode_image(
            message.encoding,
            message.height,
            message.width,
            message.step,
            message.is_bigendian,
            message.data,
        )
    except ImageDecodeError:
        return None


def results_from_output_bag(
    output_bag: str | Path,
    pixel_spacing_m: float,
    namespace: str = DEFAULT_NAMESPACE,
    latencies_ms: dict[int, float] | None = None,
) -> dict[int, FrameResult]:
    """Rebuild one :class:`FrameResult` per stamp from a recorded perception bag.

    A frame counts when its ``labels`` message was recorded. Masks are the recorded
    images; wires come from the tips PoseArray (metres / ``pixel_spacing_m`` -> [px]),
    the first one carrying the recorded primary centerline when the Path starts at its
    tip; stents and tracks are not rebuilt (the metrics do not use them).
    ``timings_ms["total"]`` is ``latencies_ms[stamp]`` when given (the end-to-end time).
    """
    topics = perception_topics(namespace)
    spacing = float(pixel_spacing_m)
    results: dict[int, FrameResult] = {}
    for stamp, parts in _recorded_parts(output_bag, topics).items():
        if "labels" not in parts:
            continue
        labels = _decode(parts["labels"])
        if labels is None:
            continue
        masks = {}
        for key in ("guidewire_mask", "stent_mask"):
            image = _decode(parts[key]) if key in parts else None
            if image is None:
                class_index = GUIDEWIRE if key == "guidewire_mask" else STENT
                image = np.where(labels == class_index, 255, 0).astype(np.uint8)
            masks[key] = image
        timings = {}
        if latencies_ms is not None and stamp in latencies_ms:
            timings["total"] = float(latencies_ms[stamp])
        results[stamp] = FrameResult(
            stamp_ns=stamp,
            labels=labels,
            guidewire_mask=masks["guidewire_mask"],
            stent_mask=masks["stent_mask"],
            wires=_recorded_wires(parts, spacing),
            timings_ms=timings,
        )
    return results


def _recorded_parts(
    output_bag: str | Path, topics: dict[str, tuple[str, str]]
) -> dict[int, dict[str, Any]]:
    """Stamp -> output key -> recorded message, of the outputs results are rebuilt from."""
    per_stamp: dict[int, dict[str, Any]] = {}
    with open_bag(output_bag) as bag:
        present = bag.topics
        for key in ("labels", "guidewire_mask", "stent_mask", "tips", "centerline"):
            topic, msgtype = topics[key]
            if present.get(topic) != msgtype:
                continue
            for _, message in bag.iter_messages(topic, msgtype):
                stamp = stamp_to_ns(message.header.stamp)
                per_stamp.setdefault(stamp, {})[key] = message
    return per_stamp


def _recorded_wires(parts: dict[str, Any], spacing: float) -> list[WireDetection]:
    """Wires of one stamp from its tips PoseArray and primary centerline Path [px]."""
    centerline_px = np.zeros((0, 2))
    if "centerline" in parts and parts["centerline"].poses:
        centerline_px = (
            np.array([[p.pose.position.x, p.pose.position.y] for p in parts["centerline"].poses])
            / spacing
        )
    wires = []
    poses = parts["tips"].poses if "tips" in parts else []
    for index, pose in enumerate(poses):
        tip_px = np.array([pose.position.x, pose.position.y]) / spacing
        q = pose.orientation
        own_centerline = (
            centerline_px
            if index == 0 and len(centerline_px) and np.hypot(*(centerline_px[0] - tip_px)) < 1e-3
            else tip_px.reshape(1, 2)
        )
        wires.append(
            WireDetection(
                wire_id=index,
                centerline_px=own_centerline.astype(np.float32),
                tip_px=tip_px,
                tip_direction_rad=quaternion_to_yaw(q.x, q.y, q.z, q.w),
                confidence=1.0,
                length_px=float(
                    np.sum(np.hypot(*np.diff(own_centerline, axis=0).T))
                    if len(own_centerline) > 1
                    else 0.0
                ),
            )
        )
    return wires


def evaluate_recorded(
    output_dir: Path,
    truth_bag: str | Path,
    output_bag: str | Path,
    *,
    topic: str,
    pixel_spacing_m: float,
    latencies_ms: dict[int, float],
    run_info: Any,
    namespace: str = DEFAULT_NAMESPACE,
    worst: int = 6,
    errors: Any = None,
) -> tuple[dict[str, Path], dict, dict[str, int]]:
    """Score recorded perception outputs against the ground truth of the same stamps.

    Returns the report paths (empty when no frame had both), the evaluation summary and
    the skipped counts. Frames without output (dropped live) are counted under
    ``"no perception output"``. A frame whose scoring raises is left out of the
    evaluation, counted under :data:`SCORING_FAILED` and, when ``errors`` (a
    ``FrameErrorLog``) is given, recorded there (stage ``metrics``, named by its stamp
    [ns]); the other frames are scored.
    """
    from fluoro_perception.evaluation.frame_metrics import (
        EvaluationAccumulator,
        compute_frame_metrics,
    )
    from fluoro_perception.evaluation.report import WorstFrames, write_report

    results = results_from_output_bag(output_bag, pixel_spacing_m, namespace, latencies_ms)
    accumulator = EvaluationAccumulator()
    worst_frames = WorstFrames(worst)
    skipped: dict[str, int] = {}
    sequence_id = Path(truth_bag).name or "bag"
    with open_bag(truth_bag) as bag:
        for index, frame in enumerate(iter_bag_frames(bag, topic, skipped)):
            truth = truth_from_bag_frame(frame, pixel_spacing_m, index, sequence_id)
            if truth is None:
                continue
            result = results.get(frame.image.stamp_ns)
            if result is None or result.labels.shape != truth.labels.shape:
                skipped["no perception output"] = skipped.get("no perception output", 0) + 1
                continue
            try:
                metrics = compute_frame_metrics(result, truth)
                worst_frames.offer(metrics, frame.image.image, frame.image.encoding, result, truth)
            except Exception as exc:  # one frame never ends the evaluation
                skipped[SCORING_FAILED] = skipped.get(SCORING_FAILED, 0) + 1
                if errors is not None:
                    errors.add(str(frame.image.stamp_ns), "metrics", exc)
                continue
            accumulator.add(metrics)
        for reason, count in bag.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    if not accumulator.num_frames:
        return {}, {}, skipped
    paths = write_report(
        output_dir, accumulator, run_info, worst_frames=worst_frames.frames(), skipped=skipped
    )
    return paths, accumulator.summary()["summary"], skipped
