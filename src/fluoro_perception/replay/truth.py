"""A bag's frames and their ground truth, as the evaluation reads them (:class:`SimFrame`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fluoro_perception.bagio import BagError, BagFrame, BagReader
from fluoro_perception.core.types import GUIDEWIRE, STENT
from fluoro_perception.sim.types import SimFrame, WireTruth

#: ``skipped`` reason of the image messages after a storage damage (:func:`iter_bag_frames`).
UNREADABLE_AFTER_DAMAGE = "unreadable after storage damage"
#: Prefix of the ``skipped`` entry (count 1) that keeps a storage damage's one-line reason.
DAMAGE_DETAIL_PREFIX = "damage: "


def truth_from_bag_frame(
    frame: BagFrame, pixel_spacing_m: float, frame_index: int, sequence_id: str
) -> SimFrame | None:
    """The bag's ground truth of one frame as a :class:`SimFrame` in pixels, None without GT.

    Metres are turned into pixels with ``pixel_spacing_m`` (``x_px = x_m / spacing``).
    The bag format carries the centerline of the primary wire only (tip first), so other
    wires get their tip and an empty centerline; a tip outside the image is not visible.
    Labels come from the labels topic, else from the guidewire / stent masks.
    """
    truth = frame.ground_truth
    if truth is None:
        return None
    image = frame.image.image
    height, width = image.shape[:2]
    if truth.labels is not None:
        labels = np.asarray(truth.labels, dtype=np.uint8)
    elif truth.guidewire_mask is not None or truth.stent_mask is not None:
        labels = np.zeros((height, width), dtype=np.uint8)
        if truth.stent_mask is not None:
            labels[np.asarray(truth.stent_mask) > 0] = STENT
        if truth.guidewire_mask is not None:
            labels[np.asarray(truth.guidewire_mask) > 0] = GUIDEWIRE
    else:
        return None
    if labels.shape != (height, width):
        return None
    spacing = float(pixel_spacing_m)
    tips_m = truth.tips_m
    yaws = truth.tip_directions_rad
    if tips_m is None and truth.tip_position_m is not None:
        tips_m = np.reshape(truth.tip_position_m, (1, 3))
        yaws = np.array([truth.tip_direction_rad or 0.0])
    centerline_px = (
        np.asarray(truth.centerline_m, dtype=np.float64)[:, :2] / spacing
        if truth.centerline_m is not None and len(truth.centerline_m)
        else np.zeros((0, 2))
    )
    wires = []
    for index, tip_m in enumerate(np.zeros((0, 3)) if tips_m is None else tips_m):
        tip_px = np.asarray(tip_m[:2], dtype=np.float64) / spacing
        inside = bool(0.0 <= tip_px[0] <= width - 1 and 0.0 <= tip_px[1] <= height - 1)
        wires.append(
            WireTruth(
                instance_id=index + 1,
                kind="guidewire",
                centerline_px=(centerline_px if index == 0 else np.zeros((0, 2))).astype(
                    np.float32
                ),
                tip_px=tip_px,
                tip_direction_rad=float(yaws[index]) if yaws is not None else 0.0,
                tip_visible=inside,
                width_px=1.0,
            )
        )
    return SimFrame(
        image=image,
        bit_depth=8 if image.dtype == np.uint8 else 16,
        labels=labels,
        wire_instances=np.zeros((height, width), dtype=np.uint8),
        field_mask=np.ones((height, width), dtype=bool),
        wires=wires,
        stents=[],
        pixel_spacing_m=spacing,
        sequence_id=sequence_id,
        frame_index=int(frame_index),
        timestamp_s=frame.image.stamp_ns * 1e-9,
        scenario="bag",
    )


def iter_bag_frames(bag: BagReader, topic: str, skipped: dict[str, int]) -> Iterator[BagFrame]:
    """``bag.iter_frames(topic)`` that ends at storage damage instead of raising.

    A damaged chunk makes the rest of the bag unreadable: the frames before it are
    yielded, the image messages after it are counted in ``skipped`` under
    ``"unreadable after storage damage"``, and the one-line reason under
    ``"damage: ..."``.
    """
    frames = bag.iter_frames(topic)
    read = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except BagError as exc:
            remaining = max(0, bag.message_count(topic) - read)
            skipped[UNREADABLE_AFTER_DAMAGE] = skipped.get(UNREADABLE_AFTER_DAMAGE, 0) + remaining
            skipped[f"{DAMAGE_DETAIL_PREFIX}{exc}"] = 1
            return
        read += 1
        yield frame
