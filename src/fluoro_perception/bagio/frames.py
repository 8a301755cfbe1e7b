"""What :class:`~fluoro_perception.bagio.reader.BagReader` yields: images and their ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BagImage:
    """One decoded image message.

    Attributes
    ----------
    topic : str
        Topic it came from.
    stamp_ns : int
        Header stamp [ns].
    log_time_ns : int
        Time the recorder logged it [ns].
    frame_id : str
        Header frame.
    encoding : str
        Message encoding.
    image : np.ndarray
        ``(H, W)`` uint8 / uint16 or ``(H, W, 3)`` uint8, see
        :func:`fluoro_perception.core.decode.decode_image`.
    """

    topic: str
    stamp_ns: int
    log_time_ns: int
    frame_id: str
    encoding: str
    image: np.ndarray


@dataclass(frozen=True)
class BagGroundTruth:
    """Ground truth read back from the ``/fluoro/ground_truth/...`` topics of one stamp.

    Fields are None when their topic is absent from the bag (or no message carried this
    stamp). Positions in metres, image frame; directions about z [rad].

    Attributes
    ----------
    guidewire_mask, stent_mask : np.ndarray or None
        ``(H, W)`` uint8 0/255.
    labels : np.ndarray or None
        ``(H, W)`` uint8 class indices (``GT_CLASS_NAMES``).
    tip_position_m : np.ndarray or None
        ``(3,)`` primary tip [m].
    tip_direction_rad : float or None
        Primary tip direction [rad].
    tips_m : np.ndarray or None
        ``(N, 3)`` all tips [m].
    tip_directions_rad : np.ndarray or None
        ``(N,)`` all tip directions [rad].
    centerline_m : np.ndarray or None
        ``(N, 3)`` primary centerline, tip first [m].
    """

    guidewire_mask: np.ndarray | None = None
    stent_mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    tip_position_m: np.ndarray | None = None
    tip_direction_rad: float | None = None
    tips_m: np.ndarray | None = None
    tip_directions_rad: np.ndarray | None = None
    centerline_m: np.ndarray | None = None


@dataclass(frozen=True)
class BagFrame:
    """An image and the ground truth sharing its header stamp (None if the bag has none)."""

    image: BagImage
    ground_truth: BagGroundTruth | None = None
